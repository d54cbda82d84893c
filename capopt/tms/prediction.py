r"""How a TMS ReLU autoencoder allocates its dimensions, predicted without training.

:func:`predict_tms` chooses, for the features of a Toy Models of Superposition autoencoder
:math:`\hat x = \mathrm{ReLU}(W^\top W x + b)` with :math:`x_i = B_i U_i`,
:math:`B_i \sim \mathrm{Bernoulli}(p)`, :math:`U_i \sim U[0, 1]`, the blocks they sit in: each
a configuration of :mod:`capopt.tms.configurations` (a feature alone in a dimension, an
antipodal pair, a triangle, a pentagon, a square antiprism, ..., a large near-tight frame)
at its best norm and bias (:mod:`capopt.tms.energies`), the blocks spanning mutually
orthogonal subspaces so that they do not interact. The choice is the exact dynamic
programme of :mod:`capopt.tms.allocation` over that menu: the prediction is **certified
over the menu** (the least loss of any block-semi-orthogonal embedding built from the listed
symmetric configurations), not over all embeddings.

Known limits (theory §4): between p ≈ 0.19 and 0.235 the competing shapes are within 0.5 %
of each other (:attr:`TMSPrediction.near_ties`) and trained models mix them; the large-frame
model (signs of the Welch-bound cosines fair and independent) is good to about ±5 %, so below
p ≈ 0.15 the prediction is approximate.

Glossary: ``I`` importances, ``d`` budget, ``p`` density, ``a`` a block's squared norm,
``b`` its bias, ``e`` its energy per unit importance.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._typing import ArrayLike
from .._validation import as_float_array, check_choice, check_whole
from .allocation import BlockType, allocate
from .configurations import CONFIGURATIONS, Configuration, LargeFrame
from .energies import BlockEnergy, block_energy
from .large_frames import frame_energy
from .losses import ignored_bias, ignored_loss

__all__ = ["TMSPrediction", "TMSBlock", "predict_tms", "checked_densities", "MENU", "NEAR_TIE_RTOL",
           "STICKY_VALUES"]

#: The named configurations :func:`predict_tms` chooses from by default: those that are ever
#: best per dimension (the pentagonal antiprism never is, and costs the most to evaluate).
MENU: tuple[str, ...] = ("dedicated", "digon", "triangle", "tetrahedron", "5-cell", "pentagon",
                         "hexagon", "square antiprism", "cube", "icosahedron")

#: Large frames offered: m dimensions from this list (and d itself), k/m features per
#: dimension from the other; the energy of a frame varies slowly in k/m, and a finer grid
#: changes the predicted loss by well under the model's own error (about 5 %).
FRAME_DIMENSIONS = (4, 6, 8, 12, 16, 24, 32, 48, 64)
FRAME_RATIOS = (1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0)
#: Above this density no large frame gains as much per dimension as a digon (the energies'
#: table: 0.084 against 0.126 at p = 0.3), and the frames are not offered.
FRAME_DENSITY_MAX = 0.35

#: A configuration whose best allocation, used alone beside dedicated dimensions, is within
#: this fraction of the optimal loss is a near tie: trained models mix such shapes.
NEAR_TIE_RTOL = 0.005

#: The capacities TMS users read off trained models, and their names.
STICKY_VALUES: dict[str, float] = {
    "1": 1.0, "3/4": 0.75, "2/3": 2 / 3, "1/2": 0.5, "2/5": 0.4, "3/8": 0.375,
}
#: A capacity within this of a sticky value counts as it (trained models jitter by ~1e-2).
STICKY_ATOL = 0.02

ACTIVATIONS = ("relu",)


@dataclass(frozen=True)
class TMSBlock:
    """One block of a prediction: its configuration, its features (user indices), the
    dimensions it spans, and each feature's squared norm, bias and capacity."""

    name: str
    features: tuple[int, ...]
    dimensions: int
    norm_squared: float
    bias: float
    capacity: float
    configuration: Configuration | LargeFrame = field(repr=False)


