"""Where a sweep's chunks run: in this process, or on any :class:`concurrent.futures.Executor`.

:func:`run_chunks` yields each chunk's result as it finishes, so the caller can checkpoint
it at once; the same call runs on a Dask cluster through
``distributed.Client(...).get_executor()``.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

__all__ = ["run_chunks", "DEFAULT_CHUNK_SIZE"]

#: Problems per chunk: large enough that a chunk's task overhead (a few ms on an executor)
#: is small next to its solve (~0.3 s at N = 64), small enough to checkpoint often.
DEFAULT_CHUNK_SIZE = 1 << 16


T = TypeVar("T")


def run_chunks(pending: Sequence[int], task: Callable[[int], tuple], solve: Callable[..., T],
               executor: concurrent.futures.Executor | None) -> Iterator[tuple[int, T]]:
    """Yield (chunk index, ``solve(*task(index))``) as chunks finish, in process or on ``executor``.

    ``solve`` must be a module-level function of arrays and numbers, so that any executor can
    ship it. On an error or an interrupt, chunks not yet started are cancelled.
    """
    if executor is None:
        for index in pending:
            yield index, solve(*task(index))
        return
    futures = {executor.submit(solve, *task(index)): index for index in pending}
    try:
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()
    except concurrent.futures.process.BrokenProcessPool as exc:
        raise concurrent.futures.process.BrokenProcessPool(
            f"{exc} If the pool forks its workers from a process that has run numba's OpenMP "
            "threads, OpenMP terminates them: create it with "
            "mp_context=multiprocessing.get_context('spawn') (or 'forkserver')"
        ) from exc
    finally:
        # On an error (or an interrupt) stop what has not started; finished chunks are saved.
        for future in futures:
            future.cancel()
