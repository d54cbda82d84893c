"""Part ``memory``: peak memory of each method at the largest N it is timed at.

Run with the suite (``python -m bench``) or alone (``python -m bench --only memory``).

Every (method, N) runs in a fresh subprocess (``python -m bench.bench_memory --child ...``)
on the problem of :mod:`bench.bench_solvers`, so that one method's leftovers never count
against another. The child first solves a 100-feature problem, so that lazy imports
(cvxpy) and caches are in place, builds the problem, then measures one call:

* **peak RSS increment**: the resident set's high-water mark during the call (Linux
  ``VmHWM`` of ``/proc/self/status``, reset through ``/proc/self/clear_refs`` just before
  the call) less the resident set before it. Everything counts: numpy arrays, Python
  objects, and what Clarabel (Rust) or SLSQP (Fortran) allocate. Where the reset is not
  available it falls back to ``ru_maxrss`` of :func:`resource.getrusage`, the process's
  peak since it started (then an upper bound, marked "*");
* **tracemalloc peak**: the peak of memory traced by :mod:`tracemalloc` during a second
  call: Python objects and numpy's data buffers (numpy reports its allocations to
  tracemalloc), not the compiled solvers' own heaps. Skipped for calls slower than
  :data:`TRACE_MAX_SECONDS` (tracing slows allocation-heavy code);
* **RSS before**: the resident set just before the call: interpreter, imports and the
  problem itself.

"x input" divides the RSS increment by 8 N bytes, the size of one float64 array of N.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import time
import tracemalloc

from . import bench_solvers
from ._common import ROOT, markdown_table, progress

#: A call slower than this is not repeated under tracemalloc.
TRACE_MAX_SECONDS = 20.0
WARM_N = 100
QUICK_N = 10**4


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            match = re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M)
        return int(match.group(1)) if match else None
    except OSError:
        return None


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where unavailable."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def measure(series: bench_solvers.Series, n: int) -> dict:
    """Memory of one call of ``series`` at ``n`` features (run in a fresh process)."""
    warm = bench_solvers.problem(series.family, WARM_N)
    bench_solvers.call_for(series, *warm)[0]()
    curves, v, d = bench_solvers.problem(series.family, n)
    call, _ = bench_solvers.call_for(series, curves, v, d)

    before = _status_kib("VmRSS")
    exact = _reset_peak() and before is not None
    if not exact:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    traced = None
    if seconds <= TRACE_MAX_SECONDS:
        tracemalloc.start()
        call()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return dict(series=series.key, method=series.label, family=series.family, n=n,
                seconds=seconds, rss_before=before * 1024, rss_increment=(peak - before) * 1024,
                exact_peak=exact, traced_peak=traced)


def cases(quick: bool):
    """(series, N): each method of the solver part at its largest N (quick: small N).

    A method timed on both families is measured once, on the family where it goes
    furthest (the first listed when they tie).
    """
    largest = {}
    for series in bench_solvers.SERIES:
        key = (series.method, series.via)
        if key not in largest or series.max_n > largest[key].max_n:
            largest[key] = series
    for series in largest.values():
        n = bench_solvers.largest_n(series, quick)
        yield series, (min(n, QUICK_N) if quick else n)


def run(quick: bool = False) -> dict:
    rows = []
    for series, n in cases(quick):
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_memory", "--child", series.key, str(n)],
            cwd=ROOT, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.splitlines()[-1]))
        progress(f"  memory: {series.key} N = {n:.0e}: "
                 f"{rows[-1]['rss_increment'] / 2**20:.0f} MiB")
    return {"rows": rows}


def _mib(x) -> str:
    return "-" if x is None else f"{x / 2**20:,.1f}"


def report(results: dict) -> str:
    table = []
    for r in results["rows"]:
        table.append([r["family"], r["method"], f"{r['n']:.0e}",
                      _mib(r["rss_increment"]) + ("" if r["exact_peak"] else " *"),
                      f"{r['rss_increment'] / (8 * r['n']):.3g}",
                      _mib(r["traced_peak"]), _mib(r["rss_before"])])
    return markdown_table(["family", "method", "N", "peak RSS increment (MiB)", "x input",
                           "tracemalloc peak (MiB)", "RSS before (MiB)"], table, "llrrrrr")


def _child(key: str, n: int) -> None:
    series = next(s for s in bench_solvers.SERIES if s.key == key)
    print(json.dumps(measure(series, n)))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("bench.bench_memory is run by `python -m bench --only memory`")
