"""Blocks of an embedding, its distance from block-semi-orthogonal, and features per neuron
(theory §1)."""

import numpy as np
import pytest
from hypothesis import example, given, strategies as st

import capopt
from capopt.geometry import DEFAULT_BLOCK_TOL, blocks, features_per_neuron
from capopt.testing import embeddings

from frames import block_semi_orthogonal, polygon, random_orthogonal, square_antiprism, tetrahedron

#: Exact constructions: eigenvalues and capacity sums to a few ulps of accumulated products.
RTOL = 1e-12

#: Relative noise added to constructed embeddings, as in the weights of a converged fit.
NOISE = 1e-8

#: Eigenvalues of noisy embeddings: first order in the noise, magnified by the ratio of the
#: largest to the shortest column (up to ~50 for the random blocks drawn below).
NOISY_RTOL = 1e-5


@st.composite
def block_layouts(draw):
    """Block dimensions and sizes: polysemantic blocks (more features than dimensions, so
    that no feature is orthogonal to all others) and monosemantic ones (1 x 1)."""
    n_poly = draw(st.integers(0, 3))
    dims = [draw(st.integers(1, 3)) for _ in range(n_poly)]
    sizes = [dim + draw(st.integers(1, 4)) for dim in dims]
    n_mono = draw(st.integers(0 if n_poly else 1, 3))
    return dims + [1] * n_mono, sizes + [1] * n_mono


@pytest.mark.parametrize(
    "W, n_dims",
    [
        (np.array([[1.0, -1.0]]), 1),  # antipodal pair
        (polygon(3), 2),  # triangle
        (tetrahedron(), 3),
        (polygon(5), 2),  # pentagon
        (square_antiprism(), 3),
    ],
    ids=["antipodal", "triangle", "tetrahedron", "pentagon", "square-antiprism"],
)
def test_equal_norm_tight_frame_is_one_block_with_its_dimension(W, n_dims):
    # k unit vectors in a tight frame of R^k': W W^T = (k / k') I, each C = k'/k.
    k = W.shape[1]
    structure = blocks(W, tol=1e-12)
    (block,) = structure.blocks
    assert block.features == tuple(range(k))
    assert block.dim == n_dims
    assert block.eigenvalue == pytest.approx(k / n_dims, rel=RTOL)
    assert block.eigenvalue_spread < RTOL
    assert block.capacity_sum == pytest.approx(n_dims, rel=RTOL)
    assert structure.is_block_semi_orthogonal and structure.dims_used == n_dims


@given(block_layouts(), st.integers(0, 2**32 - 1), st.integers(0, 2))
@example(layout=([3, 3, 1], [5, 4, 1]), seed=1, n_zero=0)
def test_blocks_are_recovered_after_rotation_and_noise(layout, seed, n_zero):
    dims, sizes = layout
    rng = np.random.default_rng(seed)
    W = block_semi_orthogonal(dims, sizes, rng)
    label = np.repeat(np.arange(len(dims)), sizes)
    W = np.concatenate([W, np.zeros((W.shape[0], n_zero))], axis=1)
    label = np.concatenate([label, np.full(n_zero, -1)])
    perm = rng.permutation(W.shape[1])
    W, label = W[:, perm], label[perm]
    # Independent route to each block's eigenvalue: trace(W_b W_b^T) / dim on exact data.
    expected = {
        tuple(np.flatnonzero(label == b)): (dims[b], np.sum(W[:, label == b] ** 2) / dims[b])
        for b in range(len(dims))
    }
    noisy = random_orthogonal(W.shape[0], rng) @ W
    noisy = noisy + NOISE * np.abs(noisy).max() * rng.normal(size=noisy.shape) * (label >= 0)

    structure = blocks(noisy)
    assert structure.ignored == tuple(np.flatnonzero(label < 0))
    assert {b.features for b in structure.blocks} == set(expected)
    for block in structure.blocks:
        dim, eigenvalue = expected[block.features]
        assert block.dim == dim
        assert block.eigenvalue == pytest.approx(eigenvalue, rel=NOISY_RTOL)
        assert block.capacity_sum == pytest.approx(dim, rel=NOISY_RTOL)
    assert structure.is_block_semi_orthogonal
    assert structure.dims_used == sum(dims)
    assert structure.overlap < DEFAULT_BLOCK_TOL


