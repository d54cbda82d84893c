"""The brute-force reference (tests/brute_force.py) against answers known independently of it.

The reference is what capopt's OPTIMAL answers are checked against, so it is itself checked
here, without importing capopt: against SPEC §3's closed forms (the worked case, identical
K > 3 water-filling, the top-d rule for K <= 3, the two-feature polysemanticity threshold),
exact hand values at the ends of the float64 range, greedy water-filling of convex tables, fine
scans of two-feature problems, and random feasible allocations that must never beat it.

Hypothesis strategies live here rather than in capopt.testing because this module must not
import capopt.
"""

from fractions import Fraction
from math import floor, nextafter

import brute_force as brute
import mpmath
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

#: The reference's results are exact rationals rounded once to brute.DIGITS digits; values
#: recomputed here at HIGH_DIGITS agree with them to a few units in that last place.
ROUNDING_RTOL = mpmath.mpf(10) ** (5 - brute.DIGITS)
#: Digits for the values the tests recompute independently (closed forms, hand values).
HIGH_DIGITS = 2 * brute.DIGITS
#: Bisection steps for the closed-form level: each halves the bracket, so 4 * HIGH_DIGITS
#: steps shrink it far below ROUNDING_RTOL.
BISECTION_STEPS = 4 * HIGH_DIGITS
#: Numerical differentiation of the reference's loss runs at DIFF_DIGITS, below its DIGITS so
#: that its last-place rounding stays invisible; the slope then holds about DIFF_DIGITS - 10.
DIFF_DIGITS = 30
DIFF_RTOL = mpmath.mpf(10) ** (10 - DIFF_DIGITS)
#: Hand values for decimal inputs are exact for the decimals, which float64 rounds by up to
#: 1.1e-16 relative; the optimum moves by a small multiple of that.
DECIMAL_INPUT_TOL = 1e-14
#: Points of the fine scans; their resolution enters each scan's tolerance through the
#: curves' Lipschitz constants (see the scan tests).
SCAN_POINTS = 201
#: float64 evaluation of a scanned table (np.interp) is off by a few ulps of the values'
#: scale; the table scan's "not beaten" side allows this much, relative to that scale.
FLOAT_RTOL = 1e-12

#: Kurtosis at the edges: within an ulp of 1 and of 3, and both shapes on either side of 3.
EDGE_KURTOSIS = [
    nextafter(1.0, 2.0),
    1 + 1e-15,
    1.5,
    1.8,
    nextafter(3.0, 0.0),
    3 - 1e-15,
    3.0,
    3 + 1e-15,
    nextafter(3.0, 4.0),
    3 + 1e-8,
    4.0,
    7.0,
]
CONCAVE_OR_LINEAR_EDGES = [K for K in EDGE_KURTOSIS if K <= 3]
importances = st.floats(0.01, 100.0)
kurtosis = st.one_of(st.sampled_from([1.0] + EDGE_KURTOSIS), st.floats(1.0, 20.0))


def close(a, b, scale=1):
    """a and b agree to ROUNDING_RTOL relative to max(|a|, |b|, scale)."""
    return abs(a - b) <= ROUNDING_RTOL * max(abs(a), abs(b), scale)


def fraction(x):
    """A Fraction, float or mpf as the exact Fraction it holds."""
    if isinstance(x, Fraction):
        return x
    return Fraction(*mpmath.libmp.to_rational(mpmath.mpf(x)._mpf_))


def curve_value(v, K, C):
    """SPEC §3's l(C) at HIGH_DIGITS, written out independently of the reference."""
    with mpmath.workdps(HIGH_DIGITS):
        v, K, C = mpmath.mpf(v), mpmath.mpf(K), mpmath.mpf(C)
        return 2 * (K - 1) * v**2 * (1 - C) / (2 + (K - 3) * C)


def feasible(raw, d):
    """The point raw (in [0, 1]^N) scaled down exactly, if needed, to meet the budget d."""
    raw = [fraction(c) for c in raw]
    total, d = sum(raw), fraction(d)
    return raw if total <= d else [c * d / total for c in raw]


def nearby(capacities, steps, d):
    """A feasible point near an optimum: shifted by ``steps``, clipped, scaled to budget."""
    shifted = [min(max(fraction(c) + fraction(s), Fraction(0)), Fraction(1))
               for c, s in zip(capacities, steps)]
    return feasible(shifted, d)


