"""compare(): a trained embedding against the optimal allocation."""

import json

import numpy as np
import pytest

import capopt
from capopt.cli import main
from capopt.comparison import RegimeDifference, against_optimum
from capopt.models import linear_autoencoder_model_loss_and_gradient, quadratic_model_loss_and_gradient
from capopt.regimes import Regime
from capopt.training import fit_exact

#: The issue's bar for an optimum trained by exact-loss L-BFGS: capacities agree to ~1e-8
#: at gtol 1e-11 (tests/test_crosscheck.py), so 1e-6 leaves two orders of margin.
TRAINED_CAPACITY_TOL = 1e-6

#: Trained and optimal losses agree to rounding of the loss sums plus the L-BFGS stopping
#: error (~gtol^2 / curvature), as in tests/test_crosscheck.py.
LOSS_RTOL = 1e-9

MIXED = capopt.quadratic([1.0, 0.9, 0.7, 0.6, 0.4, 0.2], [2.0, 9.0, 6.0, 2.5, 8.0, 9.0])
SPARSE = capopt.quadratic(np.linspace(1.0, 0.2, 8), 8.0)
LINEAR = capopt.linear_autoencoder([0.3, 2.0, 0.6, 1.4, 1.0])


def trained_optimum(curves, d, seed=0):
    """Multi-start L-BFGS on the model's exact loss (capopt.training.fit_exact)."""
    if isinstance(curves, capopt.QuadraticCurves):
        def loss_and_grad(W):
            return quadratic_model_loss_and_gradient(W, curves.importance, curves.kurtosis)
    else:
        def loss_and_grad(W):
            return linear_autoencoder_model_loss_and_gradient(W, curves.importance)
    return fit_exact(loss_and_grad, (d, curves.n_features), starts=4, seed=seed, init_scale=0.5,
                     gtol=1e-11).weights


@pytest.fixture(scope="module")
def sparse_optimum():
    return trained_optimum(SPARSE, 3)


# ---------------------------------------------------------------- trained optima agree
@pytest.mark.parametrize("curves, d", [
    pytest.param(SPARSE, 3, id="sparse: one polysemantic block"),
    pytest.param(MIXED, 3, id="mixed kurtosis (global method)"),
    pytest.param(LINEAR, 2, id="linear autoencoder"),
])
def test_an_optimum_trained_by_fit_exact_matches_the_solver(curves, d):
    W = trained_optimum(curves, d)
    comparison = capopt.compare(W, curves, d)
    assert comparison.certified and comparison.status is capopt.Status.OPTIMAL
    assert comparison.max_abs_error <= TRAINED_CAPACITY_TOL
    assert comparison.regimes_agree and comparison.differing == ()
    assert comparison.regimes == comparison.optimal.regimes
    scale = max(1.0, abs(comparison.optimal.loss))
    assert -LOSS_RTOL * scale <= comparison.loss_gap <= LOSS_RTOL * scale
    assert comparison.blocks_agree
    assert comparison.max_eigenvalue_error <= 1e-6


def test_the_optimal_quadratic_model_compares_exactly():
    """The solver's own realisation: capacities to rounding, loss gap 0, same blocks."""
    optimal = capopt.solve(SPARSE, 3)
    model = capopt.optimal_quadratic_model(SPARSE, optimal, seed=1)
    comparison = capopt.compare(model.W, SPARSE, 3)
    assert comparison.max_abs_error <= 1e-12
    assert comparison.loss == pytest.approx(optimal.loss, rel=1e-12)
    assert comparison.blocks_agree and comparison.max_eigenvalue_error <= 1e-12


