r"""Finite-difference derivatives of a user's callable that never evaluate it outside [0, 1].

:data:`FIRST` and :data:`SECOND` are the stencils of order 2 for the first and second
derivative (central inside, one-sided within a step of 0 and 1; the steps balance
truncation against rounding, see each stencil's comment); :func:`derivative` applies one,
:meth:`Stencil.layout` gives its points (also of the one-sided derivatives, for
:mod:`~capopt.user_curves.chords`), :func:`evaluate` calls a callable and checks it is
vectorised.

Glossary: ``l`` loss, ``h`` step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Stencil", "FIRST", "SECOND", "SLOPE_ROUNDING", "evaluate", "derivative"]


@dataclass(frozen=True)
class Stencil:
    """Finite-difference weights for the ``order``-th derivative with step ``step``.

    ``central`` is used where all of its points lie in [0, 1]; near 0 the ``forward``
    stencil (same order of accuracy), near 1 its mirror image. One-sided derivatives
    (``side`` of :meth:`layout`) use the forward stencil, or its mirror, wherever it fits.
    """

    order: int
    step: float
    central: tuple[tuple[int, ...], tuple[float, ...]]
    forward: tuple[tuple[int, ...], tuple[float, ...]]

    def layout(self, x: np.ndarray, side: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Points, shape ``x.shape + (P,)``, all in [0, 1], and their weights at each x.

        ``side`` 0: the central stencil where it fits; +1: the forward one (a derivative
        from the right) except within its reach of 1; -1: the backward one (from the left)
        except within its reach of 0. Shorter stencils are padded with x itself at weight 0.
        """
        table, scales = _padded_cases(self)
        central_reach = max(abs(o) for o in self.central[0]) * self.step
        one_sided_reach = max(self.forward[0]) * self.step
        if side == 0:
            case = np.where(x < central_reach, 1, np.where(x > 1.0 - central_reach, 2, 0))
        elif side > 0:
            case = np.where(x > 1.0 - one_sided_reach, 2, 1)
        else:
            case = np.where(x < one_sided_reach, 1, 2)
        return x[..., None] + table[case] * self.step, scales[case]

    def combine(self, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The derivative from the values at the points of :meth:`layout` and their weights."""
        return np.sum(values * weights, axis=-1) / self.step**self.order


@functools.lru_cache(maxsize=None)
def _padded_cases(stencil: Stencil) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and weights of the central, forward and backward stencils, padded to one
    length with offset 0 at weight 0, shape (3, P) each."""
    # Mirroring the forward stencil negates odd derivatives.
    mirror = (-1.0) ** stencil.order
    offsets, weights = stencil.forward
    backward = (tuple(-o for o in offsets), tuple(mirror * w for w in weights))
    cases = (stencil.central, stencil.forward, backward)
    size = max(len(o) for o, _ in cases)
    table = np.array([tuple(o) + (0,) * (size - len(o)) for o, _ in cases], dtype=np.float64)
    scales = np.array([tuple(w) + (0.0,) * (size - len(w)) for _, w in cases], dtype=np.float64)
    table.setflags(write=False)
    scales.setflags(write=False)
    return table, scales


# First derivative, error O(h^2): truncation h^2/6 |l'''| (central) or h^2/3 |l'''|
# (one-sided) plus rounding ~ 4 eps |l| / h; both are balanced at h ~ eps^(1/3) ~ 6e-6,
# giving ~1e-10 relative accuracy for curves that vary on the scale of [0, 1]. The step is
# the nearby power of two 2^-17 ~ 7.6e-6, so that C +- h is exact for most C.
FIRST = Stencil(1, 2.0**-17, ((-1, 1), (-0.5, 0.5)), ((0, 1, 2), (-1.5, 2.0, -0.5)))
# Second derivative, error O(h^2): truncation h^2/12 |l''''| (central) or 11/12 h^2 |l''''|
# (one-sided) plus rounding ~ 4 eps |l| / h^2, balanced at h ~ eps^(1/4) ~ 1.2e-4 = 2^-13.
SECOND = Stencil(
    2, 2.0**-13, ((-1, 0, 1), (1.0, -2.0, 1.0)), ((0, 1, 2, 3), (2.0, -5.0, 4.0, -1.0))
)

#: Rounding of a divided difference (l(b) - l(a)) / (b - a), in units of max(|l(a)|, |l(b)|)
#: / (b - a): each value carries up to ~2 ulps of its magnitude.
SLOPE_ROUNDING = 4.0 * float(np.finfo(np.float64).eps)


def evaluate(f: Callable, x: np.ndarray, name: str) -> np.ndarray:
    """``f(x)`` as a float64 array of the shape of ``x``, or a ValueError naming ``f``."""
    y = np.asarray(f(x), dtype=np.float64)
    if y.shape != x.shape:
        try:
            y = np.broadcast_to(y, x.shape)
        except ValueError:
            raise ValueError(
                f"{name} returned shape {y.shape} for capacities of shape {x.shape}; it must be "
                "vectorised (map an array of capacities to an array of the same shape), or "
                "pass vectorized=False for a function of one float"
            ) from None
    return y


def derivative(f: Callable, x: np.ndarray, stencil: Stencil, name: str) -> np.ndarray:
    """Finite-difference derivative of ``f`` at ``x`` without evaluating outside [0, 1]."""
    points, weights = stencil.layout(x)
    return stencil.combine(evaluate(f, points, name), weights)
