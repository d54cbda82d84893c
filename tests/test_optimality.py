"""No answer marked OPTIMAL is beaten: capopt against an exact brute force, and the
reproducers of wrong answers that once carried OPTIMAL.

The reference is ``tests/brute_force.py``: exact rational arithmetic over a candidate set
that provably contains a global minimiser (its module docstring), sharing no code with
capopt. The problems come from :mod:`capopt.testing`'s strategies at their widest:
importances over the whole float64 range, kurtoses a hair from 1 and 3, ties, flat curves,
tiny and fractional budgets, and tables of every shape.
"""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import brute_force
import capopt
from capopt import Shape, Status
from capopt.solvers.certificate import FIT_RTOL, onto_budget
from capopt.testing import MAGNITUDES, budgets, check_certificate, linear_autoencoder_families, quadratic_families

#: An OPTIMAL answer may exceed the exact optimum by the certificate's tolerance (1e-9 of
#: the loss scale for the exact methods), and the budget by 1e-9 of itself.
CERTIFIED = 1e-9
#: Two exact answers of a strictly convex problem (a unique optimum) agree to rounding:
#: capacities are absolute quantities in [0, 1].
EXACT = 1e-12


def assert_not_beaten(loss_of, optimum, result, scale):
    """The result's exact loss is within CERTIFIED of the optimum's, and it is feasible."""
    C = np.asarray(result.capacities)
    d = result.budget
    violation = float(brute_force.feasibility_violation(C, d))
    assert violation <= CERTIFIED * (d if d > 0 else 1.0), f"infeasible by {violation:.3g}"
    excess = float(loss_of(np.clip(C, 0.0, 1.0)) - optimum.loss)
    assert excess <= CERTIFIED * scale, f"beaten by {excess:.3g} (loss scale {scale:.3g})"


def mixed_problems(magnitude):
    families = quadratic_families(max_features=5, returns="mixed", edge_cases=True, magnitude=magnitude)
    return families.flatmap(lambda c: st.tuples(st.just(c), budgets(c.n_features)))


@pytest.mark.parametrize("magnitude", MAGNITUDES)
@given(data=st.data())
def test_no_optimal_quadratic_answer_is_beaten_by_the_brute_force(magnitude, data):
    curves, d = data.draw(mixed_problems(magnitude), label="problem")
    result = capopt.solve(curves, d, throw=False)
    if result.status.name != "OPTIMAL":
        return
    v, K = curves.importance, curves.kurtosis
    optimum = brute_force.quadratic_optimum(v, K, d)
    scale = float(brute_force.quadratic_loss(v, K, np.zeros(v.size)) - brute_force.quadratic_loss(v, K, np.ones(v.size)))
    assert_not_beaten(lambda C: brute_force.quadratic_loss(v, K, C), optimum, result, abs(scale) or 1.0)
    check_certificate(curves, result)


@given(quadratic_families(max_features=5, returns="convex", magnitude="wide"), st.data())
def test_strictly_convex_optimum_is_the_unique_minimiser(curves, data):
    # Every K > 3 and v > 0: the loss is strictly convex, its minimiser unique, so the
    # capacities themselves must be the brute force's.
    d = data.draw(budgets(curves.n_features), label="d")
    result = capopt.solve(curves, d)
    optimum = brute_force.quadratic_optimum(curves.importance, curves.kurtosis, d)
    expected = np.array([float(c) for c in optimum.capacities])
    np.testing.assert_allclose(result.capacities, expected, rtol=0, atol=EXACT)


@st.composite
def tables(draw, max_features=3, max_knots=6):
    n = draw(st.integers(1, max_features))
    m = draw(st.integers(2, max_knots))
    inner = draw(st.lists(st.floats(0.01, 0.99), min_size=m - 2, max_size=m - 2, unique=True))
    grid = np.concatenate([[0.0], np.sort(inner), [1.0]])
    scale = draw(st.sampled_from([1.0, 1e-300, 1e300]))
    values = draw(hnp.arrays(np.float64, (n, m), elements=st.one_of(st.floats(-3.0, 3.0), st.integers(-2, 2).map(float))))
    return grid, values * scale


