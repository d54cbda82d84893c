"""Capacity of dictionary-sized embeddings: block by block, in float32, memory-mapped or
with dask, in bounded memory, and the summary a researcher reads for a dictionary."""

import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import capopt
from capopt import _blocks
from capopt.capacity import QUANTILE_LEVELS, TIGHT_FRAME_K

from frames import polygon
from test_capacity import FAR_APART, exact_capacity

#: Block-by-block and in-memory evaluations sum the same products in other orders: a few
#: ulps per accumulated product, as for the in-memory evaluation against exact arithmetic.
RTOL = 1e-12


def reference_capacity(W) -> np.ndarray:
    """The formula as written, C_i = G_ii^2 / sum_j G_ij^2, in float64 (W is d x N)."""
    W = np.asarray(W, dtype=np.float64)
    G = W.T @ W
    own = np.diag(G)
    return np.where(own > 0, own**2 / np.where(own > 0, np.sum(G**2, axis=1), 1.0), 0.0)


@pytest.fixture
def per_block(monkeypatch):
    """Make numpy arrays of d hidden units (and ``batch`` matrices) read ``k`` features per block."""
    def set_block(k, d, batch=1):
        monkeypatch.setattr(_blocks, "BLOCK_BYTES", 8 * d * batch * k)
    return set_block


