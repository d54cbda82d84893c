"""Figures of capopt's results, drawn with matplotlib's Agg canvas.

Every function takes the data (an :class:`xarray.Dataset` from :mod:`capopt.sweeps.phase`,
solver results, cross-check reports or trained sweeps), computes nothing new from it,
returns a :class:`matplotlib.figure.Figure` and, given ``path``, also writes it as a PNG.
Figures are built without pyplot, so nothing here opens a window, touches the global figure
registry or depends on the user's backend; display one in a notebook by evaluating it.

Here: the phase diagrams of sweep datasets, and the canvas helpers every figure uses. The
other figures of ``capopt reproduce`` (allocation, marginal benefit, trained sweeps, Gram
blocks, cross-check, budget response) are each drawn by their own module of
:mod:`capopt.report.figures`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._typing import PathLike

__all__ = ["plot_two_feature_phase", "plot_polysemantic_phase", "draw_boundaries"]

#: Resolution of the PNG files written with ``path``.
DPI = 150
#: Polysemantic fractions below this are drawn as "none" (the smallest real one is 1/N).
NONE_BELOW = 1e-12


def new_figure(figsize: tuple[float, float] = (6.4, 4.8)) -> Figure:
    """A figure on its own Agg canvas, laid out with constrained layout."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def finish(fig: Figure, path: PathLike | None) -> Figure:
    """Write ``fig`` to ``path`` as a PNG at :data:`DPI` when a path is given; return it."""
    if path is not None:
        fig.savefig(Path(path), dpi=DPI)
    return fig


def draw_boundaries(ax: Axes, boundaries: xr.Dataset, x: str, y: str, *, label: str | None = None,
                    **style: Any) -> None:
    """Draw traced crossings (:func:`capopt.sweeps.phase_boundaries`) as lines in the (x, y) plane.

    One line per feature, pair of regimes and crossing index, through its points in order of
    the parameter that was not traced; ``label`` names the first line in the legend and
    ``style`` goes to :meth:`matplotlib.axes.Axes.plot`.
    """
    other = y if boundaries.attrs["along"] == x else x
    keys = np.stack([boundaries[k].values.astype(str) for k in
                     ("feature", "regime_below", "regime_above", "crossing")], axis=1)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    for g in range(int(group.max()) + 1 if group.size else 0):
        points = boundaries.isel(point=np.flatnonzero(group.ravel() == g)).sortby(other)
        ax.plot(points[x], points[y], label=label, **style)
        label = None


