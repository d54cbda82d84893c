r"""Parameter sweeps: grids of exact quadratic-model allocations as a labelled dataset.

A sweep solves

.. math::

    \min_C \sum_{i<N} \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\ \sum_i C_i \le d,
    \qquad \ell_i(C) = \frac{2 (K - 1) v_i^2 (1 - C)}{2 + (K - 3) C},\quad v_i = r^i,

at every point of a grid over the named parameters N (``n_features``), d (``budget``),
r (``importance_decay``) and K (``kurtosis``, or ``density`` p with K = K_z/p), with the
numba kernel :func:`capopt._kernels.grid.solve_grid`, and returns an
:class:`xarray.Dataset` (the field's convention for labelled grids). The grid is cut into
chunks; with a ``checkpoint`` directory each finished chunk is written there atomically, and
a sweep started again on the same directory loads the finished chunks instead of solving
them. Chunks go to any :class:`concurrent.futures.Executor` (``executor=``), so the same
call runs on a Dask cluster through ``distributed.Client(...).get_executor()``.

This module owns the grid: its parameters, their checks, the problem at each point and the
chunk solver. Where chunks run is :mod:`~capopt.sweeps.scheduling`, how finished ones are
kept :mod:`~capopt.sweeps.chunk_store`, and the labelled result :mod:`~capopt.sweeps.dataset`.

Glossary: ``P`` problems in the grid, ``W`` the largest N (the width of the feature axis).
"""

from __future__ import annotations

import concurrent.futures

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .. import _formulas as F
from .._validation import as_axis_values, check_choice, check_executor, check_flag, check_integer, check_scalar
from .._typing import ArrayLike, PathLike
from ..regimes import DEFAULT_REGIME_ATOL
from .._kernels.grid import solve_grid
from .._kernels.grid_sensitivities import solve_grid_sensitivities
from .chunk_store import ChunkStore, manifest
from .dataset import load_sweep, save_sweep, to_dataset
from .scheduling import DEFAULT_CHUNK_SIZE, run_chunks

__all__ = ["sweep", "save_sweep", "load_sweep", "DEFAULT_CHUNK_SIZE", "PARAMETERS"]

#: The grid parameters, in the order of the dataset's dimensions.
PARAMETERS = ("n_features", "budget", "importance_decay", "kurtosis", "density")


