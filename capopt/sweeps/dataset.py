"""A sweep's results as a labelled :class:`xarray.Dataset`, and its netCDF file.

:func:`to_dataset` assembles the chunks a sweep solved into the dataset :func:`capopt.sweeps.sweep`
returns (the field's convention for labelled grids); :func:`save_sweep` writes it atomically
and :func:`load_sweep` reads it back identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .. import _formulas as F
from .._atomic import atomic_write
from .._typing import PathLike

__all__ = ["to_dataset", "save_sweep", "load_sweep", "DESCRIPTIONS"]

#: The description attribute of every variable and coordinate of a sweep's dataset.
DESCRIPTIONS = {
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
    "multiplier_d_budget": "d lambda / d d: how the value of a dimension changes with the budget "
                           "(NaN at a whole budget of a vertex, where it does not exist)",
    "capacity_d_budget": "d C_i / d d: the share of one more dimension feature i takes",
    "capacity_d_kurtosis": "d C_i / d K, in the kurtosis shared by every input",
    "capacity_d_density": "d C_i / d p, in the density, through K = K_z / p",
    "capacity_d_decay": "d C_i / d r, in the decay of the importances v_i = r**i",
    "regime_margin": "smallest relative change of a swept parameter (|delta x| / |x|) that "
                     "changes some feature's regime, to first order in the derivatives "
                     "(0 at a kink or tie)",
}

#: The column of the kernel's margins for each parameter a regime margin may be taken over.
_MARGIN_COLUMNS = {"budget": 0, "kurtosis": 1, "density": 1, "importance_decay": 2}
#: Units of the sensitivities: per unit of the parameter they differentiate in.
_UNITS = {"multiplier_d_budget": "per dimension", "capacity_d_budget": "per dimension",
          "capacity_d_kurtosis": "per unit of K", "capacity_d_density": "per unit of p",
          "capacity_d_decay": "per unit of r", "regime_margin": "relative (dimensionless)"}


def to_dataset(grid: dict, kurtosis: np.ndarray, base: str, atol: float, width: int,
               chunks: Sequence[Sequence[np.ndarray]]) -> xr.Dataset:
    """Assemble the chunks' results into the labelled dataset.

    ``grid`` holds the checked parameters by name (scalars or 1-d arrays), ``kurtosis`` the
    kurtosis of each point of the density axis (used when ``grid`` sweeps ``density``),
    ``chunks`` the (capacities, multipliers, losses, counts) of every chunk in order.
    """
    # One chunk (a sweep of up to chunk_size problems) is used as it is, without a copy.
    C, lam, loss, counts, *derivatives = (parts[0] if len(parts) == 1 else np.concatenate(parts)
                                          for parts in zip(*chunks))
    dims = tuple(k for k, x in grid.items() if x.ndim == 1)
    shape = tuple(grid[k].size for k in dims)
    coords: dict[str, tuple[str | tuple[str, ...], np.ndarray, dict[str, str]]]
    coords = {k: ((k,) if x.ndim else (), x, {"description": DESCRIPTIONS[k]}) for k, x in grid.items()}
    if "density" in grid:
        along = ("density",) if grid["density"].ndim else ()
        coords["kurtosis"] = (along, kurtosis, {"description": DESCRIPTIONS["kurtosis"]})
    coords["feature"] = ("feature", np.arange(width, dtype=np.int32),
                         {"description": DESCRIPTIONS["feature"]})
    data = {
        "capacity": (dims + ("feature",), C.reshape(shape + (width,))),
        "multiplier": (dims, lam.reshape(shape)),
        "loss": (dims, loss.reshape(shape)),
    }
    for j, name in enumerate(("monosemantic", "polysemantic", "ignored")):
        data[name] = (dims, counts[:, j].reshape(shape))
    if derivatives:
        data |= _sensitivities(grid, base, dims, shape, width, *derivatives)
    ds = xr.Dataset(
        {k: (dims_, x, {"description": DESCRIPTIONS[k]} | ({"units": _UNITS[k]} if k in _UNITS else {}))
         for k, (dims_, x) in data.items()},
        coords=coords,
    )
    ds.attrs = {
        "model": "quadratic model y = sum_i v_i x_i^2, v_i = importance_decay**i (capopt docs/theory.md §3)",
        "regime_atol": atol,
    }
    if "density" in grid:
        ds.attrs["base"] = base
    return ds


def _sensitivities(grid: dict, base: str, dims: tuple, shape: tuple, width: int,
                   lam_dd: np.ndarray, dC_dd: np.ndarray, dC_dK: np.ndarray, dC_dr: np.ndarray,
                   margins: np.ndarray) -> dict:
    """The sensitivity variables from the kernel's outputs (flattened over the grid)."""
    per_feature = dims + ("feature",)
    out = {
        "multiplier_d_budget": (dims, lam_dd.reshape(shape)),
        "capacity_d_budget": (per_feature, dC_dd.reshape(shape + (width,))),
        "capacity_d_kurtosis": (per_feature, dC_dK.reshape(shape + (width,))),
        "capacity_d_decay": (per_feature, dC_dr.reshape(shape + (width,))),
    }
    if "density" in grid:
        p = grid["density"]
        dK_dp = F.gated_kurtosis_d_density(p, F.BASE_FOURTH_MOMENT[base])
        # Broadcast dK/dp along the density axis of the grid (or a scalar density).
        along = [1] * len(shape)
        if p.ndim:
            along[dims.index("density")] = p.size
        out["capacity_d_density"] = (per_feature, out["capacity_d_kurtosis"][1] * np.reshape(dK_dp, along + [1]))
    swept = [_MARGIN_COLUMNS[k] for k in dims if k in _MARGIN_COLUMNS] or sorted(set(_MARGIN_COLUMNS.values()))
    out["regime_margin"] = (dims, np.min(margins[:, swept], axis=1).reshape(shape))
    return out


def save_sweep(ds: xr.Dataset, path: PathLike) -> None:
    """Write a sweep's dataset to a netCDF file, atomically.

    netCDF-3 through scipy (xarray's ``engine="scipy"``), so no netCDF library is needed;
    :func:`load_sweep` reads it back identical.

    Examples
    --------
    >>> import tempfile, pathlib, xarray
    >>> from capopt.sweeps import sweep
    >>> ds = sweep(n_features=4, budget=[1, 2], kurtosis=5.0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sweep.nc"
    >>> save_sweep(ds, path)
    >>> xarray.testing.assert_identical(load_sweep(path), ds)
    """
    with atomic_write(path) as f:
        f.write(bytes(ds.to_netcdf(engine="scipy")))


def load_sweep(path: PathLike) -> xr.Dataset:
    """Read a dataset written by :func:`save_sweep` (fully into memory; the file is closed)."""
    return xr.load_dataset(Path(path), engine="scipy")