def plot_two_feature_phase(ds: xr.Dataset, *, boundaries: xr.Dataset | None = None,
                           path: PathLike | None = None) -> Figure:
    """Phase diagram of two features on one neuron (from :func:`capopt.sweeps.phase.two_feature_phase`).

    The colour is the capacity of the less important feature over the importance ratio
    a/b and the kurtosis K: 0 where the more important feature owns the neuron
    (monosemantic), above 0 where both share it (polysemantic). The closed-form boundary
    K = 1 + 2a/b is drawn over it, dashed, and the traced boundaries as solid lines when given.

    Parameters
    ----------
    ds : xarray.Dataset
        With ``capacity_smaller`` over (``importance_ratio``, ``kurtosis``) and ``boundary``.
    boundaries : xarray.Dataset, optional
        :func:`capopt.sweeps.phase_boundaries` of ``ds``.
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure()
    ax = fig.add_subplot()
    C = ds.capacity_smaller.transpose("kurtosis", "importance_ratio")
    mesh = ax.pcolormesh(ds.importance_ratio, ds.kurtosis, C, shading="nearest",
                         cmap="viridis", vmin=0.0, vmax=0.5)
    fig.colorbar(mesh, ax=ax, label="capacity $C_b$ of the less important feature")
    if boundaries is not None:
        draw_boundaries(ax, boundaries, "importance_ratio", "kurtosis", color="tab:orange", linewidth=3,
                        label="traced regime boundaries")
    ax.plot(ds.importance_ratio, ds.boundary, color="white", linestyle="--", linewidth=2,
            label="$K = 1 + 2a/b$ (polysemantic above)")
    ax.axhline(3.0, color="white", linestyle=":", linewidth=1, label="$K = 3$ (linear returns)")
    ax.set_xlim(float(ds.importance_ratio.min()), float(ds.importance_ratio.max()))
    ax.set_ylim(float(ds.kurtosis.min()), float(ds.kurtosis.max()))
    ax.set_xlabel("importance ratio $a/b$ of the two features")
    ax.set_ylabel("input kurtosis $K = E[x^4]$")
    ax.set_title("Two features on one neuron: when do they share it?")
    ax.legend(loc="upper left", framealpha=0.6)
    return finish(fig, path)


def phase_diagram_axes(dims: Iterable[str]) -> tuple[str, str]:
    """The (x, y) parameters of a :func:`plot_polysemantic_phase` of a sweep over ``dims``.

    Parameters
    ----------
    dims : sequence of str
        The swept parameters (the dataset's grid dimensions), in order.

    Returns
    -------
    (str, str)
        ``density`` or ``kurtosis`` on x, the other swept parameter on y.

    Raises
    ------
    ValueError
        Unless exactly two parameters are swept, one of them density or kurtosis.
    """
    dims = list(dims)
    x = next((k for k in ("density", "kurtosis") if k in dims), None)
    if len(dims) != 2 or x is None:
        raise ValueError(
            "a polysemantic phase diagram needs a sweep over exactly two parameters, one of "
            f"them density or kurtosis, got {'dimensions ' + str(dims) if dims else 'a one-point sweep'}"
        )
    return x, next(k for k in dims if k != x)


def plot_polysemantic_phase(ds: xr.Dataset, *, boundaries: xr.Dataset | None = None,
                            path: PathLike | None = None) -> Figure:
    """Fraction of polysemantic features over sparsity and importance decay.

    From :func:`capopt.sweeps.phase.polysemantic_phase` (or any sweep with exactly two
    swept parameters, one of them ``density`` or ``kurtosis``): the colour is the fraction
    of features with 0 < C < 1, the x axis the density p (log scale) or the kurtosis, the
    y axis the other parameter. The boundary :math:`p^*(r)` is drawn when the dataset
    holds it, and the traced boundaries, where each feature changes regime, when given.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep dataset with ``polysemantic`` counts over two dimensions.
    boundaries : xarray.Dataset, optional
        :func:`capopt.sweeps.phase_boundaries` of ``ds``.
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the sweep does not have exactly two swept parameters, one of them density or
        kurtosis.
    """
    x, y = phase_diagram_axes(ds.polysemantic.dims)
    fraction = (ds.polysemantic / ds.n_features).transpose(y, x)
    fig = new_figure()
    ax = fig.add_subplot()
    # Exactly 0 (every feature monosemantic or ignored) in grey, apart from small fractions;
    # viridis runs from dark blue to a saturated yellow, so neither end of the scale looks
    # like that grey or like the white background (magma's top end did).
    cmap = matplotlib.colormaps["viridis"].with_extremes(under="lightgrey")
    mesh = ax.pcolormesh(ds[x], ds[y], fraction, shading="nearest", cmap=cmap,
                         vmin=NONE_BELOW, vmax=1.0)
    fig.colorbar(mesh, ax=ax, extend="min",
                 label="fraction of features that are polysemantic (grey: none)")
    if boundaries is not None:
        draw_boundaries(ax, boundaries, x, y, color="white", linewidth=0.6, alpha=0.8,
                        label="traced: a feature changes regime")
    if "boundary_density" in ds and x == "density":
        ax.plot(ds.boundary_density, ds[y], color="cyan", linestyle="--", linewidth=2,
                label="$p^* = K_z/(1 + 2/r)$: polysemantic left of it")
    if boundaries is not None or ("boundary_density" in ds and x == "density"):
        ax.legend(loc="lower left", framealpha=0.6)
    if x == "density":
        ax.set_xscale("log")
        ax.set_xlabel("feature density $p$ (sparsity $S = 1 - p$), log scale")
    else:
        ax.set_xlabel("input kurtosis $K = E[x^4]$")
    ax.set_xlim(float(ds[x].min()), float(ds[x].max()))
    ax.set_ylabel({"importance_decay": "importance decay $r$ ($v_i = r^i$)",
                   "n_features": "number of features $N$",
                   "budget": "embedding dimension $d$"}.get(y, y))
    fixed = ", ".join(f"{symbol} = {np.asarray(ds[k]).item():g}"
                      for k, symbol in (("n_features", "N"), ("budget", "d"), ("importance_decay", "r"))
                      if k in ds.coords and ds[k].ndim == 0)
    base = f", {ds.attrs['base']} inputs" if "base" in ds.attrs and x == "density" else ""
    ax.set_title(f"Polysemantic features in the quadratic model\n({fixed}{base})")
    return finish(fig, path)

