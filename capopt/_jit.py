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

Every kernel made here is recorded, so that :func:`cold_sources` can tell before any call
whether this process will compile (a first run, or a source file changed since its cache
was written), and the commands say so instead of pausing in silence.
"""

from __future__ import annotations

import importlib

import numba

__all__ = ["jit", "cold_sources", "KERNEL_MODULES"]

#: The modules that define kernels with :func:`jit`; :func:`cold_sources` imports them all.
KERNEL_MODULES = ("capopt.solvers._kernels", "capopt.training._kernels")

#: Every kernel :func:`jit` has made in this process, in the order made.
_KERNELS: list = []


def jit(function=None, *, parallel: bool = False):
    """Compile ``function`` with capopt's kernel flags (usable bare or with ``parallel=``)."""

    def decorate(f):
        kernel = numba.njit(cache=True, fastmath=False, nogil=True, parallel=parallel, error_model="numpy")(f)
        _KERNELS.append(kernel)
        return kernel

    return decorate if function is None else decorate(function)


def _has_cache(kernel) -> bool:
    """Whether numba holds compiled code for ``kernel`` that is fresh for its source.

    Reads numba's cache index as numba does before it compiles (an index written by another
    numba version or for an older source stamp counts as empty). Without a cache object
    (``NUMBA_DISABLE_JIT=1`` leaves a plain function) there is nothing to compile; should
    numba's cache internals change, nothing is announced rather than something false.
    """
    try:
        return bool(kernel._cache._cache_file._load_index())
    except AttributeError:
        return True


def cold_sources() -> tuple[str, ...]:
    """Source files of capopt's kernels for which numba has no fresh cached code.

    A file is cold when none of its kernels is cached: on a first run, or after the file
    changed, each of its kernels compiles on its first call (seconds each). One kernel that
    no run has called yet, in a file whose others are cached, does not make the file cold,
    so a rarely used kernel does not bring the notice back on every run.

    Returns
    -------
    tuple of str
        The file paths, sorted; empty when nothing will compile.

    Examples
    --------
    >>> isinstance(cold_sources(), tuple)
    True
    """
    for module in KERNEL_MODULES:
        importlib.import_module(module)
    cached: dict[str, bool] = {}
    for kernel in _KERNELS:
        source = getattr(kernel, "py_func", kernel).__code__.co_filename
        cached[source] = cached.get(source, False) or _has_cache(kernel)
    return tuple(sorted(f for f, fresh in cached.items() if not fresh))
