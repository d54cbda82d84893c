"""Convex curves with kinks, given as functions: no false proof, and the kink found.

A finite difference averages the slopes on the two sides of a kink within its step
(2^-17), so water-filling on it once placed a kink's response up to a step off, and the
dual bound, the loss at that response, was no bound: "OPTIMAL" 5e-6 from the optimum, 1.3e-6
of the loss scale above it, with a "proven" lower bound over the true optimum.

The truths here share no code with capopt's solvers: closed forms derived by hand for the
reproducers, and for :func:`capopt.testing.kinked_convex_problems` (problems built around
a KKT point, whose optimum is known by construction) an exact piecewise analysis of the
Lagrangian dual that confirms the construction.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

import capopt
from capopt import Status
from capopt.testing import ConvexPieces, KnownOptimum, kinked_convex_problems
from capopt.user_curves import from_functions

#: An OPTIMAL answer may exceed the optimum by the certificate's tolerance (1e-9 of the
#: loss scale for water-filling).
CERTIFIED = 1e-9
#: Rounding of quantities of order 1 computed two ways (a crossing of two pieces, a sum of
#: a few losses, the budget's own rounding times the multiplier), relative to the largest
#: magnitude involved.
ROUNDING = 1e-13
#: How close to a kink its response must land: the chords decide from a distance of
#: CHORD_NOISE max|l| / (lam's distance from the subdifferential's ends) on, 9e-16 for f1
#: at lam = 0.2, up to four times that for their quarter steps.
KINK_FOUND = 1e-14


def f1(C):
    """Convex, kinked at 0.5: slope -10 before it, -0.1 after; f1(0.5) = 0.05."""
    return np.maximum(0.1 * (1 - C), 10 * (0.5 - C) + 0.05)


def f2(C):
    return (1 - C) ** 2


def f1_penalised_minimum(lam):
    r"""min over [0, 1] of f1(c) + lam c, by hand: f1 + lam c is piecewise linear with
    breakpoints 0, 0.5, 1 (values 5.05, 0.05 + lam / 2, lam), so the least of those."""
    return min(5.05, 0.05 + lam / 2, lam)


# --- the reproducer of the issue ---------------------------------------------------------------


def test_a_kink_at_the_optimum_is_found_and_certified_there():
    # Optimum by hand: f2's marginal 2 (1 - C) = lam is 1.6 at C2 = 0.2, inside f1's
    # subdifferential [0.1, 10] at its kink C1 = 0.5, and C1 + C2 = 0.7 = d: KKT holds,
    # so C = (0.5, 0.2), loss 0.05 + 0.64 = 0.69. It was "OPTIMAL" at C1 = 0.5000053.
    result = capopt.solve(capopt.from_functions([f1, f2], shapes=["convex", "convex"]), 0.7)
    assert result.status is Status.OPTIMAL
    np.testing.assert_allclose(result.capacities, [0.5, 0.2], rtol=0, atol=1e-12)
    assert result.loss == pytest.approx(0.69, rel=ROUNDING)
    assert result.certificate.lower_bound <= 0.69 * (1 + ROUNDING)
    assert result.multiplier == pytest.approx(1.6, rel=1e-9)


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.1, 1.6, 9.99, 10.0, 10.1, 50.0])
def test_the_dual_terms_of_a_kinked_curve_are_bounds_and_tight(lam):
    curves = from_functions([f1, f2], shapes=["convex", "convex"])
    # f2 + lam c: minimised at 1 - lam / 2 (clipped to [0, 1]).
    c2 = min(max(1 - lam / 2, 0.0), 1.0)
    exact = np.array([f1_penalised_minimum(lam), (1 - c2) ** 2 + lam * c2])
    terms = curves.lagrangian_minimum(lam)
    assert np.all(terms <= exact + ROUNDING * (1 + lam))
    assert np.all(terms >= exact - ROUNDING * (6 + lam))


@pytest.mark.parametrize("lam", [0.2, 0.5, 1.6, 5.0, 9.9])
def test_the_response_to_a_multiplier_inside_a_kink_is_the_kink(lam):
    curves = from_functions([f1], shapes=["convex"])
    assert abs(float(curves.capacity_at(lam)[0]) - 0.5) <= KINK_FOUND


@pytest.mark.parametrize("lam", [0.0, 0.1, 0.1 + 1e-9, 10.0 - 1e-9, 10.0, 20.0])
def test_the_response_to_a_multiplier_at_the_edge_of_a_kink_minimises_the_penalised_loss(lam):
    # Within 1e-9 of an end of the subdifferential, f1 + lam c rises by 1e-9 per unit past
    # the kink: values within rounding cannot place the kink closer than ~1e-7 there, and
    # need not -- the response must minimise f1 + lam c, which a point that close does.
    curves = from_functions([f1], shapes=["convex"])
    c = curves.capacity_at(lam)
    assert float(f1(c[0])) + lam * c[0] <= f1_penalised_minimum(lam) + ROUNDING


def test_one_sided_marginals_at_a_kink_are_the_slopes_of_its_pieces():
    curves = from_functions([f1], shapes=["convex"])
    right, left = curves.one_sided_marginals(np.array([[0.5], [0.25], [0.75]]))
    np.testing.assert_allclose(right[:, 0], [0.1, 10.0, 0.1], rtol=1e-9)
    np.testing.assert_allclose(left[:, 0], [10.0, 10.0, 0.1], rtol=1e-9)


def test_one_sided_marginals_at_a_kink_within_a_step_of_zero_are_the_slopes_of_its_pieces():
    # Kinked at 1e-5, where no backward stencil fits: the left slope comes from the chords,
    # at most their rounding (8 eps max|l| / 2^-41 ~ 4e-8 here) above the piece's.
    def f(C):
        return np.maximum(-10 * C, -0.1 * C - 9.9e-5)

    right, left = from_functions([f], shapes=["convex"]).one_sided_marginals(np.array([[1e-5]]))
    assert right[0, 0] == pytest.approx(0.1, rel=1e-9)
    assert 10.0 <= left[0, 0] <= 10.0 * (1 + 1e-7)


@pytest.mark.parametrize("f", [f2, lambda C: np.exp(-3 * C), lambda C: 1 / (1 + 4 * C)])
def test_one_sided_marginals_of_a_smooth_convex_curve_are_one_marginal(f):
    # Equal unless at a kink (the sensitivity analysis reads a difference as a kink), and
    # the finite-difference marginal's accuracy, ~1e-10.
    curves = from_functions([f], shapes=["convex"])
    C = np.concatenate([[0.0, 1e-9, 1e-5, 1 - 1e-5, 1.0], np.linspace(0, 1, 101)])[:, None]
    right, left = curves.one_sided_marginals(C)
    np.testing.assert_array_equal(right, left)
    np.testing.assert_allclose(right, curves.marginal(C), rtol=1e-9, atol=1e-12)


def test_a_kink_within_a_step_of_zero_is_not_hidden_from_the_multiplier_bracket():
    # Slope -10 up to the kink at 1e-6, then -0.1: the finite difference at 0 reads ~2,
    # which bracketed the multiplier below the optimum's. By hand: the budget 5e-7 goes to
    # feature 1, whose marginal 10 beats feature 2's 2 (KKT with lam in [2, 10]); loss
    # f(5e-7) + f2(0) = -5e-6 + 1.
    def f(C):
        return np.maximum(-10 * C, -0.1 * C - 9.9e-6)

    result = capopt.solve(capopt.from_functions([f, f2], shapes=["convex", "convex"]), 5e-7)
    assert result.status is Status.OPTIMAL
    np.testing.assert_allclose(result.capacities, [5e-7, 0.0], rtol=0, atol=KINK_FOUND)
    assert result.loss == pytest.approx(1 - 5e-6, rel=ROUNDING)


# --- the known optimum of the strategy, confirmed independently ---------------------------------


def coefficients(pieces):
    """The magnitude of a curve's pieces' coefficients, which their rounding scales with."""
    return float(np.max(np.abs(pieces.values) + np.abs(pieces.slopes) + pieces.curvatures))


@np.errstate(over="ignore", divide="ignore", invalid="ignore")
def penalised_minimum(pieces, lam):
    r"""min over [0, 1] of max_j p_j(c) + lam c, each p_j a convex quadratic, exactly up to
    rounding: a minimiser is an end, the stationary point of the one piece active there, or
    a point where two pieces cross -- all of which are enumerated."""
    k, y, s, a = pieces.knots, pieces.values, pieces.slopes, pieces.curvatures
    # p_j(c) = a c^2 + b c + e.
    b, e = s - 2 * a * k, y - s * k + a * k * k
    candidates = [0.0, 1.0]
    candidates += [-(bj + lam) / (2 * aj) for aj, bj in zip(a, b) if aj > 0]
    for i, j in itertools.combinations(range(k.size), 2):
        qa, qb, qc = a[i] - a[j], b[i] - b[j], e[i] - e[j]
        if qa == 0:
            candidates += [-qc / qb] if qb != 0 else []
        elif qb * qb - 4 * qa * qc >= 0:
            # The roots without cancellation: q / qa and qc / q.
            q = -0.5 * (qb + math.copysign(math.sqrt(qb * qb - 4 * qa * qc), qb))
            candidates += [q / qa] + ([qc / q] if q != 0 else [])
    c = np.array([x for x in candidates if 0.0 <= x <= 1.0])
    values = np.max(a * c[:, None] ** 2 + b * c[:, None] + e, axis=1) + lam * c
    return float(np.min(values))


@given(kinked_convex_problems())
def test_the_known_optimum_of_a_kinked_problem_is_a_minimiser_of_every_penalised_curve(problem):
    # Weak duality: g(lam*) <= optimum <= sum_i l_i(C*_i); each C*_i minimising l_i + lam* c
    # makes the two ends meet, so C* is optimal.
    lam, d = problem.multiplier, problem.budget
    C = problem.capacities
    assert 0 <= C.min() and C.max() <= 1 and math.fsum(C) <= d
    terms = [penalised_minimum(p, lam) for p in problem.pieces]
    at_optimum = [float(p(c)) + lam * c for p, c in zip(problem.pieces, C)]
    magnitude = sum(coefficients(p) for p in problem.pieces) + lam * (1 + d)
    for term, value in zip(terms, at_optimum):
        assert term >= value - ROUNDING * magnitude
    dual = math.fsum(terms) - lam * d
    assert dual >= problem.loss - ROUNDING * magnitude


# --- the property: no false proof ---------------------------------------------------------------


def loss_scale(problem: KnownOptimum) -> float:
    """sum_i |l_i(0) - l_i(1)|, the certificate's loss scale (1 where it vanishes)."""
    return sum(abs(float(p(0.0)) - float(p(1.0))) for p in problem.pieces) or 1.0


