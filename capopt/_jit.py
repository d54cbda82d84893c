"""The one place that holds the numba flags of capopt's kernels.

* ``cache=True``: compiled machine code is written next to the module, so only the first
  process on a machine pays for compilation (a few seconds); later imports load it.
* no ``fastmath``: the kernels compare against ``inf`` (breakpoints of features that never
  saturate) and must keep IEEE semantics; fastmath would let LLVM assume no inf/NaN.
* ``nogil=True``: a kernel releases the GIL while it runs, so the threads of an executor
  (a ThreadPoolExecutor, a Dask worker) solve chunks side by side and the worker's own
  communication threads are not blocked for the length of a chunk.
* ``parallel`` only where a kernel loops over independent problems with ``prange``; the
  per-problem solvers it calls stay serial (nested thread pools only add overhead), and so
  do the element-wise training kernels (:mod:`capopt.training._kernels`): a step calls
  them many times on ~1e5-1e6 entries, where a thread pool's start-up and, on a shared
  machine, its waiting for busy cores cost more than the work (measured 10x slower on 2
  busy cores); the BLAS products around them are where threads pay.

With ``NUMBA_DISABLE_JIT=1`` the decorated functions stay plain Python, and every kernel
is written to run unchanged that way (``prange`` then is ``range``).
"""

from __future__ import annotations

import numba

__all__ = ["jit"]


def jit(function=None, *, parallel: bool = False):
    """Compile ``function`` with capopt's kernel flags (usable bare or with ``parallel=``)."""

    def decorate(f):
        return numba.njit(cache=True, fastmath=False, nogil=True, parallel=parallel, error_model="numpy")(f)

    return decorate if function is None else decorate(function)
