r"""Loss curves given as Python callables, one per feature.

:func:`from_functions` builds a :class:`FunctionCurves` from callables :math:`\ell_i(C)`,
with the marginal :math:`-\ell_i'` and the curvature :math:`\ell_i''` either supplied
(and checked against the losses) or obtained by finite differences
(:mod:`~capopt.user_curves.differences`). The shapes are given, or detected on a fine
uniform sample (:mod:`~capopt.user_curves.shapes`), which cannot prove them.

Glossary: ``C`` capacity in [0, 1], ``l`` loss, ``m = -l'`` marginal benefit, ``s = l'``
slope, ``h`` step, ``N`` number of features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .._typing import ArrayLike
from .._validation import check_integer, check_scalar
from ..curves import LossCurves, Shape
from .chords import lagrangian_lower_bound, marginal_above
from .chords import one_sided_marginals as chord_marginals
from .differences import FIRST, SECOND, Stencil, derivative, evaluate
from .shapes import DEFAULT_SHAPE_RTOL, difference_noise, shapes_from_slopes

__all__ = ["FunctionCurves", "from_functions", "DEFAULT_SAMPLES", "MARGINAL_CHECK_RTOL"]

#: Points of the uniform sample on which a callable's shape is detected (step 1/1024).
DEFAULT_SAMPLES = 1025

#: Largest accepted mismatch between a supplied marginal and the slope of the supplied loss,
#: relative to the marginal's magnitude. The comparison is a trapezoid rule on the shape
#: sample, accurate to h^2/12 max|m''| ~ 1e-7 |m''|; the threshold is loose enough for any
#: reasonably smooth curve and still catches the common mistakes (a sign flip, which gives
#: a mismatch of 2|m|, or a missing factor).
MARGINAL_CHECK_RTOL = 1e-2


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

    Kinks: a finite difference averages the slopes on the two sides of a kink within its
    step, so the certificate and the water-filling also read chords, which bracket the
    one-sided slopes of a convex function exactly but for rounding
    (:mod:`~capopt.user_curves.chords`). Without supplied marginals,
    :meth:`one_sided_marginals` are one-sided stencils (corrected by the chords near 0 and
    1 for convex curves) and :meth:`capacity_at` bisects on what the chords prove, so that
    it finds a kink to rounding. For every convex curve, :meth:`lagrangian_minimum` is a
    proven lower bound from the chords around the response, so that the dual bound stays
    a bound wherever the response errs.

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

    def subset(self, features: np.ndarray) -> FunctionCurves:
        pick = lambda values: None if values is None else tuple(values[i] for i in features)  # noqa: E731
        return FunctionCurves(tuple(self.losses[i] for i in features), pick(self.marginals),
                              pick(self.curvatures), tuple(self.curve_shapes[i] for i in features),
                              self.detected_on)

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

    def _apply(self, C: ArrayLike, funcs: tuple, name: str, stencil: Stencil | None = None,
               sign: float = 1.0) -> np.ndarray:
        """``sign`` times ``funcs[i]`` (or its ``stencil`` derivative) at ``C[..., i]``."""
        C = self._capacities(C)
        C = np.broadcast_to(C, np.broadcast_shapes(C.shape, (self.n_features,)))
        out = np.empty(C.shape)
        for i, f in enumerate(funcs):
            c, label = np.ascontiguousarray(C[..., i]), f"{name}[{i}]"
            if stencil is None:
                out[..., i] = evaluate(f, c, label)
            else:
                out[..., i] = derivative(f, c, stencil, label)
        return sign * out

    def loss(self, C: ArrayLike) -> np.ndarray:
        return self._apply(C, self.losses, "losses")

    def marginal(self, C: ArrayLike) -> np.ndarray:
        if self.marginals is not None:
            return self._apply(C, self.marginals, "marginals")
        return self._apply(C, self.losses, "losses", FIRST, sign=-1.0)

    def curvature(self, C: ArrayLike) -> np.ndarray:
        if self.curvatures is not None:
            return self._apply(C, self.curvatures, "curvatures")
        if self.marginals is not None:
            return self._apply(C, self.marginals, "marginals", FIRST, sign=-1.0)
        return self._apply(C, self.losses, "losses", SECOND)

    def one_sided_marginals(self, C: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        r"""Right and left marginals :math:`-\ell_i'(C^+)`, :math:`-\ell_i'(C^-)`.

        For a convex curve without supplied marginals, the one-sided finite differences
        where its chords show a kink at C (they read the slope of each piece, where the
        central difference averages them), else the marginal corrected into the bracket
        its chords prove (:func:`~capopt.user_curves.chords.one_sided_marginals`);
        otherwise the marginal twice.
        """
        right, left = super().one_sided_marginals(C)
        convex = self.shape_mask(Shape.CONVEX)
        if self.marginals is not None or not convex.any():
            return right, left
        right, left = np.array(right), np.array(left)
        C = np.broadcast_to(self._capacities(C), right.shape)
        for i in np.flatnonzero(convex):
            c = np.ascontiguousarray(C[..., i])
            right[..., i], left[..., i] = chord_marginals(self.losses[i], c, f"losses[{i}]")
        return right, left

    def _marginal_above(self, C: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Decided by chords where they can (:func:`~capopt.user_curves.chords.marginal_above`),
        so that :meth:`capacity_at` finds a kink to rounding; by the supplied marginals when
        there are any."""
        if self.marginals is not None:
            return super()._marginal_above(C, lam)
        return marginal_above(self._losses_at, C, lam, "losses")

    def _losses_at(self, points: np.ndarray) -> np.ndarray:
        """``losses[i]`` at ``points[..., i, :]``, for points of shape (..., N, P)."""
        out = np.empty(points.shape)
        for i, f in enumerate(self.losses):
            out[..., i, :] = evaluate(f, np.ascontiguousarray(points[..., i, :]), f"losses[{i}]")
        return out

    def _convex_lagrangian_minimum(self, lam: float, convex: np.ndarray) -> np.ndarray:
        r"""A lower bound on :math:`\min_c \ell_i(c) + \lambda c` per convex curve, from the
        chords around its response (:func:`~capopt.user_curves.chords.lagrangian_lower_bound`):
        the response is found to rounding at a kink and to about :math:`10^{-10}` on a smooth
        stretch, but not proven, and a dual bound must be a bound."""
        centres = self.capacity_at(lam)
        out = np.full(self.n_features, np.nan)
        for i in np.flatnonzero(convex):
            out[i] = lagrangian_lower_bound(self.losses[i], float(centres[i]), lam, f"losses[{i}]")
        return out

    def __repr__(self) -> str:
        given = "marginals given" if self.marginals is not None else "finite-difference marginals"
        return f"FunctionCurves(n_features={self.n_features}, shape={self.shape.value}, {given})"


def _callables(funcs: Sequence[Callable], name: str, n: int | None, vectorized: bool) -> tuple:
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
            out[i] = evaluate(f, x, f"{name}[{i}]")
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


def _given_shapes(shapes: Sequence[Shape | str], n: int) -> tuple[Shape, ...]:
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
    water-filling response) inverts the marginal by a 60-step bisection, each step one call
    of each callable on 42 points per capacity (the chords and the finite-difference
    stencil of :func:`~capopt.user_curves.chords.marginal_above`), or of each supplied
    marginal. Solvers that water-fill
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
    shape_rtol = check_scalar(shape_rtol, "shape_rtol", minimum=0.0)
    n_samples = check_integer(n_samples, "n_samples", minimum=3)

    x = np.linspace(0.0, 1.0, n_samples)
    values = _sample(losses, "losses", x)
    if curvatures is not None:
        _sample(curvatures, "curvatures", x)
    # Per curve; 0.0 once exact marginals replace the sampled slopes.
    noise: np.ndarray | float
    noise = difference_noise(values, x)
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