# ---------------------------------------------------------------- perturbed weights
def test_a_zeroed_feature_is_detected_and_named(sparse_optimum):
    W = sparse_optimum.copy()
    W[:, 2] = 0.0
    comparison = capopt.compare(W, SPARSE, 3)
    assert comparison.max_abs_error == pytest.approx(comparison.optimal.capacities[2], rel=1e-6)
    assert not comparison.regimes_agree
    assert comparison.differing == (RegimeDifference(2, Regime.IGNORED, Regime.POLYSEMANTIC),)
    assert comparison.loss_gap > 1e-3
    assert not comparison.blocks_agree and comparison.max_eigenvalue_error is None
    rows = comparison.table().splitlines()
    assert rows[3].split()[0] == "2" and rows[3].endswith("*")
    assert sum(row.endswith("*") for row in rows) == 1
    assert "regimes differ for 1 feature (marked *)" in comparison.table()


def test_a_shrunk_feature_changes_capacities_and_loss(sparse_optimum):
    W = sparse_optimum.copy()
    W[:, 0] *= 0.5
    comparison = capopt.compare(W, SPARSE, 3)
    assert comparison.max_abs_error > 0.1
    assert comparison.regimes_agree          # still polysemantic, with a different share
    assert comparison.loss_gap > 1e-2


def test_an_orthogonal_feature_shrunk_keeps_its_capacity_but_not_its_loss():
    """Capacity is invariant under scaling one orthogonal column: the loss sees what it cannot."""
    curves = capopt.quadratic([1.0, 0.8], 2.0)           # K < 3: both monosemantic in d = 2
    comparison = capopt.compare(np.diag([1.0, np.sqrt(0.8) / 2]), curves, 2)
    assert comparison.max_abs_error == 0.0 and comparison.regimes_agree
    assert comparison.loss_gap == pytest.approx(1.0 * (0.8 - 0.2) ** 2)   # (K - 1)(v - a)^2


# ---------------------------------------------------------------- the loss at W
@pytest.mark.parametrize("feature_axis", [-1, -2])
def test_the_loss_at_w_is_the_models_exact_loss(feature_axis):
    rng = np.random.default_rng(3)
    W = rng.normal(size=(3, 6))
    given = W if feature_axis == -1 else W.T
    quadratic = capopt.compare(given, MIXED, 3, feature_axis=feature_axis)
    assert quadratic.loss == float(capopt.quadratic_model_loss(W, MIXED.importance, MIXED.kurtosis))
    assert quadratic.loss_gap == quadratic.loss - quadratic.optimal.loss > 0
    linear = capopt.compare(given[..., :5] if feature_axis == -1 else given[:5], LINEAR, 3,
                            feature_axis=feature_axis)
    assert linear.loss == float(capopt.linear_autoencoder_model_loss(W[:, :5], LINEAR.importance))


def test_a_family_without_an_explicit_model_has_no_loss_and_no_block_prediction():
    grid = np.linspace(0.0, 1.0, 11)
    curves = capopt.from_table(grid, np.stack([(1 - grid) ** 2, 0.5 * (1 - grid) ** 2]))
    comparison = capopt.compare(np.eye(1, 2), curves, 1)
    assert comparison.loss is None and comparison.loss_gap is None
    assert comparison.predicted_blocks is None and comparison.blocks_agree is None
    assert "has no explicit model" in comparison.predicted_blocks_reason
    assert "TabulatedCurves has no explicit model" in comparison.table()


def test_an_optimum_without_a_block_embedding_says_why():
    """A fractional budget: the optimum's capacities sum to 1.5, no whole block holds them."""
    comparison = capopt.compare(np.eye(2, 3), capopt.quadratic(SPARSE.importance[:3], 8.0), 1.5)
    assert comparison.predicted_blocks is None
    assert comparison.predicted_blocks_reason.startswith("the optimum has no block-semi-orthogonal")


