r"""Figure: the published Toy Models of Superposition settings, trained in their reference recipe.

Each of ``settings.tms_experiments`` (:data:`capopt.catalogue.TMS_EXPERIMENTS`), trained
by the :class:`~capopt.report.workbench.Workbench`, read where the publication reads it:
the dimensions per feature :math:`d / \|W\|_F^2` of the whole model, or each represented
feature's capacity, counted at the published values. Drawn by ``--full`` only.

Glossary: ``N`` number of features, ``d`` budget, ``p`` density, ``C`` capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Iterator, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..._typing import PathLike
from ...catalogue import TMS_EXPERIMENTS, TmsExperiment
from ...geometry import represented
from ...plotting import finish, new_figure
from ...training import SparsitySweep, train_autoencoder
from ...training.sparsity import tms_options
from ...training.results import TRAINED_REGIME_ATOL
from ..captions import Table, fmt, table
from ..drawing import SMALL_FONT
from ..numbers import Key, Named, Numbers, Scalar
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench

__all__ = ["FIGURE", "DensitiesNear", "FeaturesAt", "DimensionsPerFeature", "CapacityValues", "TmsNumbers",
           "TmsPublished", "pca_like_loss", "plot_tms_published"]


@dataclass(frozen=True)
class DensitiesNear(Numbers):
    """How many densities have d/|W|_F^2 within TRAINED_REGIME_ATOL of a published value."""

    value: float
    count: int

    def named(self) -> Iterator[tuple[str, Scalar]]:
        yield f"densities with d/|W|_F^2 within {fmt(TRAINED_REGIME_ATOL)} of {fmt(self.value)}", self.count


@dataclass(frozen=True)
class FeaturesAt(Numbers):
    """How many represented features (all densities and seeds) have a capacity within
    TRAINED_REGIME_ATOL of a published value."""

    value: float
    count: int

    def named(self) -> Iterator[tuple[str, Scalar]]:
        yield f"represented features at C = {fmt(self.value)}", self.count


@dataclass(frozen=True)
class DimensionsPerFeature(Named):
    """An experiment the publication reads by d/|W|_F^2: the densities at each published
    value and elsewhere, and the loss per feature at density 1 from the notebook's
    initialisation, from a per-instance Glorot draw, and of the PCA-like embedding."""

    near: tuple[DensitiesNear, ...]
    elsewhere: Annotated[int, Key("densities elsewhere")]
    dense_loss: Annotated[float, Key("loss per feature at p = 1")]
    pca_like_loss: Annotated[float, Key("PCA-like loss per feature")]
    glorot_loss: Annotated[float, Key("loss per feature at p = 1, glorot init")]


@dataclass(frozen=True)
class CapacityValues(Named):
    """An experiment the publication reads by each feature's capacity: the represented
    features at each published value, elsewhere, and in all."""

    near: tuple[FeaturesAt, ...]
    elsewhere: Annotated[int, Key("represented features elsewhere")]
    represented: Annotated[int, Key("represented features")]


@dataclass(frozen=True)
class TmsNumbers(Numbers):
    """The experiments, in the settings' order."""

    experiments: tuple[DimensionsPerFeature | CapacityValues, ...]


@dataclass(frozen=True)
class TmsPublished:
    """The numbers, one panel per experiment, (name, spec, sweep, measured): ``measured``
    the mean d/|W|_F^2 per density or the counts of :meth:`SparsitySweep.near_values`, and
    each experiment's loss per feature per density (mean over seeds)."""

    numbers: TmsNumbers
    panels: tuple[tuple[str, TmsExperiment, SparsitySweep, np.ndarray], ...]
    losses: tuple[np.ndarray, ...]


def pca_like_loss(n_features: int, budget: int) -> float:
    r"""Loss per feature of the dense TMS autoencoder that keeps d features whole.

    With :math:`x_i \sim U[0, 1]` dense and constant importance, the d kept features are
    reconstructed exactly and each of the N - d others is replaced by its best constant,
    the bias :math:`b_i = 1/2` (ReLU passes it), at the variance :math:`1/12`:
    :math:`(N - d) / (12 N)`, 0.075 for 200 features in d = 20.
    """
    return (n_features - budget) / (12.0 * n_features)


def compute(wb: Workbench) -> TmsPublished:
    experiments: list[DimensionsPerFeature | CapacityValues] = []
    panels, losses = [], []
    for name, sw in wb.tms.items():
        spec = TMS_EXPERIMENTS[name]
        values = spec.published
        N = spec.n_features
        loss = sw.fit.final_loss.reshape(sw.densities.size, -1).mean(axis=1) / N
        measured: np.ndarray
        if spec.measure == "dimensions per feature":
            measured = sw.dimensions_per_feature.mean(axis=1)
            near = np.abs(measured[:, None] - np.asarray(values)) <= TRAINED_REGIME_ATOL
            # The experiment's recipe for as many steps, from the larger Glorot-normal init.
            glorot = wb.train(f"{name}-glorot", partial(
                train_autoencoder, np.ones(N), spec.budget, density=1.0, options=tms_options(spec),
                steps=sw.fit.steps, seed=wb.settings.seed, init="glorot", progress=wb.progress,
                desc=f"training {name}, glorot init"))
            experiments.append(DimensionsPerFeature(
                name, tuple(DensitiesNear(v, int(hits.sum())) for v, hits in zip(values, near.T)),
                elsewhere=int(np.sum(~near.any(axis=1))), dense_loss=float(loss[int(np.argmax(sw.densities))]),
                pca_like_loss=pca_like_loss(N, spec.budget), glorot_loss=float(glorot.final_loss[0] / N)))
        else:
            measured = sw.near_values(values)
            experiments.append(CapacityValues(
                name, tuple(FeaturesAt(v, int(measured[:, j].sum())) for j, v in enumerate(values)),
                elsewhere=int(measured[:, -1].sum()), represented=int(measured.sum())))
        panels.append((name, spec, sw, measured))
        losses.append(loss)
    return TmsPublished(TmsNumbers(tuple(experiments)), tuple(panels), tuple(losses))


