r"""Figure: the Gram matrices of optimal and trained embeddings, features grouped by block.

At the trained density nearest ``settings.gram_density``: the quadratic model's optimal
embedding (the solver's allocation, realised) and its exact-loss L-BFGS training, then one
Adam-trained embedding of every architecture of the sparsity sweep.

Glossary: ``W`` a d x N embedding, ``G = W^T W`` its Gram matrix, ``C`` capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..._typing import PathLike
from ...curves import gated_kurtosis, quadratic
from ...geometry import BlockStructure, block_summary, blocks
from ...plotting import finish, new_figure
from ...realisation import optimal_quadratic_model
from ...solvers import solve
from ...training import ARCHITECTURES, crosscheck
from ..captions import Table, fmt, table
from ..drawing import ARCHITECTURE_LABELS, SMALL_FONT
from ..measures import unused_capacity
from ..numbers import Key, Named, Numbers
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench

__all__ = ["FIGURE", "GRAM_TICK_LABELS", "TrainedBlocks", "GramNumbers", "GramBlocks", "plot_gram_blocks"]

#: Tick labels on a Gram matrix axis: every feature up to this many, else every k-th.
GRAM_TICK_LABELS = 24


@dataclass(frozen=True)
class TrainedBlocks(Named):
    """The blocks (features/dims) of one architecture's Adam-trained embedding, named by the
    architecture."""

    blocks: Annotated[str, Key("blocks")]


@dataclass(frozen=True)
class GramNumbers(Numbers):
    """The quadratic model's optimal embedding against its L-BFGS training (blocks,
    capacities, and min(d, N) - sum C, zero iff block-semi-orthogonal of full rank,
    theory §1), and the blocks of every trained architecture."""

    density: Annotated[float, Key("density")]
    optimal_blocks: Annotated[str, Key("quadratic optimal blocks")]
    trained_blocks: Annotated[str, Key("quadratic L-BFGS blocks")]
    trained_dC: Annotated[float, Key("quadratic L-BFGS max |dC|")]
    optimal_unused: Annotated[float, Key("quadratic optimal min(d, N) - sum C")]
    trained_unused: Annotated[float, Key("quadratic L-BFGS min(d, N) - sum C")]
    architectures: tuple[TrainedBlocks, ...]


@dataclass(frozen=True)
class GramBlocks:
    """The numbers, and one panel per embedding: (title, W, its blocks)."""

    numbers: GramNumbers
    panels: tuple[tuple[str, np.ndarray, BlockStructure], ...]


def compute(wb: Workbench) -> GramBlocks:
    s = wb.settings
    k = wb.gram_index
    p = float(wb.train_densities[k])
    curves = quadratic(wb.train_importance, gated_kurtosis(p, ARCHITECTURES["square"].base))
    result = solve(curves, s.train_budget)
    model = optimal_quadratic_model(curves, result, seed=s.seed)
    optimal_blocks = blocks(model.W)
    check = crosscheck(curves, s.train_budget, starts=s.crosscheck_starts, seed=s.seed)
    panels = [
        ("quadratic model: optimal (solver, realised)", model.W, optimal_blocks),
        ("quadratic model: trained (L-BFGS, exact loss)", check.trained_weights, check.trained_blocks),
    ]
    trained = []
    for name, sw in wb.sweeps.items():
        structure = sw.structures[k][0]
        panels.append((f"{ARCHITECTURE_LABELS[name]}: trained (Adam)", sw.fit.weights[k * s.train_seeds],
                       structure))
        trained.append(TrainedBlocks(name, block_summary(structure)))
    numbers = GramNumbers(
        density=p, optimal_blocks=block_summary(optimal_blocks),
        trained_blocks=block_summary(check.trained_blocks), trained_dC=check.max_abs_dC,
        optimal_unused=unused_capacity(model.W, s.train_budget),
        trained_unused=unused_capacity(check.trained_weights, s.train_budget), architectures=tuple(trained))
    return GramBlocks(numbers, tuple((f"{title}\nblocks (features/dims): {block_summary(st)}", W, st)
                                     for title, W, st in panels))


def plot_gram_blocks(panels: Sequence[tuple[str, np.ndarray, BlockStructure]], *, ncols: int = 2,
                     path: PathLike | None = None) -> Figure:
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


def draw(g: GramBlocks) -> Figure:
    return plot_gram_blocks(g.panels)


def caption(s: Settings, g: GramBlocks) -> str:
    n = g.numbers
    agree = "agree" if n.optimal_blocks == n.trained_blocks else "differ"
    return (
        f"Gram matrices G = W^T W (scaled by max |G|) of embeddings with N = {s.train_features} "
        f"features of importance 0.9^i in d = {s.train_budget} dimensions at input density p = "
        f"{fmt(n.density)}, features grouped by the blocks capopt.blocks finds (boxes; ignored features "
        "last). The quadratic model's optimal embedding (from the solver's allocation) and its "
        f"exact-loss L-BFGS training have blocks {n.optimal_blocks} and "
        f"{n.trained_blocks} (features/dims; they {agree}) and capacities within "
        f"max |dC| = {fmt(n.trained_dC)}; in the quadratic model all polysemantic features share "
        "one block. The other architectures, trained with Adam on sampled inputs "
        "(the sparsity sweep), form blocks of their own sizes at this one density; the table lists "
        "them, and the block-size figure quantifies them at every density."
    )


def rows(g: GramBlocks) -> Table:
    n = g.numbers
    return table(("embedding", "how", "blocks (features/dims)"),
                 (("quadratic optimal", "capopt.solve + optimal_quadratic_model", n.optimal_blocks),
                  ("quadratic trained", "L-BFGS on the exact loss", n.trained_blocks),
                  *((a.name, "Adam, sampled inputs", a.blocks) for a in n.architectures)))


FIGURE = FigureSpec("gram-blocks", "Block structure of optimal and trained embeddings", GramNumbers,
                    compute, draw, caption, rows)
