r"""Figure: the capacity used and the marginal value of a dimension as the budget d grows.

Three quadratic families (convex, concave, mixed) solved at budgets from 0 to N + 1: the
capacities stacked against sum C = min(d, N), and the multiplier :math:`\lambda` against
the central difference :math:`-(L^*(d+h) - L^*(d-h))/2h`; at one budget,
:func:`capopt.sensitivity`'s :math:`dL^*/dd` and, for a convex family of one kurtosis,
how :math:`dC/dd` shares the marginal dimension.

Glossary: ``C`` capacity, ``d`` budget, ``lam`` multiplier, ``L*`` optimal loss, ``v``
importance, ``N`` number of features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Sequence

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from ..._typing import ArrayLike, PathLike
from ...curves import QuadraticCurves, Shape, gated_kurtosis, quadratic
from ...perturbation import sensitivity
from ...plotting import finish, new_figure
from ...solvers import solve
from ..captions import Table, fmt, table
from ..drawing import tab10
from ..measures import POLYSEMANTIC
from ..numbers import Key, Named, Numbers
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench

__all__ = ["FIGURE", "FD_STEP", "BUDGET_FEATURES", "SENSITIVITY_BUDGET", "MarginalShare", "Sensitivity",
           "FamilyNumbers", "BudgetNumbers", "BudgetResponse", "plot_budget_response"]

#: Step of the finite difference -dL*/dd checked against lambda; points closer than twice it
#: to a whole budget are skipped, as L* has kinks there for concave curves.
FD_STEP = 1e-4

#: Features of the budget-response families: few enough that every one is visible in the
#: stacked capacities.
BUDGET_FEATURES = 12

#: Budget at which the sensitivities of the budget-response families are reported.
SENSITIVITY_BUDGET = 2.5


@dataclass(frozen=True)
class MarginalShare(Numbers):
    """How the polysemantic features of a convex family of one kurtosis share the marginal
    dimension: theory §3 gives dC_i/dd = v_i / sum_poly v."""

    polysemantic: Annotated[int, Key("polysemantic features")]
    error: Annotated[float, Key("max |(dC_i/dd) / (v_i / sum v) - 1|")]
    total: Annotated[float, Key("sum dC/dd")]


@dataclass(frozen=True)
class Sensitivity(Numbers):
    """dL*/dd from :func:`capopt.sensitivity` at ``budget`` against the central difference of
    L*, and ``share`` for a convex family of one kurtosis (else None)."""

    budget: float
    loss_d_budget: Annotated[float, Key("dL*/dd")]
    central_difference: Annotated[float, Key("central difference of L*")]
    share: MarginalShare | None

    @property
    def prefix(self) -> str:
        return f"d = {self.budget:g}: "


@dataclass(frozen=True)
class FamilyNumbers(Named):
    """One family, named by its label, over every budget: how far sum C is from min(d, N),
    lambda from the finite difference (relative to max(lambda, 1)), lambda at d = 2.5, and
    its sensitivity."""

    method: str
    used: Annotated[float, Key("max |sum C - min(d, N)|")]
    fd_error: Annotated[float, Key("max lambda vs finite difference")]
    multiplier: Annotated[float, Key("lambda at d = 2.5")]
    sensitivity: Sensitivity


@dataclass(frozen=True)
class BudgetNumbers(Numbers):
    """The families, convex, concave and mixed."""

    families: tuple[FamilyNumbers, ...]


@dataclass(frozen=True)
class BudgetResponse:
    """The numbers, the budgets solved at, and per family (label, capacities (B, N),
    multiplier (B,), finite difference (B,), NaN where not checked)."""

    numbers: BudgetNumbers
    budgets: np.ndarray
    families: tuple[tuple[str, np.ndarray, np.ndarray, np.ndarray], ...]


def _budget_families(n: int) -> tuple[tuple[str, QuadraticCurves], ...]:
    v = 0.85 ** np.arange(n, dtype=np.float64)
    mixed = np.where(np.arange(n) % 2 == 0, gated_kurtosis(1.0, "uniform"), gated_kurtosis(0.1, "uniform"))
    return (
        ("convex, K = 5", quadratic(v, 5.0)),
        ("concave, K = 2", quadratic(v, 2.0)),
        ("mixed, K = 1.8 / 18 alternating", quadratic(v, mixed)),
    )


def _sensitivity(curves: QuadraticCurves, d: float, h: float) -> Sensitivity:
    """dL*/dd from :func:`capopt.sensitivity` against the central difference of L*, and for
    a convex family of one kurtosis how dC/dd shares the marginal dimension."""
    s = sensitivity(curves, d)
    fd = (solve(curves, d + h).loss - solve(curves, d - h).loss) / (2 * h)
    share = None
    if curves.shape is Shape.CONVEX and curves.shared_kurtosis is not None:
        # theory §3: C_i = ((K - 1) v_i / mu - 2)/(K - 3), so dC_i/dd is proportional to v_i
        # among the polysemantic features, and they share the whole marginal dimension.
        poly = solve(curves, d).regime_codes == POLYSEMANTIC
        v = curves.importance[poly]
        ratio = s.capacity_d_budget[poly] / (v / v.sum())
        share = MarginalShare(int(poly.sum()), float(np.max(np.abs(ratio - 1.0))),
                              float(s.capacity_d_budget.sum()))
    return Sensitivity(d, s.loss_d_budget, fd, share)


def compute(wb: Workbench) -> BudgetResponse:
    n = BUDGET_FEATURES
    d = np.linspace(0.0, n + 1.0, wb.settings.budget_points)
    h = FD_STEP
    checked = np.abs(d - np.rint(d)) > 2 * h
    families, records = [], []
    for label, curves in _budget_families(n):
        results = [solve(curves, b) for b in d]
        C = np.array([r.capacities for r in results])
        lam = np.array([r.multiplier for r in results])
        fd = np.full(d.shape, np.nan)
        for j in np.flatnonzero(checked):
            fd[j] = (solve(curves, d[j] - h).loss - solve(curves, d[j] + h).loss) / (2 * h)
        families.append((label, C, lam, fd))
        records.append(FamilyNumbers(
            label, method=results[len(d) // 2].method,
            used=float(np.max(np.abs(C.sum(axis=1) - np.minimum(d, n)))),
            fd_error=float(np.nanmax(np.abs(lam - fd) / np.maximum(lam, 1.0))),
            multiplier=solve(curves, 2.5).multiplier,
            sensitivity=_sensitivity(curves, SENSITIVITY_BUDGET, h)))
    return BudgetResponse(BudgetNumbers(tuple(records)), d, tuple(families))


def plot_budget_response(budgets: ArrayLike,
                         families: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], *,
                         path: PathLike | None = None) -> Figure:
    r"""Capacity used and the marginal value of a dimension as the budget d grows.

    One panel per family with the capacities :math:`C_i(d)` stacked (their top edge is
    :math:`\sum_i C_i`, against the line :math:`\sum_i C_i = d`), and one panel with the
    multiplier :math:`\lambda(d)` of every family, overlaid with a finite-difference
    :math:`-\Delta L^*/\Delta d` where given.

    Parameters
    ----------
    budgets : array_like, shape (B,)
        The budgets d solved at.
    families : sequence of (label, capacities (B, N), multiplier (B,), finite_difference (B,))
        ``finite_difference`` NaN where not checked.
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = np.asarray(budgets, dtype=np.float64)
    npanels = len(families) + 1
    ncols = 2
    nrows = -(-npanels // ncols)
    fig = new_figure(figsize=(11.5, 3.9 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colours = tab10()
    # One colour per importance rank, shared by every panel and read off the colourbar;
    # viridis up to 0.9, so that no rank is drawn near white (or the background).
    n_max = max(C.shape[1] for _, C, _, _ in families)
    shades = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, n_max))
    for ax, colour, (label, C, _, _) in zip(axes, colours, families):
        n = C.shape[1]
        ax.stackplot(d, C.T, colors=shades[:n], linewidth=0.3, edgecolor="white")
        ax.plot(d, C.sum(axis=1), color=colour, linewidth=3, label=r"$\sum_i C_i$ (capacity used)")
        ax.plot(d, np.minimum(d, n), color="black", linestyle="--", linewidth=1.2,
                label=r"$\min(d, N)$")
        ax.set_xlim(d.min(), d.max())
        ax.set_ylim(0, n + 0.5)
        ax.set_xlabel("budget d (embedding dimension)")
        ax.set_ylabel(r"capacity $C_i$, stacked by feature")
        ax.set_title(f"{label}: capacity of each feature", fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    ax = axes[len(families)]
    for colour, (label, _, lam, fd) in zip(colours, families):
        shown = lam > 0
        ax.plot(d[shown], lam[shown], color=colour, linewidth=2, label=label)
        checked = np.isfinite(fd) & shown
        ax.plot(d[checked][::3], fd[checked][::3], linestyle="", marker="x", markersize=5, color="black")
    ax.plot([], [], linestyle="", marker="x", color="black",
            label=r"$-\Delta L^*/\Delta d$ (finite difference)")
    ax.set_yscale("log")
    ax.set_xlim(d.min(), d.max())
    ax.set_xlabel("budget d (embedding dimension)")
    ax.set_ylabel(r"multiplier $\lambda = -dL^*/dd$ (log scale)")
    ax.set_title(r"marginal value $\lambda$ of one more dimension ($\lambda = 0$ once $d \geq N$)",
                 fontsize=9)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    for ax in axes[npanels:]:
        ax.set_visible(False)
    ranks = ScalarMappable(BoundaryNorm(np.arange(n_max + 1) - 0.5, n_max), ListedColormap(shades))
    bar = fig.colorbar(ranks,
                       ax=list(axes[:len(families)]), shrink=0.9, aspect=30)
    bar.set_label("importance rank i of a stacked feature (0 = most important, at the bottom)")
    bar.set_ticks(list(range(0, n_max, -(-n_max // 12))))  # at most 12 labels
    fig.suptitle("Capacity used and the marginal value of a dimension as the budget grows")
    return finish(fig, path)


def draw(b: BudgetResponse) -> Figure:
    return plot_budget_response(b.budgets, b.families)


def caption(s: Settings, b: BudgetResponse) -> str:
    d = b.budgets
    return (
        f"Three quadratic families of N = {BUDGET_FEATURES} features with importances 0.85^i, "
        f"solved by capopt.solve at {d.size} budgets d from 0 to {fmt(d[-1])}. Stacked panels: each feature's capacity, "
        "coloured by its importance rank (colourbar); the "
        "top edge is the capacity used, sum C = min(d, N) (the budget binds while lambda > 0). With "
        "diminishing returns features enter gradually and share; with increasing returns they enter "
        "one whole dimension at a time; the mixed family takes dense features whole and shares the "
        "sparse ones. Last panel: the multiplier lambda, the marginal value of one more dimension, "
        "checked against the finite difference -(L*(d+h) - L*(d-h))/2h, h = "
        f"{fmt(FD_STEP)}, at budgets away from whole numbers (crosses, every third shown); the table gives "
        "the largest disagreement (relative to max(lambda, 1)) and the capacity used."
    )


def rows(b: BudgetResponse) -> Table:
    return table(("family", "method", "max |sum C - min(d, N)|", "max |lambda - FD| (rel.)",
                  "lambda at d = 2.5"),
                 ((f.name, f.method, f.used, f.fd_error, f.multiplier) for f in b.numbers.families))


FIGURE = FigureSpec("budget", "Capacity used and the marginal value of a dimension against the budget",
                    BudgetNumbers, compute, draw, caption, rows)
