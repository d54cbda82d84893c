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
total increasing in :math:`\mu` (:func:`capopt.solvers._kernels.stationary_levels`, exact on
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

import numpy as np

from .. import _formulas as F
from ..curves import SHAPE_CODES, QuadraticCurves, Shape
from .certificate import kkt_multiplier
from .result import Solution

__all__ = ["solve_mixed"]

EPS = float(np.finfo(np.float64).eps)

HOW = "exhaustive over the concave count and the fractional concave feature (theory §2 structure)"


class _Problem:
    """The family split into its concave features U and the water-filled rest V."""

    def __init__(self, curves: QuadraticCurves, d: float):
        from ._kernels import waterfill_quadratic

        self._fill = waterfill_quadratic
        self.curves = curves
        self.d = d
        self.v = curves.importance
        self.K = np.ascontiguousarray(curves.kurtosis, dtype=np.float64)
        codes = curves.shape_codes
        self.U = np.flatnonzero(codes == SHAPE_CODES[Shape.CONCAVE])
        self.V = np.flatnonzero(codes != SHAPE_CODES[Shape.CONCAVE])
        self.vV = np.ascontiguousarray(self.v[self.V])
        self.KV = np.ascontiguousarray(self.K[self.V])
        self.filled_curves = curves.subset(self.V)
        self.gain = F.quadratic_gain(self.v[self.U], self.K[self.U])
        # Ranks by gain, ties to the lower index.
        self.order = np.argsort(-self.gain, kind="stable")
        self.values: dict[float, tuple[np.ndarray, float, float]] = {}

    def filled(self, budget: float):
        """V water-filled with ``budget``: (capacities, loss V(b), multiplier), cached."""
        if budget not in self.values:
            C = np.empty(self.V.size)
            lam = 0.0
            if self.V.size:
                lam = self._fill(self.vV, self.KV, max(budget, 0.0), C)[0]
            loss = float(np.sum(self.filled_curves.loss(C))) if self.V.size else 0.0
            self.values[budget] = (C, loss, float(lam))
        return self.values[budget]

    def allocation(self, ones: np.ndarray, j: int | None, c: float):
        """Capacities with the concave ``ones`` (ranks) at 1, rank ``j`` at c, V filled."""
        C = np.zeros(self.curves.n_features)
        C[self.U[self.order[ones]]] = 1.0
        if j is not None:
            C[self.U[self.order[j]]] = c
        C[self.V] = self.filled(self.d - ones.size - (c if j is not None else 0.0))[0]
        return C, float(np.sum(self.curves.loss(C)))


def solve_mixed(curves: QuadraticCurves, d: float) -> Solution:
    """The exact allocation of a quadratic family holding concave curves (module doc)."""
    from ._kernels import waterfill_quadratic

    p = _Problem(curves, d)
    nU = p.U.size
    # The chord relaxation: every concave curve replaced by a linear one of its gain, as a
    # quadratic curve of kurtosis 3, whose level is its importance at every C: the level of
    # a multiplier equal to the gain.
    v_relaxed = p.v.copy()
    K_relaxed = p.K.copy()
    v_relaxed[p.U] = F.quadratic_multiplier_level(p.gain)
    K_relaxed[p.U] = 3.0
    relaxed = np.empty(curves.n_features)
    waterfill_quadratic(v_relaxed, K_relaxed, d, relaxed)
    chords = relaxed[p.U]
    lower = float(np.sum(QuadraticCurves(v_relaxed, K_relaxed).loss(relaxed)))
    k0 = int(np.count_nonzero(chords >= 1.0))
    fraction = bool(np.any((chords > 0.0) & (chords < 1.0)))

    most = min(nU, int(np.floor(d)))
    candidates = [(k, None, 0.0) for k in (k0, k0 + 1) if k <= most]
    best = None
    for k, _, _ in candidates:
        C, loss = p.allocation(np.arange(k), None, 0.0)
        if best is None or loss < best[1]:
            best = (C, loss)
    assert best is not None, "k0 whole concave features always fit the budget"
    nodes = len(candidates)
    if fraction and nU > k0:
        for C, loss in _fractional(p, k0, best[1]):
            nodes += 1
            if loss < best[1]:
                best = (C, loss)
    C, loss = best
    scale = float(np.sum(curves.loss_range()))
    # The enumeration is exact; its losses are sums of N rounded terms.
    bound = max(lower, loss - 4.0 * EPS * curves.n_features * scale)
    return Solution(
        capacities=C,
        multiplier=kkt_multiplier(curves, C),
        lower_bound=bound,
        lower_bound_how=HOW,
        iterations=nodes,
    )


def _fractional(p: _Problem, k0: int, incumbent: float):
    """Allocations with one concave feature fractional in (k0, k0 + 1) worth evaluating."""
    from ._kernels import pair_assembly, response_totals, stationary_levels

    R0 = p.d - k0
    top = min(1.0, R0)
    base = float(np.sum(p.gain)) - float(np.sum(p.gain[p.order[:k0]]))
    at_zero = p.filled(R0)[1]
    at_top = p.filled(R0 - top)[1]
    g_next = p.gain[p.order[k0]]
    v_U, K_U = p.v[p.U], p.K[p.U]
    m0 = F.quadratic_ignore_multiplier(v_U, K_U)
    m1 = F.quadratic_full_multiplier(v_U, K_U)
    best = incumbent

    def phi(g: float) -> float:
        # min over c of V(R0 - c) - c g, where V's multiplier equals g.
        if p.V.size == 0:
            return -top * g
        used, value = response_totals(p.vV, p.KV, F.quadratic_multiplier_level(g))
        c = min(max(R0 - used, 0.0), top)
        if c == 0.0:
            return at_zero
        if c == top:
            return at_top - top * g
        return value - c * g

    sides = (range(k0, p.U.size), range(k0 - 1, -1, -1))
    for inside, ranks in zip((False, True), sides):
        guard = -np.inf if not inside else np.inf
        for r in ranks:
            j = p.order[r]
            g = float(p.gain[j])
            delta = g - g_next if inside else 0.0
            if base + delta + phi(g) >= best:
                break
            # Dominated by a candidate already seen on this side (see module doc).
            if (not inside and m0[j] <= guard) or (inside and m1[j] >= guard):
                continue
            guard = max(guard, m0[j]) if not inside else min(guard, m1[j])
            ones = np.delete(np.arange(k0 + 1), r) if inside else np.arange(k0)
            x, k = float(v_U[j]), float(K_U[j])
            stretches = stationary_levels(p.vV, p.KV, x, k, R0, top)
            fractions = [pair_assembly(p.vV, p.KV, x, k, R0, lo, hi, np.empty(p.V.size))[0]
                         for lo, hi in stretches]
            if top < 1.0:
                fractions.append(top)
            for c in fractions:
                C, loss = p.allocation(ones, r, min(c, top))
                best = min(best, loss)
                yield C, loss
