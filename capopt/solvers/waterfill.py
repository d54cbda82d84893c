r"""Water-filling: the exact allocation for families of convex and linear loss curves.

For convex (diminishing-returns) and linear curves the allocation problem is convex and its
KKT conditions are sufficient: every feature takes its *response* to one common multiplier
:math:`\lambda` (the capacity at which its marginal benefit falls to :math:`\lambda`), and
:math:`\lambda` is set so that the responses fill the budget. Water-filling finds that level.

Glossary: ``C`` capacity, ``lam`` multiplier, ``d`` budget, ``v`` importance, ``K`` kurtosis,
``mu`` the quadratic model's level :math:`\sqrt{\lambda/2}`; for tables ``m`` the marginal
of a piece and ``w`` its width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..curves import LossCurves, QuadraticCurves, Shape
from ..user_curves import TabulatedCurves
from .certificate import kkt_multiplier
from .method import Method
from .problem import Problem
from .result import Solution

__all__ = ["Waterfill", "waterfill"]

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)


@dataclass(frozen=True)
class Waterfill(Method):
    """Exact water-filling for convex and linear curves: :func:`waterfill`. No options."""

    name: ClassVar[str] = "waterfill"
    shapes: ClassVar[frozenset[Shape]] = frozenset({Shape.CONVEX, Shape.LINEAR})
    tol: ClassVar[float] = 1e-9
    summary: ClassVar[str] = (
        "exact water-filling for convex and linear curves (O(N) for the quadratic model)"
    )

    def run(self, problem: Problem) -> Solution:
        return waterfill(problem.curves, problem.budget)


def waterfill(curves: LossCurves, budget: float) -> Solution:
    r"""Exact water-filling for a family of convex and linear loss curves.

    Solves

    .. math::

        \min_{C \in \mathbb{R}^N} \sum_i \ell_i(C_i)
        \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad \sum_i C_i \le d,

    when every :math:`\ell_i` is convex or linear (the caller, :func:`capopt.solve`, checks
    the family's shape).

    Parameters
    ----------
    curves : LossCurves
        Convex and linear curves, N of them: a :class:`~capopt.curves.QuadraticCurves`
        family is solved by selection on its level, a table by the greedy over its pieces,
        any other family by safeguarded root finding on its response
        :meth:`~capopt.curves.LossCurves.capacity_at`.
    budget : float
        :math:`d \ge 0`, validated by :func:`capopt.solve`.

    Returns
    -------
    Solution
        Capacities, the smallest valid multiplier :math:`\lambda`, and the number of
        selection rounds or root-finding steps as ``iterations``.

    Notes
    -----
    KKT conditions, sufficient here, with :math:`m_i = -\ell_i'`:

    .. math::

        0 < C_i < 1 \Rightarrow m_i(C_i) = \lambda, \quad
        C_i = 1 \Rightarrow m_i(1) \ge \lambda, \quad
        C_i = 0 \Rightarrow m_i(0) \le \lambda, \quad
        \lambda \ge 0, \quad \lambda (d - \textstyle\sum_i C_i) = 0 .

    So :math:`C_i = C_i(\lambda)`, the feature's response, and :math:`\sum_i C_i(\lambda)`
    is non-increasing. The returned :math:`\lambda` is the smallest with
    :math:`\sum_i C_i(\lambda) \le d` (the marginal value of the next dimension). Where that
    sum jumps past d (linear curves with equal marginals), the tied features take the rest
    of the budget in index order: the first ones get 1, at most one gets a fraction. Flat
    curves get 0. With :math:`d = 0`, :math:`\lambda = \max_i m_i(0)`; when the budget
    exceeds what the features can use, every useful feature gets 1 and :math:`\lambda = 0`.

    *Quadratic model* (:func:`capopt._kernels.waterfill.waterfill_quadratic`). At the level
    :math:`\mu = \sqrt{\lambda/2}` each response is 1 up to :math:`\mu = v_i`, 0 from
    :math:`\mu = (K_i - 1) v_i / 2` on, and :math:`C_i(\mu) = (v_i + 2 (v_i - \mu)/(K_i -
    3))/\mu` in between (a step at :math:`v_i` for :math:`K_i = 3`). The breakpoints that
    bracket the solution are found by selection (medians of the undecided features' breakpoints,
    a first bracket from a sample of :math:`N^{2/3}` features for large N), and the
    capacities are then written in closed form in a rearrangement that nothing cancels in,
    so they are exact to rounding -- also for kurtoses a few ulps from 3, where the
    response is a near-step -- and sum to the budget to rounding of the budget itself. No
    tolerance is iterated to; O(N) time, a few passes over the importances; the one kernel
    :func:`capopt.sweep` uses too.

    *Tables.* Each tabulated curve is piecewise linear; a convex one has pieces of
    non-increasing marginal, and the optimum takes whole pieces in decreasing order of
    marginal, greedily (ties in index order), and a fraction of the last: exact, O(N M log
    NM) for N curves of M knots.

    *Other families.* :math:`\lambda` is bracketed in :math:`[0, \max_i m_i(0)]` (the top
    doubled until the responses fit the budget: a finite-difference :math:`m_i(0)` misses
    a kink within its step of 0), where the response sum is non-increasing, and located
    by Brent's method (:func:`scipy.optimize.brentq`: bracketing, hence safe on the steps
    of linear curves) to a few ulps; the bracket is then shrunk to adjacent floats by
    bisecting their bit patterns. Features whose response differs between the two ends
    (ties of linear curves) share the rest of the budget in index order. Each step costs
    one call of ``capacity_at``: O(N) for a closed form, O(60 N) for the default
    bisection; some 15 to 100 steps.

    References
    ----------
    A. Scherlis, K. Sachan, A. S. Jermyn, J. Benton, B. Shlegeris, "Polysemanticity and
    Capacity in Neural Networks", arXiv:2210.01892 (2022).

    Examples
    --------
    The worked case of theory §3: two features of importances 2 and 1 on one neuron.

    >>> from capopt.curves import quadratic
    >>> solution = waterfill(quadratic([2.0, 1.0], 7.0), 1.0)
    >>> solution.capacities.round(12)
    array([0.83333333, 0.16666667])

    The generic minimiser agrees:

    >>> from scipy.optimize import minimize
    >>> curves = quadratic([2.0, 1.0], 7.0)
    >>> reference = minimize(lambda C: curves.total_loss(C), [0.5, 0.5], bounds=[(0, 1)] * 2,
    ...                      constraints={"type": "ineq", "fun": lambda C: 1 - C.sum()})
    >>> bool(abs(reference.fun - curves.total_loss(solution.capacities)) < 1e-8)
    True
    """
    d = float(budget)
    n = curves.n_features
    if isinstance(curves, QuadraticCurves):
        return _quadratic(curves, d)
    if d == 0.0:
        # Every feature sits at 0, which KKT allows from lam = max_i m_i(0) on.
        return Solution(np.zeros(n), float(np.max(curves.marginal(np.zeros(n)), initial=0.0)))
    if isinstance(curves, TabulatedCurves):
        return _tables(curves, d)
    return _by_root_finding(curves, d)


def _fill_in_order(room: np.ndarray, amount: float) -> np.ndarray:
    """Share ``amount`` among features in index order, each taking up to its ``room``."""
    before = np.cumsum(room) - room
    return np.clip(amount - before, 0.0, room)


def _quadratic(curves: QuadraticCurves, d: float) -> Solution:
    """The numba kernel on the family's arrays (see :func:`waterfill`, Notes)."""
    from .._kernels.waterfill import waterfill_quadratic

    C = np.empty(curves.n_features)
    lam, rounds, exact = waterfill_quadratic(*curves.kernel_arrays(), d, C)
    return Solution(C, float(lam), iterations=int(rounds), exact=bool(exact))