@st.composite
def quadratic_problems(draw, max_features=4):
    """(v, K, d) with mixed shapes, signs and kurtosis at the edges."""
    n = draw(st.integers(1, max_features))
    v = draw(st.lists(st.one_of(importances, st.sampled_from([0.0, -1.0])), min_size=n,
                      max_size=n))
    K = draw(st.lists(kurtosis, min_size=n, max_size=n))
    d = draw(st.floats(0.0, n + 0.5))
    return v, K, d


@st.composite
def table_problems(draw, max_features=3, max_knots=5):
    """(grid, values, d) with irregular curves of any shape."""
    n = draw(st.integers(1, max_features))
    inner = draw(st.lists(st.floats(0.001, 0.999), max_size=max_knots - 2, unique=True))
    grid = [0.0] + sorted(inner) + [1.0]
    values = draw(st.lists(st.lists(st.floats(0.0, 1.0), min_size=len(grid),
                                    max_size=len(grid)), min_size=n, max_size=n))
    d = draw(st.floats(0.0, n + 0.5))
    return grid, values, d


def test_worked_case_two_features_one_neuron_at_K7():
    """SPEC §3: v = (2, 1), K = 7, d = 1 gives C = (5/6, 1/6) and loss 21/4 exactly."""
    opt = brute.quadratic_optimum([2.0, 1.0], 7.0, 1.0)
    assert opt.loss == mpmath.mpf(21) / 4
    with mpmath.workdps(HIGH_DIGITS):
        assert close(opt.capacities[0], mpmath.mpf(5) / 6)
        assert close(opt.capacities[1], mpmath.mpf(1) / 6)


def closed_form_convex(v, K, d):
    """C_i = clip(((K - 1) v_i / mu - 2) / (K - 3), 0, 1) with sum C = d (SPEC §3, K > 3).

    The total falls as mu rises, from N (small mu) to 0 at mu = (K - 1) max v / 2, so mu is
    bisected at HIGH_DIGITS; needs N > d.
    """
    with mpmath.workdps(HIGH_DIGITS):
        K, d = mpmath.mpf(K), mpmath.mpf(d)
        vs = [mpmath.mpf(x) for x in v]

        def capacities(mu):
            return [min(max(((K - 1) * x / mu - 2) / (K - 3), 0), 1) for x in vs]

        lo, hi = min(vs) / 2, (K - 1) * max(vs) / 2
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if sum(capacities(mid)) > d else (lo, mid)
        return capacities((lo + hi) / 2)


@given(
    v=st.lists(importances, min_size=2, max_size=5),
    K=st.one_of(st.sampled_from([3 + 1e-8, 4.0, 7.0]), st.floats(3.01, 30.0)),
    fill=st.floats(0.0, 0.999),
)
def test_identical_convex_kurtosis_matches_the_clipped_closed_form(v, K, fill):
    d = fill * len(v)
    opt = brute.quadratic_optimum(v, K, d)
    with mpmath.workdps(HIGH_DIGITS):
        for got, want in zip(opt.capacities, closed_form_convex(v, K, d)):
            assert close(got, want)


def top_d(weights, d):
    """The top-d rule: the floor(d) largest weights get 1, the next d - floor(d), the rest 0.

    d - floor(d) is exact in float64, so the rule's capacities are exact floats.
    """
    order = sorted(range(len(weights)), key=lambda i: -weights[i])
    C = [0.0] * len(weights)
    for rank, i in enumerate(order):
        C[i] = 1.0 if rank < floor(d) else (d - floor(d) if rank == floor(d) else 0.0)
    return C


@example(v=[3.0, 1.0, 2.0], K=1.8, d=1.5)
@given(
    v=st.lists(importances, min_size=1, max_size=5, unique=True),
    K=st.one_of(st.sampled_from(CONCAVE_OR_LINEAR_EDGES), st.floats(1.0, 3.0, exclude_min=True)),
    d=st.floats(0.0, 5.5),
)
def test_concave_or_linear_kurtosis_gives_the_top_d_vertex(v, K, d):
    """K <= 3: the floor(d) largest v get 1, the next gets the fraction of d, the rest 0.

    With identical K the loss of a vertex is (K - 1) (sum of ignored v^2 + v_j^2 g(f)) for the
    fractional feature j, with g(f) < 1 fixed by f = d - floor(d), so the fraction goes to the
    largest v not at 1. Distinct v make the vertex unique.
    """
    assert brute.quadratic_optimum(v, K, d).capacities == tuple(map(mpmath.mpf, top_d(v, d)))


