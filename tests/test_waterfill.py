"""Water-filling (method "waterfill"): exact for convex and linear families (theory §2-3).

Reference values come from independent routes: the theory §3 closed form with its level found
by bisection in 50-digit mpmath arithmetic, the generic root-finding path on the same curves
with their closed-form response hidden, scipy's SLSQP, and problems built around a chosen
optimum (C*, lam*).
"""

import numpy as np
import pytest
from hypothesis import assume, example, given, strategies as st
from scipy.optimize import minimize

from capopt._kernels import waterfill as kernels
from capopt.curves import LossCurves, linear_autoencoder, quadratic
from capopt.solvers import solve
from capopt.solvers.waterfill import waterfill
from capopt.testing import KURTOSIS_RANGES, check_certificate, importances, quadratic_families
from references import closed_form

#: Agreement of two exact routes in float64: rounding only (a few ulps of capacities that
#: are ~1, amplified by at most 1/(K - 3) <= 5 for the kurtoses drawn here).
EXACT = 1e-12
#: Agreement demanded between the selection kernel and the root-finding path (issue 3).
PATHS_AGREE = 1e-9
#: SLSQP stops at ftol 1e-12 relative to losses of order 1-100; it may only be worse.
SLSQP_SLACK = 1e-9
#: A planted optimum is moved by rounding its importances to float64, amplified by the
#: steepness 1/(K - 3) of the responses (K >= 3.2 here) and by lam* down to 0.1.
PLANTED = 1e-10
#: lam scales by c^2: squaring c and scaling v each round once more than EXACT allows.
SCALED = 1e-11
#: Marginals this close to lam mark a linear feature as tied at the margin.
TIED = 1e-9
#: Kurtosis above 3 by at least this much: root finding on lam then pins capacities to
#: eps / (K - 3) < PATHS_AGREE.
WELL_CONDITIONED = 1e-6

convex_K = st.floats(*KURTOSIS_RANGES["convex"])


def convex_linear_families(max_features=8):
    """Quadratic families mixing convex curves with linear (K = 3) and flat (v <= 0, K = 1) ones."""
    return quadratic_families(max_features=max_features, returns="convex", edge_cases=True)


def convex_linear_problems(max_features=8):
    """(curves, d) with d from 0 to past N, whole budgets included."""
    return convex_linear_families(max_features).flatmap(
        lambda c: st.tuples(
            st.just(c),
            st.one_of(st.floats(0.0, c.n_features + 1.0), st.integers(0, c.n_features + 1).map(float)),
        )
    )


class HiddenResponse(LossCurves):
    """The same curves without their closed-form response: ``capacity_at`` bisects."""

    def __init__(self, curves):
        self.curves = curves

    n_features = property(lambda self: self.curves.n_features)
    shapes = property(lambda self: self.curves.shapes)

    def loss(self, C):
        return self.curves.loss(C)

    def marginal(self, C):
        return self.curves.marginal(C)

    def curvature(self, C):
        return self.curves.curvature(C)


# --- reference values --------------------------------------------------------------------


def test_worked_case_of_spec_two_features_on_one_neuron():
    # theory §3: importances 2 and 1, K = 7, one neuron: C = (5/6, 1/6), loss 21/4.
    result = solve(quadratic([2.0, 1.0], 7.0), 1.0, method="waterfill")
    np.testing.assert_allclose(result.capacities, [5 / 6, 1 / 6], rtol=0, atol=EXACT)
    assert result.loss == pytest.approx(5.25, rel=EXACT)
    assert result.status.name == "OPTIMAL"


def test_two_features_turn_polysemantic_above_kurtosis_one_plus_twice_their_ratio():
    # theory §3: polysemantic iff K > 1 + 2a/b; for (2, 1) the boundary is K = 5.
    assert waterfill(quadratic([2.0, 1.0], 5.0), 1.0).capacities.tolist() == [1.0, 0.0]
    assert waterfill(quadratic([2.0, 1.0], 5.0 + 1e-6), 1.0).capacities[1] > 0


@given(importances(8), convex_K, st.floats(0.0, 8.0))
@example(np.array([2.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.1]), 7.0, 3.0)
def test_matches_spec_closed_form_with_level_from_mpmath(v, K, d):
    result = solve(quadratic(v, K), d, method="waterfill")
    C_ref, lam_ref = closed_form(v, K, d)
    np.testing.assert_allclose(result.capacities, C_ref, rtol=0, atol=EXACT)
    assert result.multiplier == pytest.approx(lam_ref, rel=EXACT, abs=EXACT)


