"""Figure: trained models' fraction of polysemantic features against input density.

Every architecture without closed-form curves, trained with Adam at each density (the
:class:`~capopt.report.workbench.Workbench`'s sweeps), against the solver's prediction for
the quadratic model on the same inputs, which the trained 'square' network implements.

Glossary: ``p`` density, ``d`` budget, ``v`` importance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Iterable, Mapping

import numpy as np
from matplotlib.figure import Figure

from ..._typing import ArrayLike, PathLike
from ...curves import gated_kurtosis, quadratic
from ...plotting import finish, new_figure
from ...regimes import Regime, classify
from ...solvers import solve
from ...training import ARCHITECTURES, SparsitySweep
from ...training.results import TRAINED_REGIME_ATOL, TRAINED_ZERO_TOL
from ..captions import Table, fmt, table, training_recipe
from ..drawing import ARCHITECTURE_LABELS, density_axis, seed_band, tab10
from ..measures import spread
from ..numbers import Key, Named, Numbers
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench

__all__ = ["FIGURE", "ArchitectureNumbers", "SparsityNumbers", "Sparsity", "plot_polysemantic_vs_sparsity"]


@dataclass(frozen=True)
class ArchitectureNumbers(Named):
    """One architecture's polysemantic fraction (mean over seeds) at the densest and the
    sparsest inputs, with its range over seeds, and how it was trained."""

    dense: Annotated[float, Key("dense")]
    dense_seed_range: Annotated[float, Key("dense seed range")]
    sparse: Annotated[float, Key("sparse")]
    sparse_seed_range: Annotated[float, Key("sparse seed range")]
    dense_by_capacity_alone: Annotated[float, Key("dense by capacity alone")]
    threshold_change: Annotated[float, Key("max change over thresholds")]
    steps: Annotated[int, Key("Adam steps")]
    converged: Annotated[str, Key("converged")]


@dataclass(frozen=True)
class SparsityNumbers(Numbers):
    """Every architecture, in training order; ``seeds`` per density and ``n_features``
    features each."""

    architectures: tuple[ArchitectureNumbers, ...]
    grows: Annotated[int, Key("architectures where it grows")]
    solver_gap: Annotated[float, Key("square vs solver max |difference|")]
    threshold_change: Annotated[float, Key("max change over thresholds, all architectures")]
    seeds: int
    n_features: int


@dataclass(frozen=True)
class Sparsity:
    """The numbers, the trained sweeps by architecture, their densities and the solver's
    prediction (label, densities, fractions)."""

    numbers: SparsityNumbers
    sweeps: dict[str, SparsitySweep]
    densities: np.ndarray
    predicted: tuple[str, np.ndarray, np.ndarray]


def _predicted_fraction(v: ArrayLike, d: float, densities: Iterable[float]) -> np.ndarray:
    """Solver's polysemantic fraction of the quadratic model on the two-layer models' inputs."""
    out = []
    for p in densities:
        result = solve(quadratic(v, gated_kurtosis(p, ARCHITECTURES["square"].base)), d)
        regimes = classify(result.capacities, atol=TRAINED_REGIME_ATOL)
        out.append(sum(r is Regime.POLYSEMANTIC for r in regimes) / len(regimes))
    return np.array(out)


def compute(wb: Workbench) -> Sparsity:
    s = wb.settings
    sweeps = wb.sweeps
    p = wb.train_densities
    predicted = _predicted_fraction(wb.train_importance, s.train_budget, p)
    architectures = []
    for name, sw in sweeps.items():
        per_seed = sw.polysemantic_fraction
        f = per_seed.mean(axis=1)
        # The count without the norm threshold: what capacity alone calls polysemantic.
        alone = sw.fractions(zero_tol=0.0)[0, :, 1].mean()
        by_threshold = sw.threshold_sensitivity(s.regime_atols, s.zero_tols)
        architectures.append(ArchitectureNumbers(
            name, dense=float(f[0]), dense_seed_range=spread(per_seed[0]), sparse=float(f[-1]),
            sparse_seed_range=spread(per_seed[-1]), dense_by_capacity_alone=float(alone),
            threshold_change=float(np.max(np.abs(by_threshold - f))), steps=int(sw.fit.steps),
            converged="yes" if sw.fit.converged else "no (cap)"))
    numbers = SparsityNumbers(
        tuple(architectures), grows=sum(a.sparse > a.dense for a in architectures),
        solver_gap=float(np.max(np.abs(sweeps["square"].polysemantic_fraction.mean(axis=1) - predicted))),
        threshold_change=max(a.threshold_change for a in architectures),
        seeds=s.train_seeds, n_features=s.train_features)
    label = r"solver: quadratic model, $\hat y = \sum_k (Wx)_k^2 + b$ at its optimum"
    return Sparsity(numbers, sweeps, p, (label, p, predicted))


def plot_polysemantic_vs_sparsity(sweeps: Mapping[str, SparsitySweep], *,
                                  predicted: tuple[str, np.ndarray, np.ndarray] | None = None,
                                  path: PathLike | None = None) -> Figure:
    """Fraction of polysemantic features of trained models against input density.

    One line per architecture (mean over seeds, band from the lowest to the highest
    seed), density on a reversed log axis so that sparsity grows to the right.

    Parameters
    ----------
    sweeps : mapping of str to SparsitySweep
        From :func:`capopt.training.sparsity_sweep`, keyed by architecture.
    predicted : (label, densities, fractions), optional
        A prediction, drawn as a broad grey line under the others (e.g. the solver's, for the
        quadratic model).
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(figsize=(7.6, 5.0))
    ax = fig.add_subplot()
    colours = tab10()
    if predicted is not None:
        # A broad grey band under the trained lines, so a trained line on it stays visible.
        label, p, fraction = predicted
        ax.plot(p, fraction, color="black", alpha=0.3, linewidth=7, solid_capstyle="round", label=label)
    for colour, (name, sw) in zip(colours, sweeps.items()):
        seed_band(ax, sw.densities, sw.polysemantic_fraction, colour, ARCHITECTURE_LABELS.get(name, name))
    density_axis(ax, np.concatenate([sw.densities for sw in sweeps.values()]))
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("fraction of features polysemantic")
    sw = next(iter(sweeps.values()))
    seeds = sw.polysemantic_fraction.shape[1]
    steps = max(s.fit.steps for s in sweeps.values())
    fig.suptitle(f"Trained models: fraction of polysemantic features against input density\n"
                 f"(N = {sw.importance.size}, d = {sw.budget}, up to {steps} Adam steps, "
                 f"{seeds} seed{'s' if seeds > 1 else ''} per density)")
    ax.grid(alpha=0.3)
    # Lower right stays empty: trained models are mostly polysemantic at the sparsest inputs.
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return finish(fig, path)


