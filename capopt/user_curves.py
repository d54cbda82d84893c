r"""Loss curves supplied by the user: Python functions or tabulated values.

Two factories turn a user's own curves into a :class:`~capopt.curves.LossCurves` family that
every solver accepts:

- :func:`from_functions` -- one callable :math:`\ell_i(C)` per feature, with the marginal
  :math:`-\ell_i'` and the curvature :math:`\ell_i''` either supplied or obtained by finite
  differences;
- :func:`from_table` -- values :math:`\ell_i(x_k)` on a grid :math:`0 = x_0 < \dots < x_{M-1} = 1`,
  interpolated piecewise-linearly (e.g. losses measured by training at a few capacities).

The solvers need each curve's shape (convex, linear, concave or irregular), which decides
which methods are exact. It is read off the slopes of the curve on a grid: the table's own
grid, or a fine uniform sample of a callable (see :func:`shapes_from_slopes`). A sample
cannot prove convexity between its points; pass ``shapes=`` to :func:`from_functions` when
the shapes are known analytically.

Glossary: ``C`` capacity in [0, 1], ``l`` loss, ``m = -l'`` marginal benefit, ``s = l'``
slope, ``h`` step, ``M`` grid size, ``N`` number of features.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Callable, Sequence

import numpy as np

from ._validation import as_float_array
from .curves import SAFE_EXPONENT, LossCurves, Shape, _frozen, _readonly

__all__ = [
    "FunctionCurves",
    "TabulatedCurves",
    "from_functions",
    "from_table",
    "shapes_from_slopes",
    "DEFAULT_SHAPE_RTOL",
    "DEFAULT_SAMPLES",
]

#: Slope changes smaller than this fraction of a curve's largest slope magnitude count as
#: zero when the shape is detected. Far above the rounding of float64 slopes (~1e-16
#: relative), so a straight line computed in floating point is LINEAR; far below any
#: curvature a solver would care about, so a genuinely curved loss is not called linear.
DEFAULT_SHAPE_RTOL = 1e-9

#: Points of the uniform sample on which a callable's shape is detected (step 1/1024).
DEFAULT_SAMPLES = 1025

#: Largest accepted mismatch between a supplied marginal and the slope of the supplied loss,
#: relative to the marginal's magnitude. The comparison is a trapezoid rule on the shape
#: sample, accurate to h^2/12 max|m''| ~ 1e-7 |m''|; the threshold is loose enough for any
#: reasonably smooth curve and still catches the common mistakes (a sign flip, which gives
#: a mismatch of 2|m|, or a missing factor).
MARGINAL_CHECK_RTOL = 1e-2

#: Largest table whose shapes are checked exactly (rational arithmetic on every knot).
EXACT_SHAPE_ENTRIES = 1 << 16


@dataclass(frozen=True)
class _Stencil:
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
_FIRST = _Stencil(1, 2.0**-17, ((-1, 1), (-0.5, 0.5)), ((0, 1, 2), (-1.5, 2.0, -0.5)))
# Second derivative, error O(h^2): truncation h^2/12 |l''''| (central) or 11/12 h^2 |l''''|
# (one-sided) plus rounding ~ 4 eps |l| / h^2, balanced at h ~ eps^(1/4) ~ 1.2e-4 = 2^-13.
_SECOND = _Stencil(
    2, 2.0**-13, ((-1, 0, 1), (1.0, -2.0, 1.0)), ((0, 1, 2, 3), (2.0, -5.0, 4.0, -1.0))
)


def _call(f: Callable, x: np.ndarray, name: str) -> np.ndarray:
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


def _derivative(f: Callable, x: np.ndarray, stencil: _Stencil, name: str) -> np.ndarray:
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
            out[mask] = _call(f, points, name) @ np.asarray(weights) / h**stencil.order
    return out


def shapes_from_slopes(slopes, *, rtol: float = DEFAULT_SHAPE_RTOL, noise=0.0) -> tuple[Shape, ...]:
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


def _difference_noise(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Rounding error of the changes of divided differences of ``values`` on ``grid``.

    Each value carries up to ~2 ulps, each slope then up to 4 eps max|l| / h and each change
    of slope twice that.
    """
    eps = np.finfo(np.float64).eps
    return 8.0 * eps * np.max(np.abs(values), axis=-1) / np.min(np.diff(grid))


