r"""KKT certificates and Lagrangian lower bounds for the allocation problem.

For :math:`\min \sum_i \ell_i(C_i)` s.t. :math:`0 \le C_i \le 1,\ \sum_i C_i \le d`, with
marginals :math:`m_i = -\ell_i'` and multiplier :math:`\lambda \ge 0`, the KKT conditions are

.. math::

    0 < C_i < 1 \Rightarrow m_i(C_i) = \lambda, \quad
    C_i = 1 \Rightarrow m_i(1) \ge \lambda, \quad
    C_i = 0 \Rightarrow m_i(0) \le \lambda, \quad
    \lambda (d - \textstyle\sum_i C_i) = 0 .

They are sufficient for convex curves. For any :math:`\lambda \ge 0` weak duality gives the
lower bound

.. math::

    g(\lambda) = \sum_i \min_{c \in [0, 1]} \big(\ell_i(c) + \lambda c\big) - \lambda d
    \;\le\; \min \text{(problem)},

whose inner minimum is exact per curve shape: at the response :math:`C_i(\lambda)` for a
convex curve, at an end point for a concave or linear one.
"""

from __future__ import annotations

import numpy as np

from ..curves import LossCurves, Shape
from ..regimes import DEFAULT_REGIME_ATOL
from .result import Certificate

__all__ = ["certify", "dual_bound", "kkt_multiplier"]


def kkt_multiplier(
    curves: LossCurves, capacities: np.ndarray, *, reported: float | None = None, atol: float = DEFAULT_REGIME_ATOL
) -> float:
    r"""Smallest :math:`\lambda \ge 0` satisfying the KKT conditions at an allocation.

    KKT asks :math:`\lambda = m_i` for :math:`0 < C_i < 1`, :math:`\lambda \ge m_i(0)` at 0
    and :math:`\lambda \le m_i(1)` at 1, so :math:`\lambda \ge P = \max(0, m_{\text{at }0},
    m_{\text{inside}})` and :math:`\lambda \le Q = \min(m_{\text{at }1}, m_{\text{inside}})`.
    When :math:`P \le Q` the smallest valid value, P, is returned (the package convention:
    the marginal value of one *more* dimension). Otherwise the point is only approximately
    stationary (an iterative or grid solution): a solver's ``reported`` multiplier clipped
    into the range of the interior marginals, else the midpoint of P and Q, which minimises
    the largest residual.

    Parameters
    ----------
    curves : LossCurves
    capacities : ndarray, shape (N,)
    reported : float, optional
        The multiplier a solver reported (e.g. a dual value).
    atol : float
        Capacities within ``atol`` of a bound count as at it.
    """
    C = np.asarray(capacities, dtype=np.float64)
    m = curves.marginal(C)
    at_zero = C <= atol
    at_one = C >= 1.0 - atol
    inside = ~(at_zero | at_one)
    need_above = max(float(np.max(m[at_zero | inside], initial=0.0)), 0.0)
    need_below = float(np.min(m[at_one | inside], initial=np.inf))
    if need_above <= need_below:
        return need_above
    if reported is not None and inside.any():
        return max(float(np.clip(reported, m[inside].min(), m[inside].max())), 0.0)
    return 0.5 * (need_above + need_below)


def dual_bound(curves: LossCurves, lam: float, budget: float, *, end_losses=None) -> float:
    r"""Lagrangian dual value :math:`g(\lambda)`, a lower bound on the optimal loss.

    Returns ``-inf`` when some curve is irregular (neither convex nor concave), where the
    inner minimum has no exact closed form. ``end_losses``, the pair
    :math:`(\ell(0), \ell(1))` when the caller already has it, saves two evaluations.
    """
    if curves.shape is Shape.IRREGULAR:
        return -np.inf
    lam = max(float(lam), 0.0)
    n = curves.n_features
    convex = curves.shape_mask(Shape.CONVEX)
    at_0, at_1 = end_losses if end_losses is not None else (curves.loss(np.zeros(n)), curves.loss(np.ones(n)))
    ends = np.minimum(at_0, at_1 + lam)
    inner = ends
    if convex.any():
        c = curves.capacity_at(lam)
        inner = np.where(convex, curves.loss(c) + lam * c, ends)
    return float(np.sum(inner) - lam * budget)


def certify(
    curves: LossCurves,
    capacities: np.ndarray,
    multiplier: float,
    budget: float,
    *,
    lower_bound: float | None = None,
    lower_bound_how: str = "",
    losses: np.ndarray | None = None,
    atol: float = DEFAULT_REGIME_ATOL,
) -> Certificate:
    r"""Residuals of the KKT conditions and the optimality gap of an allocation.

    Parameters
    ----------
    curves : LossCurves
    capacities : ndarray, shape (N,)
    multiplier : float
        :math:`\\lambda` claimed by the method.
    budget : float
    lower_bound : float, optional
        A bound the method proved; the dual bound :func:`dual_bound` at ``multiplier`` is
        used when absent, and the larger of the two is kept when both exist.
    lower_bound_how : str
        Where the method's bound comes from.
    losses : ndarray, shape (N,), optional
        :math:`\ell_i(C_i)` when the caller already has them.
    atol : float
        Capacities within ``atol`` of 0 or 1 are treated as at that bound.
    """
    C = np.asarray(capacities, dtype=np.float64)
    lam = float(multiplier)
    m = curves.marginal(C)
    at_zero = C <= atol
    at_one = C >= 1.0 - atol
    interior = ~(at_zero | at_one)
    used = float(C.sum())

    def _max(values) -> float:
        return float(np.max(values)) if np.size(values) else 0.0

    stationarity = _max(np.abs(m[interior] - lam))
    bound_signs = max(_max(lam - m[at_one]), _max(m[at_zero] - lam), -lam, 0.0)
    complementarity = abs(lam * (budget - used))
    feasibility = max(_max(-C), _max(C - 1.0), used - budget, 0.0)

    n = C.shape[0]
    zeros, ones = np.zeros(n), np.ones(n)
    end_losses = (curves.loss(zeros), curves.loss(ones))
    loss = float(curves.total_loss(C)) if losses is None else float(np.sum(losses))
    dual = dual_bound(curves, lam, budget, end_losses=end_losses)
    how = "Lagrangian dual g(lambda) at the returned multiplier"
    bound = dual
    if lower_bound is not None and lower_bound >= dual:
        bound, how = float(lower_bound), lower_bound_how or "supplied by the method"
    marginal_scale = max(_max(np.abs(m)), abs(lam), *(_max(np.abs(curves.marginal(e))) for e in (zeros, ones)))
    loss_scale = float(np.sum(np.abs(end_losses[0] - end_losses[1])))
    return Certificate(
        stationarity=stationarity,
        bound_signs=bound_signs,
        complementarity=complementarity,
        feasibility=feasibility,
        lower_bound=bound,
        gap=loss - bound,
        marginal_scale=marginal_scale if marginal_scale > 0 else 1.0,
        loss_scale=loss_scale if loss_scale > 0 else 1.0,
        how=how,
    )