@given(tables(), st.data())
@example((np.array([0.0, 0.501, 0.502, 0.503, 1.0]), np.array([[1.0, 1.0, 0.0, 1.0, 1.0]])), None)
def test_no_optimal_table_answer_is_beaten_by_the_brute_force(table, data):
    grid, values = table
    d = data.draw(budgets(values.shape[0]), label="d") if data is not None else 0.6
    curves = capopt.from_table(grid, values)
    result = capopt.solve(curves, d, throw=False)
    assert result.status.name == "OPTIMAL", "tables are solved exactly: every status should be OPTIMAL"
    optimum = brute_force.table_optimum(grid, values, d)
    scale = float(np.sum(np.ptp(values, axis=1))) or 1.0
    assert_not_beaten(lambda C: brute_force.table_loss(grid, values, C), optimum, result, scale)
    check_certificate(curves, result)


@given(linear_autoencoder_families(max_features=6, magnitude="wide"), st.data())
def test_no_optimal_autoencoder_answer_is_beaten_by_the_brute_force(curves, data):
    d = data.draw(budgets(curves.n_features), label="d")
    result = capopt.solve(curves, d)
    optimum = brute_force.linear_autoencoder_optimum(curves.importance, d)
    scale = float(np.sum(curves.importance)) or 1.0
    assert_not_beaten(lambda C: brute_force.linear_autoencoder_loss(curves.importance, C), optimum, result, scale)


# --- the reproducers: each once answered OPTIMAL and wrong ------------------------------------


def test_huge_importances_are_solved_in_scaled_units():
    # The loss 2 (K-1) v^2 (1-C) / (2 + (K-3) C) overflowed at v ~ 1e154 (2 v^2 > 1.8e308)
    # and the vertex method took an inf gain. True: the largest feature whole, loss
    # (K - 1)(0.49 + 0.25 + 0.09) 1e308 = 4.15e307 (brute force below).
    v = [1e154, 0.7e154, 0.5e154, 0.3e154]
    result = capopt.solve(capopt.quadratic(v, 1.5), 1.0)
    np.testing.assert_array_equal(result.capacities, [1.0, 0.0, 0.0, 0.0])
    assert result.loss == pytest.approx(float(brute_force.quadratic_optimum(v, 1.5, 1.0).loss), rel=1e-14)
    assert result.loss == pytest.approx(4.15e307, rel=1e-14)


def test_tiny_importances_are_solved_in_scaled_units():
    # Their gains (K - 1) v^2 underflowed to 0, and nothing was allocated.
    v = 1e-162 * np.array([1, 0.7, 0.5, 0.3])
    result = capopt.solve(capopt.quadratic(v, 1.5), 2.5)
    np.testing.assert_array_equal(result.capacities, [1.0, 1.0, 0.5, 0.0])


def test_importances_across_the_whole_float_range_are_solved_tier_by_tier():
    # 1e300 and 1e-300 in one family: no common unit holds both squares. The small feature
    # gets the budget the large one leaves.
    curves = capopt.quadratic([1e300, 1e-300, 3e-301], [5.0, 5.0, 2.0])
    result = capopt.solve(curves, 1.5)
    optimum = brute_force.quadratic_optimum(curves.importance, curves.kurtosis, 1.5)
    np.testing.assert_allclose(result.capacities, [float(c) for c in optimum.capacities], atol=EXACT)
    assert result.loss == float(optimum.loss)


def test_a_loss_beyond_float64_is_reported_as_overflowing_not_certified_as_a_number():
    result = capopt.solve(capopt.quadratic([1e300, 1e300], 7.0), 1.0)
    assert result.status.name == "OPTIMAL"
    np.testing.assert_allclose(result.capacities, [0.5, 0.5], atol=EXACT)
    assert math.isinf(result.loss) and math.isfinite(result.scaled_loss)
    assert "overflows float64" in repr(result)
    # The scaled loss times 2**loss_exponent is the true loss: two features at C = 1/2,
    # each 2 (K - 1) v^2 (1/2) / (2 + (K - 3) / 2) = 1.5e600.
    log2_loss = math.log2(result.scaled_loss) + result.loss_exponent
    assert log2_loss == pytest.approx(math.log2(3.0) + 600 * math.log2(10), rel=1e-14)