def test_embedding_that_is_not_block_semi_orthogonal_is_flagged_with_hand_residuals():
    # W = [[1, 1, 0], [0, 1, 1]]: rank 2, C = (1/2, 2/3, 1/2) (theory §1 leverage example), so
    # the residual is (2 - 5/3) / 2 = 1/6. M = [[2, 1], [1, 2]] sends W_0 = (1, 0) to
    # (2, 1), at angle arctan(1/2): eigen_residual = 1/2 (the middle column is an
    # eigenvector and contributes 0).
    structure = blocks(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
    (block,) = structure.blocks
    assert block.dim == 2 and block.capacity_sum == pytest.approx(5 / 3, rel=RTOL)
    assert block.eigenvalue == pytest.approx(2.0, rel=RTOL)  # eigenvalues 3 and 1
    assert block.eigenvalue_spread == pytest.approx(1.0, rel=RTOL)
    assert structure.residual == pytest.approx(1 / 6, rel=RTOL)
    assert structure.eigen_residual == pytest.approx(1 / 2, rel=RTOL)
    assert not structure.is_block_semi_orthogonal


@given(embeddings(zero_columns=False), st.integers(0, 2**32 - 1), st.floats(1e-3, 1e3))
@example(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]), 0, 10.0)
def test_structure_is_invariant_under_rotation_and_scaling(W, seed, scale):
    Q = random_orthogonal(W.shape[0], np.random.default_rng(seed))
    before, after = blocks(W), blocks(scale * (Q @ W))
    # Block membership depends on cosines compared with tol; skip draws that sit on it.
    norms = np.linalg.norm(W, axis=0)
    unit = W / np.where(norms > 0, norms, 1.0)
    cosines = np.abs(unit.T @ unit)
    if np.any(np.abs(cosines - DEFAULT_BLOCK_TOL) < 1e-9):
        return
    assert [b.features for b in after.blocks] == [b.features for b in before.blocks]
    assert [b.dim for b in after.blocks] == [b.dim for b in before.blocks]
    assert after.residual == pytest.approx(before.residual, abs=1e-9)
    assert after.eigen_residual == pytest.approx(before.eigen_residual, rel=1e-6, abs=1e-9)
    for a, b in zip(after.blocks, before.blocks):
        assert a.eigenvalue == pytest.approx(scale**2 * b.eigenvalue, rel=1e-9)


@given(embeddings(zero_columns=False))
def test_blocks_partition_the_nonzero_features_and_account_for_capacity(W):
    # At the default tol a nearly parallel pair can count as one dimension while holding
    # capacity 1.002; exact data at a rounding-level tol gives exact ranks.
    structure = blocks(W, tol=1e-12)
    members = [i for b in structure.blocks for i in b.features] + list(structure.ignored)
    assert sorted(members) == list(range(W.shape[1]))
    C = capopt.capacity(W)
    for block in structure.blocks:
        assert block.capacity_sum == pytest.approx(C[list(block.features)].sum(), abs=1e-12)
        assert block.capacity_sum <= block.dim + 1e-9
    assert structure.dims_used <= W.shape[0]


def test_short_columns_are_ignored_below_zero_tol():
    W = np.array([[1.0, 0.0, 1e-9], [0.0, 1.0, 1e-9]])
    assert blocks(W).ignored == (2,)
    assert blocks(W, zero_tol=0.0).ignored == ()


