r"""Phase diagrams of the quadratic model: where features become polysemantic.

Two diagrams, as data (:class:`xarray.Dataset`) computed by :func:`capopt.sweeps.sweep`;
:mod:`capopt.plotting` draws them.

* **Two features on one neuron** (importances a >= b, one kurtosis K, d = 1): both
  features share the neuron (polysemantic) iff

  .. math:: K > K^*(a/b) = 1 + 2 a / b,

  (:func:`capopt._formulas.two_feature_polysemantic_kurtosis`); below it the more
  important feature takes the whole neuron.
* **N features** with importances :math:`v_i = r^i` and sparse inputs of density p
  (K = K_z/p): the fraction of polysemantic features over p x r. At a whole budget
  d < N, the features d - 1 and d decide: the solution is d monosemantic features iff
  the former saturates before the latter starts, which is the two-feature condition with
  a/b = 1/r. Some feature is polysemantic iff :math:`K > 1 + 2/r`, i.e. iff

  .. math:: p < p^*(r) = K_z / (1 + 2 / r).

Glossary: ``r`` importance decay, ``p`` density, ``K`` kurtosis, ``K_z`` fourth moment of an
active input (3 for Gaussian), ``d`` budget, ``N`` number of features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .. import _formulas as F
from .._typing import ArrayLike
from .._validation import as_float_array
from .grid import sweep

__all__ = ["two_feature_phase", "polysemantic_phase", "polysemantic_fraction", "boundary_density"]


def two_feature_phase(importance_ratio: ArrayLike, kurtosis: ArrayLike, **sweep_options: Any) -> xr.Dataset:
    r"""Allocation of two features on one neuron over importance ratio a/b and kurtosis K.

    Parameters
    ----------
    importance_ratio : float or sequence of float
        a/b >= 1, the importance of the more important feature over the other's.
    kurtosis : float or sequence of float
        K >= 1, shared by both inputs.
    **sweep_options
        Passed to :func:`~capopt.sweeps.sweep` (``executor``, ``checkpoint``, ...).

    Returns
    -------
    xarray.Dataset
        Over (``importance_ratio``, ``kurtosis``): ``capacity_larger`` :math:`C_a`,
        ``capacity_smaller`` :math:`C_b`, ``multiplier``, ``loss``, ``polysemantic``
        (number of polysemantic features, 0 or 2); and ``boundary``
        :math:`K^* = 1 + 2a/b` over ``importance_ratio``.

    Notes
    -----
    Solved as the sweep ``n_features=2, budget=1, importance_decay=b/a`` (importances
    (1, b/a), the same ratio), by the exact kernels; the closed form :math:`K^*` is added
    from the derivations, for comparison, not used in the solve.

    Examples
    --------
    >>> ds = two_feature_phase(2.0, [2.0, 7.0])
    >>> ds.capacity_larger.values.round(6).tolist()   # theory §3: monosemantic, then 5/6
    [1.0, 0.833333]
    >>> float(ds.boundary)
    5.0
    """
    ratio = as_float_array(importance_ratio, "importance_ratio", allow_empty=False)
    if np.any(ratio < 1):
        raise ValueError(
            f"importance_ratio must be >= 1 (a is the larger importance), got min {ratio.min():g}"
        )
    ds = sweep(n_features=2, budget=1.0, importance_decay=1.0 / ratio, kurtosis=kurtosis, **sweep_options)
    dims = ("importance_ratio",) if ratio.ndim else ()
    ds = ds.assign_coords(importance_ratio=(("importance_decay",) if ratio.ndim else (), ratio,
                                            {"description": "a/b, larger importance over smaller"}))
    if ratio.ndim:
        ds = ds.swap_dims(importance_decay="importance_ratio")
    out = xr.Dataset(
        {
            "capacity_larger": ds.capacity.sel(feature=0, drop=True).assign_attrs(
                description="capacity C_a of the more important feature"),
            "capacity_smaller": ds.capacity.sel(feature=1, drop=True).assign_attrs(
                description="capacity C_b of the less important feature"),
            "multiplier": ds.multiplier,
            "loss": ds.loss,
            "polysemantic": ds.polysemantic,
            "boundary": (dims, F.two_feature_polysemantic_kurtosis(ratio, 1.0),
                         {"description": "K* = 1 + 2 a/b: polysemantic iff K > K*"}),
        },
        attrs={"model": "two features of importances a >= b on one neuron (quadratic model, d = 1)",
               "regime_atol": ds.attrs["regime_atol"]},
    )
    return out.drop_vars(["importance_decay", "n_features", "budget"])


def polysemantic_fraction(ds: xr.Dataset) -> xr.DataArray:
    """Fraction of the features that are polysemantic, from a :func:`~capopt.sweeps.sweep` dataset."""
    return (ds.polysemantic / ds.n_features).assign_attrs(
        description="fraction of the n_features features with 0 < C < 1")


def polysemantic_phase(
    density: ArrayLike, importance_decay: ArrayLike, *, n_features: int = 64, budget: float = 16,
    base: str = "gaussian", **sweep_options: Any,
) -> xr.Dataset:
    r"""Fraction of polysemantic features over input density p and importance decay r.

    Parameters
    ----------
    density : sequence of float
        p in (0, 1], the probability that a feature is active (sparsity S = 1 - p).
    importance_decay : sequence of float
        r in (0, 1]: importances :math:`v_i = r^i`.
    n_features : int
        N.
    budget : float
        d; whole and below N for the boundary :math:`p^*(r)` to apply.
    base : {"gaussian", "rademacher", "uniform"}
        Distribution of an active input.
    **sweep_options
        Passed to :func:`~capopt.sweeps.sweep`.

    Returns
    -------
    xarray.Dataset
        The sweep's dataset over (``importance_decay``, ``density``) with
        ``polysemantic_fraction`` added and, at a whole budget below N,
        ``boundary_density`` :math:`p^*(r) = K_z / (1 + 2/r)` over ``importance_decay``.

    Examples
    --------
    >>> ds = polysemantic_phase([1.0, 0.05], [0.9], n_features=16, budget=4)
    >>> ds.polysemantic_fraction.values.tolist()
    [[0.0, 1.0]]
    """
    ds = sweep(n_features=n_features, budget=budget, importance_decay=importance_decay,
               density=density, base=base, **sweep_options)
    ds["polysemantic_fraction"] = polysemantic_fraction(ds)
    boundary = boundary_density(ds)
    return ds if boundary is None else ds.assign(boundary_density=boundary)


def boundary_density(ds: xr.Dataset) -> xr.DataArray | None:
    r"""The density :math:`p^*(r) = K_z / (1 + 2/r)` below which some feature is polysemantic.

    For a :func:`~capopt.sweeps.sweep` dataset over ``density`` with one whole budget
    below one number of features (module docstring); ``None`` where it does not apply.
    """
    if "density" not in ds.coords or "base" not in ds.attrs:
        return None
    n, d = ds.n_features, ds.budget
    if n.ndim or d.ndim or float(d) != np.floor(float(d)) or float(d) >= int(n):
        return None
    K_star = F.two_feature_polysemantic_kurtosis(1.0, ds.importance_decay)
    return (F.BASE_FOURTH_MOMENT[ds.attrs["base"]] / K_star).assign_attrs(
        description="p* = K_z / (1 + 2/r): some feature is polysemantic iff p < p*")
