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
* the branches and bounds (tables, curves given as functions) search, after their own
  search, the best allocation one change of regime away from their optimum
  (:func:`neighbour_ties`): every feature's, up to :data:`EXHAUSTIVE_BELOW` features, the
  non-convex ones' beyond (:func:`structural_moves`), each a search of its own with that
  feature held, cut off at the optimum's loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from ..curves import LossCurves, Shape
from ..regimes import DEFAULT_REGIME_ATOL

__all__ = ["structural_moves", "neighbour_ties", "tied", "enumeration_rounding", "EXHAUSTIVE_BELOW",
           "TIE_ROUNDINGS", "MAX_ALTERNATIVES"]

#: Rounding of an enumerated candidate's loss, in roundings (eps) of the loss scale,
#: besides log2 N more for pairwise sums: each term to a few ulps (compensated totals), a
#: water-filled part's own rounding moving the loss only to second order at its KKT point.
#: Candidates this close are tied, and an enumeration's bound allows as much.
TIE_ROUNDINGS = 16.0

#: An enumeration keeps at most this many tied alternatives: identical features tie in
#: every permutation, and a few of them already show what the sensitivities need (which
#: features move, the one-sided slopes); the vertex exchanges mark the rest.
MAX_ALTERNATIVES = 8


def enumeration_rounding(scale: float, n: int) -> float:
    """How close two enumerated candidates' losses of scale ``scale`` over ``n`` features
    can be from rounding alone (:data:`TIE_ROUNDINGS`)."""
    return (TIE_ROUNDINGS + math.log2(max(n, 2))) * float(np.finfo(np.float64).eps) * scale


#: Families of up to this many features have every feature's change of regime searched
#: for a tie (two per feature); larger ones the non-convex features' moves only.
EXHAUSTIVE_BELOW = 16


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


def regime_moves(C: np.ndarray, atol: float = DEFAULT_REGIME_ATOL) -> list[tuple[int, float]]:
    """Every change of regime of one feature: one at a bound to the other bound, a
    fractional one to both."""
    moves: list[tuple[int, float]] = []
    for i, c in enumerate(C):
        moves += [(i, t) for t in (0.0, 1.0) if abs(c - t) > atol]
    return moves


def neighbour_ties(curves: LossCurves, C: np.ndarray, budget: float, loss: float, within: float,
                   search: Callable[[LossCurves, float, float], np.ndarray | None],
                   atol: float = DEFAULT_REGIME_ATOL) -> tuple[np.ndarray, ...]:
    """The optima one change of regime away from ``C``, whose loss is ``loss``.

    For each move (feature i to t: :func:`regime_moves` for families of up to
    :data:`EXHAUSTIVE_BELOW` features, :func:`structural_moves` beyond), ``search(others,
    budget - t, cutoff)`` is the method's best allocation of the other features, or None
    when none beats ``cutoff`` (the room its losses have to tie); the allocations within
    ``within`` of ``loss`` are kept (:func:`tied`).
    """
    n = curves.n_features
    moves = regime_moves(C, atol) if n <= EXHAUSTIVE_BELOW else structural_moves(curves, C, budget, atol)
    candidates = []
    for i, t in moves:
        if t > budget or n == 1:
            continue
        others = np.delete(np.arange(n), i)
        own = float(curves.loss(np.full(n, t))[i])
        found = search(curves.subset(others), budget - t, loss + within - own)
        if found is None:
            continue
        full = np.empty(n)
        full[others], full[i] = found, t
        candidates.append((full, float(np.sum(curves.loss(full)))))
    return tied(candidates, C, loss + within, atol)


def tied(candidates: Iterable[tuple[np.ndarray, float]], C: np.ndarray, within: float,
         atol: float = DEFAULT_REGIME_ATOL) -> tuple[np.ndarray, ...]:
    """The allocations among ``candidates`` (capacities, loss) other than ``C`` -- and each
    other, to within ``atol`` -- whose loss is at most ``within``."""
    ties: list[np.ndarray] = []
    for other, loss in candidates:
        if len(ties) == MAX_ALTERNATIVES:
            break
        if loss <= within and not any(_within(other, seen, atol) for seen in [C, *ties]):
            ties.append(other)
    return tuple(ties)


def _within(a: np.ndarray, b: np.ndarray, atol: float) -> bool:
    """max |a - b| <= atol, with one temporary array."""
    difference = np.subtract(a, b)
    return bool(np.max(np.abs(difference, out=difference), initial=0.0) <= atol)