def test_a_tiny_budget_is_respected_to_1e_9_of_itself_a_hair_from_k_3():
    # C = ((K - 1) v s - 2)/(K - 3) cancelled: capacities 233 times the budget of 1e-12.
    result = capopt.solve(capopt.quadratic([0.2077], 3.000001), 1e-12)
    assert result.capacities[0] == pytest.approx(1e-12, rel=1e-12)
    assert result.capacities.sum() <= 1e-12 * (1 + 1e-9)


def test_one_near_linear_feature_takes_its_budget():
    # The same cancellation failed to certify a single feature a hair from K = 3.
    result = capopt.solve(capopt.quadratic([0.3], 3 + 1e-8), 0.5)
    assert result.status.name == "OPTIMAL" and result.capacities[0] == pytest.approx(0.5, rel=1e-15)


def test_a_table_is_solved_exactly_not_on_a_grid():
    # The grid DP missed the dip at 0.502 and certified loss 1 with an estimated Lipschitz
    # constant; the true minimum is 0 at C = 0.502.
    table = capopt.from_table([0, 0.501, 0.502, 0.503, 1], [[1, 1, 0, 1, 1]])
    result = capopt.solve(table, 0.6)
    assert (result.status.name, result.loss, result.capacities[0]) == ("OPTIMAL", 0.0, 0.502)
    assert capopt.solve(table, 0.6, method="dp", throw=False).status.name != "OPTIMAL"


def test_convex_tables_are_solved_with_subgradients_at_the_knots():
    # "waterfill did not certify": stationarity read one-sided slopes at the knots.
    C = np.linspace(0, 1, 11)
    values = np.array([(1 - C) ** 2 * w for w in (3, 2, 1)])
    result = capopt.solve(capopt.from_table(C, values), 1.5)
    assert result.status.name == "OPTIMAL"
    optimum = brute_force.table_optimum(C, values, 1.5)
    assert result.loss == pytest.approx(float(optimum.loss), rel=1e-14)


@settings(max_examples=20)
@given(st.integers(0, 2**32 - 1))
def test_a_large_mixed_family_is_certified_and_no_worse_than_its_chord_relaxation(seed):
    # The shape of the family whose polish once took 2000 times the branch and bound.
    rng = np.random.default_rng(seed)
    n = 2000
    curves = capopt.quadratic(rng.pareto(1.5, n) + 0.01, rng.uniform(1.2, 10.0, n))
    result = capopt.solve(curves, n / 4)
    check_certificate(curves, result)


# --- found by an adversarial search --------------------------------------------------------


@pytest.mark.parametrize(
    "v, K, d",
    [
        ([0.5, 1.0], [5.0, 3.0], 1.0),  # a linear step at the top of the last bracket
        ([1.5, 1.0], [3.0, 7.0], 1.5),  # ... the total just below it exactly the budget
        ([1.5, 1.0, 1.5], [3.0, 7.0, 2.5], 1.5),  # the same inside a mixed family
        ([0.5, 1.0, 1.0], [5.0, 3.0, 2.0], 1.0),
    ],
)
def test_a_linear_step_meeting_the_budget_exactly_takes_its_whole_dimension(v, K, d):
    curves = capopt.quadratic(v, K)
    result = capopt.solve(curves, d)
    optimum = brute_force.quadratic_optimum(v, K, d)
    assert result.loss == pytest.approx(float(optimum.loss), rel=1e-14)
    check_certificate(curves, result)


