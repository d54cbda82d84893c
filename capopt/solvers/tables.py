r"""The exact allocation for tabulated curves of any shape: branch and bound on the knots.

.. math::

    \min_C \sum_i \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\ \sum_i C_i \le d,

each :math:`\ell_i` piecewise linear on the knots :math:`0 = x_0 < \dots < x_{M-1} = 1`.

A node restricts every curve to an interval of knots :math:`[x_{a_i}, x_{b_i}]`. On it the
convex envelope of a piecewise-linear curve is the lower convex hull of its knots in the
interval, itself piecewise linear; replacing each curve by its envelope gives a separable
convex problem whose optimum the greedy solves exactly -- every curve starts at its
interval's left end, then the hull pieces are taken in decreasing order of marginal while
the marginal is positive and budget is left, the last one in part. Its value bounds the
node from below, and the true loss at its allocation, which is feasible, bounds the
problem from above. The greedy leaves every curve at a hull knot (a data knot, where the
envelope is exact) but at most one, on a hull piece; if that piece spans data knots the
curve lies above, the node is split at the data knot nearest the allocation. A curve whose
interval holds no inner knot is linear there and equals its envelope, so the search is
finite: it ends with the incumbent proven optimal to the gap tolerance.

Glossary: ``a``, ``b`` knot indices of a node's intervals, ``m`` the marginal of a hull
piece, ``w`` its width.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np

from ..curves import LossCurves
from ..user_curves import TabulatedCurves
from .certificate import kkt_multiplier
from .result import Solution
from .ties import neighbour_ties

__all__ = ["solve_tables"]

HOW = "branch and bound over the tables' knots with exact convex envelopes"

#: Distance from a knot within which a capacity is put on it: a few roundings of [0, 1].
KNOT_ATOL = 8 * float(np.finfo(np.float64).eps)


def _hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the lower convex hull of the points (x, y), x increasing (monotone chain)."""
    hull: list[int] = []
    for k in range(x.size):
        while len(hull) >= 2:
            i, j = hull[-2], hull[-1]
            # Drop j if it lies on or above the segment from i to k.
            if (y[j] - y[i]) * (x[k] - x[i]) >= (y[k] - y[i]) * (x[j] - x[i]):
                hull.pop()
            else:
                break
        hull.append(k)
    return np.asarray(hull)


class _Relaxation:
    """The envelope problem of one node, solved by the greedy."""

    def __init__(self, curves: TabulatedCurves, a: np.ndarray, b: np.ndarray, d: float):
        grid, values = curves.grid, curves.values
        n = values.shape[0]
        self.C = grid[a].copy()
        self.bound = float(np.sum(values[np.arange(n), a]))
        room = d - float(np.sum(self.C))
        self.feasible = room >= 0.0
        pieces = []
        for i in range(n):
            knots = np.arange(a[i], b[i] + 1)
            hull = knots[_hull(grid[knots], values[i, knots])]
            for s, t in zip(hull[:-1], hull[1:]):
                w = grid[t] - grid[s]
                pieces.append((-(values[i, s] - values[i, t]) / w, i, s, t, w))
        # Decreasing marginal; ties to the lower feature, then the lower piece.
        pieces.sort()
        self.fractional = None
        for key, i, s, t, w in pieces:
            m = -key
            if m <= 0.0 or room <= 0.0 or not self.feasible:
                break
            take = min(w, room)
            c = grid[t] if take == w else grid[s] + take
            # A capacity a rounding away from a knot is on it: budgets like 1/3 + 2/3 do not
            # sum to 1 exactly, and the one-sided marginals must see the knot.
            near = s + int(np.argmin(np.abs(grid[s : t + 1] - c)))
            if abs(grid[near] - c) <= KNOT_ATOL:
                c = grid[near]
            self.C[i] = c
            self.bound -= m * take
            room -= take
            if grid[s] < c < grid[t]:
                self.fractional = (i, s, t)
        self.loss = float(np.sum(curves.loss(self.C))) if self.feasible else np.inf


def _search(curves: TabulatedCurves, d: float, max_nodes: int, gap_rtol: float,
            cutoff: float = np.inf) -> tuple[_Relaxation, float, int]:
    """Branch and bound over knot intervals (module doc): (incumbent, lower bound, nodes).
    Nodes whose bound reaches ``cutoff`` are not explored (a search below it)."""
    n, M = curves.values.shape
    slack = gap_rtol * float(np.sum(curves.loss_range()))
    order = itertools.count()
    heap: list = []
    closed = np.inf
    nodes = 0
    best = None

    def worth(bound: float) -> bool:
        assert best is not None
        return bound < min(best.loss - slack, cutoff)

    def file(a: np.ndarray, b: np.ndarray) -> None:
        nonlocal closed, nodes, best
        relaxed = _Relaxation(curves, a, b, d)
        nodes += 1
        if not relaxed.feasible:
            return
        if best is None or relaxed.loss < best.loss:
            best = relaxed
        split = relaxed.fractional is not None and relaxed.fractional[2] - relaxed.fractional[1] > 1
        if split and worth(relaxed.bound):
            heapq.heappush(heap, (relaxed.bound, next(order), relaxed, a, b))
        else:
            # Solved (the envelope is the curve at the allocation) or pruned.
            closed = min(closed, relaxed.bound)

    file(np.zeros(n, np.intp), np.full(n, M - 1, np.intp))
    assert best is not None, "the root node (every curve at 0 allowed) is feasible"
    while heap and nodes < max_nodes and worth(heap[0][0]):
        _, _, relaxed, a, b = heapq.heappop(heap)
        i, s, t = relaxed.fractional
        inner = np.arange(s + 1, t)
        # The data knot nearest the allocation, strictly inside the hull piece.
        k = int(inner[np.argmin(np.abs(curves.grid[inner] - relaxed.C[i]))])
        for lo, hi in ((a[i], k), (k, b[i])):
            a2, b2 = a.copy(), b.copy()
            a2[i], b2[i] = lo, hi
            file(a2, b2)
    return best, min([closed] + [entry[0] for entry in heap]), nodes


def solve_tables(
    curves: TabulatedCurves, d: float, *, max_nodes: int, gap_rtol: float
) -> Solution:
    """Branch and bound over knot intervals (module doc) for tables of any shape, with the
    optima one change of regime away (:func:`capopt.solvers.ties.neighbour_ties`)."""
    best, lower, nodes = _search(curves, d, max_nodes, gap_rtol)
    within = gap_rtol * float(np.sum(curves.loss_range()))

    def search(sub: LossCurves, budget: float, cutoff: float) -> np.ndarray | None:
        assert isinstance(sub, TabulatedCurves)
        found = _search(sub, budget, max_nodes, gap_rtol, cutoff)[0]
        return found.C if found.loss < cutoff else None

    return Solution(
        capacities=best.C,
        multiplier=kkt_multiplier(curves, best.C),
        lower_bound=min(lower, best.loss),
        lower_bound_how=HOW,
        iterations=nodes,
        alternatives=neighbour_ties(curves, best.C, d, best.loss, within, search),
    )