def _pieces(capacity, y, slopes, curvatures=None, extra=()):
    """Pieces through (capacity, y) and ``extra`` (value, slope, curvature) below it."""
    values = [y] * len(slopes) + [v for v, _, _ in extra]
    slopes = list(slopes) + [s for _, s, _ in extra]
    curvatures = list(curvatures or [0.0] * (len(values) - len(extra))) + [a for _, _, a in extra]
    return ConvexPieces(np.full(len(values), capacity), values, slopes, curvatures)


def _known(pieces, C, lam, spare=0.0):
    C = np.array(C, dtype=np.float64)
    curves = from_functions(list(pieces), shapes=["convex"] * len(pieces))
    loss = math.fsum(float(p(c)) for p, c in zip(pieces, C))
    return KnownOptimum(curves, math.fsum(C) + spare, C, lam, loss, tuple(pieces))


@given(kinked_convex_problems())
# The reproducer in this form: f1 kinked at the optimum, f2 smooth.
@example(_known([_pieces(0.5, 0.05, [-10.0, -0.1]), _pieces(0.2, 0.64, [-1.6], [1.0])], [0.5, 0.2], 1.6))
# A kink 1e-9 / 19.9 ~ 5e-11 from a smooth optimum, far inside a finite difference's step.
@example(_known([_pieces(0.3, 0.5, [-1.0], [2.0], extra=[(0.5 - 1e-9, 19.9, 0.0)]),
                 _pieces(0.6, 0.2, [-3.0, 2.0])], [0.3, 0.6], 1.0))
def test_kinked_convex_problems_are_optimal_only_at_the_optimum_and_bounded_below_it(problem):
    result = capopt.solve(problem.curves, problem.budget, throw=False)
    event(f"status {result.status.name}")
    scale = loss_scale(problem)
    magnitude = sum(abs(float(p(c))) for p, c in zip(problem.pieces, problem.capacities))
    magnitude += problem.multiplier * (1 + problem.budget) + scale
    assert result.certificate.lower_bound <= problem.loss + ROUNDING * magnitude
    if result.status is Status.OPTIMAL:
        assert result.loss - problem.loss <= CERTIFIED * scale + ROUNDING * magnitude


@given(kinked_convex_problems(max_features=2), st.floats(0.0, 30.0))
def test_the_dual_term_of_a_kinked_curve_bounds_its_exact_penalised_minimum_tightly(problem, lam):
    # At any multiplier, not only the optimum's: a lower bound must be a bound.
    terms = problem.curves.lagrangian_minimum(lam)
    for term, pieces in zip(terms, problem.pieces):
        exact = penalised_minimum(pieces, lam)
        magnitude = coefficients(pieces) + lam
        assert exact - ROUNDING * magnitude <= term <= exact + ROUNDING * magnitude