@example(a=2.0, b=1.0, offset=0.5)
@example(a=2.0, b=1.0, offset=-0.5)
@given(a=importances, b=importances, offset=st.floats(-0.9, 0.9))
def test_two_features_one_neuron_are_polysemantic_iff_K_exceeds_1_plus_2a_over_b(a, b, offset):
    """SPEC §3, a >= b, d = 1; K = 1 + (2a/b)(1 + offset), |offset| >= 1e-6 off the boundary."""
    a, b = max(a, b), min(a, b)
    if abs(offset) < 1e-6:
        offset = 1e-6
    K = 1 + (2 * a / b) * (1 + offset)
    C = brute.quadratic_optimum([a, b], K, 1.0).capacities
    polysemantic = all(0 < c < 1 for c in C)
    assert polysemantic == (K > 1 + 2 * a / b)


def test_two_features_exactly_at_the_polysemantic_threshold_are_monosemantic():
    """K = 1 + 2a/b = 5 for (a, b) = (2, 1): the water level gives C = (1, 0) exactly."""
    assert brute.quadratic_optimum([2.0, 1.0], 5.0, 1.0).capacities == (1, 0)


def test_a_concave_and_a_convex_feature_can_share_the_budget_inside():
    """v = (2.4, 1), K = (2.5, 13), d = 0.6: C = (0.16, 0.44), loss 7.56 + 2.1 = 9.66.

    By hand: both marginals 2 (K - 1)^2 v^2 / (2 + (K - 3) C)^2 equal 25.92 / 1.92^2 =
    288 / 6.4^2 = 7.03125, and l = 17.28 (0.84) / 1.92 + 24 (0.56) / 6.4.
    """
    opt = brute.quadratic_optimum([2.4, 1.0], [2.5, 13.0], 0.6)
    assert abs(opt.capacities[0] - 0.16) < DECIMAL_INPUT_TOL
    assert abs(opt.capacities[1] - 0.44) < DECIMAL_INPUT_TOL
    assert abs(opt.loss - 9.66) < DECIMAL_INPUT_TOL * 9.66


def test_huge_importances_are_exact_near_the_float64_maximum():
    """v = 1e154 (1, .7, .5, .3), K = 1.5, d = 1: top-1 vertex, loss (K - 1) sum of v^2."""
    v = [1e154 * s for s in (1.0, 0.7, 0.5, 0.3)]
    opt = brute.quadratic_optimum(v, 1.5, 1.0)
    assert opt.capacities == (1, 0, 0, 0)
    with mpmath.workdps(HIGH_DIGITS):
        want = mpmath.mpf(0.5) * sum(mpmath.mpf(x) ** 2 for x in v[1:])
        assert close(opt.loss, want)
    assert 4.14e307 < opt.loss < 4.16e307


def test_tiny_importances_are_exact_where_v_squared_underflows_float64():
    """v = 1e-162 (1, .7, .5, .3), K = 1.5, d = 2.5: C = (1, 1, .5, 0).

    l(1/2) = 2 (0.5) v^2 (0.5) / (2 - 1.5 / 2) = 0.4 v^2 and l(0) = 0.5 v^2; v^2 ~ 1e-325 is
    below float64's smallest subnormal.
    """
    v = [1e-162 * s for s in (1.0, 0.7, 0.5, 0.3)]
    opt = brute.quadratic_optimum(v, 1.5, 2.5)
    assert opt.capacities == (1, 1, 0.5, 0)
    with mpmath.workdps(HIGH_DIGITS):
        want = mpmath.mpf(2) / 5 * mpmath.mpf(v[2]) ** 2 + mpmath.mpf(v[3]) ** 2 / 2
        assert close(opt.loss, want)


