"""Problems per second at N = 64: the numba sweep kernel against Python loops over solvers (issue 6).

Run from the repository root::

    python -m bench.bench_sweep [--problems 200000] [--loop 300] [--cvxpy 20]

One batch of convex quadratic-model problems (N = 64 features of random importances in
[0.05, 1], one kurtosis per problem drawn from [3.2, 40], d = 16: the polysemantic regime,
where water-filling does real work) is solved

1. by the numba kernel :func:`capopt.sweeps.kernels.solve_grid`, all problems in one call,
   on numba's threads (best of three runs);
2. by a Python loop over the numpy method, ``METHODS["waterfill"].run(quadratic(v, K), d)``;
3. by a Python loop over :func:`capopt.solve` (the same method, plus validation and the
   KKT certificate);
4. by a Python loop over ``METHODS["cvxpy"].run`` (Clarabel), if that method is registered.

The loops run on the first problems of the batch, and their answers are compared with the
kernel's. Compilation is excluded from every rate and reported on its own: a cold compile
in a fresh process with an empty numba cache, and the first call here (which loads the
cache). Targets (issue 6): at least 1e5 problems/s, and at least 50 times the numpy loop.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from capopt.curves import quadratic
from capopt.regimes import DEFAULT_REGIME_ATOL
from capopt.solvers import METHODS, solve
from capopt.sweeps import sweep
from capopt.sweeps.kernels import solve_grid

N_FEATURES = 64
BUDGET = 16.0
TARGET_RATE = 1e5
TARGET_RATIO = 50.0
ROOT = Path(__file__).resolve().parents[1]

_COLD_COMPILE = """
import time, numpy as np
from capopt.sweeps.kernels import solve_grid
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


def cold_compile_seconds() -> float:
    """First call in a fresh process whose numba cache is empty: the full compilation."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", _COLD_COMPILE], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def loop_rate(solve_one, v, K, d, count):
    """Problems per second of a Python loop over ``solve_one``, and its capacities."""
    C = np.empty((count, v.shape[1]))
    start = time.perf_counter()
    for p in range(count):
        C[p] = solve_one(quadratic(v[p], K[p]), float(d[p]))
    return count / (time.perf_counter() - start), C


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200_000,
                        help="problems for the kernel (default 200000)")
    parser.add_argument("--loop", type=int, default=300, help="problems for the numpy loops (default 300)")
    parser.add_argument("--cvxpy", type=int, default=20, help="problems for the cvxpy loop (default 20)")
    args = parser.parse_args(argv)

    v, n, K, d = problems(args.problems)
    print(f"# Sweep kernel vs Python loops: N = {N_FEATURES}, d = {BUDGET:g}, K ~ U[3.2, 40], "
          f"v ~ U[0.05, 1]\n")
    print(f"machine: {os.cpu_count()} CPUs, numba {numba.__version__} with {numba.get_num_threads()} "
          f"threads", end="")

    cold = cold_compile_seconds()
    start = time.perf_counter()
    solve_grid(v[:1], n[:1], K[:1], d[:1], DEFAULT_REGIME_ATOL)
    first = time.perf_counter() - start
    print(f" ({numba.threading_layer()} threading layer)")
    print(f"compilation (excluded below): cold compile {cold:.2f} s in a fresh process; first call "
          f"here {first:.3f} s (cache hits {sum(solve_grid.stats.cache_hits.values())})\n")

    timings = []
    for _ in range(3):
        start = time.perf_counter()
        C, lam, loss, counts = solve_grid(v, n, K, d, DEFAULT_REGIME_ATOL)
        timings.append(time.perf_counter() - start)
    kernel = args.problems / min(timings)

    start = time.perf_counter()
    ds = sweep(n_features=N_FEATURES, budget=BUDGET, importance_decay=np.linspace(0.9, 1.0, 200),
               kurtosis=np.linspace(3.2, 40.0, args.problems // 200))
    end_to_end = ds.multiplier.size / (time.perf_counter() - start)

    rows = [("numba kernel (solve_grid)", args.problems, kernel, 0.0)]
    rows.append(("sweep() end to end (v_i = r^i grid)", ds.multiplier.size, end_to_end, np.nan))
    count = min(args.loop, args.problems)
    rate, C_loop = loop_rate(lambda c, b: METHODS["waterfill"].run(c, b).capacities, v, K, d, count)
    numpy_rate = rate
    rows.append(('loop over METHODS["waterfill"].run', count, rate, np.max(np.abs(C_loop - C[:count]))))
    rate, C_loop = loop_rate(lambda c, b: solve(c, b).capacities, v, K, d, count)
    rows.append(("loop over capopt.solve", count, rate, np.max(np.abs(C_loop - C[:count]))))
    if "cvxpy" in METHODS:
        count = min(args.cvxpy, args.problems)
        rate, C_loop = loop_rate(lambda c, b: METHODS["cvxpy"].run(c, b).capacities, v, K, d, count)
        rows.append(('loop over METHODS["cvxpy"].run', count, rate, np.max(np.abs(C_loop - C[:count]))))
    else:
        print('METHODS["cvxpy"] is not registered (capopt/solvers/reference.py absent): cvxpy loop skipped\n')

    print(f"| {'route':<38} | {'problems':>8} | {'problems/s':>11} | {'kernel is':>10} "
          f"| {'max |dC| vs kernel':>18} |")
    print(f"|{'-' * 40}|{'-' * 10}|{'-' * 13}|{'-' * 12}|{'-' * 20}|")
    for name, count, rate, diff in rows:
        diff_text = "-" if not np.isfinite(diff) or name.startswith("numba") else f"{diff:.1e}"
        print(f"| {name:<38} | {count:>8} | {rate:>11.4g} | {kernel / rate:>9.1f}x | {diff_text:>18} |")
    ratio = kernel / numpy_rate
    print(f"\nkernel: {kernel:.3g} problems/s (target >= {TARGET_RATE:.0e}: "
          f"{'met' if kernel >= TARGET_RATE else 'MISSED'}); {ratio:.0f}x the numpy loop (target >= "
          f"{TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'MISSED'})")
    print("(rates on a shared machine vary from run to run; the kernel's is the best of 3 runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
