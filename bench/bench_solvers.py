"""Part ``solvers``: solve time against N for every method, with its loss gap to the exact answer.

Run with the suite (``python -m bench``) or alone (``python -m bench --only solvers``).

Two problem families, seeded (seed 0) at every N:

* ``convex``: importances v ~ U(0.01, 1), kurtosis K = 5 for every feature (convex curves,
  unique optimum), d = N / 10. Exact answer: water-filling. Also run: cvxpy (Clarabel at
  its tightest settings, :data:`capopt.solvers.reference.CLARABEL_SETTINGS`), scipy
  (SLSQP), the grid DP, and ``np.sort`` of the importances as a yardstick for "as fast as
  reading the input".
* ``mixed``: importances pareto(1.5) + 0.01, K ~ U(1.2, 10) per feature (about a fifth
  concave), d = N / 4: the family whose branch-and-bound polish once took 2000 times the
  search. Exact answer: the structured ``global`` method. Also run: the grid DP and scipy
  (SLSQP, a local optimum only).

Each method runs through ``METHODS[name].run`` (the method alone); water-filling and global
also through :func:`capopt.solve` (validation, scaling, the fused KKT certificate). Times
follow :func:`bench._common.timed`. "x exact" is the time over the exact method's
(``run``) at the same N; "loss gap" is (loss - exact loss) / exact loss, positive = worse;
"certified" means the answer passes its KKT certificate at the method's own tolerance.

Each method stops at the largest N in :data:`SERIES` (the reason is printed with the
table); the growth exponent is fitted over the sizes it ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from capopt.curves import quadratic
from capopt.solvers import METHODS, Problem, certify, solve
from capopt.solvers.dp import DEFAULT_RESOLUTION

from ._common import (
    growth_exponent,
    last_decade_exponent,
    markdown_table,
    progress,
    ratio,
    seconds,
    timed,
)

#: Convex importances are drawn from U(IMPORTANCE_LOW, 1) with this seed at every N.
IMPORTANCE_LOW = 0.01
SEED = 0

#: The families' descriptions, as the tables print them.
FAMILIES = {
    "convex": "K = 5, v ~ U(0.01, 1), d = N/10",
    "mixed": "K ~ U(1.2, 10), v ~ pareto(1.5) + 0.01, d = N/4",
}

#: The exact method of each family: the reference for loss gaps and "x exact".
EXACT = {"convex": "waterfill", "mixed": "global"}

SIZES = tuple(10**k for k in range(2, 8))
QUICK_SIZES = (100, 1000)
#: In the quick run the slow methods stop here.
QUICK_CAP = 100


@dataclass(frozen=True)
class Series:
    """One line of the plot: a method on a family, called one way, up to ``max_n``."""

    method: str
    family: str
    via: str  # "run": METHODS[method].run; "solve": capopt.solve; "sort": np.sort(v)
    max_n: int
    why: str = ""

    @property
    def label(self) -> str:
        if self.via == "sort":
            return "np.sort(v)"
        return self.method + (" (solve)" if self.via == "solve" else "")

    @property
    def key(self) -> str:
        return f"{self.family}/{self.label}"


SERIES = (
    Series("waterfill", "convex", "run", 10**7),
    Series("waterfill", "convex", "solve", 10**7),
    Series("sort", "convex", "sort", 10**7),
    Series("cvxpy", "convex", "run", 10**5,
           "cvxpy stops at N = 1e5: its time grows linearly from seconds there (exponent "
           "above), and Clarabel's memory with it (memory table)"),
    Series("scipy", "convex", "run", 10**3,
           "scipy (SLSQP) stops at N = 1e3 on both families: each iteration solves a dense "
           "least-squares problem, O(N^3), so 1e4 would take ~1000 times its 1e3 time"),
    Series("dp", "convex", "run", 10**3,
           f"dp stops at N = 1e3 on both families: it is O(N B M) with M = {DEFAULT_RESOLUTION} "
           "grid steps and B = d M = N M / 10 budget units, O(N^2), so 1e4 would take ~100 "
           "times its 1e3 time"),
    Series("global", "mixed", "run", 10**6,
           "global stops at N = 1e6, the largest size its target (within 20 times the convex "
           "water-filling of the same N) names"),
    Series("global", "mixed", "solve", 10**6),
    Series("dp", "mixed", "run", 10**3),
    Series("scipy", "mixed", "run", 10**3),
)


def problem(family: str, n: int):
    """The family's problem with n features: (curves, importances, budget)."""
    rng = np.random.default_rng(SEED)
    if family == "convex":
        v = rng.uniform(IMPORTANCE_LOW, 1.0, n)
        return quadratic(v, 5.0), v, n / 10.0
    v = rng.pareto(1.5, n) + 0.01
    return quadratic(v, rng.uniform(1.2, 10.0, n)), v, n / 4.0


