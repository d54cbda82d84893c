"""The shape of a curve (convex, linear, concave, irregular), read off its slopes on a grid.

The solvers need each curve's shape, which decides which methods are exact;
:func:`shapes_from_slopes` decides it from slopes at increasing capacities, forgiving
changes within :data:`DEFAULT_SHAPE_RTOL` of the largest slope plus the rounding of
divided differences (:func:`difference_noise`).
"""

from __future__ import annotations

import numpy as np

from .._typing import ArrayLike
from ..curves import Shape
from .differences import SLOPE_ROUNDING

__all__ = ["shapes_from_slopes", "difference_noise", "DEFAULT_SHAPE_RTOL"]

#: Slope changes smaller than this fraction of a curve's largest slope magnitude count as
#: zero when the shape is detected. Far above the rounding of float64 slopes (~1e-16
#: relative), so a straight line computed in floating point is LINEAR; far below any
#: curvature a solver would care about, so a genuinely curved loss is not called linear.
DEFAULT_SHAPE_RTOL = 1e-9


def shapes_from_slopes(slopes: ArrayLike, *, rtol: float = DEFAULT_SHAPE_RTOL,
                       noise: ArrayLike = 0.0) -> tuple[Shape, ...]:
    r"""Shape of each curve from its slopes at increasing capacities.

    With :math:`s_{ik}` the slope of curve i on its k-th piece (or :math:`-m_i` at the k-th
    sample point) and :math:`\Delta_{ik} = s_{i,k+1} - s_{ik}`, changes with
    :math:`|\Delta_{ik}| \le \tau_i = \mathrm{rtol} \cdot \max_k |s_{ik}| + \mathrm{noise}_i`
    count as zero, and the curve is

    - LINEAR if every change is zero,
    - CONVEX if no change is below :math:`-\tau_i` (slopes non-decreasing),
    - CONCAVE if no change is above :math:`+\tau_i` (slopes non-increasing),
    - IRREGULAR otherwise.

    Parameters
    ----------
    slopes : array_like, shape (N, P)
        Slopes of N curves at P increasing capacities.
    rtol : float
        Relative tolerance on slope changes.
    noise : float or array_like, shape (N,)
        Absolute rounding error of the slope changes (e.g. of divided differences).

    Returns
    -------
    tuple of Shape, length N

    Examples
    --------
    >>> [s.value for s in shapes_from_slopes([[-2, -1, 0], [-1, -1, -1], [0, -1, -2], [0, 1, 0]])]
    ['convex', 'linear', 'concave', 'irregular']
    """
    s = np.asarray(slopes, dtype=np.float64)
    changes = np.diff(s, axis=-1)
    scale = np.max(np.abs(s), axis=-1, initial=0.0)
    allowance = (rtol * scale + np.asarray(noise, dtype=np.float64))[:, None]
    rising = np.any(changes > allowance, axis=-1)
    falling = np.any(changes < -allowance, axis=-1)
    return tuple(
        Shape.IRREGULAR if r and f else Shape.CONCAVE if f else Shape.CONVEX if r else Shape.LINEAR
        for r, f in zip(rising, falling)
    )


def difference_noise(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Rounding error of the changes of divided differences of ``values`` on ``grid``.

    Each slope errs by up to :data:`~capopt.user_curves.differences.SLOPE_ROUNDING` max|l| / h
    and each change of slope by twice that.
    """
    return 2.0 * SLOPE_ROUNDING * np.max(np.abs(values), axis=-1) / np.min(np.diff(grid))
