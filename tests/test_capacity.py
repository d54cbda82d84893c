"""Properties of the capacity metric (theory §1)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import capopt
from capopt.testing import embeddings

from frames import block_semi_orthogonal, polygon, random_orthogonal, square_antiprism, tetrahedron

#: Rounding of the O(d^2 N) evaluation: a few ulps per accumulated product.
RTOL = 1e-12


@given(embeddings())
def test_capacity_lies_in_unit_interval(W):
    C = capopt.capacity(W)
    assert C.shape == (W.shape[1],)
    assert np.all((C >= 0) & (C <= 1))


@given(embeddings())
def test_zero_columns_have_zero_capacity(W):
    zero = ~W.any(axis=0)
    assert np.all(capopt.capacity(W)[zero] == 0)


@given(embeddings(zero_columns=False))
def test_capacity_bounded_by_leverage_and_total_by_rank(W):
    summary = capopt.capacity_summary(W)
    assert np.all(summary.capacities <= summary.leverage + 1e-10)
    assert summary.total <= summary.rank + 1e-10
    assert summary.rank <= summary.dim
    assert np.isclose(summary.leverage.sum(), summary.rank, rtol=1e-9)


def test_tiny_orthogonal_column_has_full_capacity_but_needs_rtol_to_count_in_rank():
    # Found by hypothesis: capacity is exact per column (scale free), while the numerical
    # rank drops singular values below max(d, N) * eps * s_max unless rtol is lowered.
    W = np.array([[1.0, 0.0, 0.0], [0.0, 3.07122934e-102, 0.0]])
    np.testing.assert_array_equal(capopt.capacity(W), [1.0, 1.0, 0.0])
    assert capopt.capacity_summary(W).rank == 1
    exact = capopt.capacity_summary(W, rtol=0.0)
    assert exact.rank == 2 and exact.total <= exact.rank
    np.testing.assert_array_equal(exact.leverage, [1.0, 1.0, 0.0])


@given(embeddings(), st.integers(0, 2**32 - 1), st.floats(1e-3, 1e3))
def test_capacity_invariant_under_rotation_and_scaling(W, seed, scale):
    Q = random_orthogonal(W.shape[0], np.random.default_rng(seed))
    np.testing.assert_allclose(capopt.capacity(scale * (Q @ W)), capopt.capacity(W), atol=1e-9)


@pytest.mark.parametrize(
    "W, expected",
    [
        (np.array([[1.0, -1.0]]), 1 / 2),  # antipodal pair
        (polygon(3), 2 / 3),  # triangle
        (tetrahedron(), 3 / 4),
        (polygon(5), 2 / 5),  # pentagon
        (square_antiprism(), 3 / 8),
    ],
    ids=["antipodal", "triangle", "tetrahedron", "pentagon", "square-antiprism"],
)
def test_tight_frames_have_capacity_dim_over_count(W, expected):
    np.testing.assert_allclose(capopt.capacity(W), expected, rtol=RTOL)


def test_parallel_vectors_of_unequal_norm_guard_against_common_bugs():
    # W = [[1, 2]]: G = [[1, 2], [2, 4]], so C = (1/5, 16/20) by hand. The sqrt-of-capacity
    # bug gives (1/sqrt 5, 4/sqrt 20); an unsquared norm over squared projections gives 2/5
    # for the second feature. Unit-norm frames cannot tell these apart; this can.
    W = np.array([[1.0, 2.0]])
    np.testing.assert_allclose(capopt.capacity(W), [1 / 5, 16 / 20], rtol=RTOL)


def test_capacity_is_one_exactly_for_a_column_orthogonal_to_the_others():
    W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    C = capopt.capacity(W)
    assert C[0] == 1.0 and C[1] < 1 and C[2] < 1


@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=3),
    st.lists(st.integers(0, 3), min_size=3, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_sum_equals_dimension_for_block_semi_orthogonal_embeddings(dims, extra, seed):
    sizes = [k + e for k, e in zip(dims, extra)]
    W = block_semi_orthogonal(dims, sizes, np.random.default_rng(seed))
    np.testing.assert_allclose(capopt.capacity(W).sum(), sum(dims), rtol=RTOL)


@given(st.integers(2, 5), st.integers(2, 12), st.integers(0, 2**32 - 1))
def test_sum_is_strictly_below_dimension_for_generic_embeddings(d, extra, seed):
    # d >= 2: in one dimension every column is an eigenvector of W W^T, so sum C = 1 always.
    W = np.random.default_rng(seed).normal(size=(d, d + extra))
    assert capopt.capacity(W).sum() < d - 1e-6


@given(embeddings(max_dim=4, max_features=6), st.integers(0, 2**32 - 1))
def test_batched_and_feature_axis_variants_agree(W, seed):
    rng = np.random.default_rng(seed)
    batch = np.stack([W, rng.normal(size=W.shape), 2.0 * W])
    expected = np.stack([capopt.capacity(m) for m in batch])
    np.testing.assert_allclose(capopt.capacity(batch), expected, rtol=RTOL, atol=1e-15)
    feature_first = np.swapaxes(batch, -1, -2)  # W[inst, feat, hidden], the TMS layout
    np.testing.assert_allclose(capopt.capacity(feature_first, feature_axis=-2), expected, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(capopt.capacity(feature_first, feature_axis=1), expected, rtol=RTOL, atol=1e-15)


def test_gram_and_low_rank_evaluations_agree_across_d_vs_n():
    rng = np.random.default_rng(3)
    for d, n in [(3, 8), (8, 3), (5, 5)]:
        W = rng.normal(size=(d, n))
        G = W.T @ W
        direct = np.diag(G) ** 2 / np.sum(G**2, axis=1)
        np.testing.assert_allclose(capopt.capacity(W), direct, rtol=RTOL)


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_extreme_scales_do_not_underflow_or_overflow(scale):
    W = polygon(3) * scale
    np.testing.assert_allclose(capopt.capacity(W), 2 / 3, rtol=RTOL)


def test_array_likes_are_accepted_and_inputs_not_mutated():
    class TensorLike:  # stands in for a CPU torch tensor without importing torch
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    W = polygon(3)
    frozen = W.copy()
    frozen.setflags(write=False)
    strided = np.asfortranarray(np.repeat(W, 2, axis=1))[:, ::2]
    for candidate in (W.tolist(), TensorLike(W), frozen, strided, W.astype(np.float32), W.astype(int) + 0):
        C = capopt.capacity(candidate)
        assert C.dtype == np.float64
    np.testing.assert_array_equal(W, polygon(3))


@pytest.mark.parametrize(
    "W, kwargs, error, match",
    [
        (np.array([[np.nan, 1.0]]), {}, ValueError, "W must be finite"),
        (np.array([[np.inf, 1.0]]), {}, ValueError, "W must be finite"),
        (np.ones(3), {}, ValueError, "at least 2 axes"),
        (np.ones((2, 3)), {"feature_axis": 0}, None, None),
        (np.ones((2, 2, 3)), {"feature_axis": 0}, ValueError, "feature_axis must name one of the last two"),
        (np.ones((2, 3)) * 1j, {}, TypeError, "must be real"),
        (np.array([["a", "b"]]), {}, TypeError, "must be numeric"),
    ],
)
def test_bad_inputs_raise_clear_errors(W, kwargs, error, match):
    if error is None:  # axis 0 of a 2-d array is its axis -2: allowed
        capopt.capacity(W, **kwargs)
        return
    with pytest.raises(error, match=match):
        capopt.capacity(W, **kwargs)


def test_zero_dimensional_embedding_gives_zero_capacities():
    # realize(C, dim=0) returns a 0 x N matrix; its features have no capacity at all.
    summary = capopt.capacity_summary(np.zeros((0, 3)))
    np.testing.assert_array_equal(summary.capacities, 0.0)
    assert summary.rank == 0 and summary.total == 0.0 and summary.dim == 0
