"""Part ``sensitivity``: the sensitivities against the solve they differentiate.

Run with the suite (``python -m bench``) or alone (``python -m bench --only sensitivity``).

1. **One problem.** Convex quadratic-model problems (importances uniform in [0.1, 2],
   kurtoses uniform in [4, 12], d = N/4: most features polysemantic, so the active set is
   large) and mixed ones (half of the curves concave, K in [1.5, 2.8]) at N = 1e4 ... 1e6:
   :func:`capopt.solve` against :func:`capopt.sensitivity` (which solves, then
   differentiates) and against the differentiation alone (``result=`` given), all timed in
   the same run (:func:`bench._common.timed`). Peak memory of the differentiation alone is
   the :mod:`tracemalloc` peak (every array it allocates is a numpy buffer), in units of
   one float64 array of N: the Jacobians are operators, so it stays a few such arrays
   where a dense N x N Jacobian would need N of them.
2. **Sweeps.** The same grid (N = 64, d = 16, 200 decays r in [0.9, 1] x 320 kurtoses in
   [3.2, 40]) by :func:`capopt.sweep` with and without ``sensitivities=True``.
"""

from __future__ import annotations


import numpy as np

from capopt import sensitivity
from capopt.curves import quadratic
from capopt.solvers import solve
from capopt.sweeps import sweep

from ._common import markdown_table, progress, ratio, seconds, timed, traced_peak

SIZES = (10**4, 10**5, 10**6)
QUICK_SIZES = (10**3, 10**4)
GRID = (200, 320)
QUICK_GRID = (20, 32)


def problem(family: str, n: int):
    """A convex or mixed quadratic-model problem of n features and its budget."""
    rng = np.random.default_rng(n)
    v = rng.uniform(0.1, 2.0, n)
    K = rng.uniform(4.0, 12.0, n)
    if family == "mixed":
        K[::2] = rng.uniform(1.5, 2.8, K[::2].size)
    return quadratic(v, K), n / 4


def run(quick: bool = False) -> dict:
    rows = []
    for family in ("convex", "mixed"):
        for n in QUICK_SIZES if quick else SIZES:
            curves, d = problem(family, n)
            t_solve, result = timed(lambda: solve(curves, d), repeats=7)
            t_full, _ = timed(lambda: sensitivity(curves, d), repeats=7)
            t_diff, s = timed(lambda: sensitivity(curves, d, result=result), repeats=7)
            peak = traced_peak(lambda: sensitivity(curves, d, result=result))
            rows.append(dict(family=family, n=n, solve=t_solve.seconds, full=t_full.seconds,
                             differentiate=t_diff.seconds, active=int(s.active.size),
                             peak_arrays=peak / (8 * n)))
            progress(f"  sensitivity: {family} N = {n:.0e}: solve {seconds(t_solve.seconds)}, "
                     f"sensitivity {seconds(t_full.seconds)} ({t_full.seconds / t_solve.seconds:.2f}x)")
    decays, kurtoses = QUICK_GRID if quick else GRID
    grid = dict(n_features=64, budget=16.0, importance_decay=np.linspace(0.9, 1.0, decays),
                kurtosis=np.linspace(3.2, 40.0, kurtoses))
    sweep(**(grid | {"importance_decay": 0.95, "kurtosis": 5.0}), sensitivities=True)  # compile
    t_plain, _ = timed(lambda: sweep(**grid), repeats=3)
    t_sens, _ = timed(lambda: sweep(**grid, sensitivities=True), repeats=3)
    progress(f"  sensitivity: sweep of {decays * kurtoses} problems: {seconds(t_plain.seconds)} "
             f"without, {seconds(t_sens.seconds)} with sensitivities")
    return {"rows": rows, "sweep": dict(problems=decays * kurtoses, plain=t_plain.seconds,
                                        with_sensitivities=t_sens.seconds)}


def report(results: dict) -> str:
    table = [[r["family"], f"{r['n']:.0e}", f"{r['active']:,}", seconds(r["solve"]),
              seconds(r["full"]), ratio(r["full"] / r["solve"]), seconds(r["differentiate"]),
              ratio(r["differentiate"] / r["solve"]), f"{r['peak_arrays']:.1f}"]
             for r in results["rows"]]
    sw = results["sweep"]
    return "\n".join([
        markdown_table(["family", "N", "active", "solve", "sensitivity", "vs solve",
                        "differentiate only", "vs solve", "peak (arrays of N)"], table,
                       "llrrrrrrr"),
        "",
        "`sensitivity` solves and differentiates; \"differentiate only\" is given the solve's "
        "result. Target: sensitivity at N = 1e6 within 3x the solve.",
        "",
        markdown_table(["sweep", "problems", "time", "vs plain"], [
            ["plain", f"{sw['problems']:,}", seconds(sw["plain"]), "1x"],
            ["with sensitivities", f"{sw['problems']:,}", seconds(sw["with_sensitivities"]),
             ratio(sw["with_sensitivities"] / sw["plain"])],
        ], "lrrr"),
        "",
        "Target: a sweep with sensitivities within 2x the same sweep without.",
    ])
