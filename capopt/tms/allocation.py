r"""The allocation of a TMS autoencoder's dimensions over blocks: an exact dynamic programme.

At the optimum of a Toy Models of Superposition autoencoder the represented features sit in
blocks spanning mutually orthogonal subspaces, which do not interact: the loss is a sum over
blocks. A *block type* t puts k_t features in m_t dimensions (a configuration of
:mod:`capopt.tms.configurations`) and costs each of its features :math:`I_i e_t(p)`, the
block energy per unit importance (:mod:`capopt.tms.energies`); an ignored feature costs
:math:`I_i e_0` with :math:`e_0 = p/3 - p^2/4`, at its best bias p/2
(:func:`capopt.tms.losses.ignored_loss`). Given the menu of types, the best allocation of d
dimensions solves

.. math::

    \min \sum_{\text{blocks } B} e_{t(B)} \sum_{i \in B} I_i + e_0 \sum_{i \text{ ignored}} I_i
    \quad \text{s.t.} \quad \sum_B m_{t(B)} \le d .

*Which features share a block.* Sorted by importance, the features a block takes are
consecutive: exchanging a more important feature into a better-treated place never raises
the loss when every place costs its features in proportion to their importances (an
exchange argument). The dynamic programme runs over the sorted features and the dimensions
used: :math:`f(i, j)` the least loss of the first i features in at most j dimensions,

.. math::

    f(i + 1, j) \leftarrow f(i, j) + I_i e_0, \qquad
    f(i + k_t, j + m_t) \leftarrow f(i, j) + e_t \sum_{i \le l < i + k_t} I_l ,

exact over the menu in O(N d T) for T types (each step vectorised over j).

*Unequal importances inside a block.* A block keeps its symmetric geometry (one norm, one
bias, the configuration's frame) and its loss is :math:`e_t \sum_{i \in B} I_i`: the
symmetric block of features of different importances is feasible, so this is an upper
bound on what the block can do; an asymmetric block could do better. The prediction is
therefore certified *over the menu of symmetric blocks*, not over all embeddings.

Glossary: ``I`` importances (sorted, largest first), ``d`` budget, ``k``/``m`` a type's
features and dimensions, ``e`` its energy per unit importance, ``f`` the table of least
losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BlockType", "Allocation", "allocate"]


@dataclass(frozen=True)
class BlockType:
    """k features in m dimensions at an energy of ``energy`` per unit importance each."""

    name: str
    size: int
    dimensions: int
    energy: float


@dataclass(frozen=True)
class Allocation:
    """An optimal allocation over a menu: each block as (type index, first feature, size)
    over the importance-sorted features, the features ignored (sorted positions), and the
    least loss (the sum of the features' importance-weighted losses)."""

    blocks: tuple[tuple[int, int, int], ...]
    ignored: tuple[int, ...]
    loss: float


def allocate(types: Sequence[BlockType], importance: np.ndarray, budget: int,
             ignored_energy: float) -> Allocation:
    """The exact allocation of the importance-sorted features (module docstring).

    Parameters
    ----------
    types : sequence of BlockType
        The menu (the dedicated dimension, k = m = 1, among them).
    importance : ndarray, shape (N,)
        Sorted, largest first, each >= 0.
    budget : int
        d >= 0 dimensions.
    ignored_energy : float
        :math:`e_0`, the loss of an ignored feature per unit importance.
    """
    n, d = importance.size, int(budget)
    prefix = np.concatenate([[0.0], np.cumsum(importance)])
    f = np.full((n + 1, d + 1), np.inf)
    f[0, :] = 0.0
    # choice[i, j]: the type index that reached (i, j) (-1: a feature ignored, -2: start).
    choice = np.full((n + 1, d + 1), -2, dtype=np.int32)
    for i in range(n):
        row = f[i]
        ignored = row + importance[i] * ignored_energy
        better = ignored < f[i + 1]
        f[i + 1] = np.where(better, ignored, f[i + 1])
        choice[i + 1] = np.where(better, -1, choice[i + 1])
        for t, block in enumerate(types):
            k, m = block.size, block.dimensions
            if i + k > n or m > d:
                continue
            cost = row[: d + 1 - m] + block.energy * (prefix[i + k] - prefix[i])
            target = f[i + k, m:]
            better = cost < target
            f[i + k, m:] = np.where(better, cost, target)
            choice[i + k, m:] = np.where(better, t, choice[i + k, m:])
    # The least loss in at most d dimensions, and the path back to it.
    j = int(np.argmin(f[n]))
    loss = float(f[n, j])
    blocks, ignored = [], []
    i = n
    while i > 0:
        t = int(choice[i, j])
        if t == -1:
            i -= 1
            ignored.append(i)
        else:
            k, m = types[t].size, types[t].dimensions
            i, j = i - k, j - m
            blocks.append((t, i, k))
    return Allocation(tuple(reversed(blocks)), tuple(sorted(ignored)), loss)
