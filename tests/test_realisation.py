"""Realising an allocation as an embedding, and the optimal quadratic model (theory §1-3)."""

import numpy as np
import pytest
from hypothesis import example, given, strategies as st
from scipy.optimize import brentq

import capopt
from capopt.geometry import blocks, features_per_neuron
from capopt.realisation import REALIZE_METHODS, QuadraticModel, optimal_quadratic_model, realize
from capopt.realisation.frames import schur_horn_frame, tetris_frame
from capopt.solvers import solve
from capopt.testing import problems, realisable_allocations

#: Round trip capacity(realize(C)) == C: the constructions are exact up to rounding in
#: O(N) plane rotations and one d x d rotation; observed errors are ~1e-13.
ROUND_TRIP_ATOL = 1e-10

#: Tolerance of blocks() on exact constructions: rounding level, far below its default.
EXACT_BLOCK_TOL = 1e-9

#: Loss of the realised optimal model against the solver's: both are sums of N terms
#: evaluated to rounding (the solver's from the curves, the model's from W).
LOSS_RTOL = 1e-10

#: Gradient of the model loss at the realised optimum, relative to |W| K |v|.
GRADIENT_RTOL = 1e-12

#: The example of the issue's closing note.
QUADRATIC_EXAMPLE = dict(importance=0.8 ** np.arange(20), kurtosis=5.0, budget=8)

POLYTOPES = {  # k features of equal capacity k'/k sharing k' dimensions (theory §1)
    "antipodal": (2, 1),
    "triangle": (3, 2),
    "tetrahedron": (4, 3),
    "pentagon": (5, 2),
    "square-antiprism": (8, 3),
}


def closed_form_allocation(v, K, d):
    """theory §3 closed form for identical K > 3, independent of the solvers:
    C_i = clip(((K - 1) v_i / mu - 2) / (K - 3), 0, 1) with mu set by sum C = d (N > d)."""
    def allocation(mu):
        return np.clip(((K - 1) * v / mu - 2) / (K - 3), 0.0, 1.0)

    mu = brentq(lambda m: allocation(m).sum() - d, 1e-12, (K - 1) * v.max(), xtol=1e-15, rtol=1e-15)
    return allocation(mu), mu


def model_gradient(W, v, K):
    """dL/dW of L(W) = sum_i (K_i - 1)(v_i - a_i)^2 + 2 sum_{i != j} G_ij^2, by hand:
    d a_i / d W_i = 2 W_i and d ||G||_F^2 / dW = 4 W G."""
    G = W.T @ W
    a = np.diag(G)
    return -4 * W * ((K - 1) * (v - a)) + 8 * W @ (G - np.diag(a))


@pytest.mark.parametrize("method", REALIZE_METHODS)
@given(allocation=realisable_allocations(), seed=st.integers(0, 2**32 - 1))
@example(allocation=(np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.50000003, 0.49999999, 0.49999998]), 4), seed=0)
def test_realised_capacities_round_trip(method, allocation, seed):
    # The @example: subsets that sum to 1 only within 1e-9 must not be split off as blocks,
    # or their capacities would move by that much.
    C, d = allocation
    W = realize(C, d, method=method, seed=seed)
    assert W.shape == (d, C.size)
    np.testing.assert_allclose(capopt.capacity(W), C, rtol=0, atol=ROUND_TRIP_ATOL)


@pytest.mark.parametrize("method", REALIZE_METHODS)
@given(allocation=realisable_allocations(max_spare_dims=0), seed=st.integers(0, 2**32 - 1))
def test_realisations_are_block_semi_orthogonal_and_fill_their_dimensions(method, allocation, seed):
    C, d = allocation  # d = sum C: no spare dimensions
    W = realize(C, d, method=method, seed=seed)
    structure = blocks(W, tol=EXACT_BLOCK_TOL)
    assert structure.is_block_semi_orthogonal
    assert structure.dims_used == d == capopt.capacity_summary(W).rank
    assert capopt.capacity(W).sum() == pytest.approx(d, abs=ROUND_TRIP_ATOL)
    for block in structure.blocks:
        assert block.capacity_sum == pytest.approx(block.dim, abs=ROUND_TRIP_ATOL)
        assert block.eigenvalue == pytest.approx(1.0, rel=1e-12)  # ||W_i||^2 = C_i
    assert set(structure.ignored) == set(np.flatnonzero(C == 0))
    assert not W[:, C == 0].any()
    monosemantic = {b.features for b in structure.blocks if b.dim == 1 and len(b.features) == 1}
    assert {(int(i),) for i in np.flatnonzero(C == 1)} <= monosemantic


