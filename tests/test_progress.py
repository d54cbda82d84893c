"""Long runs are never silent and never wrong about time (issue 15): the first run's
compilation is announced before it starts, and each preset's run time is stated once.
"""

import argparse
import contextlib
import io
import os
import pathlib
import subprocess
import sys

import pytest

import capopt
from capopt import _progress
from capopt._jit import KERNEL_MODULES
from capopt._progress import COMPILING, MEASURED_SECONDS, run_times
from capopt.cli import build_parser, main
from capopt.report import QUICK, build

ROOT = pathlib.Path(capopt.__file__).parent


def _words(text: str) -> str:
    return " ".join(text.split())


def test_kernel_modules_lists_every_module_that_makes_kernels():
    makers = {".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
              for path in ROOT.rglob("*.py")
              if "_jit import jit" in path.read_text(encoding="utf-8")}
    assert makers == set(KERNEL_MODULES)


def test_an_empty_numba_cache_makes_every_kernel_source_cold(tmp_path):
    code = "from capopt._jit import cold_sources; print(len(cold_sources()))"
    # With the JIT on whatever this suite runs with: detection is about numba's cache.
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    cold = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    # Every kernel module, and the generated formulas the kernels compile.
    assert int(cold.stdout) == len(KERNEL_MODULES) + 1


def test_a_cold_cache_is_announced_before_a_command_runs(monkeypatch, capsys):
    monkeypatch.setattr("capopt.cli.compilation_notice", lambda: f"{COMPILING} (test)")
    assert main(["solve", "--importance", "2", "1", "--kurtosis", "7", "--budget", "1"]) == 0
    assert capsys.readouterr().err.startswith(f"capopt solve: {COMPILING} (test)")


def test_a_usage_error_announces_no_compilation(monkeypatch, capsys):
    # Nothing will compile: the arguments are refused before any work.
    monkeypatch.setattr("capopt.cli.compilation_notice", lambda: f"{COMPILING} (test)")
    assert main(["solve", "--importance", "2", "1", "--kurtosis", "7", "--budget", "-1"]) == 2
    assert COMPILING not in capsys.readouterr().err


def test_a_warm_cache_is_not_announced(monkeypatch, capsys):
    monkeypatch.setattr("capopt.cli.compilation_notice", lambda: None)
    assert main(["solve", "--importance", "2", "1", "--kurtosis", "7", "--budget", "1"]) == 0
    assert COMPILING not in capsys.readouterr().err


def test_reproduce_compiles_first_under_its_own_progress(monkeypatch):
    monkeypatch.setattr(build, "compilation_notice", lambda: f"{COMPILING} (test)")
    lines = []
    build._compile(QUICK, lines.append, progress=False)
    assert lines[0] == f"{COMPILING} (test)" and lines[-1].startswith("compiled the kernels in")


def test_reproduce_compiles_nothing_when_the_cache_is_warm(monkeypatch):
    monkeypatch.setattr(build, "compilation_notice", lambda: None)
    lines = []
    build._compile(QUICK, lines.append, progress=False)
    assert lines == []


def test_run_times_are_stated_once_in_readme_and_help():
    readme = (ROOT.parent / "README.md").read_text(encoding="utf-8")
    assert _words(run_times()) in _words(readme)
    reproduce = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    help_text = reproduce.choices["reproduce"].format_help()
    assert _words(run_times()) in _words(help_text)
    assert "minute" not in _words(readme).replace(_words(run_times()), "")


def test_every_preset_has_a_measured_time_or_says_it_has_none():
    assert {"quick", "default"} <= set(MEASURED_SECONDS)
    for name, seconds in MEASURED_SECONDS.items():
        assert (seconds is None and f"{name} not measured yet" in run_times()) or seconds > 0
    assert MEASURED_SECONDS["default"] < 300  # issue 15: the default run stays under 5 minutes


def test_progress_is_off_by_default_off_a_terminal():
    with contextlib.redirect_stderr(io.StringIO()):
        assert not _progress.show_progress(None)
    assert _progress.show_progress(True) and not _progress.show_progress(False)
