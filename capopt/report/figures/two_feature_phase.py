"""Figure: the phase diagram of two features on one neuron, over importance ratio and kurtosis.

Solved exactly on a grid (:func:`capopt.sweeps.two_feature_phase`) and checked against
the closed-form boundary K = 1 + 2a/b, with the boundary traced from the grid
(:func:`capopt.sweeps.phase_boundaries`) and the cases A-F of
:mod:`~capopt.report.figures.marginal_benefit` marked.

Glossary: ``K`` kurtosis, ``a/b`` importance ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Iterable

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ... import _formulas as F
from ...plotting import plot_two_feature_phase
from ...sweeps import phase_boundaries, two_feature_phase
from ..captions import fmt
from ..numbers import Key, Numbers
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench
from .marginal_benefit import TWO_FEATURE_CASES

__all__ = ["FIGURE", "ON_BOUNDARY", "TwoFeatureNumbers", "TwoFeaturePhase", "mark_two_feature_cases"]

#: Relative distance to the boundary K* = 1 + 2a/b within which a grid point counts as on it:
#: rounding of the grid and of K* is ~1e-16 relative.
ON_BOUNDARY = 1e-12


@dataclass(frozen=True)
class TwoFeatureNumbers(Numbers):
    """The grid against the boundary K = 1 + 2a/b, and the traced boundary against it."""

    grid_points: Annotated[int, Key("grid points")]
    polysemantic_points: Annotated[int, Key("polysemantic points")]
    on_boundary: Annotated[int, Key("points on the boundary")]
    disagreements: Annotated[int, Key("disagreements with K > 1 + 2a/b")]
    traced_crossings: Annotated[int, Key("traced crossings")]
    traced_distance: Annotated[float, Key("max relative distance of traced K from 1 + 2a/b")]


@dataclass(frozen=True)
class TwoFeaturePhase:
    """The numbers, the phase dataset and its traced boundaries."""

    numbers: TwoFeatureNumbers
    phase: xr.Dataset
    boundaries: xr.Dataset


def compute(wb: Workbench) -> TwoFeaturePhase:
    s = wb.settings
    ratios = np.linspace(1.0, 4.0, s.two_feature_ratios)
    kurtoses = np.linspace(1.0, 16.0, s.two_feature_kurtoses)
    ds = two_feature_phase(ratios, kurtoses)
    dims = ds.polysemantic.dims
    poly = (ds.polysemantic == 2).values
    K, boundary = ds.kurtosis.broadcast_like(ds.polysemantic), ds.boundary.broadcast_like(ds.polysemantic)
    predicted = (K > boundary).transpose(*dims).values
    # Grid points on the boundary itself (K = 1 + 2a/b up to rounding) have C_b = 0 exactly,
    # while the rounded comparison K > K* may go either way: they are counted apart.
    on = (np.abs(K - boundary) <= ON_BOUNDARY * boundary).transpose(*dims).values
    traced = phase_boundaries(ds, along="kurtosis")
    # K = 1 is the edge where nothing is represented (x^2 = 1 is absorbed by the bias).
    sharing = traced.where(traced.regime_above == "polysemantic", drop=True)
    K_star = F.two_feature_polysemantic_kurtosis(sharing.importance_ratio, 1.0)
    numbers = TwoFeatureNumbers(
        grid_points=int(poly.size), polysemantic_points=int(poly.sum()), on_boundary=int(on.sum()),
        disagreements=int(np.sum((poly != predicted) & ~on)), traced_crossings=int(sharing.point.size),
        traced_distance=float(np.max(np.abs(sharing.kurtosis - K_star) / K_star)))
    return TwoFeaturePhase(numbers, ds, traced)


def mark_two_feature_cases(fig: Figure, cases: Iterable[tuple[str, float, float]]) -> Figure:
    """Mark labelled points (importance ratio, kurtosis) on a :func:`plot_two_feature_phase` figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        As returned by :func:`plot_two_feature_phase`.
    cases : sequence of (label, importance_ratio, kurtosis)

    Returns
    -------
    matplotlib.figure.Figure
        ``fig``, marked (write it with ``fig.savefig``).
    """
    ax = fig.axes[0]
    for label, ratio, K in cases:
        # Not clipped: equal-importance cases sit on the frame at a/b = 1.
        ax.plot(ratio, K, marker="o", markersize=9, color="white", markeredgecolor="black", zorder=3,
                clip_on=False)
        ax.annotate(label, (ratio, K), xytext=(7, 5), textcoords="offset points", color="black",
                    fontsize=10, fontweight="bold", zorder=3,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    # Case F sits in the upper-left corner, where the phase plot puts its legend; the upper
    # right holds no case at the default ranges.
    ax.legend(loc="upper right", framealpha=0.8)
    return fig


def draw(t: TwoFeaturePhase) -> Figure:
    return mark_two_feature_cases(plot_two_feature_phase(t.phase, boundaries=t.boundaries),
                                  TWO_FEATURE_CASES)


def caption(s: Settings, t: TwoFeaturePhase) -> str:
    n = t.numbers
    return (
        f"Capacity C_b of the less important of two features on one neuron, solved exactly on a "
        f"{s.two_feature_ratios} x {s.two_feature_kurtoses} grid of importance ratio a/b in [1, 4] "
        f"and kurtosis K in [1, 16] (capopt.sweeps.two_feature_phase). The features share the neuron "
        f"(polysemantic) at {n.polysemantic_points} of {n.grid_points} grid points. "
        f"The closed-form boundary K = 1 + 2a/b (dashed) predicts which, with {n.disagreements} "
        f"disagreements off the boundary ({n.on_boundary} grid points lie on it, "
        "where C_b = 0). The solid line is the boundary traced from the grid "
        "(capopt.sweeps.phase_boundaries: each crossing refined along K to 1e-10 by a root of the "
        f"KKT margin, re-solving the problem); its {n.traced_crossings} points lie within "
        f"{fmt(n.traced_distance)} (relative) of 1 + 2a/b. "
        "The solid line along the bottom edge is the other change of regime the tracer finds: at "
        "K = 1 every curve is flat and nothing is represented, just above it feature a owns the neuron. "
        "Sparse inputs (large K) and similar importances (a/b near 1) make sharing "
        "optimal. The lettered points are the cases A-F of the previous figure."
    )


FIGURE = FigureSpec("two-feature-phase", "Phase diagram: two features on one neuron", TwoFeatureNumbers,
                    compute, draw, caption)
