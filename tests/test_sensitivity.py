"""Sensitivities (issue 6) against central finite differences of certified solves.

Reference route: :func:`capopt.solve` re-run at perturbed importances, kurtoses and budgets,
differenced centrally; it shares no code with the implicit differentiation under test.
"""

import numpy as np
import pytest
from hypothesis import assume, example, given, strategies as st

from capopt import _formulas as F
from capopt.curves import quadratic
from capopt.solvers import solve
from capopt.sweeps import sensitivity
from capopt.sweeps.sensitivity import loss_partials, marginal_partials

#: Relative step of the central differences: truncation error ~STEP^2, rounding ~eps/STEP.
STEP = 1e-6
#: Agreement of an analytic derivative with its central difference, relative to
#: max(1, |derivative|): rounding of the solves (~1e-15 of values up to ~1e3) over STEP.
FD = 1e-6
#: A problem is differentiated only this far from a change of active set: capacities at
#: least this far inside (0, 1) or marginals this far (relatively) from lam at the bounds,
#: so that no perturbation of size STEP crosses a kink.
MARGIN = 1e-3


def optimum(v, K, d):
    result = solve(quadratic(v, K), d)
    return np.concatenate([result.capacities, [result.multiplier, result.loss]])


def central_difference(f, x, index=None):
    """d f / d x (or d x[index]) by central differences with a relative step."""
    x = np.array(x, dtype=np.float64)
    h = STEP * max(1.0, abs(float(x if index is None else x[index])))
    up, down = x.copy(), x.copy()
    if index is None:
        up, down = x + h, x - h
    else:
        up[index] += h
        down[index] -= h
    return (f(up) - f(down)) / (2 * h)


def assert_close(analytic, numeric, what):
    analytic, numeric = np.asarray(analytic), np.asarray(numeric)
    scale = np.maximum(1.0, np.abs(analytic))
    assert np.all(np.abs(analytic - numeric) <= FD * scale), f"{what}: {analytic} vs {numeric}"


def away_from_kinks(curves, d):
    result = solve(curves, d)
    C, lam = result.capacities, result.multiplier
    m = curves.marginal(C)
    inside = (C > MARGIN) & (C < 1 - MARGIN)
    at_bound = (C <= 0) | (C >= 1)
    clear = np.abs(m - lam) > MARGIN * max(1.0, lam)
    # The budget too: binding with lam clearly > 0, or slack by a margin (lam = 0).
    binding = lam > MARGIN and abs(C.sum() - d) < 1e-9
    slack = lam == 0 and C.sum() < d - MARGIN
    return bool(np.all(inside | (at_bound & clear)) and (binding or slack))


def check_all_derivatives(v, K, d):
    s = sensitivity(quadratic(v, K), d)
    assert s.differentiable
    for j in range(v.size):
        numeric = central_difference(lambda x: optimum(x, K, d), v, j)
        analytic = np.r_[s.capacity_d_importance[:, j], s.multiplier_d_importance[j], s.loss_d_importance[j]]
        assert_close(analytic, numeric, f"d/dv_{j}")
        numeric = central_difference(lambda x: optimum(v, x, d), K, j)
        analytic = np.r_[s.capacity_d_kurtosis[:, j], s.multiplier_d_kurtosis[j], s.loss_d_kurtosis[j]]
        assert_close(analytic, numeric, f"d/dK_{j}")
    numeric = central_difference(lambda x: optimum(v, K, float(x)), d)
    analytic = np.r_[s.capacity_d_budget, s.multiplier_d_budget, s.loss_d_budget]
    assert_close(analytic, numeric, "d/dd")


@st.composite
def convex_problems(draw, max_features=6):
    n = draw(st.integers(1, max_features))
    v = np.array(draw(st.lists(st.floats(0.2, 5.0), min_size=n, max_size=n)))
    K = np.array(draw(st.lists(st.floats(3.5, 30.0), min_size=n, max_size=n)))
    d = draw(st.floats(0.05, n + 0.5))
    return v, K, d


@given(convex_problems())
@example((np.array([2.0, 1.0]), np.array([7.0, 7.0]), 1.0))  # theory §3 worked case
@example((np.array([2.0, 1.0]), np.array([7.0, 7.0]), 2.5))  # slack budget: lam = 0
def test_derivatives_match_finite_differences(problem):
    v, K, d = problem
    assume(away_from_kinks(quadratic(v, K), d))
    check_all_derivatives(v, K, d)


