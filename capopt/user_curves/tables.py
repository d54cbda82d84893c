r"""Loss curves tabulated on a grid over [0, 1] and interpolated piecewise-linearly.

:func:`from_table` builds a :class:`TabulatedCurves` from values :math:`\ell_i(x_k)` on a
grid :math:`0 = x_0 < \dots < x_{M-1} = 1` (e.g. losses measured by training at a few
capacities); its shapes are read off the pieces' slopes and, for tables up to
:data:`EXACT_SHAPE_ENTRIES` entries, checked in exact rational arithmetic.

Glossary: ``C`` capacity in [0, 1], ``l`` loss, ``M`` grid size, ``N`` number of features.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import ClassVar

import numpy as np

from .._typing import ArrayLike
from .._validation import as_float_array, check_scalar
from ..curves import SAFE_EXPONENT, LossCurves, Parameter, Shape, _frozen, _readonly
from .shapes import DEFAULT_SHAPE_RTOL, difference_noise, shapes_from_slopes

__all__ = ["TabulatedCurves", "from_table", "EXACT_SHAPE_ENTRIES"]

#: Largest table whose shapes are checked exactly (rational arithmetic on every knot).
EXACT_SHAPE_ENTRIES = 1 << 16


def _segments(grid: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Index k of the piece [x_k, x_{k+1}] holding C: the right piece at an inner knot."""
    return np.clip(np.searchsorted(grid, C, side="right") - 1, 0, grid.size - 2)


