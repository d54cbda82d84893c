"""The one place that holds the numba flags of capopt's kernels, and keeps their cache honest.

* ``cache=True``: compiled machine code is written next to the module, so only the first
  process on a machine pays for compilation (a few seconds); later imports load it.
* no ``fastmath``: the kernels compare against ``inf`` (breakpoints of features that never
  saturate) and must keep IEEE semantics; fastmath would let LLVM assume no inf/NaN.
* ``nogil=True``: a kernel releases the GIL while it runs, so the threads of an executor
  (a ThreadPoolExecutor, a Dask worker) solve chunks side by side and the worker's own
  communication threads are not blocked for the length of a chunk.
* ``parallel`` only where a kernel loops over independent problems with ``prange``; the
  per-problem solvers it calls stay serial (nested thread pools only add overhead), and so
  do the element-wise training kernels (:mod:`capopt._kernels.training`): a step calls
  them many times on ~1e5-1e6 entries, where a thread pool's start-up and, on a shared
  machine, its waiting for busy cores cost more than the work (measured 10x slower on 2
  busy cores); the BLAS products around them are where threads pay.

With ``NUMBA_DISABLE_JIT=1`` the decorated functions stay plain Python, and every kernel
is written to run unchanged that way (``prange`` then is ``range``).

*An honest cache.* The kernels live in the modules of :mod:`capopt._kernels` and call one
another across them, and the compiled forms of :mod:`capopt._formulas`. numba stamps a
cached kernel with a digest of its own source file only, so a kernel whose callee changed in
another file would load its stale machine code. Every kernel made here is cached under one
stamp instead, :data:`SOURCE_STAMP`, the digest of :data:`KERNEL_SOURCES` (every module of
:mod:`capopt._kernels`, :mod:`capopt._formulas`, and this module, whose flags are compiled
in): an edit to any of them leaves every cached kernel stale, and each compiles afresh on its
first call, overwriting its entries in place. Where numba keeps the cache is numba's choice
as ever (beside the sources, or under ``NUMBA_CACHE_DIR``).

Every kernel made here is recorded, so that :func:`cold_sources` can tell before any call
whether this process will compile (a first run, or a kernel source changed since the cache
was written), and the commands say so instead of pausing in silence.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Iterable
from typing import Any
from pathlib import Path

import numba
from numba.core.caching import CompileResultCacheImpl, FunctionCache
from numba.core.dispatcher import Dispatcher

__all__ = ["jit", "cold_sources", "source_stamp", "KERNEL_MODULES", "KERNEL_SOURCES", "SOURCE_STAMP"]

_PACKAGE = Path(__file__).resolve().parent

#: Every source compiled into a kernel: the kernel modules, the generated formulas, and the
#: flags here.
KERNEL_SOURCES: tuple[Path, ...] = (
    *sorted((_PACKAGE / "_kernels").glob("*.py")),
    _PACKAGE / "_formulas.py",
    Path(__file__).resolve(),
)

#: The modules that define kernels with :func:`jit`; :func:`cold_sources` imports them all.
KERNEL_MODULES = tuple(
    f"capopt._kernels.{path.stem}" for path in KERNEL_SOURCES
    if path.parent.name == "_kernels" and path.stem != "__init__"
)


def source_stamp(sources: Iterable[Path] = KERNEL_SOURCES) -> str:
    """The digest of ``sources``: their names and contents, in order (SHA-256, hex).

    Names, not paths, so that a copy of the package elsewhere keeps its cache.

    Examples
    --------
    >>> source_stamp() == SOURCE_STAMP
    True
    """
    digest = hashlib.sha256()
    for path in sources:
        text = Path(path).read_bytes()
        digest.update(f"{Path(path).name}\0{len(text)}\0".encode())
        digest.update(text)
    return digest.hexdigest()


#: The stamp of every cached kernel: stale as soon as any kernel source changes.
SOURCE_STAMP = source_stamp()


class _StampedLocator:
    """numba's own cache locator for a kernel, its source stamp replaced by :data:`SOURCE_STAMP`."""

    def __init__(self, locator: Any) -> None:
        self._locator = locator

    def __getattr__(self, name: str) -> Any:
        return getattr(self._locator, name)

    def get_source_stamp(self) -> str:
        return SOURCE_STAMP


class _StampedImpl(CompileResultCacheImpl):
    def __init__(self, py_func: Callable) -> None:
        super().__init__(py_func)
        self._locator = _StampedLocator(self._locator)


class _StampedCache(FunctionCache):
    """numba's cache of compiled kernels (``cache=True``), stamped with :data:`SOURCE_STAMP`."""

    _impl_class = _StampedImpl


#: Every kernel :func:`jit` has made in this process, in the order made.
_KERNELS: list = []


def jit(function: Callable | None = None, *, parallel: bool = False) -> Any:
    """Compile ``function`` with capopt's kernel flags (usable bare or with ``parallel=``)."""

    def decorate(f: Callable) -> Any:
        kernel = numba.njit(fastmath=False, nogil=True, parallel=parallel, error_model="numpy")(f)
        if isinstance(kernel, Dispatcher):  # NUMBA_DISABLE_JIT=1 leaves the plain function
            # What cache=True does (Dispatcher.enable_caching), with the stamped cache.
            kernel._cache = _StampedCache(f)  # type: ignore[attr-defined]  # numba sets it so
        _KERNELS.append(kernel)
        return kernel

    return decorate if function is None else decorate(function)


def _has_cache(kernel: Any) -> bool:
    """Whether numba holds compiled code for ``kernel`` that is fresh for its sources.

    Reads numba's cache index as numba does before it compiles (an index written by another
    numba version or under another :data:`SOURCE_STAMP` counts as empty). Without a cache
    object (``NUMBA_DISABLE_JIT=1`` leaves a plain function) there is nothing to compile;
    should numba's cache internals change, nothing is announced rather than something false.
    """
    try:
        return bool(kernel._cache._cache_file._load_index())
    except AttributeError:
        return True


def cold_sources() -> tuple[str, ...]:
    """Source files of capopt's kernels for which numba has no fresh cached code.

    A file is cold when none of its kernels is cached: on a first run, or after any kernel
    source changed (all of them then, see :data:`SOURCE_STAMP`), each of its kernels
    compiles on its first call (seconds each). One kernel that no run has called yet, in a
    file whose others are cached, does not make the file cold, so a rarely used kernel does
    not bring the notice back on every run.

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
