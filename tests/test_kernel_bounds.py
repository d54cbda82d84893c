"""The compiled kernels never index outside their arrays.

numba compiles without bounds checks, so a read past an array's end (an empty slice's
``K[0]``, say) returns whatever memory holds, or crashes the process, instead of raising.
This test reruns the kernels' own tests in a fresh process with ``NUMBA_BOUNDSCHECK=1``
and a cache of its own, so every kernel is recompiled with checks and an out-of-bounds
index fails as an ``IndexError`` naming the line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
KERNEL_TESTS = ["test_waterfill.py", "test_nonconvex.py", "test_sweeps.py", "test_optimality.py"]


def test_the_kernel_tests_pass_with_bounds_checking(tmp_path):
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
               *[str(TESTS / name) for name in KERNEL_TESTS]]
    run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=TESTS.parent)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
