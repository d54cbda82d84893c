r"""The report's own figures: one drawing per figure of ``capopt reproduce``.

Like :mod:`capopt.plotting` (whose canvas helpers they share), each function takes data
computed elsewhere (:mod:`capopt.report.computations`), computes nothing new from it and
returns a :class:`matplotlib.figure.Figure`, written as a PNG when given ``path``.
"""

from __future__ import annotations

from typing import Sequence, cast

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ..plotting import finish, new_figure
from ..regimes import Regime

__all__ = [
    "plot_allocation_by_importance",
    "plot_marginal_pairs",
    "mark_two_feature_cases",
    "plot_polysemantic_vs_sparsity",
    "plot_gram_blocks",
    "plot_crosscheck",
    "plot_budget_response",
    "REGIME_COLOURS",
]

#: Colour of each regime in every figure (Okabe-Ito blue / vermillion, grey: readable
#: by colour-blind readers and in greyscale).
REGIME_COLOURS = {
    Regime.MONOSEMANTIC: "#0072B2",
    Regime.POLYSEMANTIC: "#D55E00",
    Regime.IGNORED: "#9E9E9E",
}

#: Values below this are drawn at it on the logarithmic error axes: exact agreements
#: (|dC| = 0) would otherwise vanish from the plot.
LOG_FLOOR = 1e-17


def _tab10() -> Sequence[tuple[float, float, float]]:
    """The ten colours of matplotlib's ``tab10`` palette, as RGB tuples."""
    cmap = matplotlib.colormaps["tab10"]
    assert isinstance(cmap, ListedColormap), "tab10 is a listed colormap"
    # The stub types ``colors`` as anything the constructor accepts; tab10 holds RGB tuples.
    return cast(Sequence[tuple[float, float, float]], cmap.colors)


def _regime_legend(ax, **options) -> None:
    handles = [Line2D([], [], linestyle="", marker="o", color=colour, label=regime.value)
               for regime, colour in REGIME_COLOURS.items()]
    ax.legend(handles=handles, **options)


def plot_allocation_by_importance(importance, kurtosis, results, *, theory=None, path=None) -> Figure:
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


def plot_marginal_pairs(cases, *, path=None) -> Figure:
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


def mark_two_feature_cases(fig: Figure, cases) -> Figure:
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


def plot_polysemantic_vs_sparsity(sweeps, *, predicted=None, path=None) -> Figure:
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
    colours = _tab10()
    if predicted is not None:
        # A broad grey band under the trained lines, so a trained line on it stays visible.
        label, p, fraction = predicted
        ax.plot(p, fraction, color="black", alpha=0.3, linewidth=7, solid_capstyle="round", label=label)
    for colour, (name, sw) in zip(colours, sweeps.items()):
        f = sw.polysemantic_fraction
        ax.plot(sw.densities, f.mean(axis=1), marker="o", markersize=4, color=colour, label=name)
        if f.shape[1] > 1:
            ax.fill_between(sw.densities, f.min(axis=1), f.max(axis=1), color=colour, alpha=0.15)
    ax.set_xscale("log")
    p = np.concatenate([sw.densities for sw in sweeps.values()])
    ticks = [t for t in (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005) if p.min() <= t <= p.max()]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlim(p.max() * 1.1, p.min() / 1.1)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("input density $p = 1 - S$ (log scale; sparser to the right)")
    ax.set_ylabel("fraction of features polysemantic")
    sw = next(iter(sweeps.values()))
    seeds = sw.polysemantic_fraction.shape[1]
    fig.suptitle(f"Trained models: fraction of polysemantic features against input density\n"
                 f"(N = {sw.importance.size}, d = {sw.budget}, {sw.fit.steps} Adam steps, "
                 f"{seeds} seed{'s' if seeds > 1 else ''} per density)")
    ax.grid(alpha=0.3)
    # Lower right stays empty: trained models are mostly polysemantic at the sparsest inputs.
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return finish(fig, path)


