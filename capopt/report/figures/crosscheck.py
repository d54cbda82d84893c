r"""Figure: predicted (solver) against trained capacities on the standard cross-check problems.

Each problem of :data:`capopt.catalogue.STANDARD_PROBLEMS` solved by :func:`capopt.solve`
and trained independently by L-BFGS on the exact expected loss (the
:class:`~capopt.report.workbench.Workbench`'s cross-checks).

Glossary: ``C`` capacity, ``d`` budget, ``N`` number of features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..._typing import PathLike
from ...catalogue import STANDARD_PROBLEMS
from ...geometry import block_summary
from ...plotting import finish, new_figure
from ...training import CrosscheckReport
from ..captions import Table, fmt, table
from ..drawing import LOG_FLOOR, SMALL_FONT, tab10
from ..measures import unused_capacity
from ..numbers import Key, Named, Numbers
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench

__all__ = ["FIGURE", "ROUNDING_ULPS", "ProblemNumbers", "CrosscheckNumbers", "Crosscheck", "plot_crosscheck"]

#: Half-width of the grey band around a zero loss gap in the cross-check figure, in units
#: of the loss's last place: sums of a few dozen terms round by about this much.
ROUNDING_ULPS = 16


@dataclass(frozen=True)
class ProblemNumbers(Named):
    """One problem, named by its label: the largest capacity disagreement and the loss gap,
    trained minus predicted."""

    max_dC: Annotated[float, Key("max |dC|")]
    loss_gap: Annotated[float, Key("loss gap")]


@dataclass(frozen=True)
class CrosscheckNumbers(Numbers):
    """Every problem, and over all of them: the largest disagreement, how far a trained
    embedding exceeds the bound sum C <= d and falls short of block-semi-orthogonality
    (sum C = min(d, N)), and the largest loss gap."""

    problems: tuple[ProblemNumbers, ...]
    max_dC: Annotated[float, Key("max |dC| over all problems")]
    max_excess: Annotated[float, Key("max sum C - d over trained embeddings")]
    max_unused: Annotated[float, Key("max min(d, N) - sum C over trained embeddings")]
    max_loss_gap: Annotated[float, Key("max |loss gap| over all problems")]


@dataclass(frozen=True)
class Crosscheck:
    """The numbers, and the report and label of every problem."""

    numbers: CrosscheckNumbers
    reports: tuple[CrosscheckReport, ...]
    labels: tuple[str, ...]


def compute(wb: Workbench) -> Crosscheck:
    reports = tuple(wb.crosschecks)
    labels = tuple(p.label for p in STANDARD_PROBLEMS)
    numbers = CrosscheckNumbers(
        tuple(ProblemNumbers(label, r.max_abs_dC, r.loss_gap) for label, r in zip(labels, reports)),
        max_dC=max(r.max_abs_dC for r in reports),
        # sum C <= rank W <= d for any W, with equality iff W is block-semi-orthogonal of full rank.
        max_excess=max(float(r.trained_capacities.sum()) - r.budget for r in reports),
        max_unused=max(unused_capacity(r.trained_weights, r.budget) for r in reports),
        max_loss_gap=max(abs(r.loss_gap) for r in reports))
    return Crosscheck(numbers, reports, labels)


def plot_crosscheck(reports: Sequence[CrosscheckReport], labels: Sequence[str], *,
                    path: PathLike | None = None) -> Figure:
    r"""Predicted (solver) against trained capacities, and the size of the disagreement.

    Left: every feature of every problem at (predicted C, trained C), on the diagonal when
    training lands where the solver says. Middle: per problem, :math:`\max_i |\Delta C_i|`
    on a log scale. Right: the loss gap, trained minus predicted, with its sign (a
    negative gap would mean training beat the solver) on a symmetric log scale.

    Parameters
    ----------
    reports : sequence of CrosscheckReport
        From :func:`capopt.crosscheck`.
    labels : sequence of str
        A label per report.
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(figsize=(13.0, 5.0))
    left, middle, right = fig.subplots(1, 3, width_ratios=(1.0, 1.05, 0.75))
    colours = tab10()
    markers = "osD^v<>ph*"
    left.plot([0, 1], [0, 1], color="grey", linewidth=1, zorder=1)
    for k, r in enumerate(reports):
        left.scatter(r.predicted_capacities, r.trained_capacities, s=28, marker=markers[k % len(markers)],
                     facecolors="none", edgecolors=colours[k % len(colours)], zorder=2)
    left.set_xlabel("predicted capacity $C_i$ (capopt.solve)")
    left.set_ylabel("trained capacity $C_i$ (L-BFGS on the exact loss)")
    left.set_xlim(-0.04, 1.04)
    left.set_ylim(-0.04, 1.04)
    left.set_aspect("equal")
    left.grid(alpha=0.3)
    left.set_title("every feature of every problem")

    y = np.arange(len(reports))
    dC = np.maximum([r.max_abs_dC for r in reports], LOG_FLOOR)
    middle.barh(y, dC, height=0.6, color="#0072B2")
    middle.set_xscale("log")
    middle.set_xlim(LOG_FLOOR / 3, 1.0)
    middle.set_yticks(y, labels, fontsize=SMALL_FONT)
    for tick, k in zip(middle.get_yticklabels(), range(len(reports))):
        tick.set_color(colours[k % len(colours)])
    middle.invert_yaxis()
    middle.set_xlabel(rf"$\max_i |\Delta C_i|$ (log scale; below {LOG_FLOOR:g} drawn at it)")
    middle.grid(alpha=0.3, axis="x")
    middle.set_title("capacities: trained vs predicted\n(label colour = marker colour)", fontsize=10)

    gap = np.array([r.loss_gap for r in reports], dtype=np.float64)
    # The rounding of each loss: a gap inside this band, of either sign, is no disagreement.
    rounding = ROUNDING_ULPS * np.finfo(np.float64).eps * np.maximum(
        [abs(r.predicted.loss) for r in reports], 1.0)
    right.barh(y, 2 * rounding, left=-rounding, height=0.9, color="#DDDDDD", zorder=1)
    # Trained above the optimum (optimisation error) in orange; below it (training beat the
    # solver, which beyond rounding would refute the optimum) in red; zero as a ring.
    right.barh(y, gap, height=0.5, color=np.where(gap < 0, "#CC3311", "#E69F00"), zorder=2)
    zero = gap == 0
    right.plot(gap[zero], y[zero], linestyle="", marker="o", markersize=6, markerfacecolor="white",
               markeredgecolor="black", zorder=3)
    right.axvline(0.0, color="black", linewidth=0.8, zorder=2)
    reach = 10.0 * max(float(np.max(np.abs(gap))), float(np.max(rounding)))
    linear = LOG_FLOOR * 10
    right.set_xscale("symlog", linthresh=linear)
    right.set_xlim(-reach, reach)
    top = int(np.floor(np.log10(reach)))
    right.set_xticks([-(10.0 ** top), 0.0, 10.0 ** top], [f"$-10^{{{top}}}$", "0", f"$10^{{{top}}}$"])
    right.set_ylim(middle.get_ylim())
    right.set_yticks(y, [""] * len(y))
    right.set_xlabel(f"trained - predicted loss\n(symmetric log, linear within ±{linear:g})")
    right.grid(alpha=0.3, axis="x")
    right.set_title(f"loss gap, signed; < 0: training beat\nthe solver (grey: {ROUNDING_ULPS} ulps of "
                    "rounding)", fontsize=10)
    fig.suptitle("Cross-check: the solver's capacities against those of gradient-trained models")
    return finish(fig, path)