def _tables(curves: TabulatedCurves, d: float) -> Solution:
    """Greedy over the pieces of convex tables (see :func:`waterfill`, Notes)."""
    # A table detected convex within shape_rtol may have marginals that rise by rounding
    # from one piece to the next; their running minimum keeps the pieces in order.
    marginals = np.minimum.accumulate(curves.piece_marginals, axis=1)
    widths = np.broadcast_to(np.diff(curves.grid), marginals.shape)
    order = np.argsort(-marginals, axis=None, kind="stable")
    gains = marginals.ravel()[order]
    take = widths.ravel()[order] * (gains > 0)
    before = np.cumsum(take) - take
    taken = np.clip(d - before, 0.0, take)
    amounts = np.zeros(marginals.size)
    amounts[order] = taken
    C = np.minimum(amounts.reshape(marginals.shape).sum(axis=1), 1.0)
    return Solution(C, kkt_multiplier(curves, C), iterations=marginals.size)


# Any convex/linear family: safeguarded root finding on lam --------------------------------


def _by_root_finding(curves: LossCurves, d: float) -> Solution:
    """Water-filling by bracketing lam to adjacent floats (see :func:`waterfill`, Notes)."""
    n = curves.n_features
    if float(np.sum(curves.capacity_at(0.0))) <= d:
        return Solution(curves.capacity_at(0.0), 0.0)

    def excess(lam: float) -> float:
        return float(np.sum(curves.capacity_at(lam))) - d

    top, doublings = _top_multiplier(excess, float(np.max(curves.marginal(np.zeros(n)))))
    lo, hi, steps = _adjacent_bracket(excess, 0.0, top)
    steps += doublings
    lower = curves.capacity_at(hi)
    # Between the adjacent floats lo < hi only steps (linear ties) move by more than
    # rounding; the features that move share the rest of the budget in index order.
    room = np.maximum(curves.capacity_at(lo) - lower, 0.0)
    C = lower + _fill_in_order(room, d - float(np.sum(lower)))
    return Solution(C, hi, iterations=steps)