def draw(sp: Sparsity) -> Figure:
    return plot_polysemantic_vs_sparsity(sp.sweeps, predicted=sp.predicted)


def caption(s: Settings, sp: Sparsity) -> str:
    p = sp.densities
    n = sp.numbers
    return (
        f"Fraction of features that are polysemantic in models trained with Adam "
        f"(capopt.training.sparsity_sweep: {training_recipe(s)}) at {p.size} densities from 1 to "
        f"{fmt(p[-1])}; line: mean over seeds, band: range over seeds. A feature is polysemantic "
        f"when it is represented, its column norm above {fmt(TRAINED_ZERO_TOL)} of the longest "
        f"column (capopt.geometry.represented), and {fmt(TRAINED_REGIME_ATOL)} < C < "
        f"{fmt(1 - TRAINED_REGIME_ATOL)}; the residual columns a trained model leaves on features "
        "it does not use have capacities anywhere in [0, 1], and counting them by capacity alone "
        "gives the column 'by C alone'. Over the thresholds atol in "
        f"{{{', '.join(fmt(a) for a in s.regime_atols)}}} and norm fraction in "
        f"{{{', '.join(fmt(z) for z in s.zero_tols)}}} the seed-mean fraction at any density moves by "
        f"at most {fmt(n.threshold_change)} (per architecture "
        f"in the table). Polysemanticity grows from the densest to the sparsest inputs in {n.grows} of "
        f"{len(sp.sweeps)} architectures. The broad grey line is capopt.solve's prediction for "
        "the quadratic model on the same inputs, which the trained 'square' network implements: "
        f"they differ by at most {fmt(n.solver_gap)} in fraction."
    )


def rows(sp: Sparsity) -> Table:
    header = ("architecture", "poly at p = 1", "seed range", f"poly at p = {fmt(sp.densities[-1])}",
              "seed range", "poly at p = 1 by C alone", "max change over thresholds", "Adam steps",
              "converged")
    return table(header, ((a.name, a.dense, a.dense_seed_range, a.sparse, a.sparse_seed_range,
                           a.dense_by_capacity_alone, a.threshold_change, a.steps, a.converged)
                          for a in sp.numbers.architectures))


FIGURE = FigureSpec("sparsity-sweep",
                    "Trained models: polysemantic fraction against sparsity, per architecture",
                    SparsityNumbers, compute, draw, caption, rows)
