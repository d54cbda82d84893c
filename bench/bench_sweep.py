"""Part ``sweep``: problems per second at N = 64, the numba sweep kernel against Python loops.

Run with the suite (``python -m bench``) or alone (``python -m bench --only sweep``).

One batch of convex quadratic-model problems (N = 64 features of random importances in
[0.05, 1], one kurtosis per problem drawn from [3.2, 40], d = 16: the polysemantic regime,
where water-filling does real work) is solved

1. by the numba kernel :func:`capopt._kernels.grid.solve_grid`, all problems in one call,
   on numba's threads (median of runs after a warm-up, :func:`bench._common.timed`);
2. by :func:`numpy_batch_waterfill`, all problems in one set of numpy array operations:
   the fastest route a numpy user would write (sort each row, merge the breakpoints,
   total capacity at each by prefix sums, the segment holding the budget in closed form);
3. by :func:`capopt.sweep` end to end (the kernel plus building the dataset) on a grid of
   v_i = r^i and K of the same size, and the numpy batch on that grid's problems, so that
   sweep and batch solve the same problems;
4. by a Python loop over ``METHODS["waterfill"].run(Problem(quadratic(v, K), d))`` (the kernel
   behind :func:`capopt.solve`, called problem by problem);
5. by a Python loop over :func:`capopt.solve` (the same method, plus validation, scaling
   and the fused KKT certificate);
6. by a Python loop over ``METHODS["cvxpy"].run`` (Clarabel): the loop a cvxpy user writes.

The loops run on the first problems of the batch after one warm-up problem, and their
answers are compared with the kernel's. Compilation is excluded from every rate and
reported on its own: a cold compile in a fresh process with an empty numba cache, and the
first call here (which loads numba's on-disk cache).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np

from capopt.curves import quadratic
from capopt.regimes import DEFAULT_REGIME_ATOL
from capopt.solvers import METHODS, Problem, solve
from capopt.sweeps import sweep
from capopt._kernels.grid import solve_grid

from ._common import ROOT, markdown_table, ratio, seconds, timed

N_FEATURES = 64
BUDGET = 16.0

#: Problems per route: (kernel, numpy loops, cvxpy loop).
COUNTS = {"kernel": 200_000, "loop": 300, "cvxpy": 20}
QUICK_COUNTS = {"kernel": 2_000, "loop": 30, "cvxpy": 3}

_COLD_COMPILE = """
import time, numpy as np
from capopt._kernels.grid import solve_grid
args = (np.ones((1, 4)), np.array([4]), np.array([5.0]), np.array([2.0]), 1e-9)
t = time.perf_counter(); solve_grid(*args); print(time.perf_counter() - t)
"""


def problems(count: int, seed: int = 0):
    """The benchmark batch: importances (count, N), feature counts, kurtoses, budgets."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.05, 1.0, (count, N_FEATURES))
    n = np.full(count, N_FEATURES, dtype=np.int64)
    K = rng.uniform(3.2, 40.0, count)
    d = np.full(count, BUDGET)
    return v, n, K, d


def numpy_batch_waterfill(v: np.ndarray, K: np.ndarray, d: np.ndarray) -> np.ndarray:
    r"""Exact water-filling of P convex quadratic problems in numpy array operations.

    Row p holds the importances of a problem with one kurtosis ``K[p] > 3`` and budget
    ``d[p]``. In :math:`s = 1/\mu` each capacity is :math:`\mathrm{clip}(\beta (c w s -
    1), 0, 1)` with :math:`c = (K - 1)/2`, :math:`\beta = 2/(K - 3)`: it starts at
    :math:`s = 1/(c w)` and saturates at :math:`1/w`, both in the order of decreasing w.
    Sorting the 2N breakpoints of every row gives, by prefix sums, the total capacity at
    each; the first breakpoint past the budget closes the segment, solved in closed form.
    """
    P, N = v.shape
    c = (0.5 * (K - 1.0))[:, None]
    beta = (2.0 / (K - 3.0))[:, None]
    w = -np.sort(-v, axis=1)
    events = np.concatenate([1.0 / (c * w), 1.0 / w], axis=1)
    order = np.argsort(events, axis=1, kind="stable")
    s = np.take_along_axis(events, order, axis=1)
    is_start = order < N
    started = np.cumsum(is_start, axis=1)
    full = np.cumsum(~is_start, axis=1)
    prefix = np.concatenate([np.zeros((P, 1)), np.cumsum(w, axis=1)], axis=1)
    affine = np.take_along_axis(prefix, started, axis=1) - np.take_along_axis(prefix, full, axis=1)
    S = full + beta * (c * s * affine - (started - full))
    k = np.argmax(S > d[:, None], axis=1)
    before = np.maximum(k - 1, 0)[:, None]
    st = np.where(k > 0, np.take_along_axis(started, before, 1)[:, 0], 0)
    fu = np.where(k > 0, np.take_along_axis(full, before, 1)[:, 0], 0)
    rows = np.arange(P)
    W = prefix[rows, st] - prefix[rows, fu]
    with np.errstate(divide="ignore", invalid="ignore"):
        s_star = ((d - fu) / beta[:, 0] + (st - fu)) / (c[:, 0] * W)
    # No feature affine in the segment (the budget met exactly by whole features, up to
    # rounding): any s on the plateau, its left end.
    s_star = np.where(W > 0, s_star, s[rows, before[:, 0]])
    return np.clip(beta * (c * v * s_star[:, None] - 1.0), 0.0, 1.0)


