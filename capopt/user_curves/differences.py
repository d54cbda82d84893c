r"""Finite-difference derivatives of a user's callable that never evaluate it outside [0, 1].

:data:`FIRST` and :data:`SECOND` are the stencils of order 2 for the first and second
derivative (central inside, one-sided within a step of 0 and 1; the steps balance
truncation against rounding, see each stencil's comment); :func:`derivative` applies one,
:func:`evaluate` calls a callable and checks it is vectorised.

Glossary: ``l`` loss, ``h`` step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Stencil", "FIRST", "SECOND", "evaluate", "derivative"]


@dataclass(frozen=True)
class Stencil:
    """Finite-difference weights for the ``order``-th derivative with step ``step``.

    ``central`` is used where all of its points lie in [0, 1]; near 0 the ``forward``
    stencil (same order of accuracy), near 1 its mirror image.
    """

    order: int
    step: float
    central: tuple[tuple[int, ...], tuple[float, ...]]
    forward: tuple[tuple[int, ...], tuple[float, ...]]


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
    h = stencil.step
    reach = max(abs(o) for o in stencil.central[0]) * h
    near_zero = x < reach
    near_one = (x > 1.0 - reach) & ~near_zero
    inside = ~(near_zero | near_one)
    forward_offsets, forward_weights = stencil.forward
    # Mirroring the forward stencil negates odd derivatives.
    mirror = (-1.0) ** stencil.order
    cases = (
        (inside, *stencil.central),
        (near_zero, forward_offsets, forward_weights),
        (near_one, tuple(-o for o in forward_offsets), tuple(mirror * w for w in forward_weights)),
    )
    out = np.empty(x.shape)
    for mask, offsets, weights in cases:
        if np.any(mask):
            points = x[mask][:, None] + np.asarray(offsets, dtype=np.float64) * h
            out[mask] = evaluate(f, points, name) @ np.asarray(weights) / h**stencil.order
    return out
