"""What every part of the benchmark suite shares: timing, the machine, tables, exponents.

Timing protocol (:func:`timed`): one warm-up call, reported on its own as the first call
(imports, caches, numba's compilation or cache load all land there), then the median of up
to ``repeats`` further calls, as many as fit in ``budget`` seconds judging by the warm-up.
A warm-up slower than ``slow`` seconds is the only measurement (``runs`` = 1): repeating a
minute-long scipy run would not change what the table says, only how long it takes.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

#: Repository root: benchmarks run from there and spawn their subprocesses there.
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Timing:
    """A timed call.

    Attributes
    ----------
    seconds : float
        Median wall time of the timed runs (the warm-up itself when ``runs`` is 1 and
        ``cold``).
    runs : int
        Timed runs behind the median.
    first : float
        Wall time of the warm-up call.
    cold : bool
        The warm-up was too slow to repeat and is the measurement.
    """

    seconds: float
    runs: int
    first: float
    cold: bool

    def as_dict(self) -> dict:
        return asdict(self)


def timed(fn: Callable[[], object], *, repeats: int = 5, budget: float = 10.0,
          slow: float = 20.0) -> tuple[Timing, object]:
    """Time ``fn()`` by the suite's protocol (module docstring); also return its last value.

    Parameters
    ----------
    fn : callable
        Called with no arguments.
    repeats : int
        Most timed runs after the warm-up.
    budget : float
        Seconds the timed runs may take in all, estimated from the warm-up; at least one
        run is made.
    slow : float
        A warm-up longer than this is the measurement.
    """
    start = time.perf_counter()
    value = fn()
    first = time.perf_counter() - start
    if first > slow:
        return Timing(first, 1, first, True), value
    runs = max(1, min(repeats, int(budget / max(first, 1e-9))))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), runs, first, False), value


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages, where the platform has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict:
    """The machine, the versions that matter to the timings, the date and the load now."""
    import clarabel
    import cvxpy
    import numba
    import scipy

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "memory_gib": _memory_gib(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cvxpy": cvxpy.__version__,
        "clarabel": clarabel.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "load_average_start": load_average(),
    }


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            kib = int(fh.readline().split()[1])
        return round(kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def machine_line(info: dict) -> str:
    """One paragraph naming the machine, the versions and the load (markdown)."""
    load = info.get("load_average_start")
    end = info.get("load_average_end")
    text = (
        f"{info['date']}; {info['cpu_count']} CPUs ({info['cpu']}), "
        f"{info['memory_gib']} GiB, {info['platform']}; Python {info['python']}, "
        f"numpy {info['numpy']}, scipy {info['scipy']}, cvxpy {info['cvxpy']}, "
        f"clarabel {info['clarabel']}, numba {info['numba']} ({info['numba_threads']} threads)"
    )
    if load:
        text += f"; load average (1/5/15 min) {load[0]}/{load[1]}/{load[2]} at the start"
    if end:
        text += f", {end[0]}/{end[1]}/{end[2]} at the end (the suite itself keeps one core busy)"
    return text + "."


def markdown_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A markdown table; ``align`` has one ``l`` or ``r`` per column (default: first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return "| " + " | ".join(
            str(c).ljust(w) if a == "l" else str(c).rjust(w)
            for c, w, a in zip(cells, widths, align)
        ) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2))
                          for w, a in zip(widths, align)) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in rows])


def seconds(x: float | None) -> str:
    """Seconds in engineering-friendly form: 3 significant digits, unit chosen by size."""
    if x is None or not math.isfinite(x):
        return "-"
    if x < 1e-3:
        return f"{x * 1e6:.3g} us"
    if x < 1:
        return f"{x * 1e3:.3g} ms"
    return f"{x:.3g} s"


def ratio(x: float | None) -> str:
    """A ratio as '12.3x' (thousands spelled out: '2,118x')."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.3g}x" if x < 1000 else f"{x:,.0f}x"


def growth_exponent(n, t) -> float:
    r"""Least-squares slope of :math:`\log t` against :math:`\log N` (nan below two sizes).

    Fixed costs flatten the slope at small N; :func:`last_decade_exponent` shows the
    growth where it is measured best.
    """
    n, t = np.asarray(n, dtype=float), np.asarray(t, dtype=float)
    if n.size < 2:
        return math.nan
    return float(np.polyfit(np.log10(n), np.log10(t), 1)[0])


def last_decade_exponent(n, t) -> float:
    """Slope between the two largest sizes measured."""
    n, t = np.asarray(n, dtype=float), np.asarray(t, dtype=float)
    if n.size < 2:
        return math.nan
    order = np.argsort(n)[-2:]
    return float(np.diff(np.log10(t[order]))[0] / np.diff(np.log10(n[order]))[0])


def traced_peak(fn: Callable[[], object]) -> int:
    """Peak bytes traced by :mod:`tracemalloc` during ``fn()`` (numpy's buffers included)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def progress(message: str) -> None:
    """A progress line on stderr, so that the tables on stdout stay clean."""
    print(message, file=sys.stderr, flush=True)
