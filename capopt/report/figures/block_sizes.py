"""Figure: the blocks of trained embeddings and their semi-orthogonality, per architecture and density.

Every embedding of the sparsity sweep (:mod:`~capopt.report.figures.sparsity_sweep`),
grouped into blocks by :func:`capopt.blocks`: the features in the largest block and the
residual (rank W - sum C)/rank W, zero exactly when the embedding is block-semi-orthogonal.

Glossary: ``p`` density, ``C`` capacity, ``W`` a d x N embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Iterable, Mapping

import numpy as np
from matplotlib.figure import Figure

from ..._typing import PathLike
from ...geometry import BlockStructure, block_sizes
from ...plotting import finish, new_figure
from ...training.results import TRAINED_BLOCK_TOL, TRAINED_ZERO_TOL
from ..captions import Table, fmt, table, training_recipe
from ..drawing import ARCHITECTURE_LABELS, LOG_FLOOR, density_axis, seed_band, tab10
from ..measures import spread
from ..numbers import Key, Numbers
from ..settings import Settings
from ..spec import FigureSpec
from ..workbench import Workbench

__all__ = ["FIGURE", "BlockNumbers", "BlockSizesNumbers", "BlockSizes", "plot_block_statistics"]


@dataclass(frozen=True)
class BlockNumbers(Numbers):
    """The blocks of one architecture's embeddings at one density, over seeds: their sizes
    pooled, the largest block (mean and range) and the largest residual."""

    name: str
    density: float
    sizes: Annotated[str, Key("block sizes")]
    largest: Annotated[float, Key("largest block")]
    largest_seed_range: Annotated[float, Key("largest block seed range")]
    residual: Annotated[float, Key("residual")]

    @property
    def prefix(self) -> str:
        return f"{self.name} p = {fmt(self.density)} "


@dataclass(frozen=True)
class BlockSizesNumbers(Numbers):
    """Every architecture at every density (architecture by architecture), over ``seeds``
    seeds each."""

    blocks: tuple[BlockNumbers, ...]
    seeds: int


@dataclass(frozen=True)
class BlockSizes:
    """The numbers, the densities and, per architecture, the largest block and the residual
    of every embedding, arrays of shape (densities, seeds)."""

    numbers: BlockSizesNumbers
    densities: np.ndarray
    curves: dict[str, tuple[np.ndarray, np.ndarray]]


def _size_distribution(structures: Iterable[BlockStructure]) -> str:
    """Blocks of several embeddings pooled, as 'features:count' terms ('none' if none)."""
    sizes = [n for st in structures for n, _ in block_sizes(st)]
    if not sizes:
        return "none"
    values, counts = np.unique(sizes, return_counts=True)
    return " ".join(f"{v}:{c}" for v, c in zip(values, counts))


def compute(wb: Workbench) -> BlockSizes:
    records, curves = [], {}
    for name, sw in wb.sweeps.items():
        largest = np.array([[max((n for n, _ in block_sizes(st)), default=0) for st in row]
                            for row in sw.structures], dtype=float)
        residual = np.array([[st.residual for st in row] for row in sw.structures])
        curves[name] = (largest, residual)
        records += [BlockNumbers(name, float(p), _size_distribution(sw.structures[k]),
                                 float(largest[k].mean()), spread(largest[k]), float(residual[k].max()))
                    for k, p in enumerate(sw.densities)]
    return BlockSizes(BlockSizesNumbers(tuple(records), wb.settings.train_seeds), wb.train_densities, curves)


def plot_block_statistics(densities: np.ndarray, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                          path: PathLike | None = None) -> Figure:
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
    for colour, (name, (largest, residual)) in zip(tab10(), curves.items()):
        label = ARCHITECTURE_LABELS.get(name, name)
        seed_band(left, densities, largest, colour, label)
        seed_band(right, densities, np.maximum(residual, LOG_FLOOR), colour, label)
    for ax in (left, right):
        density_axis(ax, np.asarray(densities))
        ax.grid(alpha=0.3)
    left.set_ylabel("features in the largest block")
    right.set_yscale("log")
    right.set_ylabel(r"residual $(\mathrm{rank}\,W - \sum_i C_i)/\mathrm{rank}\,W$")
    left.legend(loc="upper left", fontsize=7.5, framealpha=0.9)
    fig.suptitle("Trained models: block sizes and semi-orthogonality against input density "
                 "(line: mean over seeds, band: range)")
    return finish(fig, path)


def draw(b: BlockSizes) -> Figure:
    return plot_block_statistics(b.densities, b.curves)


def caption(s: Settings, b: BlockSizes) -> str:
    return (
        f"Blocks (capopt.blocks: features whose cosine exceeds {fmt(TRAINED_BLOCK_TOL)} share a "
        f"block; columns shorter than {fmt(TRAINED_ZERO_TOL)} of the longest are ignored) of every "
        f"embedding of the previous figure ({training_recipe(s)}). Left: features in the largest block; "
        "right: the semi-orthogonality residual (rank W - sum C)/rank W, zero exactly when the "
        "embedding is block-semi-orthogonal (theory §1). The table gives, per architecture and "
        "density, the sizes of all blocks pooled over seeds (features:count), the largest block "
        "(mean and range over seeds) and the largest residual."
    )


def rows(b: BlockSizes) -> Table:
    return table(("architecture", "density", "blocks by size (features:count, all seeds)",
                  "largest block", "seed range", "residual (max)"),
                 ((r.name, r.density, r.sizes, r.largest, r.largest_seed_range, r.residual)
                  for r in b.numbers.blocks))


FIGURE = FigureSpec("block-sizes",
                    "Trained models: block sizes and semi-orthogonality, per architecture and density",
                    BlockSizesNumbers, compute, draw, caption, rows)