@given(convex_linear_problems())
@example((quadratic([2.0, 2.0, 2.0, 1.0], 3.0), 1.5))
@example((quadratic([1.0, -1.0, 2.0], [1.0, 5.0, 3.0]), 0.7))
def test_selection_agrees_with_root_finding_on_the_hidden_response(problem):
    curves, d = problem
    exact = waterfill(curves, d)
    generic = waterfill(HiddenResponse(curves), d)
    scale = max(float(np.sum(curves.loss_range())), 1e-300)
    assert abs(curves.total_loss(exact.capacities) - curves.total_loss(generic.capacities)) <= PATHS_AGREE * scale
    # Near K = 3 a response is a near-step in lam, where root finding on lam is only as
    # good as lam's last ulp (capacities off by eps / (K - 3)); the selection is not.
    convex = curves.kurtosis[curves.kurtosis > 3]
    if np.all(convex - 3 >= WELL_CONDITIONED):
        np.testing.assert_allclose(exact.capacities, generic.capacities, rtol=0, atol=PATHS_AGREE)
        assert exact.multiplier == pytest.approx(generic.multiplier, rel=PATHS_AGREE, abs=PATHS_AGREE)
    check_certificate(curves, solve(curves, d, method="waterfill"))
    check_certificate(curves, solve(HiddenResponse(curves), d, method="waterfill"))


@given(convex_linear_problems(max_features=6))
def test_slsqp_finds_no_lower_loss(problem):
    curves, d = problem
    n = curves.n_features
    ours = curves.total_loss(waterfill(curves, d).capacities)
    reference = minimize(
        curves.total_loss,
        np.full(n, min(d / n, 1.0)),
        jac=lambda C: -curves.marginal(C),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n,
        constraints={"type": "ineq", "fun": lambda C: d - C.sum(), "jac": lambda C: -np.ones(n)},
        options={"ftol": 1e-12, "maxiter": 500},
    )
    # SLSQP may end slightly outside the constraints: project back before comparing.
    x = np.clip(reference.x, 0.0, 1.0)
    x *= min(1.0, d / x.sum()) if x.sum() > 0 else 1.0
    theirs = curves.total_loss(x)
    assert ours <= theirs + SLSQP_SLACK * max(1.0, abs(theirs))


@st.composite
def known_optima(draw):
    """A family built so that a chosen (C*, lam*) satisfies KKT, with d = sum C*.

    Interior features invert m(C) = 2 (K-1)^2 v^2 / (2 + (K-3) C)^2 = lam*; features at 1
    get m(1) = 2 v^2 > lam*, at 0 m(0) = (K-1)^2 v^2 / 2 < lam* (linear ones included).
    """
    n = draw(st.integers(1, 10))
    kinds = draw(st.lists(st.sampled_from(["zero", "one", "interior"]), min_size=n, max_size=n))
    assume("interior" in kinds)
    lam = draw(st.floats(0.1, 50.0))
    margin = st.floats(0.05, 0.9)
    C, v, K = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, kind in enumerate(kinds):
        K[i] = draw(convex_K) if kind == "interior" else draw(st.one_of(convex_K, st.just(3.0)))
        if kind == "interior":
            C[i] = draw(st.floats(0.02, 0.98))
            v[i] = np.sqrt(lam / 2) * (2 + (K[i] - 3) * C[i]) / (K[i] - 1)
        elif kind == "one":
            C[i] = 1.0
            v[i] = np.sqrt(lam / 2) * (1 + draw(margin))
        else:
            v[i] = np.sqrt(2 * lam) / (K[i] - 1) * (1 - draw(margin))
    return quadratic(v, K), C, lam


@given(known_optima())
def test_recovers_a_planted_optimum(planted):
    curves, C_star, lam_star = planted
    result = solve(curves, float(C_star.sum()), method="waterfill")
    np.testing.assert_allclose(result.capacities, C_star, rtol=0, atol=PLANTED)
    assert result.multiplier == pytest.approx(lam_star, rel=PLANTED)


# --- metamorphic properties ----------------------------------------------------------------


@given(convex_linear_problems(), st.randoms())
def test_permuting_features_permutes_capacities(problem, random):
    curves, d = problem
    perm = np.array(random.sample(range(curves.n_features), curves.n_features))
    permuted = quadratic(curves.importance[perm], curves.kurtosis[perm])
    # Ties between equal linear features are filled in index order, so compare losses
    # and the multiplier, and capacities of features that are not tied.
    a, b = waterfill(curves, d), waterfill(permuted, d)
    assert b.multiplier == pytest.approx(a.multiplier, rel=EXACT, abs=EXACT)
    loss = curves.total_loss(a.capacities)
    assert permuted.total_loss(b.capacities) == pytest.approx(loss, rel=EXACT, abs=EXACT)
    step = curves.marginal(np.zeros(curves.n_features))
    untied = np.abs(step - a.multiplier) > TIED * max(1, a.multiplier)
    untied |= curves.kurtosis != 3
    np.testing.assert_allclose(b.capacities[untied[perm]], a.capacities[perm][untied[perm]], atol=EXACT)


