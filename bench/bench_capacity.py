"""Part ``capacity``: capacities of dictionary-sized float32 embeddings, memory-mapped.

Run alone with ``python -m bench --only capacity`` (it is not among the default parts).

Each case writes a float32 ``W[feature, hidden]`` of N x d random normal entries to a
``.npy`` file in a temporary directory and opens it with ``np.load(..., mmap_mode="r")``,
as a sparse-autoencoder decoder is read from disk. Then, in the same run:

* **capopt**: ``capopt.capacity(W, feature_axis=-2)``, timed by the suite's protocol
  (:func:`bench._common.timed`);
* **plain chunked numpy**: the same formula written directly, :func:`plain_chunked_capacity`
  (``M = sum X X^T`` over blocks of features in float64, then ``C_i = ||X_i||^4 / X_i^T M
  X_i``), with capopt's block size; no exponent groups, no checks. The ratio of the two
  is the price of capopt's exactness across magnitudes and its validation (target <= 1.5x);
* **floor**: ``2 N d^2`` flops (the product ``X M`` of the second pass, for every
  feature) at this machine's float64 matrix-product rate, measured on that product for
  one block;
* **peak memory above the input**: the :mod:`tracemalloc` peak of one more call of capopt
  (numpy reports its buffers to tracemalloc). The memory-mapped file's pages are the input
  and are not traced; the resident set is not used because it counts them. Target <= 0.5x
  the file size. The same figure is given for the plain implementation.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

import capopt
from capopt import _blocks

from ._common import markdown_table, progress, ratio, seconds, timed, traced_peak

#: (N, d) of the cases; ``--quick`` uses the smaller ones.
SIZES = ((131_072, 256), (65_536, 1024))
QUICK_SIZES = ((16_384, 128), (8_192, 256))


def features_per_block(d: int) -> int:
    """capopt's block size for a single d x N matrix (see :data:`capopt._blocks.BLOCK_BYTES`)."""
    return max(_blocks.BLOCK_BYTES // (8 * d), 1)


def plain_chunked_capacity(W: np.ndarray, chunk: int) -> np.ndarray:
    """``C_i = G_ii^2 / sum_j G_ij^2`` of ``W[feature, hidden]``, in two passes over blocks of
    ``chunk`` features: ``M = W^T W`` (d x d) in float64, then ``||W_i||^4 / W_i M W_i^T``."""
    N, d = W.shape
    M = np.zeros((d, d))
    for start in range(0, N, chunk):
        X = W[start:start + chunk].astype(np.float64)
        M += X.T @ X
    C = np.empty(N)
    for start in range(0, N, chunk):
        X = W[start:start + chunk].astype(np.float64)
        own = np.einsum("ij,ij->i", X, X)
        C[start:start + chunk] = own * own / np.einsum("ij,ij->i", X @ M, X)
    return C


def matmul_rate(d: int, chunk: int) -> float:
    """Float64 flops per second of the product ``X M`` of a block (``chunk`` x d) and a
    d x d matrix, ``2 chunk d^2`` flops (best of 5)."""
    rng = np.random.default_rng(0)
    X, M = rng.normal(size=(chunk, d)), rng.normal(size=(d, d))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        X @ M
        best = min(best, time.perf_counter() - start)
    return 2 * chunk * d * d / best


def write_memmap(path: Path, n: int, d: int, seed: int = 0) -> np.ndarray:
    """A float32 N x d random normal ``.npy`` written block by block; returned memory-mapped."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    step = features_per_block(d)
    for start in range(0, n, step):
        out[start:start + step] = rng.standard_normal((min(step, n - start), d), dtype=np.float32)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def measure(W: np.ndarray, path: Path) -> dict:
    n, d = W.shape
    chunk = features_per_block(d)
    ours, C = timed(lambda: capopt.capacity(W, feature_axis=-2), repeats=3, budget=20.0)
    plain, C_plain = timed(lambda: plain_chunked_capacity(W, chunk), repeats=3, budget=20.0)
    floor = 2 * n * d * d / matmul_rate(d, chunk)
    size = path.stat().st_size
    peak = traced_peak(lambda: capopt.capacity(W, feature_axis=-2))
    plain_peak = traced_peak(lambda: plain_chunked_capacity(W, chunk))
    return dict(n=n, d=d, file_bytes=size, seconds=ours.seconds, runs=ours.runs,
                plain_seconds=plain.seconds, floor_seconds=floor, peak_bytes=peak,
                plain_peak_bytes=plain_peak, vs_plain=ours.seconds / plain.seconds,
                vs_floor=ours.seconds / floor, peak_vs_file=peak / size,
                max_rel_diff=float(np.max(np.abs(C / C_plain - 1))))


def run(quick: bool = False) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="capopt-bench-") as tmp:
        for n, d in QUICK_SIZES if quick else SIZES:
            path = Path(tmp) / f"W_{n}x{d}.npy"
            row = measure(write_memmap(path, n, d), path)
            path.unlink()
            rows.append(row)
            progress(f"  capacity: {n} x {d} float32: {seconds(row['seconds'])} "
                     f"({ratio(row['vs_plain'])} plain chunked numpy, {ratio(row['vs_floor'])} "
                     f"floor), peak {row['peak_bytes'] / 2**20:.1f} MiB "
                     f"({row['peak_vs_file']:.3f}x the file)")
    return {"rows": rows}


def _mib(x: float) -> str:
    return f"{x / 2**20:,.1f}"


def report(results: dict) -> str:
    table = [[f"{r['n']:,} x {r['d']}", _mib(r["file_bytes"]), seconds(r["seconds"]),
              seconds(r["plain_seconds"]), ratio(r["vs_plain"]), seconds(r["floor_seconds"]),
              ratio(r["vs_floor"]), _mib(r["peak_bytes"]), f"{r['peak_vs_file']:.3f}x",
              _mib(r["plain_peak_bytes"]), f"{r['max_rel_diff']:.1e}"]
             for r in results["rows"]]
    return (
        "float32 `W[feature, hidden]` memory-mapped from a `.npy` file; peak memory is the "
        "tracemalloc peak above the input (targets: <= 1.5x plain chunked numpy, <= 0.5x "
        "the file).\n\n"
        + markdown_table(["N x d", "file (MiB)", "capopt", "plain chunked", "vs plain",
                          "floor 2Nd^2", "vs floor", "peak (MiB)", "peak / file",
                          "plain peak (MiB)", "max rel diff"], table, "lrrrrrrrrrr")
    )