@dataclass(frozen=True, repr=False)
class TabulatedCurves(LossCurves):
    r"""Loss curves tabulated on a grid over [0, 1] and interpolated piecewise-linearly.

    .. math::

        \ell_i(C) = \ell_{ik} + \frac{C - x_k}{x_{k+1} - x_k} (\ell_{i,k+1} - \ell_{ik}),
        \qquad x_k \le C \le x_{k+1}.

    The marginal is minus the slope of the piece holding C. At an inner knot, where the
    derivative jumps, it is the slope of the piece to the right -- the benefit of the next
    increment of capacity -- and at C = 1 that of the last piece. The curvature is 0
    (the kinks are ignored). Capacities outside [0, 1] extrapolate the end pieces.

    Use :func:`from_table` to build one.
    """

    grid: np.ndarray
    values: np.ndarray
    curve_shapes: tuple
    _marginals: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        slopes = np.diff(self.values, axis=1) / np.diff(self.grid)
        object.__setattr__(self, "_marginals", _readonly(-slopes))

    @cached_property
    def shapes_proven(self) -> bool:
        """Whether the detected shapes hold exactly: slope changes signed in exact rational
        arithmetic (detection forgives changes within ``shape_rtol``; a proof cannot).

        Tables of more than :data:`EXACT_SHAPE_ENTRIES` entries are not checked (False).
        """
        if self.values.size > EXACT_SHAPE_ENTRIES:
            return False
        x = [Fraction(float(t)) for t in self.grid]
        for row, shape in zip(self.values, self.curve_shapes):
            if shape is Shape.IRREGULAR:
                continue
            y = [Fraction(float(t)) for t in row]
            for k in range(1, len(x) - 1):
                # sign of slope_k - slope_(k-1), the widths being positive
                change = (y[k + 1] - y[k]) * (x[k] - x[k - 1]) - (y[k] - y[k - 1]) * (x[k + 1] - x[k])
                if (change < 0 and shape in (Shape.CONVEX, Shape.LINEAR)) or (
                    change > 0 and shape in (Shape.CONCAVE, Shape.LINEAR)
                ):
                    return False
        return True

    @property
    def n_features(self) -> int:
        return self.values.shape[0]

    @property
    def shapes(self) -> tuple[Shape, ...]:
        return self.curve_shapes

    def _broadcast(self, C: ArrayLike) -> np.ndarray:
        C = self._capacities(C)
        return np.broadcast_to(C, np.broadcast_shapes(C.shape, (self.n_features,)))

    def loss(self, C: ArrayLike) -> np.ndarray:
        C = self._broadcast(C)
        k = _segments(self.grid, C)
        rows = np.arange(self.n_features)
        return self.values[rows, k] - self._marginals[rows, k] * (C - self.grid[k])

    def marginal(self, C: ArrayLike) -> np.ndarray:
        C = self._broadcast(C)
        return self._marginals[np.arange(self.n_features), _segments(self.grid, C)]

    def curvature(self, C: ArrayLike) -> np.ndarray:
        return np.zeros(self._broadcast(C).shape)

    @property
    def piece_marginals(self) -> np.ndarray:
        """Marginal (minus the slope) of every piece, shape (N, M - 1) (read-only)."""
        return self._marginals

    def one_sided_marginals(self, C: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Marginals of the pieces right and left of C (they differ at an inner knot)."""
        C = self._broadcast(C)
        rows = np.arange(self.n_features)
        left = np.clip(np.searchsorted(self.grid, C, side="left") - 1, 0, self.grid.size - 2)
        return self._marginals[rows, _segments(self.grid, C)], self._marginals[rows, left]

    #: Branch and bound on the knots is exact for tables of any shape.
    exact_method: ClassVar[str | None] = "global"

    def parameters(self, C: ArrayLike) -> tuple[Parameter, ...]:
        """``values`` (N, M), which scale as the loss: :meth:`value_partials`."""
        dm, dl = self.value_partials(C)
        return (Parameter("values", self.values.shape, dm, dl, 1.0),)

    def value_partials(self, C: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        r"""Partials of the marginal and the loss at C in the table's values, shape (N, M).

        On the piece :math:`[x_k, x_{k+1}]` holding C (the right one at a knot), with
        :math:`t = (C - x_k) / (x_{k+1} - x_k)`:

        .. math::

            \frac{\partial m}{\partial \ell_k} = -\frac{\partial m}{\partial \ell_{k+1}}
            = \frac{1}{x_{k+1} - x_k}, \qquad
            \frac{\partial \ell}{\partial \ell_k} = 1 - t, \quad
            \frac{\partial \ell}{\partial \ell_{k+1}} = t,

        and 0 for every other value (the sensitivities' parameters of a table).
        """
        C = self._broadcast(C)
        k = _segments(self.grid, C)
        rows = np.arange(self.n_features)
        width = self.grid[k + 1] - self.grid[k]
        t = (C - self.grid[k]) / width
        dm = np.zeros(self.values.shape)
        dl = np.zeros(self.values.shape)
        dm[rows, k], dm[rows, k + 1] = 1.0 / width, -1.0 / width
        dl[rows, k], dl[rows, k + 1] = 1.0 - t, t
        return dm, dl

    def _penalised(self, lam: ArrayLike) -> np.ndarray:
        r""":math:`\ell_i(x_k) + \lambda x_k` at every knot, shape (..., N, M)."""
        lam = np.asarray(lam, dtype=np.float64)
        lam = np.broadcast_to(lam, np.broadcast_shapes(lam.shape, (self.n_features,)))
        return self.values + lam[..., None] * self.grid

    def capacity_at(self, lam: ArrayLike) -> np.ndarray:
        r"""Exact :meth:`LossCurves.capacity_at`: the first knot minimising
        :math:`\ell_i(x_k) + \lambda x_k`.

        A piecewise-linear function plus a linear one attains its minimum over [0, 1] at a
        knot, whatever the table's shape.
        """
        return self.grid[np.argmin(self._penalised(lam), axis=-1)]

    def lagrangian_minimum(self, lam: float) -> np.ndarray:
        """Exact at the knots for every shape (see :meth:`capacity_at`)."""
        return np.min(self._penalised(lam), axis=-1)

    def loss_range(self) -> np.ndarray:
        return np.ptp(self.values, axis=1)

    def benefit_lipschitz(self) -> np.ndarray:
        """Exact for every shape: the steepest descending piece."""
        return np.maximum(0.0, np.max(self._marginals, axis=1))

    def normalized(self) -> tuple[TabulatedCurves, int, float]:
        """Each curve less its smallest value (the offsets, summed exactly into the
        constant), then scaled by a power of two into the safe range: an offset of 1e17
        would otherwise round away the variation of every other curve in the totals the
        search and the certificate compare."""
        low = np.min(self.values, axis=1)
        values = self.values - low[:, None] if np.any(low != 0) else self.values
        constant = math.fsum(low.tolist())
        top = float(np.max(values))
        e = 0
        if top > 0 and not 2.0**-SAFE_EXPONENT <= top <= 2.0**SAFE_EXPONENT:
            e = int(np.ceil(np.log2(top)))
            values = np.ldexp(values, -e)
        if values is self.values:
            return self, 0, 0.0
        return TabulatedCurves(self.grid, _frozen(values), self.curve_shapes), e, constant

    def total_loss(self, C: ArrayLike) -> np.ndarray:
        r""":math:`\sum_i \ell_i(C_i)`, summed exactly (:func:`math.fsum`) over the curves: the
        offsets of tables can be far apart, and a plain sum would cancel them."""
        losses = self.loss(C)
        rows = losses.reshape(-1, losses.shape[-1]).tolist()
        return np.array([_exact_sum(row) for row in rows]).reshape(losses.shape[:-1])

    def subset(self, features: np.ndarray) -> TabulatedCurves:
        shapes = tuple(self.curve_shapes[i] for i in features)
        return TabulatedCurves(self.grid, _frozen(self.values[features]), shapes)

    def __repr__(self) -> str:
        return (
            f"TabulatedCurves(n_features={self.n_features}, grid_points={self.grid.size}, "
            f"shape={self.shape.value})"
        )


def from_table(grid: ArrayLike, values: ArrayLike, *,
               shape_rtol: float = DEFAULT_SHAPE_RTOL) -> TabulatedCurves:
    r"""Loss curves tabulated on a grid over [0, 1], interpolated piecewise-linearly.

    Parameters
    ----------
    grid : array_like, shape (M,)
        Capacities :math:`0 = x_0 < x_1 < \dots < x_{M-1} = 1`, M >= 2.
    values : array_like, shape (N, M)
        ``values[i, k]`` is :math:`\ell_i(x_k)`, finite.
    shape_rtol : float
        Relative tolerance of the shape detection (:func:`shapes_from_slopes` on the
        pieces' slopes); raise it for noisy measurements, whose wiggles otherwise make a
        curve IRREGULAR (solvable only by the grid dynamic programme).

    Returns
    -------
    TabulatedCurves

    Raises
    ------
    ValueError
        If ``grid`` is not 1-d, has fewer than 2 points, does not start at 0 or end at 1, or
        is not strictly increasing; if ``values`` is not of shape (N, M); on non-finite
        entries, or entries whose slope between grid points overflows float64.

    Notes
    -----
    The marginal at an inner knot is taken from the piece to its right (one-sided), so
    :math:`C = x_k` and the piece :math:`[x_k, x_{k+1})` share a marginal; the last piece
    supplies it at C = 1. Evaluation costs O(log M) per capacity (a binary search for the
    piece); the exact :meth:`~TabulatedCurves.capacity_at` costs O(M).

    Examples
    --------
    >>> curves = from_table([0.0, 0.5, 1.0], [[2.0, 1.0, 0.0], [1.0, 0.2, 0.0]])
    >>> [s.value for s in curves.shapes]
    ['linear', 'convex']
    >>> curves.loss([0.25, 0.75])
    array([1.5, 0.1])
    >>> curves.marginal([0.5, 1.0])          # right piece at the knot, last piece at 1
    array([2. , 0.4])
    """
    x = as_float_array(grid, "grid")
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"grid must be a 1-d array of at least 2 capacities, got shape {x.shape}")
    if x[0] != 0.0 or x[-1] != 1.0:
        raise ValueError(
            f"grid must start at 0 and end at 1, got grid[0]={x[0]:g}, grid[-1]={x[-1]:g}"
        )
    steps = np.diff(x)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        raise ValueError(
            "grid must be strictly increasing, got "
            f"grid[{k}]={x[k]:g} >= grid[{k + 1}]={x[k + 1]:g}"
        )
    table = as_float_array(values, "values")
    if table.ndim != 2 or table.shape[1] != x.size or table.shape[0] == 0:
        hint = "; for a single curve pass values[None, :]" if table.shape == x.shape else ""
        raise ValueError(
            f"values must have shape (N, {x.size}) (one row per feature, one column per grid "
            f"point), got shape {table.shape}{hint}"
        )
    shape_rtol = check_scalar(shape_rtol, "shape_rtol", minimum=0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        slopes = np.diff(table, axis=1) / steps
    if not np.all(np.isfinite(slopes)):
        i, k = (int(j) for j in np.argwhere(~np.isfinite(slopes))[0])
        raise ValueError(
            "values must change by a finite slope between grid points (float64 overflows), "
            f"got values[{i}, {k}]={table[i, k]:g} and values[{i}, {k + 1}]={table[i, k + 1]:g} "
            f"over a step of {steps[k]:g}; rescale the losses"
        )
    detected = shapes_from_slopes(slopes, rtol=shape_rtol, noise=difference_noise(table, x))
    return TabulatedCurves(_readonly(x), _readonly(table), detected)


def _exact_sum(values: list[float]) -> float:
    """:func:`math.fsum`, or +-inf where the sum itself overflows float64."""
    try:
        return math.fsum(values)
    except OverflowError:
        return float(np.sum(values))
