"""The kernels' own tests, rerun with the kernels compiled with bounds checks, and not compiled.

numba compiles without bounds checks, so a read past an array's end (an empty slice's
``K[0]``, say) returns whatever memory holds, or crashes the process, instead of raising:
with ``NUMBA_BOUNDSCHECK=1`` and a cache of its own every kernel is recompiled with checks,
and an out-of-bounds index fails as an ``IndexError`` naming the line. With
``NUMBA_DISABLE_JIT=1`` the kernels run as the plain Python they are written in, so their
logic is covered line by line (and a coverage tool can see it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
KERNEL_TESTS = [
    "test_waterfill.py", "test_vertex.py", "test_nonconvex.py", "test_sweeps.py", "test_optimality.py",
    "test_sensitivity.py", "test_sweep_sensitivities.py",
]

MODES = {
    "bounds-checked": {"NUMBA_BOUNDSCHECK": "1"},
    # Python scalars divide by zero with a warning where compiled code gives inf silently.
    "not compiled": {"NUMBA_DISABLE_JIT": "1", "PYTHONWARNINGS": "ignore::RuntimeWarning"},
}


@pytest.mark.parametrize("mode", MODES)
def test_the_kernel_tests_pass(mode, tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), **MODES[mode])
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
               *[str(TESTS / name) for name in KERNEL_TESTS]]
    run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=TESTS.parent)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