@given(problem=quadratic_problems(), k=st.integers(-900, 900))
def test_scaling_importances_by_a_power_of_two_keeps_C_and_scales_the_loss_exactly(problem, k):
    """v -> 2^k v is exact in float64 here and multiplies every loss by 4^k, C unchanged."""
    v, K, d = problem
    opt = brute.quadratic_optimum(v, K, d)
    scaled = brute.quadratic_optimum([x * 2.0**k for x in v], K, d)
    assert scaled.capacities == opt.capacities
    with mpmath.workdps(HIGH_DIGITS):
        assert scaled.loss == opt.loss * mpmath.mpf(4) ** k


@pytest.mark.parametrize("K", EDGE_KURTOSIS)
def test_a_single_feature_takes_the_whole_budget_for_kurtosis_near_1_and_3(K):
    """One useful feature and d = 0.5: C = 0.5 whatever the shape, loss l(0.5)."""
    opt = brute.quadratic_optimum([1.0], K, 0.5)
    assert opt.capacities == (0.5,)
    with mpmath.workdps(HIGH_DIGITS):
        assert close(opt.loss, curve_value(1.0, K, 0.5))


def test_a_continuum_of_stationary_points_has_the_constant_loss_along_it():
    """v = (2, 1), K = (2, 5), d = 1: C(mu) = (2 - 2/mu, 2/mu - 1) spends d for every mu.

    A = -2 + 2 = 0 and B = 2 - 1 = r (the degenerate case of the module docstring); on
    mu in [1, 2] the loss is 8 (1 - C_1)/(2 - C_1) + 4 C_1/(2 - C_1) = 4 throughout.
    """
    opt = brute.quadratic_optimum([2.0, 1.0], [2.0, 5.0], 1.0)
    assert opt.loss == 4
    for C_1 in (0.0, 0.25, 0.5, 1.0):
        assert brute.quadratic_loss([2.0, 1.0], [2.0, 5.0], [C_1, 1 - C_1]) == 4


def test_negative_zero_and_unit_kurtosis_features_are_ignored():
    """v <= 0 or K = 1 are flat curves: they stay at 0 and add (K - 1) v^2 to the loss."""
    opt = brute.quadratic_optimum([-3.0, 0.0, 2.0, 5.0, 1.0], [4.0, 5.0, 7.0, 1.0, 7.0], 1.0)
    assert opt.capacities[:2] == (0, 0) and opt.capacities[3] == 0
    with mpmath.workdps(HIGH_DIGITS):
        assert close(opt.capacities[2], mpmath.mpf(5) / 6)
        assert close(opt.loss, 3 * 9 + mpmath.mpf(21) / 4)


def test_zero_importance_autoencoder_features_are_ignored():
    opt = brute.linear_autoencoder_optimum([0.0, 2.0, 1.0, 0.0], 1.0)
    assert opt.capacities == (0, 1, 0, 0)
    assert opt.loss == 1


def lipschitz(v, K):
    """max over [0, 1] of the marginal 2 (K - 1)^2 v^2 / (2 + (K - 3) C)^2 (0 if flat).

    The denominator is linear in C, so it is least at an end: 2 at C = 0, K - 1 at C = 1.
    """
    with mpmath.workdps(HIGH_DIGITS):
        v, K = mpmath.mpf(v), mpmath.mpf(K)
        if v <= 0 or K == 1:
            return mpmath.mpf(0)
        return 2 * (K - 1) ** 2 * v**2 / min(2, K - 1) ** 2


@example(v=[2.4, 1.0], K=[2.5, 13.0], d=0.6)
@given(
    v=st.lists(importances, min_size=2, max_size=2),
    K=st.lists(kurtosis, min_size=2, max_size=2),
    d=st.floats(0.0, 1.99),
)
def test_two_feature_optimum_is_not_beaten_by_a_fine_scan_of_the_budget_line(v, K, d):
    """d < 2 and the curves never rise, so some optimum spends the budget: C_2 = d - C_1.

    Every scanned point is feasible and its loss exact, so none may beat the optimum (no
    tolerance). Conversely the optimum's C_1 is within h / 2 of a scanned point, h the scan
    step, so the scan's best is within (h / 2) (L_1 + L_2) of it, L_i the curves' Lipschitz
    constants.
    """
    opt = brute.quadratic_optimum(v, K, d)
    d = fraction(d)
    lo, hi = max(Fraction(0), d - 1), min(Fraction(1), d)
    step = (hi - lo) / (SCAN_POINTS - 1)
    scan = min(
        brute.quadratic_loss(v, K, [lo + k * step, d - lo - k * step])
        for k in range(SCAN_POINTS)
    )
    assert opt.loss <= scan
    with mpmath.workdps(HIGH_DIGITS):
        slack = mpmath.mpf(step.numerator) / step.denominator / 2
        assert scan - opt.loss <= slack * (lipschitz(v[0], K[0]) + lipschitz(v[1], K[1]))