def plot_gram_blocks(panels, *, ncols: int = 4, path=None) -> Figure:
    r"""Gram matrices :math:`G = W^\top W` with features grouped by block, boxes around blocks.

    Each matrix is scaled by its largest :math:`|G_{ij}|` and its features reordered block
    by block (ignored features last), so a block-semi-orthogonal embedding shows as
    squares on the diagonal and zeros elsewhere.

    Parameters
    ----------
    panels : sequence of (title, W, BlockStructure)
        An embedding of shape (d, N) and its :func:`capopt.blocks`.
    ncols : int
        Panels per row.
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = new_figure(figsize=(3.3 * ncols + 1.0, 3.4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    image = None
    for ax, (title, W, structure) in zip(axes, panels):
        order = [i for b in structure.blocks for i in b.features] + list(structure.ignored)
        G = W.T @ W
        G = G[np.ix_(order, order)] / max(float(np.max(np.abs(G))), np.finfo(float).tiny)
        image = ax.imshow(G, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest")
        start = 0
        for b in structure.blocks:
            size = len(b.features)
            ax.add_patch(Rectangle((start - 0.5, start - 0.5), size, size,
                                   fill=False, edgecolor="black", linewidth=1.2))
            start += size
        ax.set_title(title, fontsize=8.5)
        ticks = np.arange(len(order))
        step = max(1, len(order) // 10)
        ax.set_xticks(ticks[::step], [str(order[t]) for t in ticks[::step]], fontsize=6)
        ax.set_yticks(ticks[::step], [str(order[t]) for t in ticks[::step]], fontsize=6)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[(nrows - 1) * ncols:]:
        ax.set_xlabel("feature j (grouped by block)", fontsize=8)
    for ax in axes[::ncols]:
        ax.set_ylabel("feature i (grouped by block)", fontsize=8)
    assert image is not None, "there is at least one panel"
    fig.colorbar(image, ax=list(axes[:len(panels)]), shrink=0.8,
                 label=r"$G_{ij} / \max|G|$,  $G = W^\top W$")
    fig.suptitle("Block structure of optimal and trained embeddings (boxes: blocks found by capopt.blocks)")
    return finish(fig, path)


def plot_crosscheck(reports, labels, *, path=None) -> Figure:
    r"""Predicted (solver) against trained capacities, and the size of the disagreement.

    Left: every feature of every problem at (predicted C, trained C), on the diagonal when
    training lands where the solver says. Right: per problem, :math:`\max_i |\Delta C_i|`
    and the loss gap (trained minus predicted; its magnitude) on a log scale.

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
    fig = new_figure(figsize=(11.5, 4.8))
    left, right = fig.subplots(1, 2, width_ratios=(1.0, 1.25))
    colours = _tab10()
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
    gap = np.maximum([abs(r.loss_gap) for r in reports], LOG_FLOOR)
    right.barh(y - 0.2, dC, height=0.4, color="#0072B2", label=r"$\max_i |\Delta C_i|$")
    right.barh(y + 0.2, gap, height=0.4, color="#E69F00", label="|loss gap|")
    right.set_xscale("log")
    right.set_xlim(LOG_FLOOR / 3, 1.0)
    right.set_yticks(y, labels, fontsize=8)
    for tick, k in zip(right.get_yticklabels(), range(len(reports))):
        tick.set_color(colours[k % len(colours)])
    right.invert_yaxis()
    right.set_xlabel(f"trained vs predicted (log scale; values below {LOG_FLOOR:g} drawn at it)")
    right.grid(alpha=0.3, axis="x")
    right.legend(loc="lower right", fontsize=8)
    right.set_title("disagreement per problem (label colour = marker colour)")
    fig.suptitle("Cross-check: the solver's capacities against those of gradient-trained models")
    return finish(fig, path)


def plot_budget_response(budgets, families, *, path=None) -> Figure:
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
    fig = new_figure(figsize=(11.0, 3.9 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colours = _tab10()
    for ax, colour, (label, C, _, _) in zip(axes, colours, families):
        n = C.shape[1]
        shades = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, n))
        ax.stackplot(d, C.T, colors=shades, linewidth=0.3, edgecolor="white")
        ax.plot(d, C.sum(axis=1), color=colour, linewidth=3, label=r"$\sum_i C_i$ (capacity used)")
        ax.plot(d, np.minimum(d, n), color="black", linestyle="--", linewidth=1.2,
                label=r"$\min(d, N)$")
        ax.set_xlim(d.min(), d.max())
        ax.set_ylim(0, n + 0.5)
        ax.set_xlabel("budget d (embedding dimension)")
        ax.set_ylabel(r"capacity $C_i$, stacked by feature")
        ax.set_title(f"{label}: capacity of each feature (colour: importance rank)", fontsize=9)
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
    fig.suptitle("Capacity used and the marginal value of a dimension as the budget grows")
    return finish(fig, path)