@given(allocation=realisable_allocations())
def test_sparse_neurons_each_serve_one_block_and_monosemantic_features_own_a_neuron(allocation):
    C, d = allocation
    W = realize(C, d, method="sparse")
    structure = blocks(W, tol=EXACT_BLOCK_TOL)
    block_of = {i: k for k, b in enumerate(structure.blocks) for i in b.features}
    for row in W:
        assert len({block_of[i] for i in np.flatnonzero(row)}) <= 1
    for i in np.flatnonzero(C == 1):
        (neuron,) = np.flatnonzero(W[:, i])
        assert np.count_nonzero(W[neuron]) == 1


@pytest.mark.parametrize("method", REALIZE_METHODS)
@pytest.mark.parametrize("name", POLYTOPES)
def test_polytope_capacities_give_one_tight_block(name, method):
    k, k_dims = POLYTOPES[name]
    W = realize(np.full(k, k_dims / k), k_dims, method=method, seed=0)
    np.testing.assert_allclose(capopt.capacity(W), k_dims / k, rtol=0, atol=ROUND_TRIP_ATOL)
    (block,) = blocks(W, tol=EXACT_BLOCK_TOL).blocks
    assert block.features == tuple(range(k)) and block.dim == k_dims
    # Equal norms and W W^T = I on the block's span: an equal-norm tight frame.
    np.testing.assert_allclose(W @ W.T, np.eye(k_dims), atol=1e-12)


def test_sparse_grouping_splits_off_integer_sum_subsets():
    # Two antipodal pairs and a triangle, shuffled: sparse finds the three blocks, dense
    # keeps one block of all polysemantic features.
    C = np.array([0.5, 2 / 3, 0.5, 2 / 3, 0.5, 2 / 3, 0.5])
    sparse = blocks(realize(C, 4, method="sparse"), tol=EXACT_BLOCK_TOL)
    assert sorted(b.capacity_sum for b in sparse.blocks) == pytest.approx([1, 1, 2])
    dense = blocks(realize(C, 4, seed=0), tol=EXACT_BLOCK_TOL)
    assert [b.dim for b in dense.blocks] == [4]


