"""Properties of the capacity metric (theory §1)."""

from fractions import Fraction

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, strategies as st

import capopt
from capopt.testing import embeddings

from frames import block_semi_orthogonal, polygon, random_orthogonal, square_antiprism, tetrahedron

#: Rounding of the O(d^2 N) evaluation: a few ulps per accumulated product.
RTOL = 1e-12


def exact_capacity(W) -> np.ndarray:
    """Capacities of ``W`` (d x N) in exact rational arithmetic on its float64 entries,
    rounded to float64 once at the end: a reference that never scales anything."""
    columns = [[Fraction(float(x)) for x in column] for column in np.asarray(W).T]
    C = []
    for ci in columns:
        own = sum(a * a for a in ci)
        couplings = [sum(a * b for a, b in zip(ci, cj)) for cj in columns]
        C.append(float(own**2 / sum(g * g for g in couplings)) if own else 0.0)
    return np.array(C)


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


@pytest.mark.parametrize(
    "W, expected",
    [
        (np.array([[1.0, 0.0], [0.0, 1e-100]]), [1.0, 1.0]),
        (np.array([[1.0, 0.0, 0.0], [0.0, 1e-170, 0.0]]), [1.0, 1.0, 0.0]),
        (np.array([[1e300, 0.0], [0.0, 1e-300]]), [1.0, 1.0]),
        (np.array([[1e300, 0.0, 0.0], [0.0, 1e-300, 0.0]]), [1.0, 1.0, 0.0]),
    ],
    ids=["1e-100-gram", "1e-170-low-rank", "1e300-and-1e-300-gram", "1e300-and-1e-300-low-rank"],
)
def test_orthogonal_columns_have_full_capacity_at_any_magnitude(W, expected):
    # Dividing the whole matrix by its largest entry once gave [1, nan] and [1, 0, 0] for
    # the first two: the small column's squared norm underflowed. Exactly orthogonal
    # columns have exactly C = 1, in the Gram (d >= N) and the low-rank (d < N) evaluation.
    np.testing.assert_array_equal(capopt.capacity(W), expected)


TINY, HUGE = 2.0**-500, 2.0**500
FAR_APART = {
    # 1e-300 e_1 leaning on 1e300 (1, 1): its coupling t = 1e600 leaves it C < 1e-1200.
    "1e-300-on-1e300": np.array([[1e-300, 1e300], [0.0, 1e300]]),
    "1e-300-on-1e300-low-rank": np.array([[1e-300, 1e300, 0.0], [0.0, 1e300, 0.0]]),
    # 2^-500 e_1 next to 2^500 (2^-1000, 1): W_s.W_b = |W_s|^2, so C_s = 1/2 exactly,
    # although |W_s|^4 = 2^-2000 lies far below the float64 range.
    "half-at-2^-500": np.array([[TINY, HUGE * 2.0**-1000], [0.0, HUGE]]),
    "half-at-2^-500-low-rank": np.array([[TINY, HUGE * 2.0**-1000, 0.0], [0.0, HUGE, 0.0]]),
    # The same coupling with two more large features sharing its second axis.
    "half-at-2^-500-with-a-block": np.array(
        [[TINY, HUGE * 2.0**-1000, 0.0, 0.0], [0.0, HUGE, HUGE, 0.0], [0.0, 0.0, HUGE, HUGE]]
    ),
}


@pytest.mark.parametrize("W", FAR_APART.values(), ids=FAR_APART.keys())
def test_coupled_columns_at_opposite_ends_of_the_float_range_match_exact_arithmetic(W):
    np.testing.assert_allclose(capopt.capacity(W), exact_capacity(W), rtol=RTOL, atol=0)


@pytest.mark.parametrize("size", [1e-6, 1e-8, 1e-10])
def test_small_block_in_a_rotated_basis_keeps_its_capacity(size):
    # Two small features sharing an axis orthogonal to a unit feature, in a rotated basis
    # (C = 1/2 each up to the rounding of the rotation). One quadratic form in W W^T for
    # all columns lost about 2r bits for a column 2^r below the largest, giving 0.536 at
    # 1e-8 and noise below; a column that much smaller is now coupled to the larger ones
    # through a QR factor, linear in its entries.
    Q = random_orthogonal(2, np.random.default_rng(1))
    W = Q @ np.array([[1.0, 0.0, 0.0], [0.0, size, size]])
    np.testing.assert_allclose(capopt.capacity(W), exact_capacity(W), rtol=RTOL, atol=0)


def test_batched_matrices_each_scale_their_own_columns():
    rng = np.random.default_rng(5)
    small_orthogonal = np.array([[1.0, 0.0, 0.0], [0.0, 1e-170, 0.0]])
    batch = np.stack(
        [
            small_orthogonal,
            1e250 * small_orthogonal,
            FAR_APART["1e-300-on-1e300-low-rank"],
            FAR_APART["half-at-2^-500-low-rank"],
            rng.normal(size=(2, 3)),
        ]
    )
    for stack in (batch, batch[..., :2]):  # d < N, then d >= N
        expected = np.stack([exact_capacity(W) for W in stack])
        np.testing.assert_allclose(capopt.capacity(stack), expected, rtol=RTOL, atol=0)
        np.testing.assert_allclose(
            capopt.capacity(np.swapaxes(stack, -1, -2), feature_axis=-2), expected, rtol=RTOL, atol=0
        )


@given(embeddings(), st.integers(-900, 900))
def test_capacity_invariant_under_scaling_by_any_power_of_two(W, k):
    np.testing.assert_allclose(capopt.capacity(np.ldexp(W, k)), capopt.capacity(W), rtol=RTOL, atol=0)


@given(st.lists(embeddings(max_dim=3, max_features=4), min_size=1, max_size=4), st.data())
def test_scaling_features_that_overlap_no_others_leaves_every_capacity_unchanged(blocks, data):
    # Capacity is not invariant when a single column is scaled (W = [[1, 1]] has C = 1/2,
    # [[1, 2]] has (1/5, 4/5)), but a block of features on coordinates of its own never
    # meets the others: scaling each block by its own 2^k, k in [-900, 900], so that blocks
    # lie up to 2^1800 apart, changes no capacity. Columns are normalised to a largest entry
    # of 1, so that a block's columns share one magnitude and are evaluated alike at every
    # scale; far-apart columns that do overlap are checked against exact arithmetic above.
    blocks = [B / np.where(B.any(axis=0), np.max(np.abs(B), axis=0), 1.0) for B in blocks]
    powers = data.draw(st.lists(st.integers(-900, 900), min_size=len(blocks), max_size=len(blocks)))
    W = scipy.linalg.block_diag(*blocks)
    scaled = scipy.linalg.block_diag(*(np.ldexp(B, k) for B, k in zip(blocks, powers)))
    np.testing.assert_allclose(capopt.capacity(scaled), capopt.capacity(W), rtol=RTOL, atol=0)


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