@dataclass(frozen=True, repr=False, eq=False)
class TMSPrediction:
    r"""The predicted allocation of a TMS autoencoder at one density (:func:`predict_tms`).

    Attributes
    ----------
    importance : ndarray, shape (N,)
    budget : int
    density : float
    blocks : tuple of TMSBlock
        The represented features, block by block.
    capacities : ndarray, shape (N,)
        Each feature's capacity (feature dimensionality): its block's C = m/k, 0 ignored.
    loss : float
        The TMS convention: :math:`\frac1N \sum_i I_i \mathbb E (x_i - \hat x_i)^2`.
    near_ties : tuple of (str, float)
        The configurations within :data:`NEAR_TIE_RTOL` of the optimum when used alone
        beside dedicated dimensions, with their relative excess (0 for the optimum's).
    energies : dict of str to BlockEnergy
        The menu's block energies at this density.
    """

    importance: np.ndarray
    budget: int
    density: float
    blocks: tuple[TMSBlock, ...]
    capacities: np.ndarray
    loss: float
    near_ties: tuple[tuple[str, float], ...]
    energies: dict[str, BlockEnergy] = field(repr=False)

    @property
    def n_features(self) -> int:
        return self.importance.size

    @property
    def represented(self) -> int:
        """Features with a nonzero embedding."""
        return int(np.count_nonzero(self.capacities > 0))

    @property
    def dims_per_feature(self) -> float:
        r""":math:`d / \|W\|_F^2`, the figure TMS plots against density."""
        total = sum(len(b.features) * b.norm_squared for b in self.blocks)
        return self.budget / total if total > 0 else math.inf

    @property
    def counts(self) -> dict[str, int]:
        """Represented features by capacity: each of :data:`STICKY_VALUES`, and "other"."""
        out = {name: 0 for name in STICKY_VALUES} | {"other": 0}
        for c in self.capacities[self.capacities > 0]:
            name = next((n for n, v in STICKY_VALUES.items() if abs(c - v) <= STICKY_ATOL), "other")
            out[name] += 1
        return out

    def realize(self) -> tuple[np.ndarray, np.ndarray]:
        """An explicit embedding W (d, N) and bias b (N,) of the prediction.

        Each block is its configuration's frame at its norm, in dimensions of its own; an
        ignored feature has :math:`W_i = 0` and its best bias p/2. For the named
        configurations the model's exact loss at (W, b) is the prediction's; a large frame
        is realised as a harmonic tight frame, whose loss differs from the Welch-bound
        model by that model's error.
        """
        W = np.zeros((self.budget, self.n_features))
        b = np.full(self.n_features, ignored_bias(self.density))
        row = 0
        for block in self.blocks:
            vectors = _frame_of(block.configuration)
            cols = list(block.features)
            W[row: row + block.dimensions, cols] = math.sqrt(block.norm_squared) * vectors.T
            b[cols] = block.bias
            row += block.dimensions
        return W, b

    def table(self) -> str:
        """The blocks, the counts by capacity, the loss and the near ties, as text."""
        lines = [f"TMS prediction: N = {self.n_features}, d = {self.budget}, density {self.density:g}"]
        lines.append(f"{'block':<22} {'count':>5} {'features':>8} {'dims':>4} {'C':>7} {'a':>8} {'b':>8}")
        grouped: dict[str, list[TMSBlock]] = {}
        for block in self.blocks:
            grouped.setdefault(block.name, []).append(block)
        for name, blocks in grouped.items():
            first = blocks[0]
            lines.append(f"{name:<22} {len(blocks):>5} {sum(len(b.features) for b in blocks):>8} "
                         f"{sum(b.dimensions for b in blocks):>4} {first.capacity:>7.4f} "
                         f"{first.norm_squared:>8.4f} {first.bias:>8.4f}")
        lines.append(f"ignored: {self.n_features - self.represented} features")
        lines.append("counts by capacity: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        lines.append(f"loss {self.loss:.6g} (mean over features), d/|W|_F^2 = {self.dims_per_feature:.4f}")
        ties = ", ".join(f"{name} (+{excess:.2%})" for name, excess in self.near_ties)
        lines.append(f"near ties (within {NEAR_TIE_RTOL:.1%}): {ties or 'none'}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain Python values, for JSON."""
        return {
            "budget": self.budget, "density": self.density, "loss": self.loss,
            "capacities": self.capacities.tolist(), "represented": self.represented,
            "dims_per_feature": self.dims_per_feature, "counts": self.counts,
            "blocks": [{"name": b.name, "features": list(b.features), "dimensions": b.dimensions,
                        "norm_squared": b.norm_squared, "bias": b.bias, "capacity": b.capacity}
                       for b in self.blocks],
            "near_ties": [list(t) for t in self.near_ties],
        }

    def __repr__(self) -> str:
        return (f"TMSPrediction(N={self.n_features}, d={self.budget}, p={self.density:g}, "
                f"represented={self.represented}, loss={self.loss:.6g}, "
                f"counts={ {k: v for k, v in self.counts.items() if v} })")


def predict_tms(
    importance: ArrayLike,
    budget: int,
    density: ArrayLike,
    *,
    activation: str = "relu",
    menu: Sequence[str] = MENU,
    large_frames: bool = True,
    progress: bool | None = None,
) -> TMSPrediction | tuple[TMSPrediction, ...]:
    r"""Predict a TMS autoencoder's allocation and geometry without training.

    Parameters
    ----------
    importance : array_like, shape (N,)
        :math:`I_i \ge 0`, e.g. ``0.9 ** np.arange(N)`` or ``np.ones(N)``.
    budget : int
        d, the hidden dimensions.
    density : float or array_like
        p in (0, 1], the probability a feature is active (sparsity S = 1 - p); an array
        gives one prediction per density.
    activation : {"relu"}
        The output nonlinearity.
    menu : sequence of str
        The named configurations to choose from (:data:`MENU`).
    large_frames : bool
        Also offer large near-tight frames (at densities up to :data:`FRAME_DENSITY_MAX`).
    progress : bool, optional
        A progress bar over the densities (default: on a terminal, for several).

    Returns
    -------
    TMSPrediction, or a tuple of them for an array of densities

    Notes
    -----
    Per density: one block energy per configuration (a 2-D minimisation of an exact finite
    sum, cached), then the dynamic programme over the importance-sorted features, O(N d T).

    Examples
    --------
    The Toy Models of Superposition intro setting: 5 features in 2 dimensions, importance
    0.9^i; dense, the two most important take a dimension each, sparse, all five a pentagon.

    >>> import numpy as np
    >>> dense = predict_tms(0.9 ** np.arange(5), 2, 1.0)
    >>> dense.capacities.round(3).tolist()
    [1.0, 1.0, 0.0, 0.0, 0.0]
    >>> predict_tms(0.9 ** np.arange(5), 2, 0.05).counts["2/5"]
    5
    """
    I = as_float_array(importance, "importance")  # noqa: E741 -- the paper's name
    if I.ndim != 1 or I.size == 0 or np.any(I < 0):
        raise ValueError(f"importance must be a non-empty 1-d array of values >= 0, got shape {I.shape}")
    d = check_whole(budget, "budget", minimum=0, unit="dimensions")
    check_choice(activation, "activation", list(ACTIVATIONS))
    for name in menu:
        check_choice(name, "menu entries", sorted(n for n in CONFIGURATIONS if n != "ignored"))
    p_all = checked_densities(density)
    if p_all.ndim == 0:
        return _predict(I, d, float(p_all), tuple(menu), large_frames)
    from .._progress import progress_bar

    densities = p_all.ravel().tolist()
    return tuple(_predict(I, d, p, tuple(menu), large_frames)
                 for p in progress_bar(densities, progress=progress, desc="predict-tms",
                                       unit="density", total=len(densities)))


def checked_densities(density: ArrayLike) -> np.ndarray:
    """``density`` as a float array, each value in (0, 1] (ValueError naming the first that
    is not)."""
    p = as_float_array(density, "density")
    bad = p[~((p > 0) & (p <= 1))]
    if bad.size:
        raise ValueError(f"density must lie in (0, 1], got {float(bad.flat[0])!r}")
    return p


@functools.lru_cache(maxsize=4096)
def _energy(configuration: Configuration | LargeFrame, p: float) -> BlockEnergy:
    if isinstance(configuration, LargeFrame):
        return frame_energy(configuration, p)
    return block_energy(configuration, p)


def _frames(n: int, d: int) -> list[LargeFrame]:
    """The large frames offered for N features in d dimensions."""
    out = []
    for m in sorted({m for m in FRAME_DIMENSIONS if m < d} | {d}):
        for ratio in FRAME_RATIOS:
            k = int(round(ratio * m))
            if m < k <= n:
                out.append(LargeFrame(k, m))
    return out


def _predict(I: np.ndarray, d: int, p: float, menu: tuple[str, ...],  # noqa: E741
             large_frames: bool) -> TMSPrediction:
    order = np.argsort(-I, kind="stable")
    sorted_I = I[order]
    baseline = ignored_loss(p)
    shapes: list[Configuration | LargeFrame] = [CONFIGURATIONS[name] for name in menu]
    if large_frames and p <= FRAME_DENSITY_MAX:
        shapes += _frames(I.size, d)
    energies = {shape.name: _energy(shape, p) for shape in shapes}
    useful = [e for e in energies.values() if e.energy < baseline]
    types = [BlockType(e.configuration.name, e.configuration.size, e.configuration.dimensions, e.energy)
             for e in useful]
    best = allocate(types, sorted_I, d, baseline)
    blocks = []
    for t, start, k in best.blocks:
        e = useful[t]
        features = tuple(int(order[j]) for j in range(start, start + k))
        blocks.append(TMSBlock(e.configuration.name, features, types[t].dimensions, e.norm_squared,
                               e.bias, float(e.configuration.capacity), e.configuration))
    capacities = np.zeros(I.size)
    for block in blocks:
        capacities[list(block.features)] = block.capacity
    return TMSPrediction(
        importance=I, budget=d, density=p, blocks=tuple(blocks), capacities=capacities,
        loss=best.loss / I.size, near_ties=_near_ties(useful, types, sorted_I, d, baseline, best.loss),
        energies=energies,
    )


def _near_ties(useful: list[BlockEnergy], types: list[BlockType], sorted_I: np.ndarray, d: int,
               baseline: float, optimum: float) -> tuple[tuple[str, float], ...]:
    """Each configuration's best allocation used alone beside dedicated dimensions, kept
    when it uses the configuration and is within :data:`NEAR_TIE_RTOL` of the optimum (the
    competing shapes)."""
    dedicated = [t for t in types if t.size == 1 and t.dimensions == 1]
    out = []
    for block in types:
        if block.size == 1:
            continue
        found = allocate([block, *dedicated], sorted_I, d, baseline)
        excess = (found.loss - optimum) / optimum if optimum > 0 else 0.0
        # A shape its own best allocation does not use competes with nothing.
        if excess <= NEAR_TIE_RTOL and any(t == 0 for t, _, _ in found.blocks):
            out.append((block.name, float(excess)))
    return tuple(sorted(out, key=lambda t: t[1]))


def _frame_of(shape: Configuration | LargeFrame) -> np.ndarray:
    """Unit vectors (k, m) of a configuration; a harmonic tight frame for a large one."""
    if isinstance(shape, Configuration):
        return np.asarray(shape.frame)
    k, m = shape.size, shape.dimensions
    j = np.arange(k)[:, None]
    columns = []
    for f in range(1, m // 2 + 1):
        columns += [np.cos(2 * np.pi * f * j / k), np.sin(2 * np.pi * f * j / k)]
    if m % 2:
        columns.append(np.ones((k, 1)) / math.sqrt(2))
    V = np.hstack(columns)[:, :m]
    return V / np.linalg.norm(V, axis=1, keepdims=True)

