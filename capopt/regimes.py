"""The three regimes a feature can be in, read off its capacity.

A feature with capacity ``C = 1`` owns a whole embedding dimension (monosemantic), one with
``0 < C < 1`` shares its dimensions with other features (polysemantic), and one with
``C = 0`` is not represented at all (ignored).
"""

from __future__ import annotations

import enum

import numpy as np

from ._typing import ArrayLike

__all__ = ["Regime", "classify", "regime_codes", "DEFAULT_REGIME_ATOL"]

#: Capacities within this distance of 0 or 1 count as exactly 0 or 1. Exact solvers return
#: bounds to rounding error (~1e-16); the margin leaves room for iterative methods.
DEFAULT_REGIME_ATOL = 1e-9


class Regime(str, enum.Enum):
    """Regime of a feature; the value is the word printed in tables."""

    MONOSEMANTIC = "monosemantic"
    POLYSEMANTIC = "polysemantic"
    IGNORED = "ignored"


def classify(capacities: ArrayLike, *, atol: float = DEFAULT_REGIME_ATOL) -> tuple[Regime, ...]:
    """Regime of each feature of a 1-d array of capacities.

    Parameters
    ----------
    capacities : array_like, shape (N,)
        Capacities in [0, 1].
    atol : float
        ``C >= 1 - atol`` is monosemantic and ``C <= atol`` is ignored.

    Examples
    --------
    >>> [r.value for r in classify([1.0, 0.5, 0.0])]
    ['monosemantic', 'polysemantic', 'ignored']
    """
    C = np.asarray(capacities, dtype=np.float64)
    if C.ndim != 1:
        raise ValueError(f"capacities must be 1-d, got shape {C.shape}")
    return tuple(_BY_CODE[regime_codes(C, atol=atol)].tolist())


def regime_codes(capacities: ArrayLike, *, atol: float = DEFAULT_REGIME_ATOL) -> np.ndarray:
    """The regime of each capacity as a code, elementwise over an array of any shape.

    0 monosemantic, 1 polysemantic, 2 ignored: the position in ``tuple(Regime)``, and the
    order of the counts of :func:`capopt.sweeps.sweep`; NaN reads as polysemantic, so mask it first.

    Examples
    --------
    >>> regime_codes([[1.0, 0.5], [0.0, 1 - 1e-12]]).tolist()
    [[0, 1], [2, 0]]
    """
    C = np.asarray(capacities, dtype=np.float64)
    return np.where(C >= 1.0 - atol, 0, np.where(C <= atol, 2, 1)).astype(np.int8)


_BY_CODE = np.array(tuple(Regime), dtype=object)