@given(
    importances(8),
    st.lists(convex_K, min_size=8, max_size=8),
    st.floats(0.0, 9.0),
    st.floats(0.01, 100.0),
)
def test_scaling_importances_scales_the_multiplier_by_the_square(v, K, d, c):
    base, scaled = waterfill(quadratic(v, K), d), waterfill(quadratic(c * v, K), d)
    np.testing.assert_allclose(scaled.capacities, base.capacities, atol=EXACT)
    assert scaled.multiplier == pytest.approx(c**2 * base.multiplier, rel=SCALED, abs=EXACT)


@given(convex_linear_problems(), st.floats(0.0, 3.0))
def test_more_budget_never_increases_the_loss(problem, extra):
    curves, d = problem
    less, more = waterfill(curves, d), waterfill(curves, d + extra)
    assert curves.total_loss(more.capacities) <= curves.total_loss(less.capacities) + EXACT
    assert more.multiplier <= less.multiplier * (1 + EXACT) + EXACT


@given(convex_linear_families())
def test_zero_budget_gives_zeros_at_the_largest_initial_marginal(curves):
    result = solve(curves, 0.0, method="waterfill")
    assert not result.capacities.any()
    assert result.multiplier == np.max(curves.marginal(np.zeros(curves.n_features)))


@given(convex_linear_families(), st.floats(0.0, 3.0))
def test_budget_for_everything_fills_useful_features_at_zero_multiplier(curves, extra):
    useful = (curves.importance > 0) & (curves.kurtosis != 1)
    result = solve(curves, float(np.count_nonzero(useful)) + extra, method="waterfill")
    np.testing.assert_array_equal(result.capacities, useful.astype(float))
    assert result.multiplier == 0.0


def test_flat_curves_get_nothing_even_with_room_left():
    curves = quadratic([-1.0, 0.0, 2.0, 1.0], [5.0, 5.0, 5.0, 1.0])
    np.testing.assert_array_equal(waterfill(curves, 2.5).capacities, [0.0, 0.0, 1.0, 0.0])


def test_linear_ties_are_filled_in_index_order():
    # Equal linear features at the margin: the first ones whole, at most one fractional.
    curves = quadratic([1.0, 2.0, 2.0, 2.0, 3.0], 3.0)
    result = solve(curves, 3.5, method="waterfill")
    np.testing.assert_array_equal(result.capacities, [0.0, 1.0, 1.0, 0.5, 1.0])
    assert result.multiplier == 8.0  # m = 2 v^2 of the tied features


def test_linear_tie_with_convex_features_sharing_the_level():
    # v = 1, K = 3 steps at level s = 1; v = 1, K = 5 reaches C = 1 at s = 1 too.
    curves = quadratic([1.0, 1.0, 1.0], [5.0, 3.0, 3.0])
    result = solve(curves, 1.5, method="waterfill")
    np.testing.assert_allclose(result.capacities, [1.0, 0.5, 0.0], atol=EXACT)
    assert result.multiplier == pytest.approx(2.0, rel=EXACT)


@pytest.mark.parametrize(
    "d, expected", [(2.0, [1, 0, 0, 0, 1]), (2.5, [1, 0, 0.5, 0, 1]), (4.0, [1, 0, 1, 1, 1])]
)
def test_linear_autoencoder_keeps_the_most_important_features(d, expected):
    # Constant returns: PCA-like top-d, equal importances 2 and 2 taken in index order.
    curves = linear_autoencoder([3.0, 1.0, 2.0, 2.0, 5.0])
    result = solve(curves, d, method="waterfill")
    np.testing.assert_array_equal(result.capacities, expected)
    check_certificate(curves, result)


def test_waterfill_is_chosen_automatically_for_convex_and_linear_families():
    assert solve(quadratic([2.0, 1.0], 7.0), 1.0).method == "waterfill"
    assert solve(linear_autoencoder([2.0, 1.0]), 1.0).method == "waterfill"


def test_inputs_are_not_mutated_and_capacities_are_a_fresh_array():
    v = np.linspace(0.1, 1.0, 40)
    curves = quadratic(v, 6.0)
    C = waterfill(curves, 7.5).capacities
    assert C.flags.writeable and not np.shares_memory(C, curves.importance)
    np.testing.assert_array_equal(curves.importance, v)