def test_a_large_mixed_family_with_linear_steps_is_not_beaten_by_a_known_allocation():
    # ``better`` beat the answer certified before the linear-step fix; the exact rational
    # loss decides, so the solver must now match or beat it.
    v = [1.5, 1.0, 2.0, 2.0, 1.0, 3.0, 1.0, 3.0, 1.5, 2.0, 2.0, 3.0, 1.5, 1.0, 1.0, 1.0, 1.0, 3.0,
         2.0, 1.5, 1.5, 1.5, 1.5]
    K = [2.5, 1.5, 4.0, 7.0, 2.5, 4.0, 2.0, 20.0, 3.0, 2.0, 3.0, 3.0, 2.5, 7.0, 3.0, 4.0, 7.0, 3.0,
         2.5, 2.5, 20.0, 2.5, 20.0]
    better = [0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0.5, 0, 0, 0.5, 1, 1, 0, 1, 0, 1]
    result = capopt.solve(capopt.quadratic(v, K), 13.0)
    assert float(brute_force.quadratic_loss(v, K, result.capacities)) <= float(
        brute_force.quadratic_loss(v, K, better)) * (1 + 1e-14)


@pytest.mark.parametrize(
    "grid, values, d",
    [
        # 1e15 + small offsets: rounding-level noise allowance called both rows linear.
        ([0.0, 0.5, 1.0], [[1e15 + 0.5, 1e15 + 1.0, 1e15], [1e15 + 0.5] * 3], 1.0),
        # A steep drop in the last 1e-12 made a convex kink look concave.
        ([0.0, 0.25, 1 - 1e-12, 1.0], [[1.0, 0.0, 0.0, -0.01]] * 2, 0.5),
        ([0.0, 0.5, 1 - 1e-15, 1.0], [[1.0, 0.25, 1e-30, 0.0]] * 2 + [[1.0, 0.95, 5e-15, 0.0]], 1.0),
    ],
)
def test_tables_are_exact_whatever_their_detected_shapes(grid, values, d):
    curves = capopt.from_table(grid, values)
    result = capopt.solve(curves, d)
    optimum = brute_force.table_optimum(grid, values, d)
    assert result.loss == pytest.approx(float(optimum.loss), rel=1e-15, abs=1e-300)
    # The vertex method's bound needs concave curves: unproven shapes leave it the dual's,
    # which does not certify a vertex the brute force beats.
    if curves.shape in (Shape.CONCAVE, Shape.LINEAR):
        vertex = capopt.solve(curves, d, method="vertex", throw=False)
        if vertex.loss > float(optimum.loss) * (1 + 1e-12) + 1e-300:
            assert vertex.status is not Status.OPTIMAL


@pytest.mark.parametrize(
    "v, K, d",
    [
        # A one-ulp near-tie and a budget of 1e-20: rounding of order-1 capacities alone is
        # 1e-17, far over the budget.
        ([0.05, float(np.nextafter(0.05, 1.0))], 7.0, 1e-20),
        ([1.908024017124291e-43], 53315645.19771166, 2.7696667757361497e-289),
        ([5.217323092912065e-40, 2.6086615464560326e-40], [184772.8522898053, 2.0], 6.959657923945057e-283),
    ],
)
def test_a_tiny_budget_is_met_relative_to_itself(v, K, d):
    curves = capopt.quadratic(v, K)
    result = capopt.solve(curves, d)
    assert math.fsum(result.capacities) <= d * (1 + 1e-12)
    optimum = brute_force.quadratic_optimum(v, K, d)
    assert result.loss == pytest.approx(float(optimum.loss), rel=1e-12)
    check_certificate(curves, result)


@pytest.mark.parametrize("K", [1e154, 1e160, 1e300])
def test_kurtoses_whose_squares_overflow_are_solved(K):
    # One feature: its capacity is the budget (its marginal is positive everywhere).
    curves = capopt.quadratic([1.0], K)
    result = capopt.solve(curves, 0.5)
    assert result.capacities.tolist() == [0.5]
    assert result.loss == pytest.approx(float(brute_force.quadratic_loss([1.0], [K], [0.5])), rel=1e-14)
    check_certificate(curves, result)


def test_losses_below_the_normal_range_do_not_fail_the_certificate_check():
    # Losses ~1e-322 (subnormal): the KKT conditions judge, in scaled units.
    curves = capopt.quadratic([1.408001970574007e-162, 1.4080019705740072e-162], 40.0)
    result = capopt.solve(curves, 0.0)
    assert result.capacities.tolist() == [0.0, 0.0]
    check_certificate(curves, result)


