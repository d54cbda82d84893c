r"""How the report's figures are drawn alike: names, sizes, colours and axes they share.

Each figure's own drawing is in its module (:mod:`capopt.report.figures`); like
:mod:`capopt.plotting` (whose canvas helpers they use), it takes data computed by the
figure's computation, computes nothing new from it and returns a
:class:`matplotlib.figure.Figure`, written as a PNG when given ``path``.
"""

from __future__ import annotations

from typing import Sequence, cast

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.typing import ColorType

__all__ = ["ARCHITECTURE_LABELS", "LOG_FLOOR", "SMALL_FONT", "tab10", "density_axis", "seed_band"]

#: Values below this are drawn at it on the logarithmic error axes: exact agreements
#: (|dC| = 0) would otherwise vanish from the plot; the signed loss-gap axis is linear
#: within it.
LOG_FLOOR = 1e-17

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

#: Font size of the tick labels, axis labels and panel titles of the report's figures
#: (points; the report shows a figure about as wide as it is drawn, 150 dpi at 1100 px).
SMALL_FONT = 8.5


def tab10() -> Sequence[tuple[float, float, float]]:
    """The ten colours of matplotlib's ``tab10`` palette, as RGB tuples."""
    cmap = matplotlib.colormaps["tab10"]
    assert isinstance(cmap, ListedColormap), "tab10 is a listed colormap"
    # The stub types ``colors`` as anything the constructor accepts; tab10 holds RGB tuples.
    return cast(Sequence[tuple[float, float, float]], cmap.colors)


def density_axis(ax: Axes, p: np.ndarray) -> None:
    """A reversed logarithmic density axis covering ``p``, sparser to the right."""
    ax.set_xscale("log")
    ticks = [t for t in (1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005) if p.min() <= t <= p.max()]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xticks([], minor=True)
    ax.set_xlim(p.max() * 1.1, p.min() / 1.1)
    ax.set_xlabel("input density $p = 1 - S$ (log scale; sparser to the right)")


def seed_band(ax: Axes, x: np.ndarray, values: np.ndarray, colour: ColorType, label: str) -> None:
    """The mean over seeds of ``values`` (len(x), n_seeds) as a line, their range as a band."""
    ax.plot(x, values.mean(axis=1), marker="o", markersize=4, color=colour, label=label)
    if values.shape[1] > 1:
        ax.fill_between(x, values.min(axis=1), values.max(axis=1), color=colour, alpha=0.15)
