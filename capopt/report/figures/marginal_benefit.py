r"""Figure: the marginal benefit of capacity for two features on one neuron, the paper's cases A-F.

Each case is a point (importance ratio a/b, kurtosis K) of the two-feature phase diagram
(:mod:`~capopt.report.figures.two_feature_phase` marks them), solved at budget 1: the
marginal benefits :math:`-\ell_a'(C_a)` and :math:`-\ell_b'(1 - C_a)` and the allocation.

Glossary: ``C`` capacity, ``K`` kurtosis, ``lam`` multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..._typing import PathLike
from ...curves import LossCurves, quadratic
from ...plotting import finish, new_figure
from ...regimes import Regime
from ...solvers import AllocationResult, solve
from ..captions import Table, fmt, table
from ..measures import RETURNS
from ..numbers import Key, Named, Numbers
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench

__all__ = ["FIGURE", "TWO_FEATURE_CASES", "CaseNumbers", "MarginalNumbers", "MarginalBenefit",
           "plot_marginal_pairs"]

#: The paper's cases A-F as points (importance ratio a/b, kurtosis K) of the two-feature phase
#: diagram: increasing returns (A, B), constant (C), diminishing (D, E, F); D stays
#: monosemantic because K < 1 + 2a/b.
TWO_FEATURE_CASES = (
    ("A", 1.0, 1.8),
    ("B", 2.0, 2.0),
    ("C", 1.5, 3.0),
    ("D", 3.0, 5.0),
    ("E", 2.0, 7.0),
    ("F", 1.0, 15.0),
)

#: The case that is theory §3's worked example (C = (5/6, 1/6), loss 5.25).
WORKED_CASE = "E"


@dataclass(frozen=True)
class CaseNumbers(Named):
    """One case, named by its letter, solved at budget 1: the capacities of the more (a) and less (b) important
    feature, the multiplier and the loss."""

    ratio: float
    kurtosis: float
    returns: str
    regime: str
    capacity_a: Annotated[float, Key("C_a")]
    capacity_b: Annotated[float, Key("C_b")]
    multiplier: Annotated[float, Key("lambda")]
    loss: Annotated[float, Key("loss")]


@dataclass(frozen=True)
class MarginalNumbers(Numbers):
    """The cases, in the order of :data:`TWO_FEATURE_CASES`."""

    cases: tuple[CaseNumbers, ...]


@dataclass(frozen=True)
class MarginalBenefit:
    """The numbers, and one panel per case: (title, two-feature curves, their allocation)."""

    numbers: MarginalNumbers
    panels: tuple[tuple[str, LossCurves, AllocationResult], ...]


def compute(wb: Workbench) -> MarginalBenefit:
    panels, cases = [], []
    for letter, ratio, K in TWO_FEATURE_CASES:
        curves = quadratic([ratio, 1.0], K)
        result = solve(curves, 1.0)
        returns = RETURNS[curves.shape]
        poly = any(r is Regime.POLYSEMANTIC for r in result.regimes)
        verdict = "polysemantic" if poly else "monosemantic"
        importance = "equal importance" if ratio == 1 else f"a/b = {fmt(ratio)}"
        panels.append((f"{letter}: K = {fmt(K)}, {importance}\n{returns} returns -> {verdict}", curves, result))
        C = result.capacities
        cases.append(CaseNumbers(letter, ratio, K, returns, verdict, C[0], C[1], result.multiplier,
                                 result.loss))
    return MarginalBenefit(MarginalNumbers(tuple(cases)), tuple(panels))


def plot_marginal_pairs(cases: Sequence[tuple[str, LossCurves, AllocationResult]], *,
                        path: PathLike | None = None) -> Figure:
    r"""Marginal-benefit curves of two features sharing one neuron, and their allocation.

    Each panel shows :math:`-\ell_a'(C_a)` over the share :math:`C_a` of the more
    important feature and :math:`-\ell_b'(1 - C_a)` of the other (its share is what is
    left), with the solved allocation marked: where the curves cross when the returns
    diminish, an end point otherwise.

    Parameters
    ----------
    cases : sequence of (title, curves, result)
        ``curves`` a two-feature :class:`~capopt.curves.LossCurves` (the more important
        feature first) and ``result`` its :class:`~capopt.solvers.AllocationResult` at
        budget 1.
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ncols = min(3, len(cases))
    nrows = -(-len(cases) // ncols)
    fig = new_figure(figsize=(4.0 * ncols, 3.3 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    share = np.linspace(0.0, 1.0, 201)
    for ax, (title, curves, result) in zip(axes, cases):
        m = curves.marginal(np.column_stack([share, 1.0 - share]))
        ax.plot(share, m[:, 0], color="#0072B2", linewidth=2, label=r"$-\ell_a'(C_a)$")
        ax.plot(share, m[:, 1], color="black", linewidth=2, label=r"$-\ell_b'(1 - C_a)$")
        C = result.capacities
        at = curves.marginal(C)
        ax.axvline(C[0], color="#D55E00", linestyle="--", linewidth=1.2)
        ax.plot([C[0], C[0]], at, linestyle="", marker="o", color="#D55E00")
        ax.set_title(title, fontsize=9)
        ax.text(0.5, 0.96, f"optimum C = ({C[0]:.3g}, {C[1]:.3g})", transform=ax.transAxes,
                ha="center", va="top", fontsize=8, color="#D55E00",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        # A margin, so an allocation at an end point is not hidden under the frame.
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(0.0, 1.25 * float(np.max(m)))
        ax.grid(alpha=0.3)
    for ax in axes[len(cases):]:
        ax.set_visible(False)
    for ax in axes[(nrows - 1) * ncols:]:
        ax.set_xlabel("share $C_a$ of the more important feature ($C_b = 1 - C_a$)")
    for ax in axes[::ncols]:
        ax.set_ylabel(r"marginal benefit $-\ell'(C)$")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="#D55E00", linestyle="--", marker="o"))
    labels.append("allocation solved by capopt.solve (budget 1)")
    fig.legend(handles, labels, loc="outside lower center", ncols=3)
    fig.suptitle("Marginal benefit of capacity for two features of importances a >= b on one neuron")
    return finish(fig, path)


def draw(m: MarginalBenefit) -> Figure:
    return plot_marginal_pairs(m.panels)


def caption(s: Settings, m: MarginalBenefit) -> str:
    worked = next(c for c in m.numbers.cases if c.name == WORKED_CASE)
    return (
        "Two features of importances a >= b (b = 1) sharing one neuron (d = 1) of the quadratic model. "
        "Blue: marginal benefit -l_a'(C_a) of giving feature a more capacity; black: -l_b'(1 - C_a), that "
        "of feature b, which gets what a leaves. With increasing returns (A, B: K < 3) or constant returns "
        "(C: K = 3) the optimum is an end point: one feature owns the neuron (a tie, as in A, goes to the "
        "first feature). With diminishing returns (K > 3) the curves cross, and the optimum is the "
        "crossing, where both marginals equal lambda, unless feature a's marginal at C_a = 1 still "
        "exceeds b's at 0, which happens for K < 1 + 2a/b (D). The dashed line is capopt.solve's "
        f"allocation at budget 1; case {WORKED_CASE} is the worked example of theory §3, C = "
        f"({fmt(worked.capacity_a)}, {fmt(worked.capacity_b)}), loss {fmt(worked.loss)}. The same "
        "letters mark the two-feature phase diagram (next figure)."
    )


def rows(m: MarginalBenefit) -> Table:
    return table(("case", "a/b", "K", "returns", "C_a", "C_b", "lambda", "loss", "regime"),
                 ((c.name, c.ratio, c.kurtosis, c.returns, c.capacity_a, c.capacity_b, c.multiplier,
                   c.loss, c.regime) for c in m.numbers.cases))


FIGURE = FigureSpec("marginal-benefit", "Marginal benefit of capacity: cases A-F", MarginalNumbers,
                    compute, draw, caption, rows)