def call_for(series: Series, curves, v, d):
    """The call to time, and how to read (capacities, certified, iterations) off its value."""
    if series.via == "sort":
        return (lambda: np.sort(v)), None
    if series.via == "solve":
        def read(result):
            return result.capacities, result.status.name == "OPTIMAL", result.iterations
        return (lambda: solve(curves, d, method=series.method)), read
    spec = METHODS[series.method]
    problem = Problem(curves, d)

    def read(solution):
        C = solution.capacities
        certificate = certify(curves, C, solution.multiplier, d,
                              lower_bound=solution.lower_bound,
                              lower_bound_how=solution.lower_bound_how)
        return C, bool(certificate.worst <= spec.tol), solution.iterations
    return (lambda: spec.run(problem)), read


def largest_n(series: Series, quick: bool) -> int:
    """Largest N the series runs at: its cap, lowered for the slow methods in a quick run."""
    if quick and series.method in ("dp", "scipy"):
        return min(series.max_n, QUICK_CAP)
    return series.max_n


def run(quick: bool = False, *, repeats: int = 5, budget: float = 10.0) -> dict:
    """Measure every series at every size up to its cap; rows in run order."""
    sizes = QUICK_SIZES if quick else SIZES
    rows = []
    for family in EXACT:
        chosen = [s for s in SERIES if s.family == family]
        # The exact method first: every other row is compared with it.
        chosen.sort(key=lambda s: (s.method != EXACT[family] or s.via != "run"))
        for n in sizes:
            curves, v, d = problem(family, n)
            exact = None
            for series in chosen:
                if n > largest_n(series, quick):
                    continue
                call, read = call_for(series, curves, v, d)
                timing, value = timed(call, repeats=repeats, budget=budget)
                row = dict(family=family, n=n, series=series.key, method=series.label,
                           timing=timing.as_dict())
                if read is not None:
                    C, certified, iterations = read(value)
                    row.update(loss=float(curves.total_loss(C)), certified=certified,
                               iterations=int(iterations))
                if exact is None:
                    exact = row
                row["x_exact"] = timing.seconds / exact["timing"]["seconds"]
                if "loss" in row:
                    row["loss_gap"] = (row["loss"] - exact["loss"]) / abs(exact["loss"])
                rows.append(row)
                progress(f"  solvers: {family} N = {n:.0e} {series.label}: "
                         f"{seconds(timing.seconds)}")
            del curves, v
    return {"rows": rows, "exponents": exponents(rows),
            "caps": [s.why for s in SERIES if s.why]}


def exponents(rows) -> list[dict]:
    """Growth exponent of each series over the sizes it ran."""
    out = []
    for key in dict.fromkeys(r["series"] for r in rows):
        mine = [r for r in rows if r["series"] == key]
        n = [r["n"] for r in mine]
        t = [r["timing"]["seconds"] for r in mine]
        out.append(dict(series=key, family=mine[0]["family"], method=mine[0]["method"],
                        n_min=min(n), n_max=max(n), exponent=growth_exponent(n, t),
                        last_decade=last_decade_exponent(n, t)))
    return out


def _gap(x) -> str:
    if x is None:
        return "-"
    return "0" if x == 0 else f"{x:+.1e}"