def _check_rtol(shape_rtol) -> float:
    if isinstance(shape_rtol, (bool, np.bool_)) or not isinstance(shape_rtol, numbers.Real):
        raise TypeError(f"shape_rtol must be a real number, got {type(shape_rtol).__name__}")
    if not (np.isfinite(shape_rtol) and shape_rtol >= 0):
        raise ValueError(f"shape_rtol must be finite and >= 0, got {shape_rtol!r}")
    return float(shape_rtol)


def _segments(grid: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Index k of the piece [x_k, x_{k+1}] holding C: the right piece at an inner knot."""
    return np.clip(np.searchsorted(grid, C, side="right") - 1, 0, grid.size - 2)


@dataclass(frozen=True, repr=False)
class FunctionCurves(LossCurves):
    r"""Loss curves given as Python callables, one per feature.

    Derivatives not supplied are computed by finite differences of order 2 that never
    evaluate a callable outside [0, 1]: central differences
    :math:`m(C) \approx -(\ell(C + h) - \ell(C - h)) / 2h` inside, the one-sided
    :math:`-(-3\ell(C) + 4\ell(C + h) - \ell(C + 2h)) / 2h` within h of 0 (mirrored within h
    of 1), with :math:`h = 2^{-17} \approx \epsilon^{1/3}`; the error is at most
    :math:`h^2 \max|\ell'''| / 3 + 4 \epsilon \max|\ell| / h \approx 2 \cdot 10^{-11}
    \max|\ell'''| + 1.2 \cdot 10^{-10} \max|\ell|`. The curvature is the same
    first-derivative stencil applied to a supplied marginal, or else the second-difference
    stencil on the loss (central :math:`(1, -2, 1) / h^2`, one-sided
    :math:`(2, -5, 4, -1) / h^2`) with :math:`h = 2^{-13} \approx \epsilon^{1/4}`, error at
    most :math:`11 h^2 \max|\ell''''| / 12 + 12 \epsilon \max|\ell| / h^2 \approx
    1.4 \cdot 10^{-8} \max|\ell''''| + 1.8 \cdot 10^{-7} \max|\ell|`.

    Use :func:`from_functions` to build one.
    """

    losses: tuple
    marginals: tuple | None
    curvatures: tuple | None
    curve_shapes: tuple
    #: Points of the sample the shapes were detected on; 0 when the user gave the shapes.
    detected_on: int = 0

    @property
    def n_features(self) -> int:
        return len(self.losses)

    @property
    def shapes(self) -> tuple[Shape, ...]:
        return self.curve_shapes

    @property
    def assumptions(self) -> tuple[str, ...]:
        if not self.detected_on:
            return ()
        return (
            f"curve shapes detected on a {self.detected_on}-point sample, not proven (pass "
            "shapes= to from_functions to state them)",
        )

    def _apply(self, C, funcs: tuple, name: str, stencil: _Stencil | None = None, sign=1.0):
        """``sign`` times ``funcs[i]`` (or its ``stencil`` derivative) at ``C[..., i]``."""
        C = self._capacities(C)
        C = np.broadcast_to(C, np.broadcast_shapes(C.shape, (self.n_features,)))
        out = np.empty(C.shape)
        for i, f in enumerate(funcs):
            c, label = np.ascontiguousarray(C[..., i]), f"{name}[{i}]"
            if stencil is None:
                out[..., i] = _call(f, c, label)
            else:
                out[..., i] = _derivative(f, c, stencil, label)
        return sign * out

    def loss(self, C) -> np.ndarray:
        return self._apply(C, self.losses, "losses")

    def marginal(self, C) -> np.ndarray:
        if self.marginals is not None:
            return self._apply(C, self.marginals, "marginals")
        return self._apply(C, self.losses, "losses", _FIRST, sign=-1.0)

    def curvature(self, C) -> np.ndarray:
        if self.curvatures is not None:
            return self._apply(C, self.curvatures, "curvatures")
        if self.marginals is not None:
            return self._apply(C, self.marginals, "marginals", _FIRST, sign=-1.0)
        return self._apply(C, self.losses, "losses", _SECOND)

    def __repr__(self) -> str:
        given = "marginals given" if self.marginals is not None else "finite-difference marginals"
        return f"FunctionCurves(n_features={self.n_features}, shape={self.shape.value}, {given})"


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

    def __post_init__(self):
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

    def _broadcast(self, C) -> np.ndarray:
        C = self._capacities(C)
        return np.broadcast_to(C, np.broadcast_shapes(C.shape, (self.n_features,)))

    def loss(self, C) -> np.ndarray:
        C = self._broadcast(C)
        k = _segments(self.grid, C)
        rows = np.arange(self.n_features)
        return self.values[rows, k] - self._marginals[rows, k] * (C - self.grid[k])

    def marginal(self, C) -> np.ndarray:
        C = self._broadcast(C)
        return self._marginals[np.arange(self.n_features), _segments(self.grid, C)]

    def curvature(self, C) -> np.ndarray:
        return np.zeros(self._broadcast(C).shape)

    @property
    def piece_marginals(self) -> np.ndarray:
        """Marginal (minus the slope) of every piece, shape (N, M - 1) (read-only)."""
        return self._marginals

    def one_sided_marginals(self, C) -> tuple[np.ndarray, np.ndarray]:
        """Marginals of the pieces right and left of C (they differ at an inner knot)."""
        C = self._broadcast(C)
        rows = np.arange(self.n_features)
        left = np.clip(np.searchsorted(self.grid, C, side="left") - 1, 0, self.grid.size - 2)
        return self._marginals[rows, _segments(self.grid, C)], self._marginals[rows, left]

    def _penalised(self, lam) -> np.ndarray:
        r""":math:`\ell_i(x_k) + \lambda x_k` at every knot, shape (..., N, M)."""
        lam = np.asarray(lam, dtype=np.float64)
        lam = np.broadcast_to(lam, np.broadcast_shapes(lam.shape, (self.n_features,)))
        return self.values + lam[..., None] * self.grid

    def capacity_at(self, lam) -> np.ndarray:
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
        top = float(np.max(np.abs(self.values)))
        if top == 0 or top <= 2.0**SAFE_EXPONENT and top >= 2.0**-SAFE_EXPONENT:
            return self, 0, 0.0
        e = int(np.ceil(np.log2(top)))
        scaled = TabulatedCurves(self.grid, _frozen(np.ldexp(self.values, -e)), self.curve_shapes)
        return scaled, e, 0.0

    def subset(self, features: np.ndarray) -> TabulatedCurves:
        shapes = tuple(self.curve_shapes[i] for i in features)
        return TabulatedCurves(self.grid, _frozen(self.values[features]), shapes)

    def __repr__(self) -> str:
        return (
            f"TabulatedCurves(n_features={self.n_features}, grid_points={self.grid.size}, "
            f"shape={self.shape.value})"
        )


def _callables(funcs, name: str, n: int | None, vectorized: bool) -> tuple:
    """Validate a sequence of callables, wrapping scalar functions when not ``vectorized``."""
    if callable(funcs) or isinstance(funcs, (str, bytes)) or not isinstance(funcs, Sequence):
        raise TypeError(
            f"{name} must be a sequence of callables, one per feature, got {type(funcs).__name__}; "
            f"wrap a single function in a list: {name}=[f]"
        )
    if n is None and len(funcs) == 0:
        raise ValueError(f"{name} must hold at least one callable, got an empty sequence")
    if n is not None and len(funcs) != n:
        raise ValueError(f"{name} must hold one callable per loss ({n}), got {len(funcs)}")
    for i, f in enumerate(funcs):
        if not callable(f):
            raise TypeError(f"{name}[{i}] must be callable, got {type(f).__name__}: {f!r}")
    if vectorized:
        return tuple(funcs)
    return tuple(np.vectorize(f, otypes=[np.float64]) for f in funcs)


def _sample(funcs: tuple, name: str, x: np.ndarray) -> np.ndarray:
    """Values of each callable on ``x``, shape (N, len(x)), checked finite."""
    out = np.empty((len(funcs), x.size))
    for i, f in enumerate(funcs):
        try:
            out[i] = _call(f, x, f"{name}[{i}]")
        except (TypeError, ValueError) as exc:
            if "vectorized=False" in str(exc):
                raise
            raise type(exc)(
                f"{name}[{i}] failed on an array of capacities ({exc}); callables must be "
                "vectorised, or pass vectorized=False for functions of one float"
            ) from exc
        bad = ~np.isfinite(out[i])
        if np.any(bad):
            k = int(np.argmax(bad))
            raise ValueError(
                f"{name}[{i}] must be finite on [0, 1], got {out[i, k]} at C={x[k]:.6g}"
            )
    return out


def _given_shapes(shapes, n: int) -> tuple[Shape, ...]:
    if isinstance(shapes, (str, Shape)) or not isinstance(shapes, Sequence) or len(shapes) != n:
        raise ValueError(f"shapes must be a sequence of {n} shapes (one per loss), got {shapes!r}")
    out = []
    for i, s in enumerate(shapes):
        try:
            shape = Shape(s)
        except ValueError:
            shape = None
        if shape is None or shape is Shape.MIXED:
            allowed = [x.value for x in Shape if x is not Shape.MIXED]
            raise ValueError(f"shapes[{i}] must be one of {allowed}, got {s!r}")
        out.append(shape)
    return tuple(out)


def from_functions(
    losses: Sequence[Callable],
    marginals: Sequence[Callable] | None = None,
    curvatures: Sequence[Callable] | None = None,
    *,
    shapes: Sequence | None = None,
    vectorized: bool = True,
    shape_rtol: float = DEFAULT_SHAPE_RTOL,
    n_samples: int = DEFAULT_SAMPLES,
) -> FunctionCurves:
    r"""Loss curves from user functions :math:`\ell_i : [0, 1] \to \mathbb{R}`, one per feature.

    Parameters
    ----------
    losses : sequence of callable, length N
        ``losses[i](C)`` is :math:`\ell_i(C)`, finite on [0, 1]. Each callable maps an array
        of capacities (any shape) to an array of losses of the same shape.
    marginals : sequence of callable, length N, optional
        ``marginals[i](C)`` is the marginal benefit :math:`m_i(C) = -\ell_i'(C)` (note the
        sign). Omitted: central finite differences with step :math:`2^{-17} \approx
        \epsilon^{1/3}`, one-sided of the same order within a step of 0 and 1, never
        evaluating outside [0, 1] (error bound in :class:`FunctionCurves`: about
        :math:`10^{-10}` relative for curves varying on the scale of [0, 1]). Supplied
        marginals are checked against the slope of ``losses`` on the shape sample.
    curvatures : sequence of callable, length N, optional
        ``curvatures[i](C)`` is :math:`\ell_i''(C)`; omitted: finite differences.
    shapes : sequence of Shape or str, length N, optional
        Known shape of each curve ("convex", "linear", "concave", "irregular"). Omitted:
        detected on a uniform sample of ``n_samples`` points by :func:`shapes_from_slopes`
        (from the marginals when given, else from divided differences of the losses).
    vectorized : bool
        False for callables of one float (e.g. written with :mod:`math`); they are then
        applied element by element, which is slower.
    shape_rtol : float
        Relative tolerance of the shape detection (:data:`DEFAULT_SHAPE_RTOL`).
    n_samples : int
        Size of the shape sample (:data:`DEFAULT_SAMPLES`, at least 3).

    Returns
    -------
    FunctionCurves

    Raises
    ------
    TypeError
        If ``losses`` (or ``marginals``, ``curvatures``) is not a sequence of callables.
    ValueError
        On sequences of different lengths, a callable that returns non-finite values or an
        array of the wrong shape on [0, 1], marginals that do not match the losses' slope,
        an unknown shape, or a bad ``shape_rtol`` or ``n_samples``.

    Notes
    -----
    A sample cannot prove a shape: a curve that bends between sample points is classified
    by what the sample shows. The family then lists the detection among its
    :attr:`~capopt.curves.LossCurves.assumptions`, and :func:`capopt.solve` reports a
    solution whose proof rests on it as ``Status.UNPROVEN``, not OPTIMAL. Supply ``shapes``
    when they are known analytically; a wrong CONVEX or CONCAVE claim makes the exact
    methods' certificates meaningless. Building the family costs ``n_samples`` evaluations
    of each callable (twice with marginals).

    Speed: every evaluation loops over the N callables in Python, and ``capacity_at`` (the
    water-filling response) inverts the marginal by a 60-step bisection, each step a
    finite-difference marginal unless ``marginals`` are given. Solvers that water-fill
    many times (the global method) are therefore far slower on these curves than on the
    built-in families; tabulating the curves with :func:`from_table` makes ``capacity_at``
    exact and cheap.

    Examples
    --------
    >>> curves = from_functions([lambda C: (1 - C) ** 2, lambda C: 1 - C])
    >>> [s.value for s in curves.shapes]
    ['convex', 'linear']
    >>> curves.marginal([0.5, 0.5]).round(9)         # -l'(C) by finite differences
    array([1., 1.])
    >>> import capopt
    >>> result = capopt.solve(curves, 1.0, method="global", throw=False)
    >>> result.capacities.round(6), result.status.name    # shapes detected, not proven
    (array([0.5, 0.5]), 'UNPROVEN')
    >>> stated = from_functions(curves.losses, shapes=["convex", "linear"])
    >>> capopt.solve(stated, 1.0, method="global").status.name
    'OPTIMAL'
    """
    losses = _callables(losses, "losses", None, vectorized)
    n = len(losses)
    marginals = None if marginals is None else _callables(marginals, "marginals", n, vectorized)
    curvatures = None if curvatures is None else _callables(curvatures, "curvatures", n, vectorized)
    shape_rtol = _check_rtol(shape_rtol)
    boolean = isinstance(n_samples, (bool, np.bool_))
    if boolean or not isinstance(n_samples, numbers.Integral) or n_samples < 3:
        raise ValueError(f"n_samples must be an integer >= 3, got {n_samples!r}")

    x = np.linspace(0.0, 1.0, int(n_samples))
    values = _sample(losses, "losses", x)
    if curvatures is not None:
        _sample(curvatures, "curvatures", x)
    noise = _difference_noise(values, x)
    slopes = np.diff(values, axis=1) / np.diff(x)
    if marginals is not None:
        m = _sample(marginals, "marginals", x)
        # Trapezoid rule: the mean of -l' over a piece is its slope.
        mismatch = np.abs(-slopes - 0.5 * (m[:, 1:] + m[:, :-1]))
        allowed = MARGINAL_CHECK_RTOL * np.max(np.abs(m), axis=1, keepdims=True) + noise[:, None]
        bad = np.argwhere(mismatch > allowed)
        if bad.size:
            i, k = bad[0]
            raise ValueError(
                f"marginals[{i}] does not match the slope of losses[{i}] near C={x[k]:.4g}: "
                f"-dl/dC = {-slopes[i, k]:.6g} but marginals[{i}] gives {m[i, k]:.6g}; "
                "marginals must be m(C) = -dl/dC, the benefit of more capacity"
            )
        slopes, noise = -m, 0.0
    if shapes is not None:
        return FunctionCurves(losses, marginals, curvatures, _given_shapes(shapes, n))
    detected = shapes_from_slopes(slopes, rtol=shape_rtol, noise=noise)
    return FunctionCurves(losses, marginals, curvatures, detected, detected_on=x.size)


def from_table(grid, values, *, shape_rtol: float = DEFAULT_SHAPE_RTOL) -> TabulatedCurves:
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
    shape_rtol = _check_rtol(shape_rtol)
    with np.errstate(over="ignore", invalid="ignore"):
        slopes = np.diff(table, axis=1) / steps
    if not np.all(np.isfinite(slopes)):
        i, k = (int(j) for j in np.argwhere(~np.isfinite(slopes))[0])
        raise ValueError(
            "values must change by a finite slope between grid points (float64 overflows), "
            f"got values[{i}, {k}]={table[i, k]:g} and values[{i}, {k + 1}]={table[i, k + 1]:g} "
            f"over a step of {steps[k]:g}; rescale the losses"
        )
    detected = shapes_from_slopes(slopes, rtol=shape_rtol, noise=_difference_noise(table, x))
    return TabulatedCurves(_readonly(x), _readonly(table), detected)
