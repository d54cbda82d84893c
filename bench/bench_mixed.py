"""Part ``mixed``: the mixed-family global method on its worst seeds, in time and memory.

Run with the suite (``python -m bench``) or alone (``python -m bench --only mixed``).

The family of part ``solvers``' mixed series -- importances pareto(1.5) + 0.01 from seed 0,
kurtoses K ~ U(1.2, 10) from seed s, d = N / 4 -- over many seeds s: on a few of them the
structured method once walked every concave rank between the boundary and the first
bound above the best (quadratic time; seeds 17 and 25 at N = 1e5). Each seed is timed
against the convex water-filling of the same importances (K = 5, same budget) in the same
run, both through :func:`capopt.solve`; a ratio is the median of its repeats over the
convex solve's median. Reported: the worst and the median ratio over the seeds, and the
seed of the worst.

Memory at the largest N: the peak traced by :mod:`tracemalloc` (numpy's and numba's
buffers) during one :func:`capopt.solve` of the mixed family and during
:func:`capopt.sensitivity` of its result, over the size of the importance array (8 N bytes),
in a fresh process each.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from capopt.curves import quadratic
from capopt.solvers import solve

from ._common import ROOT, load_average, markdown_table, progress, ratio, seconds, timed, traced_peak

#: (N, seeds) timed; the quick run's below.
SERIES = ((10**5, 40), (10**6, 10))
QUICK_SERIES = ((10**4, 4),)
MEMORY_N = 10**7
QUICK_MEMORY_N = 10**5
#: Seeds of the memory measurement.
MEMORY_SEEDS = (0, 17, 25)


def importances(n: int) -> np.ndarray:
    return np.random.default_rng(0).pareto(1.5, n) + 0.01


def kurtoses(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(1.2, 10.0, n)


def _ratios(n: int, n_seeds: int) -> dict:
    v = importances(n)
    convex = quadratic(v, 5.0)
    rows = []
    for seed in range(n_seeds):
        mixed = quadratic(v, kurtoses(n, seed))
        base, _ = timed(lambda: solve(convex, n / 4), repeats=5, budget=3.0)
        timing, result = timed(lambda: solve(mixed, n / 4, throw=False), repeats=5, budget=3.0)
        rows.append(dict(seed=seed, seconds=timing.seconds, convex=base.seconds,
                         ratio=timing.seconds / base.seconds, status=result.status.name,
                         ties=len(result.alternatives)))
    ratios = np.array([r["ratio"] for r in rows])
    worst = rows[int(np.argmax(ratios))]
    progress(f"  mixed: N = {n:.0e}, {n_seeds} seeds: worst {ratio(worst['ratio'])} (seed "
             f"{worst['seed']}), median {ratio(float(np.median(ratios)))}")
    return dict(n=n, seeds=n_seeds, worst=worst, median=float(np.median(ratios)),
                minimum=float(ratios.min()), optimal=sum(r["status"] == "OPTIMAL" for r in rows),
                with_ties=sum(r["ties"] > 0 for r in rows), rows=rows)


def _child(n: int, seed: int) -> dict:
    """Peak memory of one mixed solve and of its sensitivities (in this process)."""
    from capopt import sensitivity

    small = quadratic(importances(100), kurtoses(100, seed))
    sensitivity(small, 25.0)  # compile and import everything first
    v = importances(n)
    curves = quadratic(v, kurtoses(n, seed))
    held = []
    solve_peak = traced_peak(lambda: held.append(solve(curves, n / 4)))
    result = held[0]
    sens_peak = traced_peak(lambda: sensitivity(curves, n / 4, result=result))
    return dict(n=n, seed=seed, solve=solve_peak / v.nbytes, sensitivity=sens_peak / v.nbytes,
                ties=len(result.alternatives))


def _memory(n: int) -> list[dict]:
    rows = []
    for seed in MEMORY_SEEDS:
        out = subprocess.run([sys.executable, "-m", "bench.bench_mixed", "--child", str(n), str(seed)],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        progress(f"  mixed memory: N = {n:.0e}, seed {seed}: solve {rows[-1]['solve']:.2f}x, "
                 f"sensitivity {rows[-1]['sensitivity']:.2f}x the importances")
    return rows


def run(quick: bool = False) -> dict:
    load = load_average()
    series = [_ratios(n, s) for n, s in (QUICK_SERIES if quick else SERIES)]
    memory = _memory(QUICK_MEMORY_N if quick else MEMORY_N)
    return dict(series=series, memory=memory, load_before=load, load_after=load_average())


def report(results: dict) -> str:
    time_rows = [[f"{s['n']:.0e}", f"0-{s['seeds'] - 1}", ratio(s["worst"]["ratio"]),
                  str(s["worst"]["seed"]), ratio(s["median"]), ratio(s["minimum"]),
                  seconds(s["worst"]["seconds"]), seconds(s["worst"]["convex"]),
                  f"{s['optimal']}/{s['seeds']}", str(s["with_ties"])]
                 for s in results["series"]]
    memory_rows = [[f"{m['n']:.0e}", str(m["seed"]), f"{m['solve']:.2f}x", f"{m['sensitivity']:.2f}x",
                    str(m["ties"])] for m in results["memory"]]
    load = f"load average {results['load_before']} before, {results['load_after']} after"
    return "\n\n".join([
        markdown_table(["N", "seeds", "worst", "worst seed", "median", "best", "worst mixed",
                        "its convex", "optimal", "seeds with ties"], time_rows, "llrrrrrrrr"),
        "Mixed solve over the convex water-filling of the same importances, both through "
        f"`capopt.solve` ({load}).",
        markdown_table(["N", "seed", "solve peak / 8N", "sensitivity peak / 8N", "ties"],
                       memory_rows, "llrrr"),
    ])


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    print(json.dumps(_child(int(sys.argv[2]), int(sys.argv[3]))))