def test_feature_axis_minus_two_reads_the_transposed_layout():
    W = polygon(5)
    assert blocks(W.T, feature_axis=-2).blocks == blocks(W).blocks


def test_all_zero_embedding_has_no_blocks():
    structure = blocks(np.zeros((2, 3)))
    assert structure.blocks == () and structure.ignored == (0, 1, 2)
    assert structure.is_block_semi_orthogonal and structure.dims_used == 0


@pytest.mark.parametrize(
    "W, kwargs, error, message",
    [
        (np.zeros((2, 2, 3)), {}, ValueError, "single embedding"),
        (np.eye(2), {"tol": -1.0}, ValueError, "tol must be finite and >= 0"),
        (np.eye(2), {"feature_axis": 2}, ValueError, "feature_axis must name"),
        (np.array([[np.nan, 1.0]]), {}, ValueError, "W must be finite"),
    ],
    ids=["batch", "negative-tol", "bad-axis", "nan"],
)
def test_bad_inputs_raise_with_the_argument_named(W, kwargs, error, message):
    with pytest.raises(error, match=message):
        blocks(W, **kwargs)


def test_block_table_lists_each_block():
    text = blocks(np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 3.0]])).table()
    assert "[0, 1]" in text and "[2]" in text and "block-semi-orthogonal" in text


def test_features_per_neuron_counts_equal_weights_and_skips_unused_neurons():
    W = np.array([[1.0, -1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(features_per_neuron(W), [3.0, 1.0, 0.0], rtol=RTOL)


def test_features_per_neuron_is_the_participation_ratio_of_each_row():
    # Row (2, 1): (4 + 1)^2 / (16 + 1) = 25/17 by hand.
    np.testing.assert_allclose(features_per_neuron(np.array([[2.0, 1.0]])), [25 / 17], rtol=RTOL)


@given(embeddings(max_dim=4, max_features=6))
def test_features_per_neuron_lies_between_one_and_the_feature_count(W):
    pr = features_per_neuron(W)
    used = np.any(W != 0, axis=1)
    assert np.all(pr[~used] == 0)
    assert np.all((pr[used] >= 1 - 1e-12) & (pr[used] <= W.shape[1] + 1e-12))


def test_features_per_neuron_supports_batches_and_both_layouts():
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(4, 3, 5))  # 4 embeddings, d = 3, N = 5
    expected = np.stack([features_per_neuron(W) for W in batch])
    np.testing.assert_allclose(features_per_neuron(batch), expected, rtol=RTOL)
    np.testing.assert_allclose(
        features_per_neuron(np.swapaxes(batch, -1, -2), feature_axis=-2), expected, rtol=RTOL
    )


# ---------------------------------------------------------------- represented features
@given(embeddings(), st.sampled_from([0.0, 0.05, 0.1, 0.5]))
def test_represented_is_the_norm_rule_and_the_complement_of_the_ignored_features(W, zero_tol):
    from capopt.geometry import represented

    norms = [np.sqrt(sum(float(w) ** 2 for w in W[:, i])) for i in range(W.shape[1])]
    longest = max(norms, default=0.0)
    used = represented(W, zero_tol=zero_tol)
    assert used.tolist() == [n > zero_tol * longest for n in norms]
    assert set(blocks(W, zero_tol=zero_tol).ignored) == set(np.flatnonzero(~used).tolist())


def test_represented_reads_batches_and_the_feature_axis():
    from capopt.geometry import represented

    W = np.array([[[1.0, 0.05], [0.0, 0.0]], [[0.0, 3.0], [2.0, 0.0]]])  # (2, d=2, N=2)
    assert represented(W, zero_tol=0.1).tolist() == [[True, False], [True, True]]
    assert represented(np.swapaxes(W, -1, -2), zero_tol=0.1, feature_axis=-2).tolist() == [
        [True, False], [True, True]]
    with pytest.raises(ValueError, match="zero_tol"):
        represented(W, zero_tol=-1.0)