@given(problem=quadratic_problems(), data=st.data())
def test_quadratic_optimum_is_never_beaten_by_sampled_feasible_allocations(problem, data):
    """Random points of the box scaled into the budget, and points near the optimum.

    Losses are exact rationals rounded to nearest, a monotone map, so the comparison needs
    no tolerance.
    """
    v, K, d = problem
    n = len(v)
    opt = brute.quadratic_optimum(v, K, d)
    unit = st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)
    steps = st.lists(st.sampled_from([1e-30, -1e-30, 1e-9, -1e-9, 1e-3, -1e-3, 0.0]),
                     min_size=n, max_size=n)
    for _ in range(5):
        assert brute.quadratic_loss(v, K, feasible(data.draw(unit), d)) >= opt.loss
        near = nearby(opt.capacities, data.draw(steps), d)
        assert brute.quadratic_loss(v, K, near) >= opt.loss


@given(problem=quadratic_problems(max_features=5))
def test_reported_loss_is_the_loss_of_the_reported_feasible_capacities(problem):
    """The returned C is feasible to rounding and its loss is the returned loss."""
    v, K, d = problem
    opt = brute.quadratic_optimum(v, K, d)
    with mpmath.workdps(HIGH_DIGITS):
        assert brute.feasibility_violation(opt.capacities, d) <= ROUNDING_RTOL * max(1, d)
        assert close(brute.quadratic_loss(v, K, opt.capacities), opt.loss,
                     scale=sum(lipschitz(x, k) for x, k in zip(v, K)))


@given(problem=quadratic_problems(max_features=5))
def test_at_most_one_concave_curve_feature_is_strictly_inside(problem):
    """SPEC §2: two interior strictly concave features could trade capacity and gain."""
    v, K, d = problem
    C = brute.quadratic_optimum(v, K, d).capacities
    assert sum(1 for x, k, c in zip(v, K, C) if x > 0 and 1 < k < 3 and 0 < c < 1) <= 1


@pytest.mark.parametrize("K", [1.2, 2.0, nextafter(3.0, 0.0), 3.0, 3 + 1e-15, 4.0, 9.0])
@pytest.mark.parametrize("v", [0.3, 2.0])
def test_quadratic_loss_has_the_spec_ends_and_marginal(v, K):
    """l(0) = (K - 1) v^2, l(1) = 0 and -l'(C) = 2 (K - 1)^2 v^2 / (2 + (K - 3) C)^2."""
    with mpmath.workdps(HIGH_DIGITS):
        Kq, vq = mpmath.mpf(K), mpmath.mpf(v)
        assert close(brute.quadratic_loss([v], K, [0.0]), (Kq - 1) * vq**2)
        assert brute.quadratic_loss([v], K, [1.0]) == 0
    # The loss is rounded to brute.DIGITS digits, so it is differentiated at DIFF_DIGITS.
    with mpmath.workdps(DIFF_DIGITS):
        for C in (mpmath.mpf(1) / 4, mpmath.mpf(2) / 3):
            slope = mpmath.diff(lambda c: brute.quadratic_loss([v], K, [c]), C)
            marginal = 2 * (Kq - 1) ** 2 * vq**2 / (2 + (Kq - 3) * C) ** 2
            assert abs(slope + marginal) <= DIFF_RTOL * marginal


def test_feasibility_violation_is_exact():
    assert brute.feasibility_violation([0.5, 0.5], 1.0) == 0
    assert brute.feasibility_violation([1.5, 0.0], 2.0) == 0.5
    assert brute.feasibility_violation([-1e-300, 0.0], 1.0) == mpmath.mpf(1e-300)
    with mpmath.workdps(HIGH_DIGITS):
        assert brute.feasibility_violation([0.5, 0.6], 1.0) == mpmath.mpf(0.6) - 0.5


