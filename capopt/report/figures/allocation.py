r"""Figure: optimal allocation against feature importance, one panel per kurtosis.

The quadratic model with importances :math:`v_i = 0.9^i`, solved at each kurtosis of the
settings; where returns diminish (K > 3) the solver's capacities are checked against the
closed form :math:`C(v) = \mathrm{clip}(((K - 1) v / \mu - 2)/(K - 3), 0, 1)` (theory §3).

Glossary: ``C`` capacity, ``v`` importance, ``K`` kurtosis, ``d`` budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Iterable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ... import _formulas as F
from ..._typing import ArrayLike, PathLike
from ...curves import quadratic
from ...plotting import finish, new_figure
from ...regimes import Regime
from ...solvers import AllocationResult, solve
from ..captions import Table, fmt, table
from ..measures import POLYSEMANTIC, RETURNS
from ..numbers import Key, Numbers
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench

__all__ = ["FIGURE", "AllocationNumbers", "KurtosisNumbers", "PolysemanticFit", "Allocation",
           "plot_allocation_by_importance", "REGIME_COLOURS"]

#: Colour of each regime (Okabe-Ito blue / vermillion, grey: readable by colour-blind
#: readers and in greyscale).
REGIME_COLOURS = {
    Regime.MONOSEMANTIC: "#0072B2",
    Regime.POLYSEMANTIC: "#D55E00",
    Regime.IGNORED: "#9E9E9E",
}


@dataclass(frozen=True)
class PolysemanticFit(Numbers):
    """Least-squares line C = slope v + intercept through the polysemantic features at one K."""

    slope: Annotated[float, Key("poly slope")]
    intercept: Annotated[float, Key("poly intercept")]
    closed_form_intercept: Annotated[float, Key("closed-form intercept -2/(K-3)")]
    max_residual: Annotated[float, Key("poly fit max residual")]
    mean_capacity: Annotated[float, Key("poly mean C")]


@dataclass(frozen=True)
class KurtosisNumbers(Numbers):
    """The optimum at one kurtosis: its regimes, multiplier and loss; ``fit`` where K > 3
    and at least two features are polysemantic, else None."""

    kurtosis: float
    returns: str
    method: str
    in_importance_order: Annotated[bool, Key("regimes in importance order")]
    fit: PolysemanticFit | None
    monosemantic: Annotated[int, Key("monosemantic")]
    polysemantic: Annotated[int, Key("polysemantic")]
    ignored: Annotated[int, Key("ignored")]
    multiplier: Annotated[float, Key("lambda")]
    loss: Annotated[float, Key("loss")]

    @property
    def prefix(self) -> str:
        return f"K={self.kurtosis:g} "


@dataclass(frozen=True)
class AllocationNumbers(Numbers):
    """One record per kurtosis, in the settings' order, and the largest distance of a
    capacity from the closed form."""

    panels: tuple[KurtosisNumbers, ...]
    closed_form_error: Annotated[float, Key("max |C - closed form|")]


@dataclass(frozen=True)
class Allocation:
    """The numbers, and what the drawing takes: the importances, the solved allocations and
    the closed-form curve (v, C) of each panel (None where there is none)."""

    numbers: AllocationNumbers
    importance: np.ndarray
    results: tuple[AllocationResult, ...]
    theory: tuple[tuple[np.ndarray, np.ndarray] | None, ...]


def _affine_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line y = slope x + intercept: (slope, intercept, max |residual|)."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept), float(np.max(np.abs(y - (slope * x + intercept))))


def compute(wb: Workbench) -> Allocation:
    s = wb.settings
    v = 0.9 ** np.arange(s.allocation_features, dtype=np.float64)
    results = tuple(solve(quadratic(v, K), s.allocation_budget) for K in s.allocation_kurtosis)
    theory, panels = [], []
    off_curve = 0.0
    grid = np.linspace(0.0, 1.02 * v.max(), 400)
    for K, r in zip(s.allocation_kurtosis, results):
        curve = None
        if K > 3 and r.multiplier > 0:
            # theory §3: C(v) = clip(((K - 1) v / mu - 2)/(K - 3), 0, 1), level mu = sqrt(lam/2).
            level = F.quadratic_multiplier_level(r.multiplier)
            with np.errstate(divide="ignore"):
                curve = (grid, np.clip(F.quadratic_response(level, grid, K), 0.0, 1.0))
            on = np.clip(F.quadratic_response(level, v, K), 0.0, 1.0)
            off_curve = max(off_curve, float(np.max(np.abs(r.capacities - on))))
        theory.append(curve)
        poly = r.regime_codes == POLYSEMANTIC
        fit = None
        if K > 3 and poly.sum() >= 2:
            # theory §3: between the thresholds C_i is affine in v_i with intercept -2/(K - 3).
            slope, intercept, residual = _affine_fit(v[poly], r.capacities[poly])
            fit = PolysemanticFit(slope, intercept, -2.0 / (K - 3.0), residual,
                                  float(r.capacities[poly].mean()))
        counts = r.counts
        panels.append(KurtosisNumbers(
            kurtosis=K, returns=RETURNS[quadratic(v, K).shape], method=r.method,
            # v decreases with i, so regimes in importance order have non-decreasing codes
            # (monosemantic, polysemantic, ignored).
            in_importance_order=bool(np.all(np.diff(r.regime_codes) >= 0)), fit=fit,
            monosemantic=counts["monosemantic"], polysemantic=counts["polysemantic"],
            ignored=counts["ignored"], multiplier=r.multiplier, loss=r.loss))
    return Allocation(AllocationNumbers(tuple(panels), off_curve), v, results, tuple(theory))


def _regime_legend(ax: Axes, **options: Any) -> None:
    handles = [Line2D([], [], linestyle="", marker="o", color=colour, label=regime.value)
               for regime, colour in REGIME_COLOURS.items()]
    ax.legend(handles=handles, **options)


def plot_allocation_by_importance(
    importance: ArrayLike,
    kurtosis: Iterable[float],
    results: Sequence[AllocationResult],
    *,
    theory: Sequence[tuple[ArrayLike, ArrayLike] | None] | None = None,
    path: PathLike | None = None,
) -> Figure:
    r"""Optimal capacity of each feature against its importance, one panel per kurtosis.

    Points are the solver's capacities :math:`C_i` over the importances :math:`v_i`,
    coloured by regime; ``theory`` adds a closed-form curve :math:`C(v)` per panel.

    Parameters
    ----------
    importance : array_like, shape (N,)
        The importances shared by every panel.
    kurtosis : sequence of float, length P
        The kurtosis of each panel (its title).
    results : sequence of AllocationResult, length P
        The allocation solved at each kurtosis.
    theory : sequence of (v, C) pairs or None, length P, optional
        A curve to draw over panel p (``None`` for none).
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    v = np.asarray(importance, dtype=np.float64)
    theory = [None] * len(results) if theory is None else theory
    fig = new_figure(figsize=(3.2 * len(results), 3.9))
    axes = fig.subplots(1, len(results), sharey=True, squeeze=False)[0]
    for ax, K, result, curve in zip(axes, kurtosis, results, theory):
        if curve is not None:
            ax.plot(*curve, color="black", linewidth=1, zorder=1, label="closed form")
        colours = [REGIME_COLOURS[r] for r in result.regimes]
        ax.scatter(v, result.capacities, c=colours, s=18, zorder=2, edgecolors="none")
        counts = result.counts
        ax.set_title(f"K = {K:g}: {counts['monosemantic']} mono, {counts['polysemantic']} poly, "
                     f"{counts['ignored']} ignored", fontsize=9)
        ax.set_xlabel("feature importance $v_i$")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("optimal capacity $C_i$")
    _regime_legend(axes[0], loc="center right", fontsize=8, framealpha=0.8)
    if any(curve is not None for curve in theory):
        next(ax for ax, c in zip(axes, theory) if c is not None).legend(loc="center right", fontsize=8)
    budget = results[0].budget
    fig.suptitle(f"Optimal allocation vs importance in the quadratic model "
                 f"(N = {v.size}, d = {budget:g}): sparser inputs (larger K) share capacity")
    return finish(fig, path)