def draw(c: Crosscheck) -> Figure:
    return plot_crosscheck(c.reports, c.labels)


def caption(s: Settings, c: Crosscheck) -> str:
    return (
        f"The {len(c.reports)} standard cross-check problems (capopt.training.STANDARD_PROBLEMS: convex, "
        "concave and mixed quadratic families, per-feature kurtosis straddling 3, and the linear "
        "autoencoder), each solved by capopt.solve and trained independently by L-BFGS on the model's "
        f"exact expected loss from {s.crosscheck_starts} random starts (capopt.crosscheck). "
        "Left: every feature's trained capacity against the predicted one (the diagonal is "
        "agreement). Middle: the largest capacity disagreement per problem. Right: the loss gap, "
        "trained minus predicted, with its sign (below zero training would have beaten the solver; "
        "grey marks the rounding of the loss). Over all problems "
        f"max |dC| = {fmt(c.numbers.max_dC)} and max |loss gap| = "
        f"{fmt(c.numbers.max_loss_gap)} (trained minus predicted "
        "loss)."
    )


def rows(c: Crosscheck) -> Table:
    return table(("problem", "N", "d", "method", "max |dC|", "loss gap", "blocks predicted", "blocks trained"),
                 ((label, r.curves.n_features, r.budget, r.predicted.method, r.max_abs_dC, r.loss_gap,
                   block_summary(r.predicted_blocks), block_summary(r.trained_blocks))
                  for label, r in zip(c.labels, c.reports)))


FIGURE = FigureSpec("crosscheck", "Predicted against trained capacities", CrosscheckNumbers,
                    compute, draw, caption, rows)
