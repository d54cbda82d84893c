r"""KKT certificates and Lagrangian lower bounds for the allocation problem.

For :math:`\min \sum_i \ell_i(C_i)` s.t. :math:`0 \le C_i \le 1,\ \sum_i C_i \le d`, with
marginals :math:`m_i = -\ell_i'` and multiplier :math:`\lambda \ge 0`, the KKT conditions are

.. math::

    0 < C_i < 1 \Rightarrow \lambda \in [m_i(C_i^+), m_i(C_i^-)], \quad
    C_i = 1 \Rightarrow m_i(1^-) \ge \lambda, \quad
    C_i = 0 \Rightarrow m_i(0^+) \le \lambda, \quad
    \lambda (d - \textstyle\sum_i C_i) = 0,

with the one-sided marginals of a curve with kinks (a tabulated one) bounding its Clarke
subdifferential (the interval between them, in either order: a concave kink inside
(0, 1) can hold an optimum when no other feature can give up capacity as cheaply); on a
smooth curve both are :math:`m_i(C_i)`. They are
sufficient for convex curves. For any :math:`\lambda \ge 0` weak duality gives the lower
bound

.. math::

    g(\lambda) = \sum_i \min_{c \in [0, 1]} \big(\ell_i(c) + \lambda c\big) - \lambda d
    \;\le\; \min \text{(problem)},

whose inner minimum each family evaluates exactly
(:meth:`~capopt.curves.LossCurves.lagrangian_minimum`).

:func:`certify` evaluates all of it in the family's own units (the solvers hand it the
normalised family); for the quadratic model one fused numba pass does
(:func:`capopt._kernels.certificate.certify_quadratic`), for other families numpy below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from ..curves import LossCurves, QuadraticCurves
from ..regimes import DEFAULT_REGIME_ATOL
from .result import Certificate

__all__ = ["certify", "evaluate", "Evaluation", "kkt_multiplier", "multiplier_interval", "budget_violation",
           "onto_budget"]

DUAL_HOW = "Lagrangian dual g(lambda) at the returned multiplier"


@dataclass(frozen=True)
class Evaluation:
    """An allocation judged: its loss, certificate and regime codes, in the family's units."""

    loss: float
    certificate: Certificate
    regime_codes: np.ndarray