def plot_tms_published(panels: Sequence[tuple[str, TmsExperiment, SparsitySweep, np.ndarray]], *,
                       path: PathLike | None = None) -> Figure:
    r"""The published Toy Models of Superposition settings, trained in their reference recipe.

    Parameters
    ----------
    panels : sequence of (name, TmsExperiment, SparsitySweep, measured)
        ``measured`` is :math:`d / \|W\|_F^2` per density (shape (S,)) for an experiment
        measured by dimensions per feature; for one measured by capacity, each
        represented feature's capacity is drawn against density.
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(figsize=(6.0 * max(len(panels), 1), 4.8))
    axes = np.atleast_1d(fig.subplots(1, max(len(panels), 1)))
    for ax, (name, spec, sw, measured) in zip(axes, panels):
        if spec.measure == "dimensions per feature":
            ax.plot(1.0 / sw.densities, measured, marker="o", color="black")
            ax.set_xscale("log")
            ax.set_xlabel("1 / density (log scale)")
            ax.set_ylabel(r"dimensions per feature $d / \|W\|_F^2$")
        else:
            C = sw.capacities
            used = represented(sw.fit.weights, zero_tol=sw.zero_tol).reshape(C.shape)
            for k, p in enumerate(sw.densities):
                c = C[k][used[k]]
                ax.scatter(np.full(c.size, p), c, s=6, alpha=0.3, color="#D55E00", linewidths=0)
            ax.set_xlabel("input density $p = 1 - S$")
            ax.set_ylabel("capacity $C_i$ of each represented feature")
            ax.set_ylim(-0.02, 1.02)
        for v in spec.published:
            ax.axhline(v, color="grey", linestyle="--", linewidth=0.8)
            ax.annotate(f"{v:.3g}", (1.0, v), xycoords=("axes fraction", "data"), fontsize=SMALL_FONT,
                        xytext=(2, 0), textcoords="offset points", va="center")
        ax.set_title(f"{spec.name}: N = {spec.n_features}, d = {spec.budget}, {sw.fit.steps} steps",
                     fontsize=SMALL_FONT + 1)
        ax.grid(alpha=0.3)
    fig.suptitle("Toy Models of Superposition settings in the reference recipe "
                 "(dashed: the published values)")
    return finish(fig, path)


def draw(t: TmsPublished) -> Figure:
    return plot_tms_published(t.panels)


def caption(s: Settings, t: TmsPublished) -> str:
    parts = []
    for (name, spec, sw, _), e in zip(t.panels, t.numbers.experiments):
        head = (f"{name} ({spec.source}): ReLU autoencoder, N = {spec.n_features}, d = {spec.budget}, "
                f"constant importance, {len(spec.densities)} densities from {fmt(max(spec.densities))} "
                f"to {fmt(min(spec.densities))}, {s.tms_seeds} seed(s), Adam lr {fmt(spec.lr)} constant, "
                f"batch {spec.batch_size}, {sw.fit.steps} steps, W drawn as the notebook's xavier_normal_ "
                "on its batched tensor. ")
        if isinstance(e, DimensionsPerFeature):
            counts = ", ".join(f"{n.count} near {fmt(n.value)}" for n in e.near)
            parts.append(
                head + f"Published: d/|W|_F^2 sticks at {' and '.join(fmt(v) for v in spec.published)}. "
                f"Measured, of {len(spec.densities)} densities: {counts}, "
                f"{e.elsewhere} elsewhere. Loss per feature at density 1: "
                f"{fmt(e.dense_loss)} from this initialisation, "
                f"{fmt(e.glorot_loss)} from a per-instance "
                f"Glorot draw; the PCA-like embedding (d features whole, the rest at their mean) has "
                f"{fmt(e.pca_like_loss)}.")
        else:
            counts = ", ".join(f"{n.count} at {fmt(n.value)}" for n in e.near)
            parts.append(
                head + f"Published: per-feature capacities stick at "
                f"{', '.join(fmt(v) for v in spec.published)} in this window. Measured, of "
                f"{e.represented} represented features (all densities and seeds), "
                f"within {fmt(TRAINED_REGIME_ATOL)}: {counts}, "
                f"{e.elsewhere} elsewhere.")
    return " ".join(parts)


def rows(t: TmsPublished) -> Table:
    out: list[tuple] = []
    for (name, spec, sw, measured), loss in zip(t.panels, t.losses):
        dpf = sw.dimensions_per_feature.mean(axis=1)
        if spec.measure == "dimensions per feature":
            out += [(name, p, q, "-", ell) for p, q, ell in zip(sw.densities, dpf, loss)]
        else:
            out += [(name, p, q, " ".join(f"{fmt(v)}:{c}" for v, c in zip(spec.published, row))
                     + f" other:{row[-1]}", ell) for p, row, ell, q in zip(sw.densities, measured, loss, dpf)]
    return table(("experiment", "density", "d/|W|_F^2", "represented features at each value",
                  "loss per feature"), out)


FIGURE = FigureSpec("tms-published",
                    "Toy Models of Superposition: the published settings in the reference recipe",
                    TmsNumbers, compute, draw, caption, rows,
                    drawn=lambda settings: bool(settings.tms_experiments))