# --- large problems: the sampled first bracket, and the walk of small ones ---------------------


def kernel(curves, d, **tuning):
    """The water-filling kernel on a family, with its path thresholds set by ``tuning``."""
    C = np.empty(curves.n_features)
    K = np.atleast_1d(np.asarray(curves.kurtosis if curves.shared_kurtosis is None else curves.shared_kurtosis, dtype=float))
    lam, _, exact = kernels.waterfill_quadratic(curves.importance, K, float(d), C, **tuning)
    assert exact
    return C, lam


@pytest.fixture(scope="module")
def large_problem():
    rng = np.random.default_rng(20221004)
    n = kernels.SAMPLE_FROM + 17_000
    v = rng.uniform(0.0, 1.0, n)
    K = rng.uniform(3.5, 12.0, n)
    K[::97] = 3.0
    v[::89] = -0.5
    return quadratic(v, K), quadratic(v[::3], 5.0)


@pytest.mark.parametrize("fraction", [1e-5, 0.1, 0.5, 0.97])
def test_sampled_bracket_changes_nothing(large_problem, fraction):
    for curves in large_problem:
        d = fraction * curves.n_features
        sampled = kernel(curves, d)
        plain = kernel(curves, d, sample_from=curves.n_features + 1)
        np.testing.assert_allclose(sampled[0], plain[0], atol=EXACT)
        assert sampled[1] == pytest.approx(plain[1], rel=EXACT)
        assert solve(curves, d, method="waterfill").status.name == "OPTIMAL"


@pytest.mark.parametrize("margin", [-30.0, 0.0])
def test_a_misleading_sample_changes_nothing(large_problem, margin):
    # A negative margin swaps the sampled bracket's ends, so it cannot hold the solution
    # and the fallback runs; a zero margin brackets the solution only by chance.
    curves = large_problem[0]
    d = 0.3 * curves.n_features
    expected = kernel(curves, d)
    result = kernel(curves, d, margin=margin)
    np.testing.assert_allclose(result[0], expected[0], atol=EXACT)
    assert result[1] == pytest.approx(expected[1], rel=EXACT)


@given(convex_linear_problems(max_features=12))
@example(
    problem=(quadratic([5.025, 5.025, 10, 10, 0.05, 5.025, 5.025, 5.025, 5.025, 10, 10], 5.0), 10.0)
)  # budget met by whole features: the multiplier is an interval, [0.02, 50.5]
@example(
    problem=(quadratic([5.025] * 4 + [10.0] * 5 + [0.05] * 2, 26.25), 9.0)
)  # the walk leaves the 5.025s one rounding short of whole (1 - 2^-53) at the interval's top
def test_the_walk_of_small_problems_agrees_with_the_selection(problem):
    curves, d = problem
    if curves.shared_kurtosis is None:
        curves = quadratic(curves.importance, float(curves.kurtosis[0]))
    walked = kernel(curves, d)
    selected = kernel(curves, d, walk_below=0)
    np.testing.assert_allclose(walked[0], selected[0], atol=EXACT)
    # Whole or ignored to rounding: a feature a few ulps short of 1 is whole.
    ulps = 4 * np.finfo(np.float64).eps
    C = np.where(walked[0] <= ulps, 0.0, np.where(walked[0] >= 1 - ulps, 1.0, walked[0]))
    if np.any((C > 0) & (C < 1)):
        assert walked[1] == pytest.approx(selected[1], rel=EXACT, abs=EXACT)
    else:
        # Every feature whole or ignored: any level between the largest benefit of an ignored
        # feature and the smallest of a whole one is a multiplier (KKT), and the two paths may
        # land on different ends of that interval.
        benefit = curves.marginal(C)
        low = max(benefit[C == 0], default=0.0)
        high = min(benefit[C == 1], default=np.inf)
        for lam in (walked[1], selected[1]):
            assert low * (1 - EXACT) - EXACT <= lam <= high * (1 + EXACT) + EXACT


def test_large_problem_agrees_with_the_closed_form_response(large_problem):
    curves = large_problem[0]
    d = 0.2 * curves.n_features
    result = waterfill(curves, d)
    # The family's own response at the returned multiplier (capacity_at, closed form).
    response = curves.capacity_at(result.multiplier)
    moved = np.abs(response - result.capacities) > TIED
    # Only tied linear features may differ from the lower response (they share the rest).
    assert np.all(curves.kurtosis[moved] == 3)
    assert result.capacities.sum() == pytest.approx(d, rel=EXACT)