@st.composite
def convex_tables(draw):
    """Convex curves with dyadic knots and integer slopes, so the float values are exact."""
    n = draw(st.integers(1, 4))
    inner = draw(st.lists(st.integers(1, 63), max_size=3, unique=True))
    grid = [0.0] + sorted(k / 64 for k in inner) + [1.0]
    values = []
    for _ in range(n):
        slopes = sorted(draw(st.lists(st.integers(-20, 5), min_size=len(grid) - 1,
                                      max_size=len(grid) - 1)))
        row = [float(draw(st.integers(0, 20)))]
        for s, a, b in zip(slopes, grid, grid[1:]):
            row.append(row[-1] + s * (b - a))
        values.append(row)
    d = draw(st.floats(0.0, n + 0.5))
    return grid, values, d


def greedy_convex_loss(grid, values, d):
    """Water-filling a convex table: buy pieces steepest descent first until d runs out.

    Slopes rise along each convex curve, so each feature's pieces are bought in order.
    """
    pieces = sorted(
        ((Fraction(row[k + 1]) - Fraction(row[k])) / (Fraction(grid[k + 1]) - Fraction(grid[k])),
         k, Fraction(grid[k + 1]) - Fraction(grid[k]))
        for row in values for k in range(len(grid) - 1)
    )
    loss, left = sum(Fraction(row[0]) for row in values), Fraction(d)
    for slope, _, width in pieces:
        if slope >= 0 or left == 0:
            break
        take = min(width, left)
        loss, left = loss + slope * take, left - take
    return loss


@given(problem=convex_tables())
def test_convex_table_matches_greedy_water_filling(problem):
    grid, values, d = problem
    want = greedy_convex_loss(grid, values, d)
    with mpmath.workdps(HIGH_DIGITS):
        assert close(brute.table_optimum(grid, values, d).loss,
                     mpmath.mpf(want.numerator) / want.denominator, scale=1)


def test_ties_go_to_the_allocation_with_less_capacity():
    """(0, 1), (0.5, 0), (0.5, 0.5) and (1, 0) all lose 1 with d = 1; (0.5, 0) uses least."""
    opt = brute.table_optimum([0, 0.5, 1], [[1, 0, 0], [1, 1, 0]], 1.0)
    assert opt.loss == 1
    assert opt.capacities == (0.5, 0)


def test_irregular_table_finds_the_narrow_dip():
    """grid (0, .501, .502, .503, 1), values (1, 1, 0, 1, 1), d = .6: loss 0 at C = .502."""
    opt = brute.table_optimum([0, 0.501, 0.502, 0.503, 1], [[1, 1, 0, 1, 1]], 0.6)
    assert opt.loss == 0
    assert opt.capacities == (mpmath.mpf(0.502),)


def test_irregular_table_uses_the_budget_off_knot_when_the_dip_is_out_of_reach():
    """d = .5015 stops inside the falling piece (.501, .502): l = 1 - (.0005 / .001) ~ 1/2."""
    grid = [0, 0.501, 0.502, 0.503, 1]
    opt = brute.table_optimum(grid, [[1, 1, 0, 1, 1]], 0.5015)
    assert opt.capacities == (mpmath.mpf(0.5015),)
    with mpmath.workdps(HIGH_DIGITS):
        x = [mpmath.mpf(g) for g in grid]
        assert close(opt.loss, 1 - (mpmath.mpf(0.5015) - x[1]) / (x[2] - x[1]))


@given(problem=table_problems(max_features=2, max_knots=6))
def test_two_feature_table_optimum_is_not_beaten_by_a_fine_grid_scan(problem):
    """Scan [0, 1]^2 on a grid of step h, evaluated by np.interp (independent code).

    Not beaten, up to float64 rounding (FLOAT_RTOL). Conversely rounding the optimum down to
    the grid stays feasible and moves each C_i by less than h (2h if the float grid puts the
    budget's neighbour just above it), so the scan's best is within 2h (L_1 + L_2) of it, L_i
    the largest |slope| of curve i.
    """
    grid, values, d = problem
    opt = brute.table_optimum(grid, values, d)
    points = np.linspace(0.0, 1.0, SCAN_POINTS)
    curves = [np.interp(points, grid, row) for row in values]
    if len(values) == 1:
        scan = curves[0][points <= d].min()
    else:
        total = curves[0][:, None] + curves[1][None, :]
        scan = total[points[:, None] + points[None, :] <= d].min()
    slopes = [np.max(np.abs(np.diff(row) / np.diff(grid))) for row in values]
    h = 1.0 / (SCAN_POINTS - 1)
    scan = float(scan)
    assert opt.loss <= scan + FLOAT_RTOL * len(values)
    assert scan <= opt.loss + 2 * h * sum(slopes) + FLOAT_RTOL * len(values)


