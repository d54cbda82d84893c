r"""Branch and bound over the concave curves' boxes: the global optimum for curves given as
functions whose shapes are convex, linear or concave.

.. math::

    \min_{C} \sum_i \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\ \sum_i C_i \le d .

At a node each concave curve is replaced by its chord over its box (its convex envelope
there), and the relaxation is solved exactly by water-filling; its value bounds the node
from below and its solution, feasible, bounds the problem from above (Falk and Soland 1969).
:class:`capopt.solvers.global_optimum.Global` calls it for such families.

Glossary: ``C`` capacities, ``lam`` multiplier :math:`\lambda`, ``d`` budget, ``m = -l'``
marginal, ``lo``/``hi`` the box :math:`[lo_j, hi_j]` a concave curve is restricted to at a
node, ``sigma`` the marginal of a chord.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np

from ..curves import LossCurves, Shape
from .certificate import kkt_multiplier
from .result import Solution
from .ties import neighbour_ties

__all__ = ["branch_and_bound", "BOX_ATOL", "POLISH_RTOL", "POLISH_PASSES"]

#: Boxes narrower than this, and capacities this close to an end of their box, count as
#: points. On such a sliver a chord differs from the concave curve by at most BOX_ATOL times
#: the spread of its marginal: splitting it further cannot move the loss above rounding.
BOX_ATOL = 1e-12

#: The local refinement stops when every concave curve's KKT residual is below this
#: fraction of the marginal scale (rounding level; the certificate accepts 1e-8).
POLISH_RTOL = 1e-12

#: Upper bound on refinement moves; each accepted move lowers the loss, and in practice one
#: or two are made.
POLISH_PASSES = 64



class _Split:
    """A family split into water-filled curves (convex and linear) and concave curves."""

    def __init__(self, curves: LossCurves):
        self.curves = curves
        self.n = curves.n_features
        concave = curves.shape_mask(Shape.CONCAVE)
        self.concave = np.flatnonzero(concave)
        self.filled = ~concave
        ends = curves.marginal(np.stack([np.zeros(self.n), np.ones(self.n)]))[:, self.filled]
        # A water-filled curve's response is 1 below m(1), 0 from m(0) on and continuous in
        # between (a linear curve jumps at m(0) = m(1)): these are its kinks in lam.
        self.filled_kinks = np.unique(ends[ends > 0])


@dataclass(frozen=True)
class _Relaxed:
    """Solution of a node's convex relaxation.

    ``bound`` is the relaxation's optimal value (a lower bound for the node), ``loss`` the
    true loss at ``capacities`` (an upper bound for the problem) and ``fractional`` the
    position in ``_Split.concave`` of the one chord strictly inside its box, or -1.
    """

    capacities: np.ndarray
    bound: float
    loss: float
    fractional: int


def _solve_convex_relaxation(split: _Split, lo: np.ndarray, hi: np.ndarray, d: float) -> _Relaxed:
    r"""Exact solution of the chord relaxation of a node.

    .. math::

        \min_C \sum_{i \text{ filled}} \ell_i(C_i) + \sum_{j \text{ concave}} \phi_j(C_j)
        \quad \text{s.t.} \quad 0 \le C_i \le 1,\ lo_j \le C_j \le hi_j,\ \sum C \le d,

    with :math:`\phi_j` the chord of :math:`\ell_j` over :math:`[lo_j, hi_j]`, the convex
    envelope of the concave :math:`\ell_j` on the box (a box with :math:`lo_j = hi_j` fixes
    :math:`C_j`).

    Water-filling: the total response :math:`S(\lambda)` -- ``capacity_at`` for filled
    curves, :math:`hi_j` or :math:`lo_j` for a chord as its marginal
    :math:`\sigma_j = (\ell_j(lo_j) - \ell_j(hi_j)) / (hi_j - lo_j)` is above :math:`\lambda`
    or not -- is non-increasing and right-continuous, and jumps only at the kinks: the
    chords' :math:`\sigma_j` and the filled curves' :math:`m_i(0), m_i(1)`. A binary search
    over the sorted kinks finds the piece holding the smallest :math:`\lambda^*` with
    :math:`S(\lambda^*) \le d`; either :math:`S` jumps across d at the piece's upper kink
    (:math:`\lambda^* =` that kink), or :math:`\lambda^*` is a root of the continuous
    :math:`S - d` inside the piece, found by regula falsi (Illinois variant, with bisection
    steps whenever the bracket fails to halve). Either way the result is a bracket
    :math:`S(\lambda_{lo}) > d \ge S(\lambda_{hi})` between adjacent floats, unless the
    budget is met exactly first; the budget left is then handed out in index order to the
    curves whose response jumps inside the bracket (the tie set). So at most one curve ends
    strictly between its two responses: at most one chord is fractional. Exact up to
    rounding when ``capacity_at`` is; curves whose responses jump between kinks (e.g.
    piecewise-linear tables) only cost more steps.

    The bound is the Lagrangian dual :math:`g(\lambda) = \sum_i \min_{c}(\ell_i(c) +
    \lambda c) - \lambda d` of the relaxation at both ends of the bracket, each inner
    minimum of a water-filled curve bounded by the family
    (:meth:`~capopt.curves.LossCurves.lagrangian_minimum`): a lower bound for any
    :math:`\lambda \ge 0` however the primal point was rounded, and equal to the
    relaxation's optimum at the optimal multiplier.
    """
    curves, j = split.curves, split.concave
    ends = np.zeros((2, split.n))
    ends[0, j], ends[1, j] = lo, hi
    l_lo, l_hi = curves.loss(ends)[:, j]
    width = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.where(width > 0, (l_lo - l_hi) / width, -np.inf)
    any_filled = bool(split.filled.any())

    def response(lam: float) -> np.ndarray:
        C = np.zeros(split.n)
        if any_filled:
            C[split.filled] = curves.capacity_at(lam)[split.filled]
        C[j] = np.where(sigma > lam, hi, lo)
        return C

    lam_lo = lam_hi = 0.0
    C_lo = C_hi = response(0.0)
    excess_lo = excess_hi = C_hi.sum() - d
    # Rounding of the sum S(lam): a budget met to this is met.
    budget_atol = 4 * np.finfo(np.float64).eps * (split.n + d)
    kinks = np.union1d(split.filled_kinks, sigma[sigma > 0])
    # Without kinks S is constant for lam > 0 and no multiplier could lower it.
    if excess_hi > budget_atol and kinks.size:
        # At the top kink every filled curve answers 0 and every chord its lower end, and
        # sum(lo) <= d at every node: the top kink is a valid upper end.
        below, above = -1, kinks.size - 1
        lam_hi, C_hi = kinks[above], response(kinks[above])
        while above - below > 1:
            middle = (above + below) // 2
            C_mid = response(kinks[middle])
            if C_mid.sum() > d:
                below, lam_lo, C_lo = middle, kinks[middle], C_mid
            else:
                above, lam_hi, C_hi = middle, kinks[middle], C_mid
        left = np.nextafter(lam_hi, 0.0)
        if lam_lo < left:
            C_left = response(left)
            if C_left.sum() > d:
                lam_lo, C_lo = left, C_left
            else:
                lam_hi, C_hi = left, C_left
        excess_lo, excess_hi = C_lo.sum() - d, C_hi.sum() - d
        weight_lo, weight_hi, moved, secant = excess_lo, excess_hi, 0, True
        while excess_hi < -budget_atol:
            width = lam_hi - lam_lo
            fraction = weight_lo / (weight_lo - weight_hi) if secant else 0.5
            mid = lam_lo + width * fraction
            if not lam_lo < mid < lam_hi:
                mid = lam_lo + 0.5 * width
                if not lam_lo < mid < lam_hi:
                    break
            C_mid = response(mid)
            excess = C_mid.sum() - d
            if excess > 0:
                lam_lo, C_lo, excess_lo, weight_lo = mid, C_mid, excess, excess
                # Illinois: an end kept twice has its weight halved, so that the next
                # secant point moves toward it.
                weight_hi = 0.5 * weight_hi if moved == 1 else excess_hi
                moved = 1
            else:
                lam_hi, C_hi, excess_hi, weight_hi = mid, C_mid, excess, excess
                weight_lo = 0.5 * weight_lo if moved == -1 else excess_lo
                moved = -1
            secant = lam_hi - lam_lo <= 0.5 * width
    if excess_hi >= -budget_atol:
        # Budget met (or not binding): C_hi is optimal at lam_hi by itself.
        C = C_hi
    else:
        step = np.maximum(C_lo - C_hi, 0.0)
        before = np.cumsum(step) - step
        C = C_hi + np.clip(d - C_hi.sum() - before, 0.0, step)

    loss = float(np.sum(curves.loss(C)))

    def dual(lam: float) -> float:
        # The family's own bound on each water-filled curve's inner minimum: the response
        # found by bisection is exact only to its resolution (for curves given as functions,
        # a kink's to rounding), and a bound must hold wherever it lands.
        filled = np.sum(curves.lagrangian_minimum(lam)[split.filled]) if any_filled else 0.0
        chords = np.sum(np.minimum(l_lo + lam * lo, l_hi + lam * hi))
        return float(filled + chords - lam * d)

    bound = max(dual(lam_lo), dual(lam_hi))

    inside = (C[j] - lo > BOX_ATOL) & (hi - C[j] > BOX_ATOL)
    fractional = int(np.argmax(inside)) if inside.any() else -1
    return _Relaxed(C, bound, loss, fractional)


def _preferred(node: _Relaxed, best: _Relaxed) -> bool:
    """Whether ``node`` should replace the incumbent ``best``.

    A lower loss wins; losses equal up to the rounding of their sums (e.g. the same
    allocation permuted among identical curves) go to the allocation giving more capacity
    to the lower index, the package's tie-breaking rule.
    """
    n = node.capacities.size
    tie = 4 * n * np.finfo(np.float64).eps * max(1.0, abs(best.loss))
    if node.loss < best.loss - tie:
        return True
    if node.loss > best.loss + tie:
        return False
    differ = np.flatnonzero(np.abs(node.capacities - best.capacities) > BOX_ATOL)
    return differ.size > 0 and node.capacities[differ[0]] > best.capacities[differ[0]]


def _branch_and_bound(split: _Split, d: float, gap_rtol: float, max_nodes: int,
                      cutoff: float = np.inf) -> tuple[_Relaxed, float, int]:
    """Best-first branch and bound; returns (incumbent _Relaxed, lower bound, nodes solved).

    A node is a set of boxes for the concave curves (those not listed span [0, 1]), stored
    as a dict position -> (lo, hi) so that a node costs memory in its depth only. Nodes
    whose bound reaches ``cutoff`` are not explored (a search for allocations below it).
    """
    n_concave = split.concave.size

    def evaluate(box: dict) -> _Relaxed:
        lo, hi = np.zeros(n_concave), np.ones(n_concave)
        for p, (a, b) in box.items():
            lo[p], hi[p] = a, b
        return _solve_convex_relaxation(split, lo, hi, d)

    best = evaluate({})
    open_nodes: list = []
    # Smallest bound of the leaves closed without branching (pruned, or relaxation exact):
    # the lower bound is the minimum over all leaves, closed ones included.
    closed_floor = np.inf
    order = itertools.count()

    def slack() -> float:
        return gap_rtol * max(1.0, abs(best.loss))

    def worth(bound: float) -> bool:
        return bound < min(best.loss - slack(), cutoff)

    def file(node: _Relaxed, box: dict) -> None:
        nonlocal best, closed_floor
        if _preferred(node, best):
            best = node
        if node.fractional >= 0 and worth(node.bound):
            p = node.fractional
            c = float(node.capacities[split.concave[p]])
            heapq.heappush(open_nodes, (node.bound, next(order), box, p, c))
        else:
            closed_floor = min(closed_floor, node.bound)

    file(best, {})
    nodes = 1
    while open_nodes and nodes < max_nodes and worth(open_nodes[0][0]):
        _, _, box, p, c = heapq.heappop(open_nodes)
        lo, hi = box.get(p, (0.0, 1.0))
        # The chord is exact at the split point in both children: the fractional point of
        # the parent is cut off unless it is a true optimum of the child.
        for child in ({**box, p: (lo, c)}, {**box, p: (c, hi)}):
            file(evaluate(child), child)
            nodes += 1
    lower = min([closed_floor] + [node[0] for node in open_nodes])
    return best, lower, nodes


def _exchange_rates(split: _Split, node: _Relaxed, d: float) -> tuple[float, float, np.ndarray]:
    r"""What capacity is worth to the water-filled part at ``node``, and the marginals there.

    Returns ``(take, give, m)``: ``take`` is the loss added per unit of budget taken from the
    water-filled curves (0 while unused budget remains, else the smallest marginal among
    those holding capacity: :math:`-V'(b^-)`), ``give`` the loss removed per unit handed to
    them (the largest marginal among those below 1: :math:`-V'(b^+)`). The two differ where
    the water-filled part has a kink, e.g. when all of it sits at 1.
    """
    C = node.capacities
    m = split.curves.marginal(C)
    filled = split.filled
    if d - C.sum() > BOX_ATOL:
        take = 0.0
    else:
        take = float(np.min(m[filled & (C > BOX_ATOL)], initial=np.inf))
    give = max(0.0, float(np.max(m[filled & (C < 1.0 - BOX_ATOL)], initial=0.0)))
    return take, give, m


def _descend(split: _Split, x: np.ndarray, p: int, d: float, direction: float) -> _Relaxed:
    r"""Local minimum of the 1-D problem in concave capacity :math:`c = x_p`, others fixed.

    .. math:: f(c) = \ell_j(c) + V(R - c),

    with V the water-filled part's optimal loss at its budget (convex, so f is concave +
    convex), starting downhill in ``direction`` (+1 or -1). Steps of doubling length go on
    while :math:`f` still decreases at their end (:math:`m_j` above the rate ``take``, or
    below ``give``, of :func:`_exchange_rates`) up to the end of :math:`[0, \min(1, R)]`;
    bisection then locates the turning point to adjacent floats.
    """
    j = split.concave[p]

    def at(c: float) -> _Relaxed:
        y = x.copy()
        y[p] = c
        return _solve_convex_relaxation(split, y, y, d)

    def uphill(node: _Relaxed) -> bool:
        take, give, m = _exchange_rates(split, node, d)
        return m[j] <= take if direction > 0 else m[j] >= give

    x_p = float(x[p])
    target = min(1.0, x_p + max(d - float(x.sum()), 0.0)) if direction > 0 else 0.0
    a, node_a = x_p, None
    length = 2.0**-20
    while True:
        b = x_p + direction * length
        if (b - target) * direction >= 0:
            b, node_b = target, at(target)
            if not uphill(node_b):
                return node_b
            break
        node_b = at(b)
        if uphill(node_b):
            break
        a, node_a = b, node_b
        length *= 2.0
    while True:
        mid = 0.5 * (a + b)
        if mid == a or mid == b:
            break
        node_mid = at(mid)
        if uphill(node_mid):
            b, node_b = mid, node_mid
        else:
            a, node_a = mid, node_mid
    if node_a is None or node_b.loss <= node_a.loss:
        return node_b
    return node_a


def _polish(split: _Split, C: np.ndarray, d: float) -> np.ndarray:
    """Move concave capacities to KKT points of their 1-D problems, never raising the loss.

    The branch and bound certifies the loss; this makes the allocation stationary: the one
    fractional concave curve is moved to the turning point of its 1-D problem, and any
    concave curve at 0 or 1 whose sign condition fails is moved off it. A curve is settled
    once moved, until another curve's move changes its surroundings.
    """
    concave = split.concave
    x = C[concave].copy()
    current = _solve_convex_relaxation(split, x, x, d)
    eps = np.finfo(np.float64).eps
    settled: set[int] = set()
    for _ in range(POLISH_PASSES):
        take, give, m = _exchange_rates(split, current, d)
        can_rise = (x < 1.0 - BOX_ATOL) & np.isfinite(take)
        can_fall = x > BOX_ATOL
        rise_gain = np.where(can_rise, m[concave] - take, 0.0)
        violation = np.maximum(rise_gain, np.where(can_fall, give - m[concave], 0.0))
        violation[list(settled)] = 0.0
        p = int(np.argmax(violation))
        if violation[p] <= POLISH_RTOL * max(1.0, float(np.max(np.abs(m)))):
            break
        settled.add(p)
        moved = _descend(split, x, p, d, 1.0 if rise_gain[p] > 0 else -1.0)
        if moved.loss <= current.loss + 4 * eps * abs(current.loss):
            c = moved.capacities[concave[p]]
            if abs(c - x[p]) > BOX_ATOL:
                settled = {p}
            x[p] = c
            current = moved
    return current.capacities


def branch_and_bound(
    curves: LossCurves, budget: float, *, max_nodes: int, gap_rtol: float, polish: bool
) -> Solution:
    """The global optimum of convex, linear and concave curves given as functions.

    Branch and bound over the concave curves' boxes to ``gap_rtol`` of the loss scale in at
    most ``max_nodes`` relaxations, then, with ``polish``, the local refinement of the
    concave capacities (:class:`capopt.solvers.global_optimum.Global`, Notes). Options are
    validated by the caller.
    """
    split = _Split(curves)
    best, lower, nodes = _branch_and_bound(split, budget, gap_rtol, max_nodes)
    C = best.capacities
    if polish and split.concave.size:
        C = _polish(split, C, budget)
    return Solution(
        capacities=C,
        multiplier=kkt_multiplier(curves, C),
        lower_bound=lower,
        lower_bound_how="branch and bound over concave boxes (chord relaxation)",
        iterations=nodes,
        alternatives=_ties(split, C, budget, gap_rtol, max_nodes, polish),
    )


def _ties(split: _Split, C: np.ndarray, d: float, gap_rtol: float,
          max_nodes: int, polish: bool) -> tuple[np.ndarray, ...]:
    """The optima one change of regime away from ``C`` to within the search's own gap
    (:func:`capopt.solvers.ties.neighbour_ties`), each found by a search of its own and,
    with ``polish``, refined as the optimum is: the one-sided slopes of the loss are
    marginals at the alternatives, as exact as their capacities."""
    loss = float(np.sum(split.curves.loss(C)))

    def search(curves: LossCurves, budget: float, cutoff: float) -> np.ndarray | None:
        sub = _Split(curves)
        best, _, _ = _branch_and_bound(sub, budget, gap_rtol, max_nodes, cutoff)
        if best.loss >= cutoff:
            return None
        return _polish(sub, best.capacities, budget) if polish and sub.concave.size else best.capacities

    return neighbour_ties(split.curves, C, d, loss, gap_rtol * max(1.0, abs(loss)), search)
