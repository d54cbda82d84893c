"""Figure: the fraction of polysemantic features over input density and importance decay.

N features of importances :math:`v_i = r^i` and sparse Gaussian inputs of density p
(:func:`capopt.sweeps.polysemantic_phase`), checked against the boundary p*(r) where
features d-1 and d start to share, and with every feature's regime boundary traced
(:func:`capopt.sweeps.phase_boundaries`).

Glossary: ``p`` density, ``r`` importance decay, ``N`` number of features, ``d`` budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ...plotting import plot_polysemantic_phase
from ...sweeps import phase_boundaries, polysemantic_phase
from ..captions import fmt
from ..numbers import Key, Numbers
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench

__all__ = ["FIGURE", "PhaseNumbers", "PhaseDiagram"]


@dataclass(frozen=True)
class PhaseNumbers(Numbers):
    """The grid against the boundary p*(r), and the traced outer boundary against it."""

    grid_points: Annotated[int, Key("grid points")]
    max_fraction: Annotated[float, Key("max polysemantic fraction")]
    some_polysemantic: Annotated[int, Key("points with some polysemantic feature")]
    disagreements: Annotated[int, Key("disagreements with p < p*(r)")]
    traced_crossings: Annotated[int, Key("traced crossings")]
    traced_distance: Annotated[float, Key("max relative distance of the traced outer boundary from p*(r)")]


@dataclass(frozen=True)
class PhaseDiagram:
    """The numbers, the phase dataset and its traced boundaries."""

    numbers: PhaseNumbers
    phase: xr.Dataset
    boundaries: xr.Dataset


def compute(wb: Workbench) -> PhaseDiagram:
    s = wb.settings
    density = np.geomspace(0.01, 1.0, s.phase_densities)
    decay = np.linspace(0.5, 1.0, s.phase_decays)
    ds = polysemantic_phase(density, decay, n_features=s.phase_features, budget=s.phase_budget)
    some = (ds.polysemantic > 0).transpose("importance_decay", "density").values
    below = (ds.density < ds.boundary_density).transpose("importance_decay", "density").values
    fraction = ds.polysemantic_fraction.values
    traced = phase_boundaries(ds, along="density")
    # Some feature is polysemantic left of the largest density where one changes regime.
    outer = traced.density.groupby(traced.importance_decay).max()
    p_star = ds.boundary_density.sel(importance_decay=outer.importance_decay)
    numbers = PhaseNumbers(
        grid_points=int(fraction.size), max_fraction=float(fraction.max()),
        some_polysemantic=int(some.sum()), disagreements=int(np.sum(some != below)),
        traced_crossings=int(traced.point.size),
        traced_distance=float(np.max(np.abs(outer - p_star) / p_star)))
    return PhaseDiagram(numbers, ds, traced)


def draw(p: PhaseDiagram) -> Figure:
    return plot_polysemantic_phase(p.phase, boundaries=p.boundaries)


def caption(s: Settings, p: PhaseDiagram) -> str:
    n = p.numbers
    return (
        f"Fraction of N = {s.phase_features} features that are polysemantic at the optimum with "
        f"d = {s.phase_budget}, importances v_i = r^i and sparse Gaussian inputs of density p "
        f"(kurtosis K = 3/p), on a {s.phase_densities} x {s.phase_decays} grid (capopt.sweeps."
        f"polysemantic_phase, numba kernels). {n.some_polysemantic} of "
        f"{n.grid_points} points have a polysemantic feature, up to a fraction of "
        f"{fmt(n.max_fraction)}. The boundary p* = 3/(1 + 2/r) (dashed), where "
        "features d-1 and d start to share, predicts which points have one with "
        f"{n.disagreements} disagreements. The thin lines are traced "
        "(capopt.sweeps.phase_boundaries): where each feature changes regime, every crossing of the "
        f"grid refined along p to 1e-10 ({n.traced_crossings} points); the outermost lies "
        f"within {fmt(n.traced_distance)} "
        "(relative) of p*. Sparser inputs and flatter importance profiles mean more polysemanticity."
    )


FIGURE = FigureSpec("phase-diagram", "Phase diagram: polysemantic fraction over sparsity and importance decay",
                    PhaseNumbers, compute, draw, caption)