@given(
    st.lists(st.floats(0.05, 0.95), min_size=2, max_size=12),
    st.floats(0.05, 1.0),
)
def test_frame_kernels_are_tight_with_the_prescribed_norms(raw, room):
    # Scale the draws to an integer sum k, as realize() does for each block.
    targets = np.array(raw)
    k = max(1, int(targets.sum()))
    targets = targets * (k / targets.sum())
    if targets.max() >= 1:
        return
    X = tetris_frame(targets, k)
    np.testing.assert_allclose(X @ X.T, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(np.sum(X * X, axis=0), targets, atol=1e-12)
    # General spectrum (room, 1, ..., 1): the sparse construction's fallback.
    spectrum = np.concatenate([[room], np.ones(k - 1)])
    rescaled = targets * (spectrum.sum() / k)
    if rescaled.max() > 1:
        return
    X = schur_horn_frame(spectrum, rescaled)
    np.testing.assert_allclose(X @ X.T, np.diag(spectrum), atol=1e-12)
    np.testing.assert_allclose(np.sum(X * X, axis=0), rescaled, atol=1e-12)


def test_tetris_puts_features_on_at_most_two_neurons_at_redundancy_two_or_more():
    # Eight features of capacity 3/8 in three dimensions (redundancy 8/3): one neuron or a
    # straddling pair each, never the dense fallback.
    X = tetris_frame(np.full(8, 3 / 8), 3)
    assert np.all(np.count_nonzero(X, axis=0) <= 2)


@pytest.mark.parametrize(
    "allocation",
    [(np.full(k, k_dims / k), k_dims) for k, k_dims in POLYTOPES.values()]
    + [(np.array([0.5, 2 / 3, 0.5, 2 / 3, 0.5, 2 / 3, 0.5, 1.0, 1.0, 0.0]), 6)],
    ids=list(POLYTOPES) + ["mixed-blocks"],
)
def test_sparse_has_no_more_features_per_neuron_than_dense(allocation):
    C, d = allocation
    sparse = features_per_neuron(realize(C, d, method="sparse")).mean()
    for seed in range(5):
        assert sparse <= features_per_neuron(realize(C, d, seed=seed)).mean() + 1e-12


def test_sparse_has_no_more_features_per_neuron_than_dense_at_the_quadratic_optimum():
    p = QUADRATIC_EXAMPLE
    C, _ = closed_form_allocation(p["importance"], p["kurtosis"], p["budget"])
    sparse = features_per_neuron(realize(C, p["budget"], method="sparse"))
    for seed in range(5):
        dense = features_per_neuron(realize(C, p["budget"], seed=seed))
        assert sparse.mean() <= dense.mean() and sparse.max() <= dense.max()


def test_dense_rotation_is_reproducible_from_its_seed():
    C = np.full(5, 0.4)
    np.testing.assert_array_equal(realize(C, 2, seed=3), realize(C, 2, seed=3))
    assert not np.allclose(realize(C, 2, seed=3), realize(C, 2, seed=4))
    np.testing.assert_array_equal(realize(C, 2, method="sparse"), realize(C, 2, method="sparse"))


def test_inputs_are_not_mutated_and_read_only_or_strided_inputs_work():
    C = np.array([0.5, 9.0, 0.5, 9.0, 1.0, 9.0])[::2]  # non-contiguous view
    C.setflags(write=False)
    before = C.copy()
    W = realize(C, 2, method="sparse")
    np.testing.assert_array_equal(C, before)
    np.testing.assert_allclose(capopt.capacity(W), before, atol=ROUND_TRIP_ATOL)
    realize([1, 0], 1)  # integers are promoted


UNREALISABLE = [
    # (capacities, dim, kwargs, error, message)
    ([1, 1, 1, 1, 1, 1, 1, 0.4], 8, {}, ValueError,
     r"capacities of features \[7\] sum to 0.4; a block must sum to an integer"),
    ([0.5, 0.3], 1, {}, ValueError, r"features \[0, 1\] sum to 0.8"),
    ([1.0, 1.0, 0.5, 0.5], 2, {}, ValueError, r"capacities sum to 3 > dim = 2"),
    ([1.2, 0.0], 2, {}, ValueError, r"must lie in \[0, 1\].*got 1.2 for feature 0"),
    ([0.5, -0.1], 2, {}, ValueError, r"got -0.1 for feature 1"),
    ([0.5, 0.5], 2.5, {}, ValueError, r"dim must be a whole number of dimensions >= 0, got 2.5"),
    ([0.5, 0.5], -1, {}, ValueError, r"dim must be a whole number"),
    ([0.5, 0.5], "2", {}, TypeError, r"dim must be a whole number, got str"),
    ([[0.5, 0.5]], 1, {}, ValueError, r"capacities must be 1-d"),
    ([], 1, {}, ValueError, r"capacities must not be empty"),
    ([np.nan], 1, {}, ValueError, r"capacities must be finite"),
    (["a"], 1, {}, TypeError, r"capacities must be numeric"),
    ([0.5, 0.5], 1, {"method": "spectral"}, ValueError, r"method must be one of \['dense', 'sparse'\]"),
    ([0.5, 0.5], 1, {"tol": -1.0}, ValueError, r"tol must be finite and >= 0"),
]


@pytest.mark.parametrize("capacities, dim, kwargs, error, message", UNREALISABLE)
def test_bad_or_unrealisable_allocations_raise_the_documented_error(capacities, dim, kwargs, error, message):
    with pytest.raises(error, match=message):
        realize(capacities, dim, **kwargs)


def test_unblockable_allocation_is_refused_without_claiming_no_embedding_has_it():
    # (0.7, 0.7) in d = 2 cannot be grouped into integer-sum blocks, yet this W has it
    # (for two nonzero features C_1 + C_2 >= 1 suffices, theory §2): the error may say only
    # that realize()'s block construction cannot build it. W is given to 4 decimals, so its
    # capacities are 0.7 to 4 decimals.
    W = np.array([[1.0, 0.6547], [0.0, 0.7559]])
    np.testing.assert_array_equal(np.round(capopt.capacity(W), 4), [0.7, 0.7])
    with pytest.raises(ValueError, match="not block-realisable") as refused:
        realize([0.7, 0.7], 2)
    message = str(refused.value)
    assert "no embedding" not in message
    assert "another kind may still realise" in message


def test_capacities_within_tol_of_the_bounds_and_of_an_integer_sum_are_accepted():
    C = np.array([1 - 1e-12, 1e-12, 0.3, 0.7 + 1e-11])
    W = realize(C, 2, method="sparse")
    np.testing.assert_allclose(capopt.capacity(W), C, atol=1e-10)
    with pytest.raises(ValueError, match="sum to an integer"):
        realize(C, 3, tol=0.0)


# --- The optimal quadratic model -------------------------------------------------------


@pytest.mark.parametrize("method", REALIZE_METHODS)
def test_closed_form_optimum_model_attains_the_curve_loss_with_its_norms(method):
    p = QUADRATIC_EXAMPLE
    v, K, d = p["importance"], p["kurtosis"], p["budget"]
    curves = capopt.quadratic(v, K)
    C, mu = closed_form_allocation(v, K, d)
    model = optimal_quadratic_model(curves, C, method=method, seed=1)
    assert isinstance(model, QuadraticModel) and model.W.shape == (d, v.size)
    np.testing.assert_allclose(capopt.capacity(model.W), C, atol=ROUND_TRIP_ATOL)
    a = np.sum(model.W**2, axis=0)
    # a_i* = v_i when monosemantic, mu C_i when polysemantic (theory §3 with mu = sqrt(lam/2)).
    expected = np.where(C == 1, v, mu * C)
    np.testing.assert_allclose(a, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a, curves.optimal_norm(C), rtol=1e-12, atol=1e-15)
    assert model.loss == pytest.approx(curves.total_loss(C), rel=LOSS_RTOL)
    assert model.bias == pytest.approx(np.sum(v - a), rel=1e-12)


def test_worked_case_model_has_the_spec_loss():
    # theory §3: a = 2, b = 1, K = 7 in one neuron: C = (5/6, 1/6), loss 5.25.
    model = optimal_quadratic_model(capopt.quadratic([2.0, 1.0], 7.0), [5 / 6, 1 / 6])
    np.testing.assert_allclose(model.W**2, [[15 / 8, 3 / 8]], rtol=1e-12)
    assert model.loss == pytest.approx(5.25, rel=1e-12)


def solved(curves, budget):
    """capopt.solve, or a skip while no method for the family is registered yet."""
    try:
        return solve(curves, budget)
    except ValueError as exc:
        if "method must be" in str(exc):
            pytest.skip(f"no solver registered for {curves.shape.value} families yet")
        raise


@pytest.mark.parametrize("method", REALIZE_METHODS)
def test_solver_optimum_model_loss_equals_the_predicted_loss(method):
    p = QUADRATIC_EXAMPLE
    curves = capopt.quadratic(p["importance"], p["kurtosis"])
    result = solved(curves, p["budget"])
    model = optimal_quadratic_model(curves, result, method=method, seed=0)
    assert model.loss == pytest.approx(result.loss, rel=LOSS_RTOL)
    (poly,) = [b for b in blocks(model.W).blocks if len(b.features) > 1]
    assert poly.eigenvalue == pytest.approx(np.sqrt(result.multiplier / 2), rel=1e-9)


@given(problems(integer_budget=True), st.sampled_from(REALIZE_METHODS))
def test_optimal_model_is_a_critical_point_of_the_model_loss(problem, method):
    # Independent of the curves: the realised W must be stationary for the model's own loss
    # L(W) (gradient by hand), and attain the solver's loss.
    curves, budget = problem
    result = solved(curves, budget)
    model = optimal_quadratic_model(curves, result, method=method, seed=0)
    assert model.loss == pytest.approx(result.loss, rel=1e-9, abs=1e-12)
    v, K = curves.importance, curves.kurtosis
    # Both gradient terms are of size |W| K |v| (a_i ~ v_i); observed ratios at the optimum
    # are < 3e-15, while scaling W by 1 + 1e-6 raises them to ~1e-6.
    scale = np.max(np.abs(v)) * np.max(K) * np.abs(model.W).max(initial=0.0)
    np.testing.assert_allclose(model_gradient(model.W, v, K), 0.0, atol=GRADIENT_RTOL * scale)


@given(realisable_allocations(max_blocks=2, max_block_features=4), st.data())
def test_model_loss_is_never_below_the_allocation_curve_loss(allocation, data):
    # l_i(C) is the minimum over norms at capacity C, so any realisation costs at least it.
    C, d = allocation
    v = data.draw(st.lists(st.floats(0.05, 5.0), min_size=C.size, max_size=C.size))
    K = data.draw(st.floats(1.2, 30.0))
    curves = capopt.quadratic(v, K)
    model = optimal_quadratic_model(curves, C, dim=d, method="sparse")
    assert model.loss >= curves.total_loss(C) * (1 - 1e-12) - 1e-12


def test_optimal_model_rejects_other_families_and_wrong_lengths():
    with pytest.raises(TypeError, match="curves must be QuadraticCurves"):
        optimal_quadratic_model(capopt.linear_autoencoder([1.0]), [1.0])
    with pytest.raises(ValueError, match=r"one capacity per feature, shape \(2,\), got shape \(3,\)"):
        optimal_quadratic_model(capopt.quadratic([1.0, 1.0], 5.0), [1.0, 0.0, 0.0])