def headline(results: dict) -> list[str]:
    """Sentences with the ratios a reader looks for, all from this run's rows."""
    rows = results["rows"]

    def at(series, n):
        return next((r for r in rows if r["series"] == series and r["n"] == n), None)

    def t(series, n):
        return at(series, n)["timing"]["seconds"]

    lines = []
    cvx = [r for r in rows if r["series"] == "convex/cvxpy"]
    if cvx:
        top = max(r["n"] for r in cvx)
        c = at("convex/cvxpy", top)
        lines.append(
            f"At N = {top:.0e}: `capopt.solve` is {ratio(t('convex/cvxpy', top) / t('convex/waterfill (solve)', top))} "
            f"faster than cvxpy (Clarabel at its tightest settings; the method alone "
            f"{ratio(t('convex/cvxpy', top) / t('convex/waterfill', top))}); cvxpy's loss is "
            f"{c['loss_gap']:+.1e} (relative) from the exact one."
        )
    for n in (10**6, 10**7):
        if at("convex/waterfill", n) and at("convex/np.sort(v)", n):
            lines.append(
                f"At N = {n:.0e}: `capopt.solve` takes {ratio(t('convex/waterfill (solve)', n) / t('convex/waterfill', n))} "
                f"the time of the bare method and {ratio(t('convex/waterfill (solve)', n) / t('convex/np.sort(v)', n))} "
                f"that of `np.sort` of the importances ({seconds(t('convex/waterfill (solve)', n))}; "
                f"the method {seconds(t('convex/waterfill', n))}, the sort {seconds(t('convex/np.sort(v)', n))})."
            )
    for n in (10**4, 10**5, 10**6):
        if at("mixed/global (solve)", n) and at("convex/waterfill (solve)", n):
            lines.append(
                f"At N = {n:.0e}: the mixed family through `capopt.solve` (global) takes "
                f"{ratio(t('mixed/global (solve)', n) / t('convex/waterfill (solve)', n))} the time "
                f"of the convex family's water-filling through `capopt.solve`."
            )
    for family in EXACT:
        sp = [r for r in rows if r["series"] == f"{family}/scipy"]
        if sp:
            r = max(sp, key=lambda r: r["n"])
            lines.append(
                f"scipy (SLSQP) on the {family} family at N = {r['n']:.0e}: "
                f"{ratio(r['x_exact'])} the time of {EXACT[family]}, loss "
                f"{r['loss_gap']:+.1e} from the optimum."
            )
    dp = [r for r in rows if r["series"] == "mixed/dp"]
    if dp:
        top = max(r["n"] for r in dp)
        g, p = at("mixed/global", top), at("mixed/dp", top)
        lines.append(
            f"Mixed family at N = {top:.0e}: the certified global method is "
            f"{ratio(p['timing']['seconds'] / g['timing']['seconds'])} faster than the grid DP, "
            f"whose loss is {p['loss_gap']:+.1e} from the optimum (grid error)."
        )
    return lines


def report(results: dict) -> str:
    """The solver tables, the exponents and the caps (markdown)."""
    out = []
    for family in EXACT:
        rows = [r for r in results["rows"] if r["family"] == family]
        if not rows:
            continue
        out.append(f"**{family} family** ({FAMILIES[family]}; exact: {EXACT[family]})\n")
        table = []
        for r in rows:
            t = r["timing"]
            table.append([
                f"{r['n']:.0e}", r["method"], str(t["runs"]) + (" (cold)" if t["cold"] else ""),
                seconds(t["first"]), seconds(t["seconds"]), ratio(r["x_exact"]),
                _gap(r.get("loss_gap")),
                {True: "yes", False: "NO"}.get(r.get("certified"), "-"),
            ])
        out.append(markdown_table(
            ["N", "method", "runs", "first call", "median time", "x exact", "loss gap (rel)",
             "certified"], table, "llrrrrrl"))
        out.append("")
    out.append("**Growth exponents** (slope of log time against log N)\n")
    table = [[e["family"], e["method"], f"{e['n_min']:.0e} .. {e['n_max']:.0e}",
              _exp(e["exponent"]), _exp(e["last_decade"])] for e in results["exponents"]]
    out.append(markdown_table(["family", "method", "sizes", "fit over all sizes",
                               "last decade"], table, "lllrr"))
    out.append("")
    out += [f"- {line}" for line in headline(results)]
    out.append("")
    out += [f"- {why}." for why in results["caps"]]
    return "\n".join(out)


def _exp(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.2f}"


def plot(results: dict, path) -> None:
    """Log-log time against N, one line per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5))
    styles = {"convex": "-", "mixed": "--"}
    for e in results["exponents"]:
        mine = [r for r in results["rows"] if r["series"] == e["series"]]
        ax.plot([r["n"] for r in mine], [r["timing"]["seconds"] for r in mine],
                styles[e["family"]], marker="o", ms=4,
                label=f"{e['method']} [{e['family']}] (slope {_exp(e['exponent'])})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (features)")
    ax.set_ylabel("median wall time (s)")
    ax.set_title("capopt: time to solve against N")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