@given(hnp.arrays(np.float64, st.integers(1, 8), elements=st.sampled_from([0.0, 1.0, 1e-20, 0.25, 0.5])),
       st.floats(0.0, 8.0))
def test_onto_budget_moves_fractional_capacities_by_at_most_the_excess(C, d):
    fitted = onto_budget(C, d)
    used = math.fsum(C)
    if used - d <= FIT_RTOL * d:
        assert fitted is C
        return
    assert math.fsum(fitted) <= d * (1 + 1e-15) + 1e-300
    assert np.all((fitted >= 0) & (fitted <= 1)) and np.all(fitted <= C)
    whole = (C == 0) | (C == 1)
    if math.fsum(C[whole]) <= d and np.any(~whole & (C > 0)):
        assert np.array_equal(fitted[whole], C[whole])
        assert np.all(C - fitted <= (used - d) * (1 + 1e-12))


# --- found by an adversarial run against the brute force --------------------------------------


@pytest.mark.parametrize("v, K, d", [
    ([1.0, 1e-150], [1.1, 1e200], 2.0),
    ([1e-200, 1.0], [1e299, 2.5], 1.0),
    ([1e-100, 1.0], [1e199, 2.5], 1.0),
    ([1e-308, 1e-123], [5e299, 2.5], 1.0),
])
def test_a_curve_whose_marginal_spans_more_than_one_unit_is_not_certified(v, K, d):
    # One curve's marginal runs from 2 v^2 to (K - 1)^2 v^2 / 2: past 2^800, the scaled
    # units underflow its smallest terms (and here every other curve's too), so no
    # certificate can prove the allocation. The brute force's optimum differs from the
    # answer in each case (e.g. C = [1, 1], loss 0, for the first), so it must not read
    # OPTIMAL: solving such curves exactly is not done yet.
    result = capopt.solve(capopt.quadratic(v, K), d, throw=False)
    optimum = brute_force.quadratic_optimum(v, K, d)
    assert brute_force.quadratic_loss(v, K, result.capacities) > optimum.loss
    assert result.status is Status.UNPROVEN


def test_a_loss_that_overflows_is_reported_as_inf_not_zero():
    # Exact loss 1.0e417 (by hand: (K - 1) v^2 of the first feature at C = 0).
    result = capopt.solve(capopt.quadratic([1e16, 1e213], [1e300, 1.000000001]), 0.0, throw=False)
    assert result.loss == math.inf


def test_a_table_with_a_huge_constant_curve_keeps_the_others_gains():
    # Curve 1 is flat at 1e17; curve 2 costs 1 at C = 0.5 and gains only at C = 1, out of
    # reach of d = 0.5: the optimum leaves both at 0 (curve 2's loss 0).
    table = capopt.from_table([0, .5, 1], [[1e17] * 3, [0.0, 1.0, -0.5]])
    result = capopt.solve(table, 0.5)
    assert result.capacities.tolist() == [0.0, 0.0]
    assert result.loss == 1e17


def test_a_flat_quadratic_curve_with_a_huge_constant_keeps_the_others_gains():
    # v = -1e16 makes feature 2 flat with the constant 4e32; feature 1 (K = 2, concave)
    # takes the whole budget, 1e-8 (vertex solution, theory §2).
    result = capopt.solve(capopt.quadratic([1.0, -1e16], [2.0, 5.0]), 1e-8, method="global")
    assert result.capacities.tolist() == [1e-8, 0.0]


def test_the_loss_of_tables_with_cancelling_offsets_is_summed_exactly():
    # 1 + 1e300 - 1e300 = 1 (the allocation C = 0 is forced by d = 0).
    table = capopt.from_table([0, 1], [[1.0, 0.0], [1e300, 1e300], [-1e300, -1e300]])
    assert capopt.solve(table, 0.0).loss == 1.0


def test_a_budget_past_float64_is_a_clear_error():
    with pytest.raises(ValueError, match="budget must be finite"):
        capopt.solve(capopt.quadratic([1.0], 5.0), 10**400)
