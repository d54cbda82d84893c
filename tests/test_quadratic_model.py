"""The quadratic model's exact loss L(W) against an independent Monte-Carlo of the model."""

import numpy as np
import pytest

import capopt


def sample_inputs(rng, n_samples, densities, bases):
    """Independent unit-variance inputs x_i = B_i z_i / sqrt(p_i) with known kurtosis."""
    columns = []
    for p, base in zip(densities, bases):
        z = {"gaussian": lambda: rng.normal(size=n_samples),
             "rademacher": lambda: rng.choice([-1.0, 1.0], n_samples),
             "uniform": lambda: rng.uniform(-np.sqrt(3), np.sqrt(3), n_samples)}[base]()
        columns.append((rng.uniform(size=n_samples) < p) * z / np.sqrt(p))
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_loss_matches_monte_carlo_of_the_model(seed):
    """E[(y - yhat)^2] sampled from the model itself equals L(W) of theory §3.

    Tolerance: the sample mean of e^2 = (y - yhat)^2 has standard error std(e^2)/sqrt(n)
    (CLT; e^2 has finite variance since the inputs have finite eighth moments). A 5-sigma
    band fails by chance with probability ~6e-7; the seeds are fixed, so the test is
    deterministic, and a wrong formula (e.g. a missing factor 2 on the cross terms, or
    K instead of K - 1) moves the mean by tens of standard errors for these W.
    """
    rng = np.random.default_rng(seed)
    d, n = 2, 4
    densities = [1.0, 1.0, 0.3, 0.1]
    bases = ["uniform", "rademacher", "gaussian", "uniform"]
    K = np.array([capopt.gated_kurtosis(p, b) for p, b in zip(densities, bases)])
    v = rng.uniform(0.2, 1.0, n)
    W = rng.normal(scale=0.5, size=(d, n))
    b = capopt.quadratic_model_bias(W, v)

    x = sample_inputs(rng, 1_000_000, densities, bases)
    y = (x**2) @ v
    yhat = np.sum((x @ W.T) ** 2, axis=1) + b
    e2 = (y - yhat) ** 2
    se = e2.std() / np.sqrt(e2.size)
    assert abs(e2.mean() - capopt.quadratic_model_loss(W, v, K)) < 5 * se


def test_bias_away_from_optimum_adds_its_squared_offset():
    rng = np.random.default_rng(4)
    W, v, K = rng.normal(size=(2, 3)), rng.uniform(size=3), 6.0
    b_star = capopt.quadratic_model_bias(W, v)
    base = capopt.quadratic_model_loss(W, v, K)
    assert capopt.quadratic_model_loss(W, v, K, bias=b_star) == pytest.approx(base, rel=1e-14)
    assert capopt.quadratic_model_loss(W, v, K, bias=b_star + 0.3) == pytest.approx(base + 0.09, rel=1e-12)


def test_loss_separates_into_the_curves_at_optimal_norms():
    # Three features in one neuron with C = (1/2, 1/3, 1/6) is block-semi-orthogonal in
    # d = 1 (C_i = a_i / sum a), so a_i = a*(C_i) must sum... only for the optimum; here
    # test the identity L(W) = sum_i l_i(a_i, C_i) for any norms in one dimension.
    v, K = np.array([1.0, 0.7, 0.4]), np.array([5.0, 8.0, 4.0])
    a = np.array([0.6, 0.3, 0.2])
    W = np.sqrt(a)[None, :]
    C = capopt.capacity(W)
    from capopt import _formulas as F
    np.testing.assert_allclose(
        capopt.quadratic_model_loss(W, v, K), np.sum(F.quadratic_feature_loss(a, C, v, K)), rtol=1e-13
    )


def test_linear_autoencoder_model_loss_of_an_orthonormal_embedding_drops_the_missing_features():
    I = np.array([3.0, 2.0, 1.0])
    W = np.eye(2, 3)  # keeps features 0 and 1 exactly
    assert capopt.linear_autoencoder_model_loss(W, I) == pytest.approx(1.0)
    np.testing.assert_allclose(capopt.linear_autoencoder(I).loss(capopt.capacity(W)).sum(), 1.0)
