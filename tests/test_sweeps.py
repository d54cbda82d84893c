"""Sweeps (issue 6): numba kernels against independent routes, datasets, checkpoints, executors.

Reference values: the exact brute force of ``tests/brute_force.py`` (rational arithmetic,
shares no code with capopt) for problems of up to six features; for the bench size, the
theory §3 closed form with its level bisected in 50-digit mpmath (K > 3) and the numpy
vertex method, a separate implementation of the vertex rule (K <= 3); and the KKT
certificate of :func:`capopt.solvers.certify`, recomputed from the curves.
"""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numba
import numpy as np
import pytest
import xarray as xr
from hypothesis import example, given, strategies as st

import brute_force
import capopt.sweeps.grid as grid_module
from capopt.curves import gated_kurtosis, quadratic
from capopt.regimes import DEFAULT_REGIME_ATOL, Regime, classify
from capopt.solvers import certify
from capopt._kernels import grid as kernels, vertex
from capopt.sweeps import CheckpointWarning, load_sweep, save_sweep, sweep
from capopt.testing import KURTOSIS_RANGES
from references import best_vertex, closed_form

ROOT = Path(__file__).resolve().parents[1]

#: Kernel and reference are two exact routes: they differ by rounding only, a few ulps
#: amplified by at most 1/(K - 3) <= 5 for the convex kurtoses drawn here.
EXACT = 1e-12
#: Certificate tolerance of the exact methods (METHODS["waterfill"].tol).
CERTIFIED = 1e-9

kurtosis_values = st.one_of(
    st.floats(*KURTOSIS_RANGES["convex"]),
    st.floats(*KURTOSIS_RANGES["concave"]),
    st.sampled_from([1.0, 2.0, 3.0, 5.0]),
)
importance_values = st.one_of(st.floats(0.05, 10.0), st.sampled_from([-1.0, 0.0, 1.0, 2.0]))


@st.composite
def grids(draw, max_problems=12, max_features=6):
    """(v padded to W with NaN, n, K, d): problems of 1..W features, one kurtosis each."""
    P = draw(st.integers(1, max_problems))
    W = draw(st.integers(1, max_features))
    v = np.full((P, W), np.nan)
    n = np.empty(P, dtype=np.int64)
    K = np.empty(P)
    d = np.empty(P)
    for p in range(P):
        m = n[p] = draw(st.integers(1, W))
        v[p, :m] = draw(st.lists(importance_values, min_size=m, max_size=m))
        K[p] = draw(kurtosis_values)
        d[p] = draw(st.one_of(st.floats(0.0, m + 1.0), st.integers(0, m + 1).map(float)))
    return v, n, K, d


def check_against_brute_force(v, n, K, d, C, lam, loss, counts):
    """Optimal loss and feasibility against the exact brute force; counts against C."""
    for p in range(v.shape[0]):
        vp, Cp = v[p, : n[p]], C[p, : n[p]]
        where = f"problem {p}: v={vp.tolist()}, K={K[p]}, d={d[p]}"
        optimum = brute_force.quadratic_optimum(vp, K[p], d[p])
        assert brute_force.feasibility_violation(Cp, d[p]) <= EXACT * max(d[p], 1.0), where
        scale = float(np.sum(quadratic(vp, K[p]).loss_range())) or 1.0
        assert float(brute_force.quadratic_loss(vp, K[p], np.clip(Cp, 0, 1)) - optimum.loss) <= EXACT * scale, where
        assert np.all(np.isnan(C[p, n[p]:])), where
        assert loss[p] == pytest.approx(quadratic(vp, K[p]).total_loss(Cp), rel=EXACT, abs=EXACT), where
        regimes = classify(Cp)
        assert counts[p].tolist() == [regimes.count(r) for r in Regime], where


def one_problem(v, K, d):
    v = np.array([v], dtype=np.float64)
    return v, np.array([v.shape[1]]), np.array([K]), np.array([d])