@given(problem=table_problems(), data=st.data())
def test_table_optimum_is_never_beaten_by_sampled_feasible_allocations(problem, data):
    grid, values, d = problem
    n = len(values)
    opt = brute.table_optimum(grid, values, d)
    unit = st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)
    steps = st.lists(st.sampled_from([1e-30, -1e-30, 1e-9, -1e-9, 1e-3, -1e-3, 0.0]),
                     min_size=n, max_size=n)
    for _ in range(5):
        assert brute.table_loss(grid, values, feasible(data.draw(unit), d)) >= opt.loss
        assert brute.table_loss(grid, values, nearby(opt.capacities, data.draw(steps), d)) \
            >= opt.loss


@example(I=[1.0, 3.0, 2.0], d=1.5)
@given(I=st.lists(importances, min_size=1, max_size=6, unique=True), d=st.floats(0.0, 6.5))
def test_linear_autoencoder_gives_the_top_d_rule(I, d):
    """Constant returns I_i: the floor(d) largest get 1, the next the fraction of d."""
    want = top_d(I, d)
    opt = brute.linear_autoencoder_optimum(I, d)
    assert opt.capacities == tuple(map(mpmath.mpf, want))
    with mpmath.workdps(HIGH_DIGITS):
        assert close(opt.loss, sum(mpmath.mpf(x) * (1 - mpmath.mpf(c)) for x, c in zip(I, want)))
    assert brute.linear_autoencoder_loss(I, want) == opt.loss


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: brute.quadratic_optimum([1.0] * 7, 4.0, 1.0), ValueError, "1 to 6 features"),
        (lambda: brute.quadratic_optimum([], 4.0, 1.0), ValueError, "1 to 6 features"),
        (lambda: brute.quadratic_optimum([1.0], 0.5, 1.0), ValueError, "K must be >= 1"),
        (lambda: brute.quadratic_optimum([1.0], [4.0, 4.0], 1.0), ValueError, "one entry"),
        (lambda: brute.quadratic_optimum([float("nan")], 4.0, 1.0), ValueError, "finite"),
        (lambda: brute.quadratic_optimum([1.0], 4.0, -0.5), ValueError, "d must be finite"),
        (lambda: brute.quadratic_optimum([1.0], 4.0, float("inf")), ValueError, "finite"),
        (lambda: brute.quadratic_optimum(["1"], 4.0, 1.0), TypeError, "real numbers"),
        (lambda: brute.quadratic_optimum(1.0, 4.0, 1.0), ValueError, "v must be 1-D"),
        (lambda: brute.quadratic_loss([1.0], 4.0, [1.5]), ValueError, r"C must lie in \[0, 1\]"),
        (lambda: brute.quadratic_loss([1.0], 4.0, [0.5, 0.5]), ValueError, "one capacity"),
        (lambda: brute.table_optimum([0, 0.5], [[1, 0]], 1.0), ValueError, "from 0 to 1"),
        (lambda: brute.table_optimum([0, 0.6, 0.4, 1], [[1, 0, 0, 0]], 1.0), ValueError,
         "increase strictly"),
        (lambda: brute.table_optimum([0, 1], [[1, 0, 0]], 1.0), ValueError, r"shape \(N, 2\)"),
        (lambda: brute.table_optimum(np.linspace(0, 1, 9), np.ones((5, 9)), 1.0), ValueError,
         "M\\*\\*N"),
        (lambda: brute.linear_autoencoder_optimum([-1.0], 1.0), ValueError, "I must be >= 0"),
    ],
)
def test_bad_inputs_are_rejected_with_a_message_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