def sweep(
    *,
    n_features: ArrayLike,
    budget: ArrayLike,
    importance_decay: ArrayLike = 1.0,
    kurtosis: ArrayLike | None = None,
    density: ArrayLike | None = None,
    base: str = "gaussian",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    checkpoint: PathLike | None = None,
    executor: concurrent.futures.Executor | None = None,
    progress: bool | None = None,
    regime_atol: float = DEFAULT_REGIME_ATOL,
    sensitivities: bool = False,
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
        directory holding a different sweep is refused. A chunk file that fails its checks
        (index, shapes, checksum) is solved again and rewritten.
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
    sensitivities : bool
        Also differentiate every optimum, in the same kernel pass
        (:func:`capopt._kernels.grid_sensitivities.solve_grid_sensitivities`): adds the variables
        ``multiplier_d_budget``, ``capacity_d_budget``, ``capacity_d_kurtosis`` (in the
        shared kurtosis), ``capacity_d_density`` (with ``density``, through K = K_z / p),
        ``capacity_d_decay`` (in r) and ``regime_margin`` (the smallest relative change
        of the swept parameters that changes a regime, to first order); see
        :data:`capopt.sweeps.dataset.DESCRIPTIONS`.

    Returns
    -------
    xarray.Dataset
        ``capacity`` (grid dims..., ``feature``) padded with NaN beyond each N;
        ``multiplier``, ``loss`` and the counts ``monosemantic``, ``polysemantic``,
        ``ignored`` (int32) over the grid dims, and the sensitivities if asked. Save it
        with :func:`save_sweep`.

    Raises
    ------
    ValueError
        On a parameter out of range, a sequence with repeated values or of more than one
        axis, both or neither of ``kurtosis`` and ``density``, or a checkpoint directory
        holding another sweep (or an unreadable manifest).

    Warns
    -----
    CheckpointWarning
        For each chunk file in ``checkpoint`` that is truncated, corrupt, from another
        sweep or in another chunk's place, naming the file; that chunk is solved again.

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
    grid = check_grid(n_features, budget, importance_decay, kurtosis, density, base)
    chunk_size = check_integer(chunk_size, "chunk_size")
    regime_atol = check_scalar(regime_atol, "regime_atol", minimum=0.0)
    sensitivities = check_flag(sensitivities, "sensitivities")
    executor = check_executor(executor)
    per_problem = _per_problem(grid, base)
    n_problems = per_problem["n_features"].size
    width = int(np.max(grid["n_features"]))
    starts = range(0, n_problems, chunk_size)

    def task(index: int) -> tuple:
        part = slice(starts[index], starts[index] + chunk_size)
        return (
            per_problem["n_features"][part],
            per_problem["budget"][part],
            per_problem["importance_decay"][part],
            per_problem["kurtosis"][part],
            width,
            regime_atol,
            sensitivities,
        )

    # The store holds the checkpoint folder's lock until the sweep ends, also on an error.
    with ChunkStore(checkpoint, manifest(grid, base, chunk_size, regime_atol, width, sensitivities)) as store:
        chunks = store.finished(n_problems)
        pending = [index for index in range(len(starts)) if index not in chunks]
        done = sum(min(chunk_size, n_problems - starts[i]) for i in chunks)
        bar = tqdm(total=n_problems, initial=done, unit="problem", desc="capopt sweep",
                   disable=(None if progress is None else not progress))
        try:
            for index, result in run_chunks(pending, task, _solve_chunk, executor):
                store.save(index, result)
                chunks[index] = result
                bar.update(result[1].size)
        finally:
            bar.close()
    return to_dataset(grid, _kurtosis(grid, base), base, regime_atol, width,
                      [chunks[i] for i in range(len(starts))])


def _solve_chunk(n: np.ndarray, d: np.ndarray, r: np.ndarray, K: np.ndarray, width: int, atol: float,
                 sensitivities: bool = False) -> tuple[np.ndarray, ...]:
    """Solve one chunk: importances v_i = r**i for i < n, then the kernel.

    A module-level function of arrays and numbers only, so that any executor can ship it.
    Returns (capacities (m, width), multipliers, losses, counts (m, 3)), and with
    ``sensitivities`` the kernel's derivatives and margins after them.
    """
    v = importances(r, width)
    if not sensitivities:
        C, lam, loss, counts = solve_grid(v, n.astype(np.int64), K, d, atol)
        return C, lam, loss, counts.astype(np.int32)
    C, lam, loss, counts, *derivatives = solve_grid_sensitivities(v, n.astype(np.int64), K, r, d, atol)
    return (C, lam, loss, counts.astype(np.int32), *derivatives)


def importances(r: ArrayLike, width: int) -> np.ndarray:
    """The importances :math:`v_i = r^i`, i < ``width``, of each decay r: shape (len(r), width)."""
    with np.errstate(under="ignore"):
        return np.power.outer(r, np.arange(width, dtype=np.float64))


# The grid --------------------------------------------------------------------------------


def check_grid(n_features: ArrayLike, budget: ArrayLike, importance_decay: ArrayLike,
               kurtosis: ArrayLike | None, density: ArrayLike | None, base: str) -> dict:
    """The checked parameters of :func:`sweep` by name, in :data:`PARAMETERS` order (one of
    K and p absent); raises ValueError as :func:`sweep` does, before any work."""
    if (kurtosis is None) == (density is None):
        raise ValueError(
            "give exactly one of kurtosis (K >= 1) and density (p in (0, 1], K = K_z / p), got "
            + ("neither" if kurtosis is None else "both")
        )
    n = as_axis_values(n_features, "n_features",
                       lambda x: None if np.all((x >= 1) & (x == np.round(x))) else "be whole numbers >= 1")
    grid = {
        "n_features": n.astype(np.int32),
        "budget": as_axis_values(budget, "budget", lambda x: None if np.all(x >= 0) else "be >= 0"),
        "importance_decay": as_axis_values(importance_decay, "importance_decay",
                                           lambda x: None if np.all((x > 0) & (x <= 1)) else "lie in (0, 1]"),
    }
    if kurtosis is not None:
        grid["kurtosis"] = as_axis_values(kurtosis, "kurtosis",
                                          lambda x: None if np.all(x >= 1) else "be >= 1")
    else:
        check_choice(base, "base", sorted(F.BASE_FOURTH_MOMENT))
        grid["density"] = as_axis_values(density, "density",
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