def cold_compile_seconds() -> float:
    """First call in a fresh process whose numba cache is empty: the full compilation."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", _COLD_COMPILE], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def loop_rate(solve_one, v, K, d, count):
    """Problems per second of a Python loop over ``solve_one`` after one warm-up problem."""
    solve_one(quadratic(v[0], K[0]), float(d[0]))
    C = np.empty((count, v.shape[1]))
    start = time.perf_counter()
    for p in range(count):
        C[p] = solve_one(quadratic(v[p], K[p]), float(d[p]))
    return count / (time.perf_counter() - start), C


def run(quick: bool = False) -> dict:
    counts = QUICK_COUNTS if quick else COUNTS
    v, n, K, d = problems(counts["kernel"])
    # The cold compile is seconds of numba work in a subprocess: the quick run skips it.
    cold = None if quick else cold_compile_seconds()
    start = time.perf_counter()
    solve_grid(v[:1], n[:1], K[:1], d[:1], DEFAULT_REGIME_ATOL)
    first = time.perf_counter() - start

    timing, (C, *_) = timed(lambda: solve_grid(v, n, K, d, DEFAULT_REGIME_ATOL))
    kernel = counts["kernel"] / timing.seconds
    rows = [dict(route="numba kernel (solve_grid)", problems=counts["kernel"], rate=kernel,
                 runs=timing.runs, dC=None)]
    timing, C_batch = timed(lambda: numpy_batch_waterfill(v, K, d), repeats=3)
    rows.append(dict(route="numpy batch water-filling (same batch)", problems=counts["kernel"],
                     rate=counts["kernel"] / timing.seconds, runs=timing.runs,
                     dC=float(np.max(np.abs(C_batch - C)))))

    grid = (np.linspace(0.9, 1.0, 200), np.linspace(3.2, 40.0, max(1, counts["kernel"] // 200)))
    timing, ds = timed(lambda: sweep(n_features=N_FEATURES, budget=BUDGET,
                                     importance_decay=grid[0], kurtosis=grid[1]), repeats=3)
    rows.append(dict(route="capopt.sweep() end to end (v_i = r^i grid)",
                     problems=int(ds.multiplier.size), rate=ds.multiplier.size / timing.seconds,
                     runs=timing.runs, dC=None))
    r, k = np.meshgrid(grid[0], grid[1], indexing="ij")
    v_grid = r.reshape(-1, 1) ** np.arange(N_FEATURES)
    K_grid = k.ravel()
    timing, C_grid = timed(
        lambda: numpy_batch_waterfill(v_grid, K_grid, np.full(K_grid.size, BUDGET)), repeats=3)
    swept = ds.capacity.transpose("importance_decay", "kurtosis", "feature").values.reshape(-1, N_FEATURES)
    rows.append(dict(route="numpy batch water-filling (the sweep's grid)", problems=int(K_grid.size),
                     rate=K_grid.size / timing.seconds, runs=timing.runs,
                     dC=float(np.max(np.abs(C_grid - swept)))))

    loops = [
        ('loop over METHODS["waterfill"].run', counts["loop"],
         lambda c, b: METHODS["waterfill"].run(Problem(c, b)).capacities),
        ("loop over capopt.solve", counts["loop"], lambda c, b: solve(c, b).capacities),
        ('loop over METHODS["cvxpy"].run (Clarabel)', counts["cvxpy"],
         lambda c, b: METHODS["cvxpy"].run(Problem(c, b)).capacities),
    ]
    for route, count, solve_one in loops:
        rate, C_loop = loop_rate(solve_one, v, K, d, count)
        rows.append(dict(route=route, problems=count, rate=rate, runs=1,
                         dC=float(np.max(np.abs(C_loop - C[:count])))))
    return {"rows": rows, "compile": {"cold": cold, "first_call": first},
            "threads": numba.get_num_threads(), "threading_layer": numba.threading_layer()}


def report(results: dict) -> str:
    rows = results["rows"]
    kernel = rows[0]["rate"]
    rate = {r["route"]: r["rate"] for r in rows}
    sweep_vs_batch = (rate["capopt.sweep() end to end (v_i = r^i grid)"]
                      / rate["numpy batch water-filling (the sweep's grid)"])
    table = [[r["route"], str(r["problems"]), f"{r['rate']:.3g}", ratio(kernel / r["rate"]),
              "-" if r["dC"] is None else f"{r['dC']:.1e}"] for r in rows]
    compile_ = results["compile"]
    cold = "not measured (quick run)" if compile_["cold"] is None else seconds(compile_["cold"])
    return "\n".join([
        f"N = {N_FEATURES}, d = {BUDGET:g}, K ~ U[3.2, 40], v ~ U[0.05, 1]; numba on "
        f"{results['threads']} threads ({results['threading_layer']} layer).\n",
        markdown_table(["route", "problems", "problems/s", "kernel is", "max abs dC vs kernel"],
                       table, "lrrrr"),
        f"\n`capopt.sweep()` end to end solves {ratio(sweep_vs_batch)} as many of its grid's "
        "problems per second as the numpy batch water-filling of the same problems.",
        f"\nCompilation, excluded above: cold compile {cold} in a fresh process with an empty "
        f"numba cache; first call here {seconds(compile_['first_call'])} (cache load).",
    ])
