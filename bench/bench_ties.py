"""Part ``ties``: n identical concave features sharing a fractional budget, certified.

Run with the suite (``python -m bench``) or alone (``python -m bench --only ties``).

The case that defeats a branch and bound's bound: every permutation of n identical
concave curves (v = 1, K = 2) has the same chord relaxation, so a search over boxes needs
about C(n, n/2) nodes. The budget is n / 2 + 0.5 (half a dimension over). Each n runs
alone and with as many convex curves beside the concave ones (v = 0.5, K = 7), through
:func:`capopt.solve` with ``method="global"``, and for the concave family alone also with
``method="auto"`` (the vertex solution). Reported: status, time, and whether the
allocation is the top n/2 at 1 and the next at 0.5, in index order.
"""

from __future__ import annotations

import numpy as np

from capopt.curves import quadratic
from capopt.solvers import solve

from ._common import markdown_table, progress, seconds, timed

SIZES = (100, 100_000)
QUICK_SIZES = (100, 1000)


def problem(n: int, with_convex: bool):
    v, K = np.ones(n), np.full(n, 2.0)
    if with_convex:
        v = np.concatenate([v, np.full(n, 0.5)])
        K = np.concatenate([K, np.full(n, 7.0)])
    return quadratic(v, K), n / 2 + 0.5


def run(quick: bool = False) -> dict:
    rows = []
    for n in QUICK_SIZES if quick else SIZES:
        for with_convex in (False, True):
            curves, d = problem(n, with_convex)
            for method in ("global",) if with_convex else ("global", "auto"):
                timing, result = timed(lambda: solve(curves, d, method=method, throw=False),
                                       repeats=3, budget=5.0)
                expected = np.zeros(n)
                expected[: n // 2] = 1.0
                expected[n // 2] = 0.5
                rows.append(dict(
                    n=n, with_convex=with_convex, method=result.method, status=result.status.name,
                    seconds=timing.seconds, gap=result.certificate.gap,
                    top_in_order=bool(np.array_equal(result.capacities[:n], expected)),
                ))
                progress(f"  ties: n = {n:.0e} {'+ convex' if with_convex else 'alone'} "
                         f"{result.method}: {result.status.name} in {seconds(timing.seconds)}")
    return {"rows": rows}


def report(results: dict) -> str:
    table = [[f"{r['n']:.0e}", "with n convex" if r["with_convex"] else "alone", r["method"],
              r["status"], seconds(r["seconds"]), f"{r['gap']:.1e}",
              "yes" if r["top_in_order"] else ("-" if r["with_convex"] else "NO")]
             for r in results["rows"]]
    return markdown_table(["n concave", "family", "method", "status", "time", "gap (rel)",
                           "top n/2 at 1, next at 1/2"], table, "lllllrl")