# ---------------------------------------------------------------- inputs
def test_batched_weights_give_one_comparison_per_instance():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(2, 3, 3, 6))
    comparisons = capopt.compare(W, MIXED, 3)
    assert len(comparisons) == 2 and all(len(row) == 3 for row in comparisons)
    for i in range(2):
        for j in range(3):
            single = capopt.compare(W[i, j], MIXED, 3)
            np.testing.assert_allclose(comparisons[i][j].capacities, single.capacities, rtol=1e-12)
            assert comparisons[i][j].loss == pytest.approx(single.loss, rel=1e-12)
            assert comparisons[i][j].optimal is comparisons[0][0].optimal
    flat = capopt.compare(W[0], MIXED, 3)
    assert isinstance(flat, list) and len(flat) == 3


def test_an_object_with_array_interface_is_compared_like_its_array(sparse_optimum):
    class Tensor:
        """A minimal stand-in for a CPU torch or JAX array: only __array__."""

        def __init__(self, data):
            self.data = data

        def __array__(self, dtype=None, copy=None):
            return self.data if dtype is None else self.data.astype(dtype)

    storage = sparse_optimum.copy()
    comparison = capopt.compare(Tensor(storage), SPARSE, 3)
    reference = capopt.compare(sparse_optimum, SPARSE, 3)
    np.testing.assert_array_equal(comparison.capacities, reference.capacities)
    loss = comparison.loss
    storage[:] = 0.0                          # the comparison holds its own copy
    assert comparison.blocks.dims_used == 3 and comparison.loss == loss
    assert capopt.compare(Tensor(sparse_optimum.astype(np.float32)), SPARSE, 3).max_abs_error < 1e-6


def test_w_is_never_modified_and_may_be_read_only(sparse_optimum):
    W = sparse_optimum.copy()
    W.setflags(write=False)
    before = W.copy()
    comparison = capopt.compare(W, SPARSE, 3)
    comparison.table(), comparison.to_dict()
    np.testing.assert_array_equal(W, before)
    assert not comparison.weights.flags.writeable and not comparison.capacities.flags.writeable
    assert not np.shares_memory(comparison.weights, W)


@pytest.mark.parametrize("W, budget, kwargs, error, match", [
    (np.ones((3, 5)), 3, {}, ValueError,
     r"W has 5 features on feature_axis=-1 \(shape \(3, 5\)\), but the curves have "
     r"curves.n_features = 8; they must match"),
    (np.ones((8, 3)), 3, {}, ValueError, "its other axis has 8: pass feature_axis=-2"),
    (np.ones((3, 8)), 3, {"feature_axis": -2}, ValueError, "pass feature_axis=-1"),
    (np.ones(8), 3, {}, ValueError, "W must have at least 2 axes"),
    (np.full((3, 8), np.nan), 3, {}, ValueError, "W must be finite"),
    (np.ones((3, 8)), -0.5, {}, ValueError, "budget must be finite and >= 0, got -0.5"),
    (np.ones((3, 8)), np.inf, {}, ValueError, "budget must be finite"),
    (np.ones((3, 8)), "3", {}, TypeError, "budget must be a real number"),
    (np.ones((3, 8)), 3, {"regime_atol": -1.0}, ValueError, "regime_atol must be finite and >= 0"),
    (np.ones((2, 3, 8)), 3, {"feature_axis": 0}, ValueError, "feature_axis must name one of the last"),
    (np.array([["a"] * 8] * 3), 3, {}, TypeError, "W must be numeric"),
])
def test_bad_inputs_are_rejected_with_clear_errors(W, budget, kwargs, error, match):
    with pytest.raises(error, match=match):
        capopt.compare(W, SPARSE, budget, **kwargs)


def test_curves_must_be_loss_curves():
    with pytest.raises(TypeError, match="curves must be a LossCurves family"):
        capopt.compare(np.ones((1, 2)), [1.0, 2.0], 1)


