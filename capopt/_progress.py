"""What a long run tells its user: progress bars, the first run's compilation, run times.

Progress goes to stderr through tqdm (:func:`progress_bar`), by default only on an
interactive terminal, as ``capopt sweep`` does. :func:`compilation_notice` says, before
anything compiles, that a first run compiles the numba kernels.

Run times: ``capopt reproduce --help`` prints :func:`run_times` and README.md quotes it
word for word (a test holds them together), so the estimates cannot disagree; each is a
measurement (``time capopt reproduce ...`` on two cores, kernels already compiled), taken
again when a preset changes. This module imports neither matplotlib nor the report, so the
CLI can build its help from it.
"""

from __future__ import annotations

import sys

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm.auto import tqdm

__all__ = ["MEASURED_SECONDS", "COMPILE_SECONDS", "COMPILING", "run_times", "show_progress",
           "progress_bar", "compilation_notice"]

#: What a first run shows while numba compiles the kernels.
COMPILING = "compiling kernels, first run only"

#: Wall-clock seconds of ``capopt reproduce`` per preset, measured on two cores with the
#: kernels compiled, from a fresh install of README's command: quick 20 s; default 201 s
#: with 58 s of compilation, so about 145 s (3 seeds, to convergence or 8000 steps); full
#: 5122 s (85 min, 5 seeds of N = 40, d = 10 to convergence or 20 000 steps: 69 min; the two
#: TMS settings: 16 min), while the test suite shared the cores for about 20 of them.
MEASURED_SECONDS: dict[str, float | None] = {
    "quick": 20.0,
    "default": 145.0,
    "full": 5122.0,
}

#: Wall-clock seconds a first run spends compiling the numba kernels (cached afterwards),
#: measured on two cores: 58 s under reproduce's compilation bar in a fresh install.
COMPILE_SECONDS = 60.0


def _about(seconds: float | None) -> str:
    """``'about 20 s'``, ``'about 2.5 minutes'`` (to 5 minutes from 20 minutes on);
    ``'not measured yet'`` for None."""
    if seconds is None:
        return "not measured yet"
    if seconds < 90:
        return f"about {5 * round(seconds / 5):.0f} s"
    minutes = round(seconds / 30) / 2 if seconds < 1200 else 5 * round(seconds / 300)
    return f"about {minutes:g} minute{'s' * (minutes != 1)}"


def run_times() -> str:
    """The measured run time of each preset, and of compiling, as one sentence.

    Examples
    --------
    >>> run_times().startswith("Run time on two cores: --quick about")
    True
    """
    flags = {"quick": "--quick", "default": "the default", "full": "--full"}
    presets = ", ".join(f"{flags.get(name, name)} {_about(s)}" for name, s in MEASURED_SECONDS.items())
    return (f"Run time on two cores: {presets}; a first run adds {_about(COMPILE_SECONDS)} "
            "compiling the kernels, once.")


def show_progress(progress: bool | None) -> bool:
    """Whether to draw progress bars: as given, or by default when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


def progress_bar(iterable: Iterable | None = None, *, progress: bool | None = None,
                 **options: Any) -> "tqdm":
    """A tqdm bar on stderr (``desc``, ``total``, ``unit`` ... in ``options``); a silent
    pass-through when :func:`show_progress` says no."""
    from tqdm.auto import tqdm  # imported on first use: `capopt --help` stays light

    return tqdm(iterable, disable=not show_progress(progress), dynamic_ncols=True,
                mininterval=0.5, **options)


def compilation_notice() -> str | None:
    """The line to show before a first run compiles the kernels, or None when they are cached.

    Examples
    --------
    >>> notice = compilation_notice()
    >>> notice is None or notice.startswith(COMPILING)
    True
    """
    from ._jit import cold_sources  # numba: only a command that runs kernels asks

    if not cold_sources():
        return None
    return f"{COMPILING} ({_about(COMPILE_SECONDS)} on two cores; numba caches them)"