def _top_multiplier(excess: Callable[[float], float], top: float) -> tuple[float, int]:
    r"""A multiplier with ``excess(top) <= 0`` from a first guess, doubled while it is not.

    The guess, :math:`\max_i m_i(0)`, is a finite difference for curves given as functions:
    a kink within its step of 0 hides the steeper slope before it, on which the response
    is still positive. Returns the multiplier and the number of doublings (each one call
    of ``excess``).
    """
    top = max(top, _TINY)
    doublings = 0
    while excess(top) > 0 and top < np.finfo(np.float64).max / 2:
        top, doublings = 2.0 * top, doublings + 1
    return top, doublings


def _float_midpoint(lo: float, hi: float) -> float:
    """Midpoint of two non-negative floats in their bit patterns (halves the floats between)."""
    i = int(np.float64(lo).view(np.int64))
    j = int(np.float64(hi).view(np.int64))
    return float(np.int64((i + j) // 2).view(np.float64))


def _adjacent_bracket(excess: Callable[[float], float], lo: float, hi: float) -> tuple[float, float, int]:
    """Adjacent floats lo < hi with excess(lo) > 0 >= excess(hi), for a non-increasing excess.

    Brent's method (:func:`scipy.optimize.brentq`, bracketing, so safe on the steps of
    linear curves) locates the sign change to a few ulps; the bracket is then widened
    around it by doubling steps until its ends have the right signs, and bisected on the
    floats' bit patterns down to adjacent floats.
    """
    from scipy.optimize import brentq  # a fifth of a second to import; needed only here

    root, info = brentq(excess, lo, hi, xtol=_TINY, rtol=4 * _EPS, full_output=True, disp=False)
    steps = info.function_calls + 1
    step = max(abs(root) * _EPS, _TINY)
    a = b = root
    if excess(root) > 0:
        while True:
            b = min(b + step, hi)
            steps, step = steps + 1, 2 * step
            if b == hi or excess(b) <= 0:
                break
    else:
        while True:
            a = max(a - step, lo)
            steps, step = steps + 1, 2 * step
            if a == lo or excess(a) > 0:
                break
    while np.nextafter(a, np.inf) < b:
        mid = _float_midpoint(a, b)
        steps += 1
        if excess(mid) > 0:
            a = mid
        else:
            b = mid
    return a, b, steps
