r"""Ties between structures of a non-convex allocation: optima that are not unique.

For a family mixing convex and non-convex curves, the global methods compare allocations
of different *structure*: which non-convex features are whole (C = 1), which one is
fractional, what the water-filled features get. Two structures of equal loss are both
optimal, and a small change of the problem makes one of them the only optimum, so C* jumps
(:func:`capopt.sensitivity` reads them as undetermined features). A method that compares
structures hands the ones it cannot tell from its optimum to the result
(:attr:`capopt.solvers.AllocationResult.alternatives`):

* the structured method of the quadratic model evaluates every candidate structure, and
  every one within its rounding of the best is a tie;
* the branches and bounds (tables, curves given as functions) evaluate, after their
  search, the structures one move away from their optimum (:func:`structural_moves`),
  each with the other non-convex capacities fixed and the convex ones refilled exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..curves import LossCurves, Shape
from ..regimes import DEFAULT_REGIME_ATOL

__all__ = ["structural_moves", "tied"]


def structural_moves(curves: LossCurves, C: np.ndarray, budget: float,
                     atol: float = DEFAULT_REGIME_ATOL) -> list[tuple[int, float]]:
    r"""The moves of one non-convex feature that change the structure of ``C``.

    Each move is (feature, its new capacity), the convex features to absorb the change:
    the whole feature of least gain :math:`\ell(0) - \ell(1)` to 0 (a whole feature given
    up), the empty one of largest gain to 1 when the budget allows (one taken whole), and
    a fractional one to 0 and to 1 (when it fits). Of the whole (empty) features, the one
    of least (largest) gain is the best to give up (take): the others' refill is the same.
    """
    n = curves.n_features
    nonconvex = ~curves.shape_mask(Shape.CONVEX) & ~curves.shape_mask(Shape.LINEAR)
    if not nonconvex.any():
        return []
    gain = curves.loss(np.zeros(n)) - curves.loss(np.ones(n))
    whole = nonconvex & (C >= 1.0 - atol) & (gain > 0)
    empty = nonconvex & (C <= atol) & (gain > 0)
    fractional = np.flatnonzero(nonconvex & ~(C >= 1.0 - atol) & ~(C <= atol))
    room = budget - float(np.sum(C[nonconvex]))
    moves: list[tuple[int, float]] = []
    if whole.any():
        moves.append((int(np.flatnonzero(whole)[np.argmin(gain[whole])]), 0.0))
    if empty.any() and room >= 1.0:
        moves.append((int(np.flatnonzero(empty)[np.argmax(gain[empty])]), 1.0))
    for f in fractional:
        moves.append((int(f), 0.0))
        if room >= 1.0 - C[f]:
            moves.append((int(f), 1.0))
    return moves


def tied(candidates: Iterable[tuple[np.ndarray, float]], C: np.ndarray, within: float,
         atol: float = DEFAULT_REGIME_ATOL) -> tuple[np.ndarray, ...]:
    """The allocations among ``candidates`` (capacities, loss) other than ``C`` -- and each
    other, to within ``atol`` -- whose loss is at most ``within``."""
    ties: list[np.ndarray] = []
    for other, loss in candidates:
        if loss <= within and not any(_within(other, seen, atol) for seen in [C, *ties]):
            ties.append(other)
    return tuple(ties)


def _within(a: np.ndarray, b: np.ndarray, atol: float) -> bool:
    """max |a - b| <= atol, with one temporary array."""
    difference = np.subtract(a, b)
    return bool(np.max(np.abs(difference, out=difference), initial=0.0) <= atol)
