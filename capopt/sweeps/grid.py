r"""Parameter sweeps: grids of exact quadratic-model allocations as a labelled dataset.

A sweep solves

.. math::

    \min_C \sum_{i<N} \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\ \sum_i C_i \le d,
    \qquad \ell_i(C) = \frac{2 (K - 1) v_i^2 (1 - C)}{2 + (K - 3) C},\quad v_i = r^i,

at every point of a grid over the named parameters N (``n_features``), d (``budget``),
r (``importance_decay``) and K (``kurtosis``, or ``density`` p with K = K_z/p), with the
numba kernel :func:`capopt.solvers._kernels.solve_grid`, and returns an
:class:`xarray.Dataset` (the field's convention for labelled grids). The grid is cut into
chunks; with a ``checkpoint`` directory each finished chunk is written there atomically, and
a sweep started again on the same directory loads the finished chunks instead of solving
them. Chunks go to any :class:`concurrent.futures.Executor` (``executor=``), so the same
call runs on a Dask cluster through ``distributed.Client(...).get_executor()``.

Glossary: ``P`` problems in the grid, ``W`` the largest N (the width of the feature axis).
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import io
import json
import os
import secrets
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .. import _formulas as F
from .._validation import as_float_array, check_scalar
from ..regimes import DEFAULT_REGIME_ATOL
from ..solvers._kernels import solve_grid

__all__ = ["sweep", "save_sweep", "load_sweep", "DEFAULT_CHUNK_SIZE", "PARAMETERS"]

#: Problems per chunk: large enough that a chunk's task overhead (a few ms on an executor)
#: is small next to its solve (~0.3 s at N = 64), small enough to checkpoint often.
DEFAULT_CHUNK_SIZE = 1 << 16

#: The grid parameters, in the order of the dataset's dimensions.
PARAMETERS = ("n_features", "budget", "importance_decay", "kurtosis", "density")

#: Version of the checkpoint layout; a directory of another version is refused.
_CHECKPOINT_FORMAT = 1
_MANIFEST = "manifest.json"

_DESCRIPTIONS = {
    "capacity": "capacity C_i of feature i (fraction of a dimension it owns); NaN for i >= n_features",
    "multiplier": "smallest KKT multiplier lambda: the marginal value of one more dimension, -dL*/dd",
    "loss": "optimal total loss sum_i l_i(C_i)",
    "monosemantic": "number of features with C_i = 1 (within regime_atol)",
    "polysemantic": "number of features with 0 < C_i < 1 (beyond regime_atol)",
    "ignored": "number of features with C_i = 0 (within regime_atol)",
    "n_features": "number of features N",
    "budget": "embedding dimension d (the budget sum_i C_i <= d)",
    "importance_decay": "r in the importance profile v_i = r**i",
    "kurtosis": "fourth moment K = E[x^4] of every unit-variance input",
    "density": "probability p that a feature is active (sparsity S = 1 - p); K = K_z / p",
    "feature": "feature index i, by decreasing importance",
}


def sweep(
    *,
    n_features,
    budget,
    importance_decay=1.0,
    kurtosis=None,
    density=None,
    base: str = "gaussian",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    checkpoint=None,
    executor: concurrent.futures.Executor | None = None,
    progress: bool | None = None,
    regime_atol: float = DEFAULT_REGIME_ATOL,
) -> xr.Dataset:
    r"""Exact quadratic-model allocations over a grid of parameters.

    Every parameter is a scalar or a 1-d sequence of values; each sequence becomes a
    dimension of the result (in the order of :data:`PARAMETERS`) and each scalar a scalar
    coordinate. At every grid point the problem

    .. math::

        \min_C \sum_{i<N} \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,
        \ \sum_i C_i \le d, \qquad v_i = r^i,

    is solved exactly (water-filling for K > 3, the vertex solution for K <= 3).

    Parameters
    ----------
    n_features : int or sequence of int
        N >= 1.
    budget : float or sequence of float
        d >= 0.
    importance_decay : float or sequence of float
        r in (0, 1]: importances :math:`v_i = r^i` (1 = equally important features).
    kurtosis, density : float or sequence of float
        Exactly one of: the kurtosis K >= 1 of every input, or the density p in (0, 1] of
        sparse inputs :math:`x = B z/\sqrt p` (:func:`capopt.gated_kurtosis`:
        K = K_z / p), which adds ``kurtosis`` as a coordinate.
    base : {"gaussian", "rademacher", "uniform"}
        Distribution of an active input, for ``density``.
    chunk_size : int
        Problems per chunk (the unit of work, of checkpointing and of progress).
    checkpoint : path-like, optional
        Directory for finished chunks. A sweep started again with the same directory and
        the same arguments loads the chunks found there and solves only the others; a
        directory holding a different sweep is refused.
    executor : concurrent.futures.Executor, optional
        Runs the chunks (e.g. ``distributed.Client(...).get_executor()``); by default they
        run in this process, each on numba's threads. Results are collected, checkpointed
        and assembled in this process, so workers need no access to ``checkpoint``.
        A process pool should start its workers with "spawn" or "forkserver": numba's
        OpenMP threads do not survive a fork.
    progress : bool, optional
        Show a tqdm progress bar; by default only on an interactive terminal.
    regime_atol : float
        :math:`C \ge 1 - \text{atol}` counts as monosemantic, :math:`C \le \text{atol}`
        as ignored (as :func:`capopt.classify`).

    Returns
    -------
    xarray.Dataset
        ``capacity`` (grid dims..., ``feature``) padded with NaN beyond each N;
        ``multiplier``, ``loss`` and the counts ``monosemantic``, ``polysemantic``,
        ``ignored`` (int32) over the grid dims. Save it with :func:`save_sweep`.

    Raises
    ------
    ValueError
        On a parameter out of range, a sequence with repeated values or of more than one
        axis, both or neither of ``kurtosis`` and ``density``, or a checkpoint directory
        holding another sweep.

    Notes
    -----
    The grid of P problems is flattened in C order and cut into chunks of ``chunk_size``;
    each chunk builds its importances and calls the kernel, O(N log N) per problem. A
    finished chunk is written to ``checkpoint`` as one ``.npz`` file, first under a
    temporary name and then renamed (atomic on POSIX), so an interrupted sweep leaves only
    whole chunks behind. Memory: the result holds P x W capacities (8 bytes each).

    Examples
    --------
    Sparse features are polysemantic, dense ones are not (theory §3):

    >>> ds = sweep(n_features=8, budget=3, importance_decay=0.8, density=[1.0, 0.1])
    >>> ds.polysemantic.values.tolist()
    [0, 8]
    >>> ds.capacity.sel(density=1.0).values.round(3).tolist()
    [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    grid = _grid(n_features, budget, importance_decay, kurtosis, density, base)
    chunk_size = _positive_int(chunk_size, "chunk_size")
    regime_atol = check_scalar(regime_atol, "regime_atol", minimum=0.0)
    if executor is not None and not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(
            "executor must be a concurrent.futures.Executor (e.g. ThreadPoolExecutor or "
            f"distributed.Client(...).get_executor()), got {type(executor).__name__}"
        )
    per_problem = _per_problem(grid, base)
    n_problems = per_problem["n_features"].size
    width = int(np.max(grid["n_features"]))
    starts = range(0, n_problems, chunk_size)

    def task(index):
        part = slice(starts[index], starts[index] + chunk_size)
        return (
            per_problem["n_features"][part],
            per_problem["budget"][part],
            per_problem["importance_decay"][part],
            per_problem["kurtosis"][part],
            width,
            regime_atol,
        )

    store = _Checkpoint(checkpoint, _manifest(grid, base, chunk_size, regime_atol, width))
    chunks = {index: store.load(index) for index in store.finished(len(starts))}
    pending = [index for index in range(len(starts)) if index not in chunks]
    done = sum(min(chunk_size, n_problems - starts[i]) for i in chunks)
    bar = tqdm(total=n_problems, initial=done, unit="problem", desc="capopt sweep",
               disable=(None if progress is None else not progress))
    try:
        for index, result in _run(pending, task, executor):
            store.save(index, result)
            chunks[index] = result
            bar.update(result[1].size)
    finally:
        bar.close()
    return _dataset(grid, base, regime_atol, width, [chunks[i] for i in range(len(starts))])


def _run(pending, task, executor):
    """Yield (chunk index, result) as chunks finish, in process or on ``executor``."""
    if executor is None:
        for index in pending:
            yield index, _solve_chunk(*task(index))
        return
    futures = {executor.submit(_solve_chunk, *task(index)): index for index in pending}
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


def _solve_chunk(n, d, r, K, width, atol):
    """Solve one chunk: importances v_i = r**i for i < n, then the kernel.

    A module-level function of arrays and numbers only, so that any executor can ship it.
    Returns (capacities (m, width), multipliers, losses, counts (m, 3)).
    """
    with np.errstate(under="ignore"):
        v = np.power.outer(r, np.arange(width, dtype=np.float64))
    C, lam, loss, counts = solve_grid(v, n.astype(np.int64), K, d, atol)
    return C, lam, loss, counts.astype(np.int32)


# Validation and the grid ----------------------------------------------------------------


def _positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _values(value, name: str, check) -> np.ndarray:
    """A parameter as a float array of 0 or 1 axes, checked by ``check`` (a message or None)."""
    arr = as_float_array(value, name, allow_empty=False)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-d sequence of values, got shape {arr.shape}")
    if arr.ndim == 1 and np.unique(arr).size != arr.size:
        raise ValueError(f"{name} must not repeat a value (it labels a dimension), got {arr.tolist()}")
    problem = check(arr)
    if problem:
        raise ValueError(f"{name} must {problem}, got {arr.tolist()}")
    return arr


def _grid(n_features, budget, importance_decay, kurtosis, density, base) -> dict:
    """The checked parameters by name, in :data:`PARAMETERS` order (one of K and p absent)."""
    if (kurtosis is None) == (density is None):
        raise ValueError(
            "give exactly one of kurtosis (K >= 1) and density (p in (0, 1], K = K_z / p), got "
            + ("neither" if kurtosis is None else "both")
        )
    n = _values(n_features, "n_features",
                lambda x: None if np.all((x >= 1) & (x == np.round(x))) else "be whole numbers >= 1")
    grid = {
        "n_features": n.astype(np.int32),
        "budget": _values(budget, "budget", lambda x: None if np.all(x >= 0) else "be >= 0"),
        "importance_decay": _values(importance_decay, "importance_decay",
                                    lambda x: None if np.all((x > 0) & (x <= 1)) else "lie in (0, 1]"),
    }
    if kurtosis is not None:
        grid["kurtosis"] = _values(kurtosis, "kurtosis", lambda x: None if np.all(x >= 1) else "be >= 1")
    else:
        if base not in F.BASE_FOURTH_MOMENT:
            raise ValueError(f"base must be one of {sorted(F.BASE_FOURTH_MOMENT)}, got {base!r}")
        grid["density"] = _values(density, "density",
                                  lambda x: None if np.all((x > 0) & (x <= 1)) else "lie in (0, 1]")
    return grid


def _kurtosis(grid: dict, base: str) -> np.ndarray:
    if "kurtosis" in grid:
        return grid["kurtosis"]
    return F.gated_kurtosis(grid["density"], F.BASE_FOURTH_MOMENT[base])


def _per_problem(grid: dict, base: str) -> dict:
    """Each parameter's value at every problem of the flattened grid (C order of the dims)."""
    names = list(grid)
    mesh = np.meshgrid(*(np.atleast_1d(grid[k]) for k in names), indexing="ij")
    flat = {k: m.ravel() for k, m in zip(names, mesh)}
    flat["kurtosis"] = _kurtosis(flat, base)
    return flat


def _dataset(grid: dict, base: str, atol: float, width: int, chunks) -> xr.Dataset:
    """Assemble the chunks' results into the labelled dataset."""
    C, lam, loss, counts = (np.concatenate(parts) for parts in zip(*chunks))
    dims = tuple(k for k, x in grid.items() if x.ndim == 1)
    shape = tuple(grid[k].size for k in dims)
    coords = {k: ((k,) if x.ndim else (), x, {"description": _DESCRIPTIONS[k]}) for k, x in grid.items()}
    if "density" in grid:
        along = ("density",) if grid["density"].ndim else ()
        coords["kurtosis"] = (along, _kurtosis(grid, base), {"description": _DESCRIPTIONS["kurtosis"]})
    coords["feature"] = ("feature", np.arange(width, dtype=np.int32),
                         {"description": _DESCRIPTIONS["feature"]})
    data = {
        "capacity": (dims + ("feature",), C.reshape(shape + (width,))),
        "multiplier": (dims, lam.reshape(shape)),
        "loss": (dims, loss.reshape(shape)),
    }
    for j, name in enumerate(("monosemantic", "polysemantic", "ignored")):
        data[name] = (dims, counts[:, j].reshape(shape))
    ds = xr.Dataset(
        {k: (dims_, x, {"description": _DESCRIPTIONS[k]}) for k, (dims_, x) in data.items()},
        coords=coords,
    )
    ds.attrs = {
        "model": "quadratic model y = sum_i v_i x_i^2, v_i = importance_decay**i (capopt docs/theory.md §3)",
        "regime_atol": atol,
    }
    if "density" in grid:
        ds.attrs["base"] = base
    return ds


def _manifest(grid: dict, base: str, chunk_size: int, atol: float, width: int) -> dict:
    """Everything that fixes the chunks' contents: a checkpoint must match it to be reused."""
    manifest = {"format": _CHECKPOINT_FORMAT, "chunk_size": chunk_size, "regime_atol": atol,
                "width": width, "grid": {k: x.tolist() for k, x in grid.items()}}
    if "density" in grid:
        manifest["base"] = base
    return manifest


# Checkpoints and files --------------------------------------------------------------------

_FIELDS = ("capacity", "multiplier", "loss", "counts")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either nothing or all of it.

    The bytes go to a temporary file in the same directory (created with the user's umask,
    like any other file), reach the disk (fsync), and the file is renamed over ``path``
    (atomic on POSIX and Windows).
    """
    tmp = path.parent / f".{path.stem}-{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class _Checkpoint:
    """The finished chunks of one sweep in a directory (or nowhere, without one).

    Layout: ``manifest.json`` (the sweep's arguments, see :func:`_manifest`) and one
    ``chunk-<index>.npz`` per finished chunk. One sweep at a time may use a directory.
    """

    def __init__(self, directory, manifest: dict):
        self.directory = None if directory is None else Path(directory)
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / _MANIFEST
        if path.exists():
            found = json.loads(path.read_text())
            if found != manifest:
                raise ValueError(
                    f"checkpoint directory {str(self.directory)!r} holds a different sweep "
                    f"({found}); give a new directory, or delete this one to start over"
                )
        else:
            _write_atomic(path, json.dumps(manifest, indent=1).encode())
        # Temporary files of a writer that was killed: never renamed, so never a chunk.
        for stale in self.directory.glob(".chunk-*.tmp"):
            stale.unlink(missing_ok=True)

    def _path(self, index: int) -> Path:
        return self.directory / f"chunk-{index:06d}.npz"

    def finished(self, n_chunks: int) -> list[int]:
        """Indices of the chunks already on disk."""
        if self.directory is None:
            return []
        return [i for i in range(n_chunks) if self._path(i).exists()]

    def load(self, index: int):
        with np.load(self._path(index)) as z:
            return tuple(z[k] for k in _FIELDS)

    def save(self, index: int, result) -> None:
        if self.directory is None:
            return
        buffer = io.BytesIO()
        np.savez(buffer, **dict(zip(_FIELDS, result)))
        _write_atomic(self._path(index), buffer.getvalue())


def save_sweep(ds: xr.Dataset, path) -> None:
    """Write a sweep's dataset to a netCDF file, atomically.

    netCDF-3 through scipy (xarray's ``engine="scipy"``), so no netCDF library is needed;
    :func:`load_sweep` reads it back identical.

    Examples
    --------
    >>> import tempfile, pathlib, xarray
    >>> ds = sweep(n_features=4, budget=[1, 2], kurtosis=5.0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sweep.nc"
    >>> save_sweep(ds, path)
    >>> xarray.testing.assert_identical(load_sweep(path), ds)
    """
    path = Path(path)
    _write_atomic(path, bytes(ds.to_netcdf(engine="scipy")))


def load_sweep(path) -> xr.Dataset:
    """Read a dataset written by :func:`save_sweep` (fully into memory; the file is closed)."""
    return xr.load_dataset(Path(path), engine="scipy")
