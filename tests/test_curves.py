"""Loss-curve families: values, shapes, vectorisation and argument checks (theory §3)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import capopt
from capopt.testing import importances, kurtoses


@given(importances(5), kurtoses(5, returns="mixed"))
def test_quadratic_curve_runs_from_unrepresented_loss_to_zero(v, K):
    curves = capopt.quadratic(v, K)
    np.testing.assert_allclose(curves.loss(np.zeros(5)), (K - 1) * v**2, rtol=1e-14)
    np.testing.assert_allclose(curves.loss(np.ones(5)), 0.0, atol=1e-14)


@pytest.mark.parametrize("K, shape", [(1.8, "concave"), (3.0, "linear"), (7.0, "convex"), (1.0, "linear")])
def test_quadratic_shape_follows_kurtosis(K, shape):
    curves = capopt.quadratic([1.0, 0.5], K)
    assert curves.shape.value == shape
    C = np.linspace(0, 1, 41)[:, None]
    second = np.diff(curves.loss(np.broadcast_to(C, (41, 2))), 2, axis=0)
    sign = {"concave": -1, "linear": 0, "convex": 1}[shape]
    if sign:
        assert np.all(np.sign(second) == sign)
    else:
        np.testing.assert_allclose(second, 0, atol=1e-12)


def test_family_shape_is_mixed_when_kurtosis_straddles_three():
    assert capopt.quadratic([1, 1, 1], [2.0, 3.0, 9.0]).shape.value == "mixed"
    assert capopt.quadratic([1, 1], [3.0, 9.0]).shape.value == "convex"


def test_negative_importance_gives_a_flat_curve_at_the_unrepresented_loss():
    # yhat's quadratic form is PSD, so a_i >= 0 binds at 0: no capacity helps (theory §3).
    curves = capopt.quadratic([-2.0, 1.0], 5.0)
    C = np.linspace(0, 1, 7)
    np.testing.assert_allclose(curves.loss(np.stack([C, C], -1))[:, 0], 4 * 4.0)
    np.testing.assert_array_equal(curves.marginal(np.stack([C, C], -1))[:, 0], 0.0)
    assert curves.shapes[0].value == "linear"
    result = capopt.solve(curves, 1.0)
    assert result.capacities[0] == 0 and result.regimes[0].value == "ignored"


def test_methods_vectorise_over_leading_axes():
    curves = capopt.quadratic([1.0, 2.0, 3.0], [2.0, 5.0, 9.0])
    C = np.random.default_rng(0).uniform(size=(4, 5, 3))
    for method in (curves.loss, curves.marginal, curves.curvature):
        out = method(C)
        assert out.shape == C.shape
        np.testing.assert_array_equal(out[2, 3], method(C[2, 3]))


def test_capacity_at_inverts_the_marginal_inside_the_unit_interval():
    curves = capopt.quadratic([1.0, 2.0, 0.5], 9.0)
    C = np.array([0.2, 0.5, 0.9])
    for i in range(3):
        lam = curves.marginal(C)[i]
        assert curves.capacity_at(lam)[i] == pytest.approx(C[i], rel=1e-12)


def test_linear_autoencoder_curve_is_pca_like():
    curves = capopt.linear_autoencoder([3.0, 1.0, 0.0])
    np.testing.assert_array_equal(curves.loss([0.5, 0.5, 0.5]), [1.5, 0.5, 0.0])
    np.testing.assert_array_equal(curves.marginal([0.1, 0.9, 0.3]), [3.0, 1.0, 0.0])
    assert curves.shape.value == "linear"


@pytest.mark.parametrize(
    "density, base, expected",
    [(1.0, "gaussian", 3.0), (0.5, "rademacher", 2.0), (1.0, "uniform", 1.8), (0.1, "uniform", 18.0)],
)
def test_gated_kurtosis_is_base_fourth_moment_over_density(density, base, expected):
    assert capopt.gated_kurtosis(density, base) == pytest.approx(expected, rel=1e-15)


def test_gated_kurtosis_by_monte_carlo():
    # Independent route: sample x = B z / sqrt(p) and estimate E[x^4]; the standard error
    # of the sample mean of x^4 is std(x^4)/sqrt(n); 6 standard errors bound the check.
    rng = np.random.default_rng(7)
    n, p = 2_000_000, 0.25
    z = {"gaussian": rng.normal(size=n), "rademacher": rng.choice([-1.0, 1.0], n),
         "uniform": rng.uniform(-np.sqrt(3), np.sqrt(3), n)}
    gate = rng.uniform(size=n) < p
    for base, values in z.items():
        x4 = (gate * values / np.sqrt(p)) ** 4
        se = x4.std() / np.sqrt(n)
        assert abs(x4.mean() - capopt.gated_kurtosis(p, base)) < 6 * se


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: capopt.quadratic([], 5.0), ValueError, "importance must not be empty"),
        (lambda: capopt.quadratic([[1.0]], 5.0), ValueError, "importance must be a 1-d array"),
        (lambda: capopt.quadratic([1.0, np.nan], 5.0), ValueError, "importance must be finite"),
        (lambda: capopt.quadratic([1.0, 2.0], 0.5), ValueError, "kurtosis must be >= 1"),
        (lambda: capopt.quadratic([1.0, 2.0], [5.0, 5.0, 5.0]), ValueError, "one entry per feature"),
        (lambda: capopt.quadratic([1.0, 2.0], np.inf), ValueError, "kurtosis must be finite"),
        (lambda: capopt.quadratic(["a"], 5.0), TypeError, "importance must be numeric"),
        (lambda: capopt.linear_autoencoder([1.0, -1.0]), ValueError, "importance must be >= 0"),
        (lambda: capopt.gated_kurtosis(0.0), ValueError, r"density must lie in \(0, 1\]"),
        (lambda: capopt.gated_kurtosis(0.5, "cauchy"), ValueError, "base must be one of"),
        (lambda: capopt.quadratic([1.0, 2.0], 5.0).loss([0.5, 0.5, 0.5]), ValueError, "C must have 2 entries"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_families_do_not_keep_or_mutate_the_callers_arrays():
    v, K = np.array([1.0, 2.0]), np.array([4.0, 5.0])
    curves = capopt.quadratic(v, K)
    v[0], K[0] = 100.0, 100.0
    assert curves.importance[0] == 1.0 and curves.kurtosis[0] == 4.0
    with pytest.raises(ValueError):
        curves.importance[0] = 3.0  # read-only