def kkt_multiplier(
    curves: LossCurves, capacities: np.ndarray, *, reported: float | None = None, atol: float = DEFAULT_REGIME_ATOL
) -> float:
    r"""Smallest :math:`\lambda \ge 0` satisfying the KKT conditions at an allocation.

    KKT asks :math:`\lambda \le m_i(C_i^-)` for :math:`C_i > 0` and
    :math:`\lambda \ge m_i(C_i^+)` for :math:`C_i < 1`, so :math:`\lambda \ge P = \max(0,
    \max_{C_i < 1} m_i(C_i^+))` and :math:`\lambda \le Q = \min_{C_i > 0} m_i(C_i^-)`. When
    :math:`P \le Q` the smallest valid value, P, is returned (the package convention: the
    marginal value of one *more* dimension). Otherwise the point is only approximately
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
    need_above, need_below = multiplier_interval(curves, C, atol=atol)
    if need_above <= need_below:
        return need_above
    inside = (C > atol) & (C < 1.0 - atol)
    if reported is not None and inside.any():
        right, left = curves.one_sided_marginals(C)
        lo = min(float(right[inside].min()), float(left[inside].min()))
        hi = max(float(right[inside].max()), float(left[inside].max()))
        return max(float(np.clip(reported, lo, hi)), 0.0)
    return max(0.5 * (need_above + need_below), 0.0)


def multiplier_interval(
    curves: LossCurves, capacities: np.ndarray, *, atol: float = DEFAULT_REGIME_ATOL
) -> tuple[float, float]:
    r"""The range :math:`[P, Q]` of multipliers the KKT conditions allow at an allocation.

    :math:`P = \max(0, \max_{C_i < 1} m_i(C_i^+))`, the most a feature that can grow
    gains from capacity, and :math:`Q = \min_{C_i > 0} m_i(C_i^-)` (inf when no capacity
    is held), the least one that can shrink loses: :math:`-P` and :math:`-Q` are the right
    and left derivatives of the loss in the budget there (a binding budget). Empty (P > Q)
    at a point that is not stationary. One pass with no temporary arrays for the
    quadratic model.
    """
    C = np.ascontiguousarray(capacities, dtype=np.float64)
    if isinstance(curves, QuadraticCurves):
        from .._kernels.certificate import kkt_interval

        P, Q = kkt_interval(*curves.kernel_arrays(), C, atol)
        return float(P), float(Q)
    right, left = curves.one_sided_marginals(C)
    P = max(float(np.max(right[C < 1.0 - atol], initial=0.0)), 0.0)
    return P, float(np.min(left[C > atol], initial=np.inf))


def _ratio(numerator: float, scale: float) -> float:
    """``numerator / scale`` with a vanishing scale read as 1 (nothing to compare with)."""
    return numerator / scale if scale > 0 else numerator


def budget_violation(used: float, budget: float) -> float:
    """How far ``used`` exceeds the budget, relative to it (a budget of 0 has no scale of
    its own: the excess in dimensions)."""
    excess = used - budget
    if excess <= 0:
        return 0.0
    return excess / budget if budget > 0 else excess


#: Excess over the budget, relative to it, that :func:`onto_budget` leaves alone: rounding
#: of a sum of order-1 capacities, harmless to every tolerance, and not worth moving a
#: capacity off a table's knot for.
FIT_RTOL = 1e-12


def onto_budget(C: np.ndarray, budget: float) -> np.ndarray:
    r"""``C`` with any excess over the budget taken off its fractional capacities.

    A method meets :math:`\sum_i C_i \le d` to its own rounding, which is absolute: a few
    ulps of the capacities of order 1, far more than a budget of 1e-20 itself. An excess
    beyond :data:`FIT_RTOL` of the budget is removed by scaling the fractional capacities
    by :math:`(d - W) / F` (W the sum of the capacities at 0 or 1, F of the others), which
    moves each by at most the excess and keeps every bound; only when they cannot absorb
    it is the whole allocation scaled. ``C`` itself is returned when it fits, else a new
    array.
    """
    used = float(np.sum(C))
    if not used - budget > FIT_RTOL * budget:
        return C
    fractional = (C > 0.0) & (C < 1.0)
    inner = float(np.sum(C[fractional]))
    whole = used - inner
    if inner > 0.0 and whole <= budget:
        return np.where(fractional, C * ((budget - whole) / inner), C)
    return C * (budget / used) if budget > 0 else np.zeros_like(C)


def evaluate(
    curves: LossCurves,
    capacities: np.ndarray,
    multiplier: float,
    budget: float,
    *,
    lower_bound: float | None = None,
    lower_bound_how: str = "",
    assumptions: tuple[str, ...] = (),
    atol: float = DEFAULT_REGIME_ATOL,
) -> Evaluation:
    """Loss, certificate and regime codes of an allocation (the work behind :func:`certify`)."""
    C = np.ascontiguousarray(capacities, dtype=np.float64)
    lam = float(multiplier)
    if isinstance(curves, QuadraticCurves):
        terms = _quadratic_terms(curves, C, lam, atol)
    else:
        terms = _generic_terms(curves, C, lam, atol)
    loss, stationarity, signs, used, below, above, dual, marginal_scale, loss_scale, bad, codes = terms
    dual -= lam * budget
    bound, how = dual, DUAL_HOW
    if lower_bound is not None and not lower_bound < dual:
        bound, how = float(lower_bound), lower_bound_how or "supplied by the method"
    certificate = Certificate(
        stationarity=_ratio(stationarity, marginal_scale),
        bound_signs=_ratio(signs, marginal_scale),
        complementarity=_ratio(abs(lam * (budget - used)), loss_scale),
        feasibility=np.inf if bad else max(below, above, 0.0, budget_violation(used, budget)),
        gap=_ratio(loss - bound, loss_scale),
        lower_bound=bound,
        marginal_scale=marginal_scale,
        loss_scale=loss_scale,
        how=how,
        assumptions=tuple(curves.assumptions) + tuple(assumptions),
    )
    codes.setflags(write=False)
    return Evaluation(loss, certificate, codes)


def certify(
    curves: LossCurves,
    capacities: np.ndarray,
    multiplier: float,
    budget: float,
    *,
    lower_bound: float | None = None,
    lower_bound_how: str = "",
    assumptions: tuple[str, ...] = (),
    atol: float = DEFAULT_REGIME_ATOL,
) -> Certificate:
    r"""Residuals of the KKT conditions and the optimality gap of an allocation.

    Parameters
    ----------
    curves : LossCurves
    capacities : ndarray, shape (N,)
    multiplier : float
        :math:`\lambda` claimed by the method.
    budget : float
    lower_bound : float, optional
        A bound the method proved; the dual bound at ``multiplier`` is used when absent,
        and the larger of the two is kept when both exist.
    lower_bound_how : str
        Where the method's bound comes from.
    assumptions : tuple of str
        What the method's proof takes on trust (the family's own are added).
    atol : float
        Capacities within ``atol`` of 0 or 1 are treated as at that bound.

    Returns
    -------
    Certificate
        In the units of ``curves``.
    """
    return evaluate(
        curves,
        capacities,
        multiplier,
        budget,
        lower_bound=lower_bound,
        lower_bound_how=lower_bound_how,
        assumptions=assumptions,
        atol=atol,
    ).certificate


#: The certificate's terms (:data:`CERTIFICATE_FIELDS`: loss, stationarity, bound signs,
#: total, below zero, above one, dual terms, marginal scale, loss scale; the count of
#: non-finite capacities), then the regime codes.
_Terms = tuple[float, float, float, float, float, float, float, float, float, int, np.ndarray]


def _quadratic_terms(curves: QuadraticCurves, C: np.ndarray, lam: float, atol: float) -> _Terms:
    from .._kernels.certificate import certify_quadratic

    codes = np.empty(C.shape, np.int8)
    terms = certify_quadratic(*curves.kernel_arrays(), C, lam, atol, codes)
    # The kernel returns one float per field of CERTIFICATE_FIELDS, the last a count.
    return cast(_Terms, (*(float(t) for t in terms[:-1]), int(terms[-1]), codes))


def _generic_terms(curves: LossCurves, C: np.ndarray, lam: float, atol: float) -> _Terms:
    """The numpy evaluation of the certificate's terms (see :data:`CERTIFICATE_FIELDS`)."""
    n = curves.n_features
    right, left = curves.one_sided_marginals(C)
    at_zero = C <= atol
    at_one = C >= 1.0 - atol
    interior = ~(at_zero | at_one)
    # Clarke stationarity: lam between the one-sided marginals (the subdifferential).
    low, high = np.minimum(right, left), np.maximum(right, left)
    distance = np.maximum(np.maximum(low - lam, lam - high), 0.0)
    stationarity = float(np.max(distance[interior], initial=0.0))
    signs = max(
        float(np.max(lam - left[at_one], initial=0.0)),
        float(np.max(right[at_zero] - lam, initial=0.0)),
        -lam,
        0.0,
    )
    ends = curves.one_sided_marginals(np.stack([np.zeros(n), np.ones(n)]))
    marginal_scale = max(
        float(np.max(np.abs(high), initial=0.0)),
        float(np.max(np.abs(ends[0][0]), initial=0.0)),
        float(np.max(np.abs(ends[1][1]), initial=0.0)),
        abs(lam),
    )
    codes = np.where(at_one, 0, np.where(at_zero, 2, 1)).astype(np.int8)
    return (
        float(np.sum(curves.loss(C))),
        stationarity,
        signs,
        float(np.sum(C)),
        float(np.max(-C, initial=0.0)),
        float(np.max(C - 1.0, initial=0.0)),
        float(np.sum(curves.lagrangian_minimum(lam))),
        marginal_scale,
        float(np.sum(curves.loss_range())),
        int(np.count_nonzero(~np.isfinite(C))),
        codes,
    )