def dictionary(n, d, seed=0, dtype=np.float32):
    """A random W[feature, hidden] with rows of unequal norms, as a trained decoder has."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=(n, 1))).astype(dtype)


@pytest.fixture
def memmap_file(tmp_path):
    """Write ``W`` to a .npy file and open it read-only, memory-mapped."""
    def write(W):
        path = tmp_path / "W.npy"
        out = np.lib.format.open_memmap(path, mode="w+", dtype=W.dtype, shape=W.shape)
        out[...] = W
        out.flush()
        del out
        return np.load(path, mmap_mode="r"), path
    return write


@pytest.mark.parametrize("k", [1, 97, 256, 999])
def test_blocks_that_do_not_divide_n_give_the_reference_formula(per_block, k):
    W = np.random.default_rng(1).normal(size=(7, 1000))
    per_block(k, 7)
    np.testing.assert_allclose(capopt.capacity(W), reference_capacity(W), rtol=RTOL)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("W", FAR_APART.values(), ids=FAR_APART.keys())
def test_blocks_keep_columns_at_opposite_ends_of_the_float_range_exact(per_block, k, W):
    # Several magnitude groups: the R of each group is built from one QR per block.
    per_block(k, W.shape[0])
    np.testing.assert_allclose(capopt.capacity(W), exact_capacity(W), rtol=RTOL, atol=0)


def test_blocks_keep_batched_matrices_each_in_their_own_scale(per_block):
    small_orthogonal = np.array([[1.0, 0.0, 0.0], [0.0, 1e-170, 0.0]])
    batch = np.stack([small_orthogonal, 1e250 * small_orthogonal,
                      FAR_APART["1e-300-on-1e300-low-rank"], FAR_APART["half-at-2^-500-low-rank"]])
    per_block(1, 2, batch=len(batch))
    expected = np.stack([exact_capacity(W) for W in batch])
    np.testing.assert_allclose(capopt.capacity(batch), expected, rtol=RTOL, atol=0)


def test_blocks_handle_leading_batch_axes(per_block):
    rng = np.random.default_rng(2)
    batch = rng.normal(size=(2, 3, 5, 300)).astype(np.float32)
    per_block(41, 5, batch=6)
    expected = np.stack([[reference_capacity(W) for W in row] for row in batch])
    np.testing.assert_allclose(capopt.capacity(batch), expected, rtol=RTOL)
    np.testing.assert_allclose(capopt.capacity(np.swapaxes(batch, -1, -2), feature_axis=-2),
                               expected, rtol=RTOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("n", [3, 2000])  # d >= N (Gram) and d < N (blocks)
def test_low_precision_input_matches_its_exact_float64_conversion(per_block, dtype, n):
    W = dictionary(n, 4, seed=3, dtype=dtype)
    per_block(333, 4)
    expected = capopt.capacity(W.astype(np.float64), feature_axis=-2)
    np.testing.assert_allclose(capopt.capacity(W, feature_axis=-2), expected, rtol=RTOL)
    np.testing.assert_allclose(expected, reference_capacity(W.T), rtol=RTOL)


@pytest.mark.parametrize("size", [2.0**-20, 2.0**-27])
def test_float32_columns_of_far_apart_magnitudes_are_grouped_like_float64_ones(per_block, size):
    # Norms more than 2**16 apart: float32 input leaves the unscaled two-pass evaluation
    # for the grouped one, and stays exact (the small block lies in a rotated basis).
    Q = np.array([[0.6, -0.8], [0.8, 0.6]], dtype=np.float32)
    W = np.hstack([Q @ np.array([[1.0, 0.0, 0.0], [0.0, size, size]], dtype=np.float32)] * 2)
    per_block(5, 2)
    expected = exact_capacity(W.astype(np.float64))
    np.testing.assert_allclose(capopt.capacity(W), expected, rtol=RTOL, atol=0)


@pytest.mark.parametrize("feature_axis", [-2, -1])
def test_memmap_gives_the_in_memory_result(per_block, memmap_file, feature_axis):
    W = dictionary(20_000, 16, seed=4)
    W = W if feature_axis == -2 else np.ascontiguousarray(W.T)
    mapped, _ = memmap_file(W)
    in_memory = capopt.capacity(np.array(mapped), feature_axis=feature_axis)  # one block
    per_block(3_001, 16)
    C = capopt.capacity(mapped, feature_axis=feature_axis)
    np.testing.assert_allclose(C, in_memory, rtol=RTOL)
    np.testing.assert_allclose(C, capopt.capacity(W.astype(np.float64), feature_axis=feature_axis),
                               rtol=RTOL)
    np.testing.assert_array_equal(np.load(mapped.filename), W)  # read only, never written


def test_dask_gives_the_in_memory_result_chunk_by_chunk():
    da = pytest.importorskip("dask.array")
    W = dictionary(10_000, 12, seed=5)
    W[17] = 0.0
    lazy = da.from_array(W, chunks=(1_234, 5))  # the hidden axis is joined into one chunk
    expected = capopt.capacity_summary(W.astype(np.float64), feature_axis=-2)
    got = capopt.capacity_summary(lazy, feature_axis=-2)
    np.testing.assert_allclose(capopt.capacity(lazy, feature_axis=-2), expected.capacities, rtol=RTOL)
    np.testing.assert_allclose(got.capacities, expected.capacities, rtol=RTOL)
    np.testing.assert_allclose(got.leverage, expected.leverage, rtol=1e-9, atol=1e-15)
    assert got.rank == expected.rank == 12 and got.n_dead == expected.n_dead == 1


def test_dask_runs_on_the_users_distributed_client():
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    W = dictionary(4_000, 6, seed=6)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            C = capopt.capacity(da.from_array(W, chunks=(1_000, 6)), feature_axis=-2)
        assert len(stream.data) >= 3 * 4  # three passes over four chunks ran on the cluster
    np.testing.assert_allclose(C, capopt.capacity(W, feature_axis=-2), rtol=RTOL)


def test_import_capopt_does_not_import_dask():
    code = "import sys, capopt; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("layout", ["feature-hidden", "hidden-feature", "batched"])
def test_non_finite_entry_in_a_block_names_its_row(per_block, memmap_file, layout):
    W = dictionary(3_000, 8, seed=7)
    W[2_345, 3] = np.nan
    axis, index = -2, "(2345, 3)"
    if layout == "hidden-feature":
        W, axis, index = np.ascontiguousarray(W.T), -1, "(3, 2345)"
    elif layout == "batched":
        W, index = np.stack([np.zeros_like(W), W]), "(1, 2345, 3)"
    mapped, _ = memmap_file(W)
    per_block(100, 8, batch=W.ndim - 1)
    message = f"W must be finite, got nan at index {index} (feature 2345, hidden unit 3)"
    with pytest.raises(ValueError, match=re.escape(message)):
        capopt.capacity(mapped, feature_axis=axis)


def test_peak_memory_on_a_float32_memmap_is_below_half_the_file(memmap_file):
    mapped, path = memmap_file(dictionary(65_536, 256, seed=8))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        capopt.capacity(mapped, feature_axis=-2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * size, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"


def tight_frame_dictionary() -> np.ndarray:
    """d = 5: a monosemantic feature, two antipodal pairs, a triangle and two dead features."""
    W = np.zeros((5, 10))
    W[0, 0] = 1.0
    W[1, 1:3] = [1.0, -1.0]
    W[2, 3:5] = [2.0, -2.0]
    W[3:5, 5:8] = polygon(3)
    return W


def test_summary_reports_dead_features_tight_frame_fractions_and_fill(per_block):
    W = tight_frame_dictionary()
    summary = capopt.capacity_summary(W)
    np.testing.assert_array_equal(summary.dead, [False] * 8 + [True] * 2)
    assert summary.n_dead == 2
    near = dict(zip(range(1, TIGHT_FRAME_K + 1), summary.near_tight_frame))
    assert near[1] == pytest.approx(1 / 8) and near[2] == pytest.approx(4 / 8)
    assert sum(summary.near_tight_frame) == pytest.approx(5 / 8)  # 2/3 is no 1/k
    assert summary.fill == pytest.approx(1.0)  # block-semi-orthogonal: sum C = rank = 5
    # Live capacities 1, 1/2 (x 4) and 2/3 (x 3): the quartile is 1/2, the median halfway.
    quantiles = dict(zip(QUANTILE_LEVELS, summary.quantiles))
    assert quantiles[0.0] == pytest.approx(0.5) and quantiles[0.25] == pytest.approx(0.5)
    assert quantiles[0.5] == pytest.approx(7 / 12) and quantiles[1.0] == pytest.approx(1.0)
    text = summary.describe()
    assert "10: 8 live, 2 dead" in text and "sum C = 5.000000 of rank 5 (100.0%), d = 5" in text


def test_summary_of_a_large_dictionary_matches_the_in_memory_one(per_block):
    W = np.tile(tight_frame_dictionary(), 50) * np.repeat(np.linspace(0.5, 2, 50), 10)
    W = np.hstack([W, dictionary(200, 5, seed=9).T])
    expected = capopt.capacity_summary(W)  # in memory, leverage from one SVD
    per_block(77, 5)
    got = capopt.capacity_summary(W)  # block by block, leverage from a tall-skinny QR
    np.testing.assert_allclose(got.capacities, expected.capacities, rtol=RTOL)
    np.testing.assert_allclose(got.leverage, expected.leverage, rtol=1e-9, atol=1e-15)
    assert (got.rank, got.n_dead, got.dim) == (expected.rank, expected.n_dead, expected.dim) == (5, 100, 5)
    np.testing.assert_allclose(got.near_tight_frame, expected.near_tight_frame)
    np.testing.assert_allclose(got.quantiles, expected.quantiles, rtol=RTOL)


def test_summary_of_a_batch_has_one_distribution_per_matrix():
    W = np.stack([tight_frame_dictionary(), np.zeros((5, 10))])
    summary = capopt.capacity_summary(W)
    assert summary.quantiles.shape == (2, len(QUANTILE_LEVELS))
    assert summary.near_tight_frame.shape == (2, TIGHT_FRAME_K)
    np.testing.assert_array_equal(summary.n_dead, [2, 10])
    assert np.isnan(summary.quantiles[1]).all() and not summary.near_tight_frame[1].any()
    with pytest.raises(ValueError, match=r"describe\(\) needs a single embedding"):
        summary.describe()


def test_the_benchmarks_plain_chunked_baseline_is_the_formula():
    # bench/bench_capacity.py times capopt against it: it must compute the same numbers.
    from bench.bench_capacity import plain_chunked_capacity

    W = dictionary(1_000, 6, seed=10)
    np.testing.assert_allclose(plain_chunked_capacity(W, 300), reference_capacity(W.T), rtol=RTOL)
