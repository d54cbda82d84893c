r"""The report's own figures: one drawing per figure of ``capopt reproduce``.

Like :mod:`capopt.plotting` (whose canvas helpers they share), each function takes data
computed elsewhere (:mod:`capopt.report.computations`), computes nothing new from it and
returns a :class:`matplotlib.figure.Figure`, written as a PNG when given ``path``.
"""

from __future__ import annotations

from typing import Sequence, cast

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ..geometry import represented
from ..plotting import finish, new_figure
from ..regimes import Regime

__all__ = [
    "plot_allocation_by_importance",
    "plot_marginal_pairs",
    "mark_two_feature_cases",
    "plot_polysemantic_vs_sparsity",
    "plot_gram_blocks",
    "plot_block_statistics",
    "plot_tms_published",
    "plot_crosscheck",
    "plot_budget_response",
    "REGIME_COLOURS",
    "ARCHITECTURE_LABELS",
]

#: Colour of each regime in every figure (Okabe-Ito blue / vermillion, grey: readable
#: by colour-blind readers and in greyscale).
REGIME_COLOURS = {
    Regime.MONOSEMANTIC: "#0072B2",
    Regime.POLYSEMANTIC: "#D55E00",
    Regime.IGNORED: "#9E9E9E",
}

#: Values below this are drawn at it on the logarithmic error axes: exact agreements
#: (|dC| = 0) would otherwise vanish from the plot; the signed loss-gap axis is linear
#: within it.
LOG_FLOOR = 1e-17

#: Half-width of the grey band around a zero loss gap in the cross-check figure, in units
#: of the loss's last place: sums of a few dozen terms round by about this much.
ROUNDING_ULPS = 16

#: How the figures name each trained architecture (the keys of
#: :data:`capopt.training.ARCHITECTURES`): the model itself, so no table is needed to read
#: a legend or a panel title.
ARCHITECTURE_LABELS = {
    "tms-relu": r"autoencoder $\hat x = \mathrm{ReLU}(W^\top W x + b)$",
    "tms-gelu": r"autoencoder $\hat x = \mathrm{GeLU}(W^\top W x + b)$",
    "square": r"two-layer $\hat y = \sum_k (Wx)_k^2 + b$",
    "relu": r"two-layer $\hat y = \sum_k \mathrm{ReLU}((Wx)_k) + b$",
    "gelu": r"two-layer $\hat y = \sum_k \mathrm{GeLU}((Wx)_k) + b$",
    "abs": r"two-layer $\hat y = \sum_k |(Wx)_k| + b$",
}

#: Tick labels on a Gram matrix axis: every feature up to this many, else every k-th.
GRAM_TICK_LABELS = 24
#: Font size of the tick labels, axis labels and panel titles of the report's figures
#: (points; the report shows a figure about as wide as it is drawn, 150 dpi at 1100 px).
SMALL_FONT = 8.5


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


def _density_axis(ax, p: np.ndarray) -> None:
    """A reversed logarithmic density axis covering ``p``, sparser to the right."""
    ax.set_xscale("log")
    ticks = [t for t in (1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005) if p.min() <= t <= p.max()]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xticks([], minor=True)
    ax.set_xlim(p.max() * 1.1, p.min() / 1.1)
    ax.set_xlabel("input density $p = 1 - S$ (log scale; sparser to the right)")


def _seed_band(ax, x, values: np.ndarray, colour, label: str) -> None:
    """The mean over seeds of ``values`` (len(x), n_seeds) as a line, their range as a band."""
    ax.plot(x, values.mean(axis=1), marker="o", markersize=4, color=colour, label=label)
    if values.shape[1] > 1:
        ax.fill_between(x, values.min(axis=1), values.max(axis=1), color=colour, alpha=0.15)


def plot_block_statistics(densities, curves, *, path=None) -> Figure:
    """Size of the largest block and the semi-orthogonality residual against density.

    Parameters
    ----------
    densities : ndarray, shape (S,)
    curves : mapping of str to (largest, residual)
        Per architecture, arrays of shape (S, n_seeds): features in the largest block of
        each trained embedding and its :attr:`capopt.BlockStructure.residual`.
    path : path-like, optional
        Also write the figure there as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(figsize=(12.0, 4.8))
    left, right = fig.subplots(1, 2)
    for colour, (name, (largest, residual)) in zip(_tab10(), curves.items()):
        label = ARCHITECTURE_LABELS.get(name, name)
        _seed_band(left, densities, largest, colour, label)
        _seed_band(right, densities, np.maximum(residual, LOG_FLOOR), colour, label)
    for ax in (left, right):
        _density_axis(ax, np.asarray(densities))
        ax.grid(alpha=0.3)
    left.set_ylabel("features in the largest block")
    right.set_yscale("log")
    right.set_ylabel(r"residual $(\mathrm{rank}\,W - \sum_i C_i)/\mathrm{rank}\,W$")
    left.legend(loc="upper left", fontsize=7.5, framealpha=0.9)
    fig.suptitle("Trained models: block sizes and semi-orthogonality against input density "
                 "(line: mean over seeds, band: range)")
    return finish(fig, path)


def plot_tms_published(panels, *, path=None) -> Figure:
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
        _seed_band(ax, sw.densities, sw.polysemantic_fraction, colour, ARCHITECTURE_LABELS.get(name, name))
    _density_axis(ax, np.concatenate([sw.densities for sw in sweeps.values()]))
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


def plot_gram_blocks(panels, *, ncols: int = 2, path=None) -> Figure:
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
    fig = new_figure(figsize=(4.0 * ncols + 1.2, 4.1 * nrows))
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
        ax.set_title(title, fontsize=SMALL_FONT + 0.5)
        step = -(-len(order) // GRAM_TICK_LABELS)  # ceil: at most GRAM_TICK_LABELS labels
        ticks = np.arange(len(order))[::step]
        labels = [str(order[t]) for t in ticks]
        # Upright numbers of two digits side by side collide beyond a dozen features.
        ax.set_xticks(ticks, labels, fontsize=SMALL_FONT, rotation=90 if ticks.size > 12 else 0)
        ax.set_yticks(ticks, labels, fontsize=SMALL_FONT)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[(nrows - 1) * ncols:]:
        ax.set_xlabel("feature j (grouped by block)", fontsize=SMALL_FONT + 0.5)
    for ax in axes[::ncols]:
        ax.set_ylabel("feature i (grouped by block)", fontsize=SMALL_FONT + 0.5)
    assert image is not None, "there is at least one panel"
    fig.colorbar(image, ax=list(axes[:len(panels)]), shrink=0.5, aspect=30,
                 label=r"$G_{ij} / \max|G|$,  $G = W^\top W$ (white: orthogonal)")
    fig.suptitle("Block structure of optimal and trained embeddings (boxes: blocks found by capopt.blocks)")
    return finish(fig, path)


def plot_crosscheck(reports, labels, *, path=None) -> Figure:
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
    fig = new_figure(figsize=(11.5, 3.9 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colours = _tab10()
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