@given(grids())
# Found by a random check: a flat total capacity at a whole budget (feature 0 saturates
# before feature 1 starts); rounding at the saturation must not stop the walk there.
@example(one_problem([2.26673616, 1.70697984, 1.47860759, 0.1548953, 1.35556188, 0.856066], 3.5, 1.0))
@example(one_problem([2.0, 1.0], 7.0, 1.0))  # theory §3 worked case
@example(one_problem([1.0, 1.0, 1.0], 3.0, 1.5))  # linear ties: index order
@example(one_problem([1.0, 1.0, 1.0], 2.0, 1.5))  # concave ties: index order
@example(one_problem([-1.0, 0.0, 2.0], 7.0, 0.0))  # flat features, no budget
@example(one_problem([1.0, 0.3125], 1.21875, 2.220446049250313e-16))  # a fraction of one ulp
def test_kernel_matches_the_brute_force(grid):
    v, n, K, d = grid
    check_against_brute_force(v, n, K, d, *kernels.solve_grid(v, n, K, d, DEFAULT_REGIME_ATOL))


def test_kernel_matches_independent_routes_at_bench_size():
    # N = 64 as in bench/bench_sweep.py: long breakpoint walks. Convex problems against the
    # closed form in mpmath, concave and linear ones against the naive numpy exchange of
    # tests/references.py on the gains of theory §3's curve, l(C) = 2 (K - 1) v^2 (1 - C) /
    # (2 + (K - 3) C), written out here.
    rng = np.random.default_rng(6)
    P, W = 60, 64
    v = rng.uniform(0.05, 3.0, (P, W))
    n = rng.integers(W // 2, W + 1, P)
    K = rng.choice([1.5, 2.5, 3.0, 3.5, 7.0, 30.0], P)
    d = rng.uniform(0.0, W + 1.0, P) * rng.choice([1.0, 0.3, 0.05], P)
    d[::3] = np.floor(d[::3])
    C, lam, loss, counts = kernels.solve_grid(v, n, K, d, DEFAULT_REGIME_ATOL)
    for p in range(P):
        vp = v[p, : n[p]]
        if K[p] > 3:
            expected = closed_form(vp, K[p], d[p])[0]
        else:
            k = min(int(np.floor(d[p])), vp.size)
            f = d[p] - k if k < vp.size else 0.0
            gain = (K[p] - 1) * vp**2
            part = gain - 2 * (K[p] - 1) * vp**2 * (1 - f) / (2 + (K[p] - 3) * f)
            expected = best_vertex(gain, part, k, f)[0]
        where = f"problem {p}: K={K[p]}, d={d[p]}"
        np.testing.assert_allclose(C[p, : n[p]], expected, rtol=0, atol=EXACT, err_msg=where)
        curves = quadratic(vp, K[p])
        assert certify(curves, C[p, : n[p]], lam[p], d[p]).worst <= CERTIFIED or K[p] <= 3, where


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="compares the compiled kernel with its Python body")
def test_kernel_runs_as_plain_python():
    """The Python bodies give the compiled answer (what NUMBA_DISABLE_JIT=1 would run)."""
    v = np.array([[2.0, 1.0, 0.5, np.nan], [3.0, 1.0, 2.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
    n = np.array([3, 4, 4])
    K = np.array([7.0, 1.8, 3.0])
    d = np.array([1.0, 1.5, 2.5])
    compiled = kernels.solve_grid(v, n, K, d, DEFAULT_REGIME_ATOL)
    python = kernels.solve_grid.py_func(v, n, K, d, DEFAULT_REGIME_ATOL)
    for a, b in zip(compiled, python):
        np.testing.assert_array_equal(a, b)
    C, C_python = np.empty(3), np.empty(3)
    assert vertex.vertex(v[1, :3], 1.8, 1.5, C) == vertex.vertex.py_func(v[1, :3], 1.8, 1.5, C_python)
    np.testing.assert_array_equal(C, C_python)
    check_against_brute_force(v, n, K, d, *python)


def test_kernel_without_jit_in_a_fresh_process():
    """With NUMBA_DISABLE_JIT=1 every kernel, inner ones included, runs as plain Python."""
    code = (
        "import json, numpy as np\n"
        "from capopt._kernels.grid import solve_grid\n"
        "C, lam, loss, counts = solve_grid(np.array([[2.0, 1.0], [3.0, 1.0]]), np.array([2, 2]),"
        " np.array([7.0, 1.8]), np.array([1.0, 1.5]), 1e-9)\n"
        "print(json.dumps([C.tolist(), lam.tolist(), counts.tolist()]))\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    C, lam, counts = json.loads(out)
    # theory §3 worked case (C = (5/6, 1/6), lam = 81/8), and a concave vertex with its fraction.
    np.testing.assert_allclose(C, [[5 / 6, 1 / 6], [1.0, 0.5]], rtol=0, atol=EXACT)
    assert lam[0] == pytest.approx(81 / 8, rel=EXACT)
    assert counts == [[0, 2, 0], [1, 1, 0]]


# The dataset --------------------------------------------------------------------------


def test_sweep_labels_the_grid_and_matches_the_solver():
    ds = sweep(n_features=[2, 5], budget=[0.5, 3.0], importance_decay=0.8, kurtosis=[2.0, 7.0])
    assert ds.capacity.dims == ("n_features", "budget", "kurtosis", "feature")
    assert ds.multiplier.dims == ("n_features", "budget", "kurtosis")
    assert ds.importance_decay.ndim == 0 and ds.sizes["feature"] == 5
    for n in (2, 5):
        for d in (0.5, 3.0):
            for K in (2.0, 7.0):
                point = ds.sel(n_features=n, budget=d, kurtosis=K)
                optimum = brute_force.quadratic_optimum(0.8 ** np.arange(n), K, d)
                expected = np.array([float(c) for c in optimum.capacities])
                np.testing.assert_allclose(point.capacity[:n], expected, atol=EXACT)
                assert np.all(np.isnan(point.capacity[n:]))
                assert float(point.loss) == pytest.approx(float(optimum.loss), rel=EXACT)
                assert int(point.monosemantic + point.polysemantic + point.ignored) == n


def test_density_sets_kurtosis_coordinate():
    ds = sweep(n_features=4, budget=2, density=[0.1, 0.5, 1.0], base="uniform")
    np.testing.assert_array_equal(ds.kurtosis, gated_kurtosis(np.array([0.1, 0.5, 1.0]), "uniform"))
    assert ds.kurtosis.dims == ("density",) and ds.attrs["base"] == "uniform"


def test_saved_sweep_loads_identical(tmp_path):
    ds = sweep(n_features=[3, 6], budget=2.5, importance_decay=[0.5, 0.9], density=[0.05, 1.0])
    save_sweep(ds, tmp_path / "sweep.nc")
    xr.testing.assert_identical(load_sweep(tmp_path / "sweep.nc"), ds)
    assert not list(tmp_path.glob("*.tmp"))


def test_result_does_not_depend_on_chunking():
    grid = dict(n_features=[1, 4, 9], budget=[0.0, 1.5, 4.0], importance_decay=[0.6, 1.0],
                kurtosis=[1.5, 3.0, 12.0])
    xr.testing.assert_identical(sweep(**grid, chunk_size=1), sweep(**grid))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(kurtosis=5.0, density=0.5), "exactly one of kurtosis"),
        (dict(), "got neither"),
        (dict(kurtosis=0.5), "kurtosis must be >= 1"),
        (dict(density=[0.5, 1.5]), "density must lie in (0, 1]"),
        (dict(kurtosis=5.0, importance_decay=0.0), "importance_decay must lie in (0, 1]"),
        (dict(kurtosis=5.0, budget=-1.0), "budget must be >= 0"),
        (dict(kurtosis=5.0, n_features=2.5), "n_features must be whole numbers"),
        (dict(kurtosis=[5.0, 5.0]), "must not repeat a value"),
        (dict(kurtosis=[[5.0]]), "scalar or a 1-d sequence"),
        (dict(kurtosis=np.nan), "kurtosis must be finite"),
        (dict(density=0.5, base="laplace"), "base must be one of"),
        (dict(kurtosis=5.0, chunk_size=0), "chunk_size must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_named_in_the_error(arguments, message):
    arguments = {"n_features": 4, "budget": 2.0, **arguments}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        sweep(**arguments)


def test_executor_must_be_an_executor():
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        sweep(n_features=2, budget=1, kurtosis=5.0, executor=object())


def test_progress_bar_reports_problems(capsys):
    sweep(n_features=2, budget=1, kurtosis=[4.0, 5.0, 6.0], chunk_size=1, progress=True)
    err = capsys.readouterr().err
    assert "capopt sweep" in err and "3/3" in err


# Executors ----------------------------------------------------------------------------

GRID = dict(n_features=[8, 16], budget=[2.0, 3.5], importance_decay=[0.7, 0.95], density=[0.02, 0.3, 1.0])


def test_thread_pool_gives_the_in_process_result():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        xr.testing.assert_identical(sweep(**GRID, chunk_size=5, executor=pool), sweep(**GRID))


def test_dask_cluster_gives_the_in_process_result(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        ds = sweep(**GRID, chunk_size=5, executor=client.get_executor(), checkpoint=tmp_path)
    xr.testing.assert_identical(ds, sweep(**GRID))
    assert len(list(tmp_path.glob("chunk-*.npz"))) == 5


# Checkpoints --------------------------------------------------------------------------

RESUME_GRID = dict(n_features=[6, 12], budget=[1.0, 2.5, 4.0], importance_decay=[0.8, 0.9, 1.0],
                   kurtosis=[1.5, 2.0, 3.0, 4.0, 8.0, 20.0, 40.0])  # 126 problems
RESUME_CHUNK = 9  # 14 chunks

#: Run by the killed process: a sweep whose chunks each take a while, so that the test can
#: stop it after some but not all chunks are on disk.
SLOW_SWEEP = """
import json, sys, time
import capopt.sweeps.grid as S
solve = S._solve_chunk
def slow(*args):
    time.sleep(0.25)
    return solve(*args)
S._solve_chunk = slow
S.sweep(**json.loads(sys.argv[2]), checkpoint=sys.argv[1], chunk_size=int(sys.argv[3]))
"""


class CountingChunks:
    """Stands in for the chunk solver and counts the chunks actually solved."""

    def __init__(self, solve):
        self.solve = solve
        self.solved = 0

    def __call__(self, *args):
        self.solved += 1
        return self.solve(*args)


@pytest.fixture
def counted(monkeypatch):
    counter = CountingChunks(grid_module._solve_chunk)
    monkeypatch.setattr(grid_module, "_solve_chunk", counter)
    return counter


def _chunk_files(directory: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in directory.glob("chunk-*.npz")}


def test_killed_sweep_resumes_without_recomputing_finished_chunks(tmp_path, counted):
    n_chunks = -(-126 // RESUME_CHUNK)
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_SWEEP, str(tmp_path), json.dumps(RESUME_GRID), str(RESUME_CHUNK)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while len(_chunk_files(tmp_path)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.kill()
    process.wait()
    before = _chunk_files(tmp_path)
    assert 3 <= len(before) < n_chunks, f"kill came too late or too early: {len(before)} chunks"

    ds = sweep(**RESUME_GRID, checkpoint=tmp_path, chunk_size=RESUME_CHUNK)
    after = _chunk_files(tmp_path)
    assert counted.solved == n_chunks - len(before)
    assert {name: after[name] for name in before} == before, "a finished chunk was rewritten"
    assert len(after) == n_chunks and not list(tmp_path.glob(".*.tmp"))
    xr.testing.assert_identical(ds, sweep(**RESUME_GRID, chunk_size=RESUME_CHUNK))

    counted.solved = 0
    xr.testing.assert_identical(sweep(**RESUME_GRID, checkpoint=tmp_path, chunk_size=RESUME_CHUNK), ds)
    assert counted.solved == 0


def test_checkpoint_of_another_sweep_is_refused_naming_what_differs(tmp_path):
    sweep(n_features=4, budget=2, kurtosis=[4.0, 5.0], checkpoint=tmp_path)
    with pytest.raises(ValueError, match=r"holds a different sweep \(its manifest.json: "
                                         r"grid.kurtosis is \[4.0, 5.0\] there, \[4.0, 6.0\] here"):
        sweep(n_features=4, budget=2, kurtosis=[4.0, 6.0], checkpoint=tmp_path)
    with pytest.raises(ValueError, match="holds a different sweep .*chunk_size is 65536 there, 1 here"):
        sweep(n_features=4, budget=2, kurtosis=[4.0, 5.0], checkpoint=tmp_path, chunk_size=1)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is unreadable"),
    ("[1, 2]", "is not a capopt sweep manifest"),
    ('{"format": 1, "grid": {}}', "is of checkpoint format 1, this capopt reads format 2"),
])
def test_unusable_manifest_is_refused_by_name(tmp_path, text, message):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ValueError, match=f"manifest '{tmp_path / 'manifest.json'}' {message}"):
        sweep(n_features=4, budget=2, kurtosis=[4.0, 5.0], checkpoint=tmp_path)


def _copy_chunk_11_over_10(directory: Path, other: Path) -> None:
    (directory / "chunk-000010.npz").write_bytes((directory / "chunk-000011.npz").read_bytes())


def _truncate(directory: Path, other: Path) -> None:
    path = directory / "chunk-000010.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(directory: Path, other: Path) -> None:
    path = directory / "chunk-000010.npz"
    with zipfile.ZipFile(path) as z:
        member = z.getinfo("capacity.npy")
    data = bytearray(path.read_bytes())
    data[member.header_offset + member.compress_size // 2] ^= 0xFF  # inside the capacities
    path.write_bytes(bytes(data))


def _take_another_sweeps_chunk(directory: Path, other: Path) -> None:
    sweep(**dict(RESUME_GRID, importance_decay=[0.6, 0.8, 0.95]), checkpoint=other, chunk_size=RESUME_CHUNK)
    (directory / "chunk-000010.npz").write_bytes((other / "chunk-000010.npz").read_bytes())


def _edit_the_data(directory: Path, other: Path) -> None:
    # A well-formed file with its header kept and one capacity changed.
    path = directory / "chunk-000010.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["capacity"][0, 0] += 0.25
    np.savez(path, **arrays)


def _drop_the_header(directory: Path, other: Path) -> None:
    path = directory / "chunk-000010.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "__chunk__"}
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage, reason", [
    (_copy_chunk_11_over_10, r"holds chunk 11, not chunk 10"),
    (_truncate, r"is unreadable, truncated or corrupt"),
    (_flip_a_byte, r"is unreadable, truncated or corrupt|does not match its checksum"),
    (_take_another_sweeps_chunk, r"belongs to a different sweep"),
    (_edit_the_data, r"does not match its checksum"),
    (_drop_the_header, r"has no chunk header"),
])
def test_damaged_chunk_is_named_and_solved_again_never_merged(tmp_path, counted, damage, reason):
    directory = tmp_path / "checkpoint"
    sweep(**RESUME_GRID, checkpoint=directory, chunk_size=RESUME_CHUNK)
    damage(directory, tmp_path / "other")
    counted.solved = 0
    with pytest.warns(CheckpointWarning) as record:
        ds = sweep(**RESUME_GRID, checkpoint=directory, chunk_size=RESUME_CHUNK)
    [message] = [str(w.message) for w in record if w.category is CheckpointWarning]
    assert f"checkpoint chunk '{directory / 'chunk-000010.npz'}'" in message
    assert re.search(reason, message), message
    assert message.endswith("solving chunk 10 again")
    assert counted.solved == 1
    xr.testing.assert_identical(ds, sweep(**RESUME_GRID, chunk_size=RESUME_CHUNK))

    # The chunk solved again was rewritten whole: the next run trusts every file.
    counted.solved = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        xr.testing.assert_identical(sweep(**RESUME_GRID, checkpoint=directory, chunk_size=RESUME_CHUNK), ds)
    assert counted.solved == 0
