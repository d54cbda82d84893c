"""numba's cache of the kernels stays honest across files (issue 21).

numba stamps a cached kernel with its own source file only; capopt's kernels call one another
across the modules of capopt/_kernels and the compiled forms of capopt/_formulas.py, so
capopt._jit stamps every kernel with a digest of all of those sources. Here, in a copy of
those files, a kernel is compiled and cached, a module it calls (another kernel module, or
the formulas) is edited, and the kernel's cached machine code must then count as stale and
the edit show in its result.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import pytest

#: Each case compiles kernels in a fresh process: the slow tier (CI runs it).
pytestmark = pytest.mark.slow

from capopt import _jit

# The kernel: certificate.kkt_interval, which calls quadratic.feature_marginal (another
# kernel module), which calls the compiled quadratic_marginal (the formulas).
RUN = """
import numpy as np
from capopt._jit import _has_cache
from capopt._kernels.certificate import kkt_interval
cached = _has_cache(kkt_interval)
P, Q = kkt_interval(np.array([2.0, 1.0]), np.array([7.0]), np.array([0.0, 1.0]), 1e-9)
print(cached, P, Q)
"""

#: Edits that double the marginal, each in a file the kernel does not live in.
EDITS = {
    "_kernels/quadratic.py": ("    return marginal(C, v, K)\n",
                              "    return 2.0 * marginal(C, v, K)\n"),
    "_formulas.py": ("    return w*(2*w)\n\n\ndef quadratic_curvature",
                     "    return w*(4*w)\n\n\ndef quadratic_curvature"),
}


def _copy_of_the_kernel_sources(root: Path) -> Path:
    """capopt/_jit.py, _formulas.py and _kernels/ under ``root``, in an otherwise empty capopt."""
    package = root / "capopt"
    (package / "_kernels").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    for source in _jit.KERNEL_SOURCES:
        relative = source.relative_to(Path(_jit.__file__).parent)
        shutil.copyfile(source, package / relative)
    return package


def _run(root: Path) -> tuple[bool, float, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_DISABLE_JIT", "NUMBA_CACHE_DIR")}
    env["PYTHONPATH"] = str(root)
    out = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=root, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", float(out[1]), float(out[2])


def test_the_stamp_covers_every_kernel_module_and_the_formulas():
    sources = {p.relative_to(Path(_jit.__file__).parent).as_posix() for p in _jit.KERNEL_SOURCES}
    modules = {f"_kernels/{name.rsplit('.', 1)[1]}.py" for name in _jit.KERNEL_MODULES}
    assert modules <= sources and {"_formulas.py", "_jit.py", "_kernels/__init__.py"} <= sources
    assert len(modules) == len(_jit.KERNEL_MODULES) > 1


@pytest.mark.parametrize("edited", EDITS)
def test_editing_one_source_changes_the_stamp(edited, tmp_path):
    package = _copy_of_the_kernel_sources(tmp_path)
    copies = [package / p.relative_to(Path(_jit.__file__).parent) for p in _jit.KERNEL_SOURCES]
    assert _jit.source_stamp(copies) == _jit.SOURCE_STAMP
    old, new = EDITS[edited]
    text = (package / edited).read_text(encoding="utf-8")
    assert text.count(old) == 1, "the line this test edits is gone"
    (package / edited).write_text(text.replace(old, new), encoding="utf-8")
    assert _jit.source_stamp(copies) != _jit.SOURCE_STAMP


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled or cached without the JIT")
@pytest.mark.parametrize("edited", EDITS)
def test_editing_a_callee_in_another_file_invalidates_the_cached_kernel(edited, tmp_path):
    package = _copy_of_the_kernel_sources(tmp_path)
    cold, P, Q = _run(tmp_path)
    assert not cold and (P, Q) == (72.0, 2.0)  # m(0) of v = 2 and m(1) of v = 1, at K = 7
    assert _run(tmp_path) == (True, P, Q), "an unchanged copy loads the cached code"
    old, new = EDITS[edited]
    text = (package / edited).read_text(encoding="utf-8")
    assert text.count(old) == 1, "the line this test edits is gone"
    (package / edited).write_text(text.replace(old, new), encoding="utf-8")
    # Stale before its first call, then compiled afresh from the edited source.
    assert _run(tmp_path) == (False, 2 * P, 2 * Q)