@given(convex_problems())
def test_multiplier_is_minus_derivative_of_loss_in_budget(problem):
    v, K, d = problem
    assume(away_from_kinks(quadratic(v, K), d))
    s = sensitivity(quadratic(v, K), d)
    loss = central_difference(lambda x: optimum(v, K, float(x))[-1], d)
    assert s.loss_d_budget == -solve(quadratic(v, K), d).multiplier
    assert_close(s.loss_d_budget, loss, "dL/dd")


def test_shared_kurtosis_derivative_is_the_row_sum():
    v, K, d = np.array([3.0, 2.0, 1.5, 1.0]), 9.0, 2.2
    s = sensitivity(quadratic(v, K), d)
    numeric = central_difference(lambda k: optimum(v, float(k), d), K)
    analytic = np.r_[s.capacity_d_kurtosis.sum(axis=1), s.multiplier_d_kurtosis.sum(),
                     s.loss_d_kurtosis.sum()]
    assert_close(analytic, numeric, "d/dK shared")


def test_shared_kurtosis_budget_goes_in_proportion_to_importance():
    # With one K > 3 every polysemantic C_i is affine in the level s with slope
    # (K - 1) v_i / (K - 3) (theory §3), so one more dimension splits as v_i / sum_F v_j.
    v, d = np.array([2.0, 1.5, 1.0, 0.2]), 1.7
    s = sensitivity(quadratic(v, 6.0), d)
    F_ = list(s.active)
    assert F_ == [0, 1, 2]
    np.testing.assert_allclose(s.capacity_d_budget[F_], v[F_] / v[F_].sum(), rtol=1e-12)
    assert s.capacity_d_budget[3] == 0


def test_concave_fraction_takes_the_budget():
    # Increasing returns (K < 3): the vertex keeps its whole features and the fractional
    # one absorbs d, so dC_j/dd = 1 and dlam/dd = dm_j/dC = -l_j''(C_j).
    v, K, d = np.array([3.0, 1.0, 2.0]), 1.8, 1.5
    curves = quadratic(v, K)
    s = sensitivity(curves, d)
    assert s.active == (2,)
    np.testing.assert_array_equal(s.capacity_d_budget, [0.0, 0.0, 1.0])
    assert s.multiplier_d_budget == pytest.approx(-curves.curvature(np.full(3, 0.5))[2], rel=1e-12)
    check_all_derivatives(v, np.full(3, K), d)


def test_kink_at_whole_budget_is_reported():
    # K = 3.5 < 1 + 2a/b = 5: at d = 1 the first feature owns the neuron and lam is the
    # second's m(0), where it is about to start: lam jumps with d, so no budget derivative.
    s = sensitivity(quadratic([2.0, 1.0], 3.5), 1.0)
    assert s.kinks == (1,) and not s.differentiable and s.active == ()
    assert np.all(np.isnan(s.capacity_d_budget)) and np.isnan(s.multiplier_d_budget)
    assert s.multiplier_d_importance[1] == pytest.approx(
        central_difference(lambda x: F.quadratic_ignore_multiplier(x, 3.5), 1.0), rel=FD)


def test_budget_that_just_fits_every_feature_is_a_kink():
    # Found by hypothesis: d = N, every feature at 1 with lam = 0 and a tight budget; less
    # budget makes lam > 0, more leaves it 0.
    s = sensitivity(quadratic([1.0], 4.0), 1.0)
    assert not s.differentiable and s.kinks == ()


# K > 1: at K = 1, C = 1 the formulas are 0/0 (the curve is flat there by convention).
@given(st.floats(0.0, 1.0), st.floats(0.1, 5.0), st.floats(1.05, 40.0))
def test_partials_match_finite_differences_of_the_formulas(C, v, K):
    dm_dv, dm_dK = marginal_partials(C, v, K)
    dl_dv, dl_dK = loss_partials(C, v, K)
    assert_close(dm_dv, central_difference(lambda x: F.quadratic_marginal(C, x, K), v), "dm/dv")
    assert_close(dm_dK, central_difference(lambda x: F.quadratic_marginal(C, v, x), K), "dm/dK")
    assert_close(dl_dv, central_difference(lambda x: F.quadratic_loss(C, x, K), v), "dl/dv")
    assert_close(dl_dK, central_difference(lambda x: F.quadratic_loss(C, v, x), K), "dl/dK")


def test_rejects_other_families():
    from capopt.curves import linear_autoencoder

    with pytest.raises(TypeError, match="QuadraticCurves"):
        sensitivity(linear_autoencoder([1.0, 2.0]), 1.0)