def draw(a: Allocation) -> Figure:
    return plot_allocation_by_importance(a.importance, [p.kurtosis for p in a.numbers.panels],
                                         a.results, theory=a.theory)


def caption(s: Settings, a: Allocation) -> str:
    return (
        f"Quadratic model with N = {s.allocation_features} features of importance v_i = 0.9^i and "
        f"d = {s.allocation_budget} dimensions, solved by capopt.solve at kurtosis K = "
        f"{', '.join(fmt(p.kurtosis) for p in a.numbers.panels)}. Each point is one feature, coloured "
        "by regime. At K <= 3 "
        "(increasing or constant returns) the most important features take whole dimensions and the "
        "rest are ignored; at K > 3 a band of features of middling importance is polysemantic, and "
        "the band widens as K grows. The black line is the closed form C(v) = "
        "clip(((K-1) v s - 2)/(K-3), 0, 1) with s = sqrt(2/lambda) from the solver's multiplier; the "
        f"solver's capacities lie on it to max |C - closed form| = {fmt(a.numbers.closed_form_error)}."
    )


def rows(a: Allocation) -> Table:
    return table(("K", "returns", "method", "monosemantic", "polysemantic", "ignored",
                  "in importance order", "lambda", "loss"),
                 ((p.kurtosis, p.returns, p.method, p.monosemantic, p.polysemantic, p.ignored,
                   p.in_importance_order, p.multiplier, p.loss) for p in a.numbers.panels))


FIGURE = FigureSpec("allocation", "Optimal allocation against feature importance", AllocationNumbers,
                    compute, draw, caption, rows)
