r"""The exact allocation of a mixed quadratic family, from the structure of its optimum.

.. math::

    \min_C \sum_{i \in V} \ell_i(C_i) + \sum_{j \in U} \ell_j(C_j)
    \quad \text{s.t.} \quad 0 \le C \le 1,\ \sum C \le d,

with U the concave curves (:math:`K < 3`) and V the convex, linear and flat ones.

*Structure.* (i) Some optimum has at most one concave feature strictly inside (0, 1):
moving capacity between two such features along their sum is a concave function of the
move, minimised at an end. (ii) Among the concave features at 1, a set of k, the best is
the k largest gains :math:`g_j = \ell_j(0) - \ell_j(1)` among those not fractional:
swapping one at 1 for one at 0 changes the loss by the difference of their gains. (iii) The
water-filled part's value :math:`V(b)` (its optimal loss with budget b) is convex in b.

*Reduction to one unit interval.* Let :math:`x` be the concave features' total and
:math:`T(x)` the least loss with that total: :math:`T(k) = L_U - G_k + V(d - k)` at an
integer (:math:`G_k` the sum of the k largest gains), and on :math:`(k, k+1)` the best
fractional feature j with the k best others at 1. Replacing each concave curve by its chord
gives :math:`\underline T \le T`, convex (the chords' best total is the piecewise-linear
interpolation of :math:`L_U - G_k`, a convex sequence, plus the convex V) and equal to T at
the integers. Its minimiser :math:`x_R` is the concave total of the chord relaxation,
solved exactly by water-filling. Every integer k has
:math:`T(k) = \underline T(k) \ge \underline T(k^*)` for the best integer
:math:`k^* \in \{\lfloor x_R \rfloor, \lceil x_R \rceil\}`, so the set where
:math:`\underline T < T(k^*)` holds no integer: it lies inside the one unit interval
:math:`(k_0, k_0 + 1)` around :math:`x_R`. Outside it :math:`T \ge \underline T \ge
T(k^*)`. So the optimum is :math:`k^*`, or a fractional feature j at
:math:`c \in (0, \min(1, d - k_0))` with the other :math:`k_0` best at 1:

.. math::

    T_j(c) = L_U - G_{k_0} + \delta_j - B_j(c) + V(d - k_0 - c),

:math:`B_j(c) = \ell_j(0) - \ell_j(c)`, and :math:`\delta_j = g_j - g_{(k_0+1)}` when j is among
the :math:`k_0` best (the next one then takes its place), else 0.

*Which j.* :math:`B_j(c) \le c\, g_j` (a concave curve lies above its chord) bounds
:math:`T_j \ge L_U - G_{k_0} + \delta_j + \Phi(g_j)`,
:math:`\Phi(g) = \min_c V(d - k_0 - c) - c g`, attained where V's multiplier is g: one
pass over V. The bound grows as j moves away from the boundary rank :math:`k_0 + 1` in
either direction (:math:`\Phi` is non-increasing with slope :math:`-c^* \ge -1`), so the
candidates are visited outwards and each side stops at the first bound above the best
loss found. A candidate is also skipped when another on its side dominates it: for the
quadratic model :math:`B_i / B_j` is monotone in c, so :math:`B_j \le B_i` on [0, 1] iff
:math:`m_j(0) \le m_i(0)` and :math:`g_j \le g_i` (outside the k0 best), and
:math:`g_j - B_j \ge g_i - B_i` iff :math:`m_j(1) \ge m_i(1)` and :math:`g_j \ge g_i`
(inside); identical curves dominate each other, and the first in index order is kept.

*Each candidate.* :math:`T_j` is concave plus convex in c; its interior local minima are the
levels :math:`\mu` where the feature's response and V's total share the budget with the
total increasing in :math:`\mu` (:func:`capopt._kernels.mixed.stationary_levels`, exact on
the pieces between V's breakpoints); each is evaluated exactly by water-filling V with the
rest.

*Complexity.* One water-filling for the relaxation, two for the integers, one pass over V
per visited candidate for its bound, one walk and a water-filling per local minimum of a
surviving one; the candidates that survive dominance are the Pareto-optimal ones near the
boundary rank (one when the concave features share a kurtosis, O(log N) for random
kurtoses). Polynomial in all cases: O(N log N + N F) for F surviving candidates.

Glossary: ``U``/``V`` concave and water-filled features, ``g`` gains, ``k0`` concave features
at 1 in the relaxation, ``R0 = d - k0``, ``top`` the largest fraction the budget allows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import _formulas as F
from ..curves import SHAPE_CODES, QuadraticCurves, Shape
from .certificate import kkt_multiplier
from .result import Solution
from .ties import MAX_ALTERNATIVES, enumeration_rounding, tied

__all__ = ["solve_mixed"]

HOW = "exhaustive over the concave count and the fractional concave feature (theory §2 structure)"


class _Problem:
    """The family split into its concave features U and the water-filled rest V.

    Laid out for memory: V is water-filled on one copy of the importances in which U's are
    0 (flat curves, which take no capacity and lose nothing), into one array of capacities
    in the user's order; besides those two arrays of N, O(U). A candidate is kept as its
    structure, its capacities formed only for the answer (:meth:`allocation`).
    """

    def __init__(self, curves: QuadraticCurves, d: float):
        from .._kernels.mixed import total_loss
        from .._kernels.waterfill import waterfill_quadratic

        self._fill, self._loss = waterfill_quadratic, total_loss
        self.curves = curves
        self.d = d
        n = curves.n_features
        self.K = curves.kernel_arrays()[1]
        self.U = np.flatnonzero(curves.shape_codes == SHAPE_CODES[Shape.CONCAVE])
        v_U = curves.importance[self.U]
        self.gain = F.quadratic_gain(v_U, self.K[self.U] if self.K.size > 1 else self.K[0])
        self.total_gain = float(np.sum(self.gain))
        # The chords' importances until the relaxation is solved, then 0.
        self.v_V = curves.importance.copy()
        self.v_V[self.U] = F.quadratic_multiplier_level(self.gain)
        self.C = np.empty(n)
        self.order = np.empty(0, np.intp)
        self.values: dict[float, tuple[float, float]] = {}
        #: The budget whose fill of V ``C`` holds, or None (the scratch of another pass).
        self.holds: float | None = None

    def relaxation(self) -> tuple[np.ndarray, float]:
        """The chord relaxation, water-filled exactly: its capacities (in ``C``, until the
        next fill) and loss; call once, first. The chord of a concave curve is a linear one
        of its gain: a quadratic curve of kurtosis 3 whose level is its importance at every
        C, the level of a multiplier equal to the gain."""
        K = np.array(np.broadcast_to(self.K, self.C.shape))
        K[self.U] = 3.0
        self._fill(self.v_V, K, self.d, self.C)
        loss = float(self._loss(self.v_V, K, self.C))
        self.v_V[self.U] = 0.0
        self.holds = None
        return self.C, loss

    def rank(self) -> None:
        """Ranks by gain, ties to the lower index."""
        self.order = np.argsort(-self.gain, kind="stable")

    def concave(self, rank: int) -> tuple[float, float]:
        """(v, K) of the concave feature of that rank."""
        i = self.U[self.order[rank]]
        return float(self.curves.importance[i]), float(self.K[i] if self.K.size > 1 else self.K[0])

    def filled(self, budget: float) -> tuple[float, float]:
        """V water-filled with ``budget`` (into ``C``): its loss V(b) and multiplier, cached."""
        if budget not in self.values:
            lam = float(self._fill(self.v_V, self.K, max(budget, 0.0), self.C)[0])
            self.values[budget] = (float(self._loss(self.v_V, self.K, self.C)), lam)
            self.holds = budget
        return self.values[budget]

    def loss(self, ones: np.ndarray, j: int | None, c: float) -> float:
        """The loss with the concave ``ones`` (ranks) at 1, rank ``j`` at c, the others at
        0 and V filled: V(b) and the gains of the concave features left out."""
        spent = ones.size + (c if j is not None else 0.0)
        left_out = self.total_gain - float(np.sum(self.gain[self.order[ones]]))
        if j is not None:
            left_out -= float(self.gain[self.order[j]]) - float(F.quadratic_loss(c, *self.concave(j)))
        return self.filled(self.d - spent)[0] + left_out

    def allocation(self, ones: np.ndarray, j: int | None, c: float, out: np.ndarray) -> np.ndarray:
        """The capacities of that structure, formed in ``out`` (N,)."""
        spent = ones.size + (c if j is not None else 0.0)
        # C may still hold V's fill at this budget (the last candidate evaluated).
        if not (out is self.C and self.holds == self.d - spent):
            self._fill(self.v_V, self.K, max(self.d - spent, 0.0), out)
        out[self.U[self.order[ones]]] = 1.0
        if j is not None:
            out[self.U[self.order[j]]] = c
        return out


def solve_mixed(curves: QuadraticCurves, d: float) -> Solution:
    """The exact allocation of a quadratic family holding concave curves (module doc)."""
    n = curves.n_features
    # The loss scale: what every feature can gain (flat curves, constant, gain nothing).
    with np.errstate(over="ignore"):
        scale = float(np.sum(curves.loss_range()))
    p = _Problem(curves, d)
    nU = p.U.size
    relaxed, lower = p.relaxation()
    chords = relaxed[p.U]
    k0 = int(np.count_nonzero(chords >= 1.0))
    fraction = bool(np.any((chords > 0.0) & (chords < 1.0)))
    del relaxed, chords
    p.rank()
    # The enumeration is exact up to the rounding of its losses: candidates this close are
    # tied, neither can be proven better.
    rounding = enumeration_rounding(scale, n)

    most = min(nU, int(np.floor(d)))
    found: list[tuple[tuple[np.ndarray, int | None, float], float]] = [
        ((np.arange(k), None, 0.0), p.loss(np.arange(k), None, 0.0)) for k in (k0, k0 + 1) if k <= most]
    assert found, "k0 whole concave features always fit the budget"
    if fraction and nU > k0:
        found.extend(_fractional(p, k0, min(loss for _, loss in found), rounding))
    structure, loss = min(found, key=lambda candidate: candidate[1])
    near = [(s, value) for s, value in found if value <= loss + rounding and s is not structure]
    # The losses are known: the gains' memory goes to the ties' capacities.
    del p.gain
    # The answer formed last, in the working array: only the ties need arrays of their own.
    others = [(p.allocation(*s, np.empty(n)), value) for s, value in near]
    C = p.allocation(*structure, p.C)
    del p
    return Solution(
        capacities=C,
        multiplier=kkt_multiplier(curves, C),
        lower_bound=max(lower, loss - rounding),
        lower_bound_how=HOW,
        iterations=len(found),
        alternatives=tied(_mirrored(others, C, curves), C, loss + rounding),
    )


def _mirrored(found: list[tuple[np.ndarray, float]], C: np.ndarray,
              curves: QuadraticCurves) -> list[tuple[np.ndarray, float]]:
    """Each tied allocation, and its mirror images: where a concave feature's capacity
    differs from ``C``'s, an identical concave feature (same v and K, which the enumeration
    skips as dominated) with another capacity there may take its place at the same loss."""
    v, K = curves.importance, curves.kurtosis
    concave = curves.shape_mask(Shape.CONCAVE)
    out = list(found)
    for alternative, loss in found:
        for u in np.flatnonzero(concave & (alternative != C)):
            twins = np.flatnonzero(concave & (v == v[u]) & (K == K[u]) & (alternative != alternative[u]))
            # A few mirrors show which features may move (tied() keeps MAX_ALTERNATIVES).
            for w in twins[:MAX_ALTERNATIVES]:
                mirror = alternative.copy()
                mirror[[u, w]] = alternative[[w, u]]
                out.append((mirror, loss))
            if len(out) > 2 * MAX_ALTERNATIVES:
                return out
    return out


def _fractional(p: _Problem, k0: int, incumbent: float,
                tie: float) -> Iterator[tuple[tuple[np.ndarray, int | None, float], float]]:
    """The structures with one concave feature fractional in (k0, k0 + 1) worth evaluating,
    with their losses: every one whose bound is within ``tie`` of the best loss found, so
    that ties are seen."""
    from .._kernels.mixed import dominance_records, pair_assembly, response_totals, stationary_levels

    R0 = p.d - k0
    top = min(1.0, R0)
    base = p.total_gain - float(np.sum(p.gain[p.order[:k0]]))
    at_zero = p.filled(R0)[0]
    at_top = p.filled(R0 - top)[0]
    g_next = p.gain[p.order[k0]]
    best = incumbent

    def phi(g: float) -> float:
        # min over c of V(R0 - c) - c g, where V's multiplier equals g.
        used, value = response_totals(p.v_V, p.K, F.quadratic_multiplier_level(g))
        c = min(max(R0 - used, 0.0), top)
        if c == 0.0:
            return at_zero
        if c == top:
            return at_top - top * g
        return value - c * g

    for inside in (False, True):
        first, last, step = (k0 - 1, -1, -1) if inside else (k0, p.U.size, 1)
        # The candidates no other on this side dominates (module doc), in the order visited;
        # the bounds grow outwards, so the first whose bound exceeds the best ends the side.
        for r in dominance_records(p.curves.importance, p.K, p.U, p.order, first, last, step, inside):
            j = p.order[r]
            g = float(p.gain[j])
            delta = g - g_next if inside else 0.0
            if base + delta + phi(g) > best + tie:
                break
            ones = np.delete(np.arange(k0 + 1), r) if inside else np.arange(k0)
            x, k = p.concave(int(r))
            stretches = stationary_levels(p.v_V, p.K, x, k, R0, top)
            # pair_assembly writes V's capacities at the stationary point into C, scratch.
            fractions = [pair_assembly(p.v_V, p.K, x, k, R0, lo, hi, p.C)[0] for lo, hi in stretches]
            p.holds = None
            if top < 1.0:
                fractions.append(top)
            for c in fractions:
                structure = (ones, int(r), min(c, top))
                loss = p.loss(*structure)
                best = min(best, loss)
                yield structure, loss
