r"""The vertex solution: the exact allocation for families of concave (and linear) loss curves.

A sum of concave curves is concave, and a concave function attains its minimum over a
polytope at a vertex. The vertices of :math:`\{0 \le C_i \le 1, \sum_i C_i \le d\}` are few
and structured, so the best one is found by an exchange argument instead of a search.

Glossary: ``C`` capacity, ``lam`` multiplier, ``d`` budget, ``k`` whole dimensions
:math:`\lfloor d \rfloor`, ``f`` the fraction :math:`d - k`, ``gain`` the benefit
:math:`\Delta_i = \ell_i(0) - \ell_i(1)` of a whole dimension, ``part`` the benefit
:math:`\ell_i(0) - \ell_i(f)` of the fraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..curves import LossCurves, Shape
from .method import Method
from .problem import Problem
from .result import Solution
from .ties import MAX_ALTERNATIVES, enumeration_rounding, tied

__all__ = ["Vertex", "vertex"]


@dataclass(frozen=True)
class Vertex(Method):
    """The exact vertex solution for concave and linear curves: :func:`vertex`. No options."""

    name: ClassVar[str] = "vertex"
    shapes: ClassVar[frozenset[Shape]] = frozenset({Shape.CONCAVE, Shape.LINEAR})
    tol: ClassVar[float] = 1e-9
    summary: ClassVar[str] = (
        "exact vertex solution for concave and linear curves (increasing returns)"
    )

    def run(self, problem: Problem) -> Solution:
        return vertex(problem.curves, problem.budget)


def vertex(curves: LossCurves, budget: float) -> Solution:
    r"""Exact allocation for a family of concave and linear loss curves.

    Solves

    .. math::

        \min_{C \in \mathbb{R}^N} \sum_i \ell_i(C_i)
        \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad \sum_i C_i \le d,

    when every :math:`\ell_i` is concave or linear (the caller, :func:`capopt.solve`,
    checks the family's shape). The objective is then concave, so its minimum lies at a
    vertex of the feasible polytope. With :math:`k = \lfloor d \rfloor` and
    :math:`f = d - k`, the vertices are

    * 0/1 points with at most k ones: the best takes the (at most k) features with the
      largest positive :math:`\Delta_i = \ell_i(0) - \ell_i(1)`;
    * if :math:`f > 0` and :math:`k < N`, k ones and one feature j at f: for a given j the
      best ones are the k largest :math:`\Delta_i` other than j.

    Parameters
    ----------
    curves : LossCurves
        Concave and linear curves, N of them.
    budget : float
        :math:`d \ge 0`, validated by :func:`capopt.solve`.

    Returns
    -------
    Solution
        The best vertex, its smallest valid multiplier, and a proven lower bound equal to
        its loss (see Notes).

    Notes
    -----
    *Exactness.* Every vertex is compared: the 0/1 ones through the sorted :math:`\Delta`,
    the fractional ones by evaluating each candidate j in O(1) from the sum of the k
    largest :math:`\Delta` and the (k+1)-th, in the numba kernel
    :func:`~capopt._kernels.vertex.best_vertex` that :func:`capopt.sweep` uses too. Ties are broken deterministically: features
    of equal :math:`\Delta` rank by index (a stable sort), so the lower index gets the whole
    dimension and the next one the fraction, and a 0/1 vertex beats a fractional one of
    equal loss. Every feature at 1 or 0
    outside the fractional one is monosemantic or ignored (theory §2).

    *Lower bound.* At a whole budget (or :math:`d \ge N`) the linear programme with each
    curve replaced by its chord :math:`\ell_i(0) - \Delta_i C` lies below the problem (a
    concave curve lies above its chord) and has an integral optimum, the best 0/1 vertex:
    it is reported as ``"chord relaxation (exact at integer budget)"``. Otherwise the bound
    is the enumeration itself, ``"vertex enumeration (concave minimum lies at a vertex)"``.

    *Multiplier.* KKT conditions, necessary at any optimum here (the active constraint
    gradients are independent), with :math:`m_i = -\ell_i'`:

    .. math::

        0 < C_i < 1 \Rightarrow m_i(C_i) = \lambda, \quad
        C_i = 1 \Rightarrow m_i(1) \ge \lambda, \quad
        C_i = 0 \Rightarrow m_i(0) \le \lambda, \quad
        \lambda \ge 0, \quad \lambda (d - \textstyle\sum_i C_i) = 0 .

    With a fractional feature j, :math:`\lambda = m_j(f)`; otherwise the smallest valid
    value, :math:`\max(0, \max_{C_i = 0} m_i(0))`, which is 0 when budget is left over.

    *Complexity.* Three evaluations of the curves, a stable sort of :math:`\Delta`, and O(N)
    for the candidates: O(N log N) time, O(N) memory.

    References
    ----------
    A. Scherlis, K. Sachan, A. S. Jermyn, J. Benton, B. Shlegeris, "Polysemanticity and
    Capacity in Neural Networks", arXiv:2210.01892 (2022), increasing returns.

    Examples
    --------
    Dense uniform inputs (K = 1.8 < 3) give increasing returns: whole dimensions go to the
    most important features, and the half dimension left goes to the next one.

    >>> from capopt.curves import quadratic
    >>> solution = vertex(quadratic([3.0, 1.0, 2.0], 1.8), 1.5)
    >>> solution.capacities
    array([1. , 0. , 0.5])
    >>> solution.lower_bound_how
    'vertex enumeration (concave minimum lies at a vertex)'
    """
    from .._kernels.vertex import best_vertex  # numba: compiled on first use

    d = float(budget)
    n = curves.n_features
    k = min(math.floor(d), n)
    f = d - k if k < n else 0.0
    # Benefits l(0) - l(C) in the family's own form: no cancellation of large losses.
    gain = np.ascontiguousarray(curves.benefit(np.ones(n)), dtype=np.float64)
    part = np.ascontiguousarray(curves.benefit(np.full(n, f)), dtype=np.float64) if f > 0 else gain
    C = np.empty(n)
    order = np.argsort(-gain, kind="stable")  # equal gains: the lower index first
    fractional = best_vertex(gain, part, order, k, f, C)
    best = float(np.sum(gain[C == 1.0]) + (part[fractional] if fractional >= 0 else 0.0))
    if fractional < 0:
        fractional = None

    m = curves.marginal(C)
    if fractional is not None:
        lam = float(m[fractional])
    else:
        # The smallest lam with m_i(0) <= lam at every ignored feature. With budget left
        # over it is 0 (an ignored feature with m_i(0) > 0 would have made a fractional
        # vertex strictly better), unless that gain f m_i(0) was below rounding.
        lam = max(0.0, float(np.max(m[C == 0], initial=0.0)))
    alternatives = _tied_vertices(gain, part, order, k, f, C, best)
    if not curves.shapes_proven:
        # The enumeration's bound holds for concave curves only: without a proof of the
        # shapes, the certificate's own dual bound judges the vertex found.
        return Solution(C, lam, alternatives=alternatives)
    bound = float(np.sum(curves.loss(np.zeros(n)))) - best
    how = (
        "vertex enumeration (concave minimum lies at a vertex)"
        if f > 0
        else "chord relaxation (exact at integer budget)"
    )
    return Solution(C, lam, lower_bound=bound, lower_bound_how=how, alternatives=alternatives)


def _tied_vertices(gain: np.ndarray, part: np.ndarray, order: np.ndarray, k: int, f: float,
                   C: np.ndarray, best: float) -> tuple[np.ndarray, ...]:
    r"""The vertices other than ``C`` whose benefit is ``best`` to within the enumeration's
    rounding: the 0/1 vertex and each fractional candidate j (the k largest gains but j
    at 1, j at f), and the 0/1 exchanges of equal gains around rank k.

    A candidate's benefit is :math:`G_k + p_j` for j outside the k largest gains and
    :math:`G_k + g_{(k+1)} - g_j + p_j` inside (:math:`G_k` their sum, :math:`p_j` the
    benefit of f), as :func:`~capopt._kernels.vertex.best_vertex` evaluates it.
    """
    n = gain.size
    positive = int(np.count_nonzero(gain > 0))
    within = best - enumeration_rounding(float(np.sum(gain[gain > 0])), n)
    top = order[: min(k, positive)]
    G = float(np.sum(gain[top]))
    candidates: list[tuple[np.ndarray, float]] = []

    def vertex_of(ones: np.ndarray, j: int = -1) -> np.ndarray:
        out = np.zeros(n)
        out[ones] = 1.0
        if j >= 0:
            out[j] = f
        return out

    if G >= within:
        candidates.append((vertex_of(top), G))
    if f > 0 and positive > k:
        in_top = np.zeros(n, dtype=bool)
        in_top[order[:k]] = True
        total = part + np.where(in_top, G + gain[order[k]] - gain, G)
        for j in np.flatnonzero(total >= within)[: MAX_ALTERNATIVES + 1]:
            ones = order[: k + 1][order[: k + 1] != j] if in_top[j] else order[:k]
            candidates.append((vertex_of(ones, int(j)), float(total[j])))
    # Equal gains across rank k: the whole feature of least gain against the next one.
    if 0 < k < n and gain[order[k - 1]] - gain[order[k]] <= best - within:
        swapped = C.copy()
        i, j = order[k - 1], order[k]
        if swapped[i] == 1.0 and swapped[j] == 0.0:
            swapped[i], swapped[j] = 0.0, 1.0
            candidates.append((swapped, best))
    return tied(((c, -b) for c, b in candidates), C, -within)