# ---------------------------------------------------------------- uncertified optima
def test_an_uncertified_optimum_is_compared_with_its_status_visible():
    curves = capopt.from_functions([lambda C: (1 - C) ** 2, lambda C: 0.5 * (1 - C) ** 2])
    comparison = capopt.compare(np.eye(1, 2), curves, 1)
    assert comparison.status is capopt.Status.UNPROVEN and not comparison.certified
    assert "optimal_status=UNPROVEN" in repr(comparison)
    assert "NOT CERTIFIED: unproven" in comparison.table()
    assert comparison.to_dict()["certified"] is False


def test_no_allocation_at_all_raises(monkeypatch):
    failed = capopt.solve(SPARSE, 3)
    failed = type(failed)(**{**failed.__dict__, "status": capopt.Status.FAILED,
                             "reason": "a stand-in failure"})
    monkeypatch.setattr("capopt.comparison.solve", lambda *a, **k: failed)
    with pytest.raises(capopt.AllocationError, match="no allocation to compare W with: a stand-in"):
        capopt.compare(np.ones((3, 8)), SPARSE, 3)


def test_against_optimum_reuses_a_solved_allocation(sparse_optimum):
    optimal = capopt.solve(SPARSE, 3)
    comparison = against_optimum(sparse_optimum, optimal)
    assert comparison.optimal is optimal and comparison.max_abs_error <= TRAINED_CAPACITY_TOL


# ---------------------------------------------------------------- outputs
def test_outputs_repr_dict_frames(sparse_optimum):
    W = sparse_optimum.copy()
    W[:, 2] = 0.0
    comparison = capopt.compare(W, SPARSE, 3)
    assert repr(comparison).startswith("Comparison(n_features=8, max_abs_error=")
    record = json.loads(json.dumps(comparison.to_dict()))
    assert record["differing"] == [{"feature": 2, "measured": "ignored", "optimal": "polysemantic"}]
    assert record["optimal"]["status"] == "OPTIMAL" and len(record["capacities"]) == 8
    frame = comparison.to_dataframe()
    assert list(frame.columns) == ["capacity", "optimal_capacity", "error", "regime",
                                   "optimal_regime", "differs"]
    assert frame.index.name == "feature" and frame["differs"].tolist() == [i == 2 for i in range(8)]
    dataset = comparison.to_xarray()
    assert dataset["differs"].dims == ("feature",) and bool(dataset["differs"][2])


def test_import_capopt_stays_light():
    import subprocess
    import sys

    code = ("import sys, capopt; capopt.compare; "
            "print([m for m in ('pandas', 'xarray', 'numba') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_memory_mapped_file_is_compared_without_a_copy(tmp_path, sparse_optimum):
    path = tmp_path / "W.npy"
    np.save(path, sparse_optimum.astype(np.float32))
    W = capopt.load_weights(path)
    comparison = capopt.compare(W, SPARSE, 3)
    assert np.shares_memory(comparison.weights, W) and comparison.weights.dtype == np.float32
    in_memory = capopt.compare(np.asarray(W, dtype=np.float64), SPARSE, 3)
    np.testing.assert_array_equal(comparison.capacities, in_memory.capacities)


def test_the_cli_compares_a_file_with_the_optimum(tmp_path, capsys):
    # The optimal model of the stated problem, stored W[feature, hidden] in float32: the
    # measured capacities are the optimum's to float32 rounding (theory §4, realisation).
    curves = capopt.quadratic(0.8 ** np.arange(8), 7.0)
    optimum = capopt.solve(curves, 3)
    W = capopt.optimal_quadratic_model(curves, optimum.capacities).W
    np.save(tmp_path / "W.npy", W.T.astype(np.float32))
    problem = ["--importance-decay", "0.8", "--n-features", "8", "--kurtosis", "7", "--budget", "3"]
    assert main(["compare", str(tmp_path / "W.npy"), *problem, "--feature-axis", "-2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["capacities"], optimum.capacities, atol=1e-6)
    assert main(["compare", str(tmp_path / "W.npy"), *problem]) == 2
    err = capsys.readouterr().err
    assert "--feature-axis -2" in err and "pass feature_axis=-2" in err
