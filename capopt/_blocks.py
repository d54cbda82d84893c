"""Passes over the features of a large embedding, one block of columns at a time.

Glossary: ``X`` an array of shape (..., d, N) with features last, in its own dtype (a numpy
array, an ``np.memmap`` or a dask array); a *block* is the float64 copy of its columns
``[start, stop)``, shape (..., d, stop - start); a *kernel* is a function of one block.

A pass maps a kernel over the blocks (:meth:`Blocks.map`) or folds the kernel's results
with an associative ``combine`` (:meth:`Blocks.reduce`). A numpy array is read block by
block in this process, so that no float64 copy of more than one block exists at a time;
a dask array is computed chunk-parallel, one task per chunk of its feature axis, by
whichever scheduler ``dask.compute`` picks (a ``distributed.Client``, when one is
active). dask is imported only when a dask array is given.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["BLOCK_BYTES", "Blocks", "is_dask"]

#: Size aimed at, in bytes, of one float64 block of a numpy array: ``BLOCK_BYTES // (8 d)``
#: features per block (divided further by the number of matrices in a batch). Each pass
#: holds about three buffers of this size, so 4 MiB keeps a pass near 12 MiB beyond its
#: d x d matrices, while the blocks (2048 features at d = 256, 128 at d = 4096) stay wide
#: enough for matrix products to run at full speed.
BLOCK_BYTES = 4 * 2**20


def is_dask(value: object) -> bool:
    """Whether ``value`` is a dask array, decided without importing dask."""
    return type(value).__module__.split(".")[0] == "dask" and hasattr(value, "to_delayed")


def _float_block(raw: Any) -> np.ndarray:
    """A float64 copy of a block that the kernel may overwrite (the input never is)."""
    return np.array(raw, dtype=np.float64, copy=True)


def _call(kernel: Callable, float64: bool, raw: Any, *args: Any) -> Any:
    """``kernel`` on one block, read from the input (or from dask's chunk)."""
    return kernel(_float_block(raw) if float64 else np.asarray(raw), *args)


class Blocks:
    """The columns of ``X`` (..., d, N), in blocks.

    Parameters
    ----------
    X : ndarray, np.memmap or dask array, shape (..., d, N)
        Features last; any real dtype. Only read.

    A numpy array is read ``BLOCK_BYTES // (8 d B)`` features at a time (at least 1) for
    a batch of B matrices; a dask array keeps the chunks of its feature axis (its other
    axes are joined into one chunk).
    """

    def __init__(self, X: Any) -> None:
        self.shape = tuple(X.shape)
        self.dask = is_dask(X)
        if self.dask:
            X = X.rechunk({axis: -1 for axis in range(X.ndim - 1)})
            sizes: Sequence[int] = X.chunks[-1]
        else:
            per_block = max(BLOCK_BYTES // (8 * max(math.prod(self.shape[:-1]), 1)), 1)
            n = self.shape[-1]
            sizes = [min(per_block, n - s) for s in range(0, n, per_block)]
        self.X = X
        self.bounds = [(int(s), int(s + k)) for s, k in zip(np.cumsum([0, *sizes]), sizes)]

    def _tasks(self, kernel: Callable, per_column: Sequence[np.ndarray], shared: Sequence[Any],
               float64: bool = True) -> Any:
        """One call per block, ``kernel(block, *column slices, *shared)``: a generator that
        reads each block as it is asked for (numpy), or a list of dask tasks. The block is
        a float64 copy, or with ``float64=False`` a read-only view in the input's dtype."""
        slices = [[c[..., start:stop] for c in per_column] for start, stop in self.bounds]
        if not self.dask:
            return (
                _call(kernel, float64, self.X[..., start:stop], *columns, *shared)
                for (start, stop), columns in zip(self.bounds, slices)
            )
        import dask

        # One graph key per shared value, rather than a copy inside every task.
        shared = [dask.delayed(s) for s in shared]
        raw = self.X.to_delayed().ravel()
        return [
            dask.delayed(_call, pure=True)(kernel, float64, block, *columns, *shared)
            for block, columns in zip(raw, slices)
        ]

    def map(self, kernel: Callable, per_column: Sequence[np.ndarray] = (),
            shared: Sequence[Any] = (), *, float64: bool = True) -> list:
        """``[kernel(block, *column slices, *shared) for each block]``, in column order.

        ``per_column`` arrays have the feature axis last and are sliced like the block;
        ``shared`` values are passed whole. With ``float64=False`` the kernel gets the
        block in the input's dtype, not to be written to.
        """
        tasks = self._tasks(kernel, per_column, shared, float64)
        if not self.dask:
            return list(tasks)
        import dask

        return list(dask.compute(*tasks))

    def reduce(self, kernel: Callable, combine: Callable, per_column: Sequence[np.ndarray] = (),
               shared: Sequence[Any] = ()) -> Any:
        """Fold the kernel's results with the associative ``combine``.

        A numpy array is folded as it is read, so that one partial result is held at a
        time; a dask array's partial results are combined pairwise in a tree of tasks.
        """
        parts = self._tasks(kernel, per_column, shared)
        if not self.dask:
            result = next(parts)
            for part in parts:
                result = combine(result, part)
            return result
        import dask

        while len(parts) > 1:
            pairs = [parts[i:i + 2] for i in range(0, len(parts), 2)]
            parts = [dask.delayed(combine, pure=True)(*p) if len(p) == 2 else p[0] for p in pairs]
        return dask.compute(parts[0])[0]
