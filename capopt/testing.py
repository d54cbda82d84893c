"""Hypothesis strategies and checks for property-testing allocation theorems.

Requires ``hypothesis`` (``pip install capopt[test]``). Everything here is public so that
users can test their own theorems against capopt's solvers::

    from hypothesis import given
    import capopt
    from capopt.testing import problems, check_certificate

    @given(problems())
    def test_more_budget_never_hurts(problem):
        curves, d = problem
        assert capopt.solve(curves, d + 1).loss <= capopt.solve(curves, d).loss + 1e-9

The strategies reach the corners where solvers break: importances anywhere in the float64
range (``magnitude="family"`` puts a whole family at one end, ``"wide"`` spreads one family
across it), kurtoses within 1e-12 of 1 and 3 on both sides, ties, and tiny or fractional
budgets; and curves given as functions with kinks anywhere, at the optimum and a hair from
it, in problems built around a known optimum (:func:`kinked_convex_problems`). The catalogue of labelled problems with known behaviour, :data:`STANDARD_PROBLEMS`
(:mod:`capopt.catalogue`, which needs no hypothesis), is re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    raise ImportError(
        "capopt.testing needs hypothesis; install it with `pip install capopt[test]`"
    ) from exc

from ._typing import ArrayLike
from ._validation import check_choice
from .catalogue import STANDARD_PROBLEMS, Problem
from .curves import (LinearAutoencoderCurves, LossCurves, QuadraticCurves, linear_autoencoder,
                     quadratic)
from .regimes import DEFAULT_REGIME_ATOL, classify
from .solvers import METHODS, AllocationResult
from .solvers.units import tiers
from .user_curves import FunctionCurves, from_functions

__all__ = [
    "importances",
    "kurtoses",
    "budgets",
    "quadratic_families",
    "linear_autoencoder_families",
    "problems",
    "ConvexPieces",
    "KnownOptimum",
    "kinked_convex_problems",
    "kinked_convex_families",
    "embeddings",
    "realisable_allocations",
    "check_certificate",
    "KURTOSIS_RANGES",
    "MAGNITUDES",
    "Problem",
    "STANDARD_PROBLEMS",
]

#: Kurtosis ranges of each returns regime of the quadratic model (theory §3): increasing
#: returns below 3, diminishing above, away from 3 and 1 so that draws stay clearly in one
#: regime (``kurtoses(..., edge=True)`` adds the values a hair from them).
KURTOSIS_RANGES = {"concave": (1.2, 2.8), "convex": (3.2, 40.0)}

#: Kurtoses a hair from 1 and 3 (down to a few ulps of 3), and exactly 1 and 3.
EDGE_KURTOSES = {
    "concave": (1.0, 1.0 + 1e-12, 1.0 + 1e-15, 3.0 - 1e-12, 3.0 - 2.0**-51, 3.0),
    "convex": (3.0, 3.0 + 1e-12, 3.0 + 2.0**-51, 3.0 + 1e-8),
}

#: Magnitudes of importances: "moderate" [0.05, 10]; "family" one power of two from
#: 2^-990 to 2^990 times moderate values; "wide" every importance log-uniform across
#: 1e-300 .. 1e300 on its own.
MAGNITUDES = ("moderate", "family", "wide")

#: Values that exercise the special cases of the quadratic curves: flat curves (v <= 0),
#: and ties between equal importances.
EDGE_IMPORTANCES = (-1.0, 0.0, 1.0, 2.0)


def importances(n: int, *, min_value: float = 0.05, max_value: float = 10.0, magnitude: str = "moderate",
                ties: bool = False) -> st.SearchStrategy[np.ndarray]:
    """Strategy for n positive importances, as a float64 array.

    Parameters
    ----------
    n : int
    min_value, max_value : float
        Range of the moderate values.
    magnitude : {"moderate", "family", "wide"}
        See :data:`MAGNITUDES`.
    ties : bool
        Draw from a few values, so that equal importances are common.
    """
    check_choice(magnitude, "magnitude", MAGNITUDES)
    base = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)
    if ties:
        base = st.sampled_from([min_value, 0.5 * (min_value + max_value), max_value])
    if magnitude == "moderate":
        return hnp.arrays(np.float64, n, elements=base)
    if magnitude == "family":
        return st.tuples(hnp.arrays(np.float64, n, elements=base), st.integers(-990, 990)).map(
            lambda pair: np.ldexp(pair[0], pair[1])
        )
    exponents = st.floats(-300.0, 300.0) if not ties else st.sampled_from([-300.0, 0.0, 300.0])
    return hnp.arrays(np.float64, n, elements=exponents).map(lambda e: 10.0**e)


def kurtoses(n: int, *, returns: str = "convex", edge: bool = False) -> st.SearchStrategy[np.ndarray]:
    """Strategy for n kurtoses in one returns regime, or ``"mixed"`` for either per feature.

    Parameters
    ----------
    returns : {"convex", "concave", "mixed"}
        Diminishing returns (K > 3), increasing returns (K < 3), or a mix of the two.
    edge : bool
        Also draw :data:`EDGE_KURTOSES`: a hair from 1 and 3, and exactly 1 and 3.
    """
    if returns not in ("convex", "concave", "mixed"):
        raise ValueError(f"returns must be 'convex', 'concave' or 'mixed', got {returns!r}")
    regimes = ("concave", "convex") if returns == "mixed" else (returns,)
    entry = st.one_of(*(st.floats(*KURTOSIS_RANGES[r]) for r in regimes))
    if edge:
        entry = st.one_of(entry, st.sampled_from([k for r in regimes for k in EDGE_KURTOSES[r]]))
    return st.lists(entry, min_size=n, max_size=n).map(lambda K: np.array(K, dtype=np.float64))


def budgets(n: int, *, integer: bool = False) -> st.SearchStrategy[float]:
    """Strategy for budgets of an n-feature problem: 0 to n + 1, tiny (down to 1e-300),
    fractional, whole; only whole dimensions with ``integer``."""
    if integer:
        return st.integers(0, n + 1).map(float)
    return st.one_of(
        st.floats(0.0, n + 1.0, allow_nan=False),
        st.integers(0, n + 1).map(float),
        st.floats(-300.0, -9.0).map(lambda e: 10.0**e),
        st.tuples(st.integers(0, n), st.sampled_from([0.5, 1e-12, 1.0 - 1e-12])).map(sum),
    )


@st.composite
def quadratic_families(
    draw: st.DrawFn,
    *,
    min_features: int = 1,
    max_features: int = 8,
    returns: str = "convex",
    edge_cases: bool = False,
    magnitude: str = "moderate",
) -> QuadraticCurves:
    """Strategy for :class:`~capopt.curves.QuadraticCurves` in one returns regime.

    Parameters
    ----------
    min_features, max_features : int
    returns : {"convex", "concave", "mixed"}
        See :func:`kurtoses`.
    edge_cases : bool
        Also draw flat curves (:data:`EDGE_IMPORTANCES`), ties, and kurtoses a hair from 1
        and 3 (:data:`EDGE_KURTOSES`). The family's shape may then be linear or, with
        ``returns="mixed"``, anything.
    magnitude : {"moderate", "family", "wide"}
        Of the importances (:data:`MAGNITUDES`).
    """
    n = draw(st.integers(min_features, max_features))
    v = draw(importances(n, magnitude=magnitude, ties=edge_cases and draw(st.booleans())))
    if edge_cases:
        flat = draw(hnp.arrays(bool, n))
        v = np.where(flat, draw(st.sampled_from(EDGE_IMPORTANCES[:2])), v) if draw(st.booleans()) else v
    K = draw(kurtoses(n, returns=returns, edge=edge_cases))
    if draw(st.booleans()) and returns != "mixed":
        K = K[:1].repeat(n)  # one kurtosis shared by every feature, as in sweeps
    return quadratic(v, K)


@st.composite
def linear_autoencoder_families(draw: st.DrawFn, *, min_features: int = 1, max_features: int = 8,
                                magnitude: str = "moderate") -> LinearAutoencoderCurves:
    """Strategy for :class:`~capopt.curves.LinearAutoencoderCurves`."""
    n = draw(st.integers(min_features, max_features))
    return linear_autoencoder(draw(importances(n, magnitude=magnitude)))


@st.composite
def problems(draw: st.DrawFn, families: st.SearchStrategy[LossCurves] | None = None, *,
             integer_budget: bool = False) -> tuple[LossCurves, float]:
    """Strategy for ``(curves, budget)`` pairs with budgets from 0 to beyond N.

    Parameters
    ----------
    families : strategy of LossCurves, optional
        Default: convex quadratic families.
    integer_budget : bool
        Draw whole dimensions only (the realisable case of theory §2); otherwise
        :func:`budgets` (tiny, fractional and whole).
    """
    curves = draw(quadratic_families() if families is None else families)
    return curves, draw(budgets(curves.n_features, integer=integer_budget))


@dataclass(frozen=True, eq=False)
class ConvexPieces:
    r"""A convex curve with kinks: the upper envelope of parabolas and lines,

    .. math::

        \ell(C) = \max_j \big( y_j + s_j (C - k_j) + a_j (C - k_j)^2 \big),
        \qquad a_j \ge 0,

    kinked wherever two pieces cross. A vectorised callable, for
    :func:`~capopt.user_curves.from_functions`; the pieces are read-only arrays.

    Attributes
    ----------
    knots, values, slopes, curvatures : ndarray, shape (P,)
        :math:`k_j`, :math:`y_j`, :math:`s_j` and :math:`a_j` of each piece.
    """

    knots: np.ndarray
    values: np.ndarray
    slopes: np.ndarray
    curvatures: np.ndarray

    def __post_init__(self) -> None:
        for name in ("knots", "values", "slopes", "curvatures"):
            a = np.array(getattr(self, name), dtype=np.float64)
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        if np.any(self.curvatures < 0):
            raise ValueError(f"curvatures must be >= 0 (convex pieces), got {self.curvatures.min():g}")

    def __call__(self, C: ArrayLike) -> np.ndarray:
        # At C = k_j the piece is exactly y_j: t (s + a t) vanishes.
        t = np.asarray(C, dtype=np.float64)[..., None] - self.knots
        return np.max(self.values + t * (self.slopes + self.curvatures * t), axis=-1)


class KnownOptimum(NamedTuple):
    """A problem built around its optimum (:func:`kinked_convex_problems`).

    Attributes
    ----------
    curves : FunctionCurves
        The convex curves, shapes stated.
    budget : float
    capacities : ndarray, shape (N,)
        An optimal allocation: with ``multiplier`` it satisfies the KKT conditions.
    multiplier : float
    loss : float
        The optimal loss, the total loss at ``capacities``: there each curve is exactly
        the value of its pieces through that point.
    pieces : tuple of ConvexPieces
        The callables of ``curves``.
    """

    curves: FunctionCurves
    budget: float
    capacities: np.ndarray
    multiplier: float
    loss: float
    pieces: tuple[ConvexPieces, ...]


#: Largest slope and curvature of the pieces :func:`kinked_convex_problems` draws, and the
#: range of their values at the optimum.
_KINK_SLOPE, _KINK_CURVATURE, _KINK_VALUE = 10.0, 20.0, 2.0


@st.composite
def _pieces_optimal_at(draw: st.DrawFn, capacity: float, lam: float) -> ConvexPieces:
    r"""A :class:`ConvexPieces` curve whose subdifferential at ``capacity`` meets the KKT
    condition with multiplier ``lam`` (see :func:`kinked_convex_problems`)."""
    y = draw(st.floats(-_KINK_VALUE, _KINK_VALUE))
    spread = st.floats(0.0, _KINK_SLOPE)
    bend = st.one_of(st.just(0.0), st.floats(0.0, _KINK_CURVATURE))
    # The pieces through (C*, y): their slopes s at C* give the subdifferential [min s, max s].
    if capacity == 0.0:
        slopes = [-lam + draw(spread)]  # -l'(0+) <= lam
    elif capacity == 1.0:
        slopes = [-lam - draw(spread)]  # -l'(1-) >= lam
    elif draw(st.booleans()):
        slopes = [-lam - draw(spread), -lam + draw(spread)]  # a kink with lam inside
    else:
        slopes = [-lam]  # smooth at C*: a parabola, lam = -l'(C*)
        bend = st.floats(0.05, _KINK_CURVATURE)
    values = [y] * len(slopes)
    curvatures = [draw(bend) for _ in slopes]
    # Pieces below y at C*: kinks elsewhere, as close to C* as their depth allows.
    for _ in range(draw(st.integers(0, 3))):
        values.append(y - draw(st.floats(1e-9, 1.0)))
        slopes.append(draw(st.floats(-2 * _KINK_SLOPE, 2 * _KINK_SLOPE)))
        curvatures.append(draw(st.one_of(st.just(0.0), st.floats(0.0, _KINK_CURVATURE))))
    return ConvexPieces(np.full(len(values), capacity), np.array(values), np.array(slopes), np.array(curvatures))


@st.composite
def kinked_convex_problems(draw: st.DrawFn, *, min_features: int = 1, max_features: int = 4) -> KnownOptimum:
    r"""Strategy for convex problems of kinked curves given as functions, with their optimum.

    Built backwards from the answer: a multiplier :math:`\lambda^* \ge 0` (0 or in
    [1e-3, 10]) and capacities :math:`C^*_i` (0, 1, or anywhere inside), then for each
    feature a :class:`ConvexPieces` curve whose pieces through :math:`(C^*_i, y_i)` have
    slopes making :math:`-\lambda^*` a subgradient there -- a kink with :math:`\lambda^*`
    anywhere in its subdifferential, its ends included, or a parabola with slope
    :math:`-\lambda^*` -- plus up to three pieces lower at :math:`C^*_i` (by 1e-9 to 1)
    that put kinks elsewhere, some a hair from the optimum. The budget is
    :math:`\sum_i C^*_i` (with up to one dimension to spare when :math:`\lambda^* = 0`).
    The KKT conditions hold at :math:`C^*` and suffice for convex curves, so the optimum
    is :math:`\sum_i \ell_i(C^*_i) = \sum_i y_i` (up to the rounding of the budget's sum).

    Parameters
    ----------
    min_features, max_features : int

    Returns
    -------
    KnownOptimum
        With curves from :func:`~capopt.user_curves.from_functions`, shapes stated convex.
    """
    n = draw(st.integers(min_features, max_features))
    lam = draw(st.one_of(st.just(0.0), st.floats(1e-3, 10.0)))
    inside = st.floats(0.0, 1.0, exclude_min=True, exclude_max=True)
    C = np.array(draw(st.lists(st.one_of(st.sampled_from([0.0, 1.0]), inside), min_size=n, max_size=n)))
    pieces = tuple(draw(_pieces_optimal_at(float(c), lam)) for c in C)
    budget = math.fsum(C.tolist())
    if lam == 0.0:
        budget += draw(st.floats(0.0, 1.0))
    curves = from_functions(list(pieces), shapes=["convex"] * n)
    loss = math.fsum(float(p(c)) for p, c in zip(pieces, C))
    C.setflags(write=False)
    return KnownOptimum(curves, budget, C, lam, loss, pieces)


def kinked_convex_families(*, min_features: int = 1,
                           max_features: int = 4) -> st.SearchStrategy[FunctionCurves]:
    """Strategy for :class:`~capopt.user_curves.FunctionCurves` of kinked convex curves (the
    curves of :func:`kinked_convex_problems`)."""
    return kinked_convex_problems(min_features=min_features, max_features=max_features).map(
        lambda problem: problem.curves
    )


@st.composite
def embeddings(draw: st.DrawFn, *, max_dim: int = 6, max_features: int = 10,
               zero_columns: bool = True) -> np.ndarray:
    """Strategy for d x N embedding matrices (features on the last axis).

    Entries are 0 or of magnitude in [1e-2, 3], so that numerical rank and exact rank agree;
    with ``zero_columns`` some columns may be exactly zero.
    """
    d = draw(st.integers(1, max_dim))
    n = draw(st.integers(1, max_features))
    magnitude = st.floats(1e-2, 3.0)
    entry = st.one_of(st.just(0.0), magnitude, magnitude.map(lambda x: -x))
    W = draw(hnp.arrays(np.float64, (d, n), elements=entry))
    if zero_columns:
        mask = draw(hnp.arrays(bool, n))
        W = np.where(mask[None, :], 0.0, W)
    return W


#: Relative tolerance of check_certificate's own evaluation of the losses it compares.
LOSS_RTOL = 1e-12


def check_certificate(curves: LossCurves, result: AllocationResult, *, tol: float | None = None) -> None:
    """Assert that ``result`` is a certified optimum of the problem it claims to solve.

    Nothing is read from the result's certificate but its lower bound: feasibility, the KKT
    conditions and (for convex and linear families) the Lagrangian dual bound are evaluated
    here afresh from ``curves``, by code of its own, in the units the family is normalised
    to (:meth:`~capopt.curves.LossCurves.normalized`, tier by tier where its scales span
    beyond one unit), so a solver cannot vouch for itself. Also checks that the reported
    losses are the curves' losses at the capacities and that the regimes match them.

    Parameters
    ----------
    curves : LossCurves
        The family the result was solved for.
    result : AllocationResult
    tol : float, optional
        Largest accepted scaled residual; defaults to the tolerance of ``result.method``.

    Raises
    ------
    AssertionError
        Naming the first condition that fails and by how much.
    """
    tol = METHODS[result.method].tol if tol is None else tol
    C = np.asarray(result.capacities, dtype=np.float64)
    d = result.budget
    assert C.shape == (curves.n_features,), f"capacities have shape {C.shape}, expected ({curves.n_features},)"
    assert np.all(np.isfinite(C)), "capacities are not finite"
    assert np.all((C >= -tol) & (C <= 1.0 + tol)), f"capacities leave [0, 1]: {C.min()}, {C.max()}"
    used = math.fsum(C)
    # Relative to the budget; a budget of 0 has no scale of its own (then in dimensions).
    assert used - d <= tol * (d if d > 0 else 1.0), f"sum C = {used!r} exceeds the budget {d!r}"
    assert result.multiplier >= 0.0 and result.scaled_multiplier >= 0.0, "negative multiplier"
    binding_gap = d - used
    for tier in tiers(curves)[0]:
        family = tier.curves
        part = C if tier.features is None else C[tier.features]
        # The multiplier in the tier's units, from its exact scaled form.
        with np.errstate(over="ignore", under="ignore"):
            mu = float(np.ldexp(result.scaled_multiplier, result.multiplier_exponent - tier.exponent))
        right, left = family.one_sided_marginals(part)
        inside = (part > DEFAULT_REGIME_ATOL) & (part < 1.0 - DEFAULT_REGIME_ATOL)
        n = family.n_features
        ends = family.one_sided_marginals(np.stack([np.zeros(n), np.ones(n)]))
        scale = max(np.max(np.abs(np.concatenate([right, left, ends[0][0], ends[1][1]]))), mu, 1e-300)
        low, high = np.minimum(right, left), np.maximum(right, left)
        stationarity = np.max(np.maximum(low - mu, mu - high)[inside], initial=0.0) / scale
        assert stationarity <= tol, f"stationarity fails by {stationarity:.3g} (scaled) > {tol:.3g}"
        at_zero, at_one = part <= DEFAULT_REGIME_ATOL, part >= 1.0 - DEFAULT_REGIME_ATOL
        signs = max(np.max(right[at_zero] - mu, initial=0.0), np.max(mu - left[at_one], initial=0.0)) / scale
        assert signs <= tol, f"a bound's sign condition fails by {signs:.3g} (scaled) > {tol:.3g}"
        if binding_gap > tol * max(d, 1.0) and tier.features is None:
            assert mu <= tol * scale, f"budget left ({binding_gap:.3g}) but lambda = {result.multiplier:.3g} > 0"
    with np.errstate(over="ignore", invalid="ignore"):
        losses = curves.loss(C)
        total = float(np.sum(losses))
    assert np.allclose(losses, result.losses, rtol=LOSS_RTOL, atol=0.0, equal_nan=False), "losses differ from curves.loss(C)"
    if math.isfinite(result.loss):
        assert math.isclose(result.loss, total, rel_tol=LOSS_RTOL, abs_tol=1e-300), f"loss {result.loss!r} is not sum(losses) {total!r}"
    bound = result.certificate.lower_bound
    with np.errstate(over="ignore"):
        spread = float(np.sum(curves.loss_range()))
    # Losses below float64's normal range (subnormal) carry too few digits to compare
    # relative to their spread; the KKT conditions above, in scaled units, still judge.
    if math.isfinite(total) and math.isfinite(bound) and spread >= np.finfo(np.float64).tiny:
        assert (total - bound) / spread <= tol, f"gap to the lower bound {(total - bound) / spread:.3g} > {tol:.3g}"
    assert result.regimes == classify(C, atol=DEFAULT_REGIME_ATOL), "regimes do not match capacities"


@st.composite
def realisable_allocations(
    draw: st.DrawFn,
    *,
    max_blocks: int = 3,
    max_block_features: int = 6,
    max_monosemantic: int = 3,
    max_ignored: int = 3,
    max_spare_dims: int = 2,
) -> tuple[np.ndarray, int]:
    """Strategy for ``(capacities, dim)`` pairs that some embedding realises (theory §2).

    Built from blocks, as :func:`capopt.realize` needs: up to ``max_blocks``
    polysemantic blocks of n features sharing k < n dimensions, with capacities
    k/n + (a zero-sum perturbation kept inside (0, 1)), so each block sums to k up to
    rounding; monosemantic features (C = 1), ignored ones (C = 0), all shuffled; and
    ``dim`` the dimensions used (at least one) plus up to ``max_spare_dims`` spare ones.
    """
    parts = []
    n_blocks = draw(st.integers(0, max_blocks))
    for _ in range(n_blocks):
        n = draw(st.integers(2, max_block_features))
        k = draw(st.integers(1, n - 1))
        w = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0)))
        w = w - w.mean()
        room = min(k / n, 1 - k / n)
        spread = np.max(np.abs(w))
        # 0.99 keeps every capacity strictly inside (0, 1), away from the snapping band;
        # near-equal draws (spread ~ rounding) are not amplified into large errors.
        step = 0.99 * room / spread * draw(st.floats(0.0, 1.0)) if spread > 1e-6 else 0.0
        block = k / n + step * w
        parts.append(block * (k / block.sum()))
    # At least one dimension is used: a 0 x N embedding is no test of anything.
    parts.append(np.ones(draw(st.integers(0 if n_blocks else 1, max(max_monosemantic, 1)))))
    parts.append(np.zeros(draw(st.integers(0, max_ignored))))
    C = np.concatenate(parts)
    C = C[np.array(draw(st.permutations(range(C.size))), dtype=int)]
    used = round(float(C.sum()))
    return C, used + draw(st.integers(0, max_spare_dims))
