r"""Sensitivities of a quadratic-model optimum, by implicit differentiation of its KKT system.

At an optimum :math:`(C^*, \lambda)` of

.. math::

    \min_C \sum_i \ell_i(C_i; v_i, K_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\
    \sum_i C_i \le d,

the features strictly inside (0, 1) (the active set F) satisfy
:math:`m_i(C_i; v_i, K_i) = \lambda` with :math:`m_i = -\ell_i'`, and a binding budget
:math:`\sum_{i \in F} C_i = d - n_1`. Differentiating this square system in a parameter
:math:`\theta` while the others stay at their bounds gives

.. math::

    \begin{pmatrix} -\operatorname{diag}(h_F) & -\mathbf 1 \\ \mathbf 1^\top & 0 \end{pmatrix}
    \begin{pmatrix} \partial_\theta C_F \\ \partial_\theta \lambda \end{pmatrix}
    = \begin{pmatrix} -\partial_\theta m_F \\ \partial_\theta d \end{pmatrix},
    \qquad h_i = \ell_i''(C_i),

and the envelope theorem gives the loss:
:math:`\partial_\theta L^* = \sum_i \partial_\theta \ell_i - \lambda\, \partial_\theta d`,
so :math:`\partial L^*/\partial d = -\lambda`.

Glossary: ``C`` capacities, ``lam`` multiplier, ``v`` importances, ``K`` kurtoses, ``d``
budget, ``h`` curvatures, ``D`` the denominator :math:`2 + (K - 3) C`, ``F`` the active set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _formulas as F
from .._validation import check_scalar
from ..curves import QuadraticCurves
from ..regimes import DEFAULT_REGIME_ATOL
from ..solvers import AllocationResult, solve

__all__ = ["Sensitivity", "sensitivity", "KINK_RTOL"]

#: A feature at a bound whose marginal is within this relative distance of lam is at a
#: kink: its KKT inequality is tight, so a small change may move it off the bound.
KINK_RTOL = 1e-9


@dataclass(frozen=True, repr=False)
class Sensitivity:
    r"""Derivatives of an optimum :math:`(C^*, \lambda, L^*)` in the problem's parameters.

    Attributes
    ----------
    capacity_d_importance, capacity_d_kurtosis : ndarray, shape (N, N)
        :math:`\partial C_i / \partial v_j` and :math:`\partial C_i / \partial K_j`. For
        one kurtosis shared by all features, the derivative is the row sum.
    capacity_d_budget : ndarray, shape (N,)
        :math:`\partial C_i / \partial d` (NaN where it does not exist, see ``kinks``).
    multiplier_d_importance, multiplier_d_kurtosis : ndarray, shape (N,)
        :math:`\partial \lambda / \partial v_j`, :math:`\partial \lambda / \partial K_j`.
    multiplier_d_budget : float
        :math:`\partial \lambda / \partial d`.
    loss_d_importance, loss_d_kurtosis : ndarray, shape (N,)
        :math:`\partial L^* / \partial v_j`, :math:`\partial L^* / \partial K_j`.
    loss_d_budget : float
        :math:`\partial L^* / \partial d = -\lambda` (the right derivative at a kink).
    active : tuple of int
        The features strictly inside (0, 1).
    kinks : tuple of int
        Features at a bound whose KKT inequality is tight: there the derivatives are
        one-sided (those of the active set as found).
    differentiable : bool
        No kink, and not the degenerate budget at which every useful feature just fits
        (:math:`\sum_i C_i = d` with :math:`\lambda = 0`): the derivatives are two-sided.
    """

    capacity_d_importance: np.ndarray
    capacity_d_kurtosis: np.ndarray
    capacity_d_budget: np.ndarray
    multiplier_d_importance: np.ndarray
    multiplier_d_kurtosis: np.ndarray
    multiplier_d_budget: float
    loss_d_importance: np.ndarray
    loss_d_kurtosis: np.ndarray
    loss_d_budget: float
    active: tuple
    kinks: tuple
    differentiable: bool

    def __repr__(self) -> str:
        return (
            f"Sensitivity(n_features={self.capacity_d_budget.size}, active={len(self.active)}, "
            f"dlam/dd={self.multiplier_d_budget:.6g}, dL/dd={self.loss_d_budget:.6g}, "
            f"differentiable={self.differentiable})"
        )


def marginal_partials(C, v, K):
    r"""Partial derivatives of the marginal :math:`m = -\ell'` in v and K, at fixed C.

    .. math::

        \frac{\partial m}{\partial v} = \frac{4 (K - 1)^2 v}{D^2}, \qquad
        \frac{\partial m}{\partial K} = \frac{8 (K - 1) v^2 (1 - C)}{D^3},

    derived in ``derivations/quadratic.py``. Arrays broadcast. Valid for a live curve
    (v > 0, K > 1); a flat one has m = 0 whatever v and K.
    """
    return F.quadratic_marginal_d_importance(C, v, K), F.quadratic_marginal_d_kurtosis(C, v, K)


def loss_partials(C, v, K):
    r"""Partial derivatives of the loss :math:`\ell` in v and K, at fixed C.

    .. math::

        \frac{\partial \ell}{\partial v} = \frac{4 (K - 1) v (1 - C)}{D}, \qquad
        \frac{\partial \ell}{\partial K} = \frac{4 v^2 (1 - C)^2}{D^2},

    derived in ``derivations/quadratic.py``. At C = 0 they reduce to those of the flat loss
    :math:`(K - 1) v^2`, which ignored and flat features keep.
    """
    return F.quadratic_loss_d_importance(C, v, K), F.quadratic_loss_d_kurtosis(C, v, K)


def sensitivity(
    curves: QuadraticCurves,
    budget: float,
    *,
    result: AllocationResult | None = None,
    atol: float = DEFAULT_REGIME_ATOL,
) -> Sensitivity:
    r"""Derivatives of the optimal capacities, multiplier and loss of a quadratic model.

    Differentiates the KKT system on the active set (module docstring) with respect to
    every importance :math:`v_j`, every kurtosis :math:`K_j` and the budget d.

    Parameters
    ----------
    curves : QuadraticCurves
        The problem's curves (:func:`capopt.quadratic`).
    budget : float
        d >= 0.
    result : AllocationResult, optional
        Its optimum, if already solved (by :func:`capopt.solve` on the same problem);
        solved here otherwise.
    atol : float
        Capacities within ``atol`` of 0 or 1 are at that bound (as :func:`capopt.classify`).

    Returns
    -------
    Sensitivity

    Raises
    ------
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.QuadraticCurves`.

    Notes
    -----
    With a binding budget (:math:`\lambda > 0`) and an active set F, the bordered system
    above is solved once for all 2N + 1 parameters (O(|F|^3 + |F| N)); a linear curve
    (K = 3, :math:`h = 0`) in F pins :math:`\lambda` to its marginal and absorbs the
    budget. With a binding budget and F empty (a vertex, e.g. K < 3 at a whole budget),
    capacities are locally constant in v and K, :math:`\lambda` follows the tight
    feature that sets it, and the budget derivatives of C and :math:`\lambda` do not
    exist (NaN). With :math:`\lambda = 0` every useful feature is at 1 and only the loss
    moves. Where the system is singular the affected derivatives are NaN.

    Examples
    --------
    The worked case of theory §3, C = (5/6, 1/6) with lam = 81/8: one more dimension lowers
    the loss by lam, and with one kurtosis every capacity is affine in the level
    :math:`s`, so the polysemantic features share it in proportion to their importances.

    >>> from capopt.curves import quadratic
    >>> s = sensitivity(quadratic([2.0, 1.0], 7.0), 1.0)
    >>> s.loss_d_budget, s.capacity_d_budget.round(12).tolist()
    (-10.125, [0.666666666667, 0.333333333333])
    """
    if not isinstance(curves, QuadraticCurves):
        raise TypeError(
            f"curves must be a QuadraticCurves family (capopt.quadratic(...)), got {type(curves).__name__}"
        )
    d = check_scalar(budget, "budget", minimum=0.0)
    if result is None:
        result = solve(curves, d)
    n = curves.n_features
    C = np.asarray(result.capacities, dtype=np.float64)
    lam = float(result.multiplier)
    v, K = curves.importance, curves.kurtosis
    # Only features with a live curve (active, or tight at a bound) use these.
    dm_dv, dm_dK = marginal_partials(C, v, K)
    dl_dv, dl_dK = loss_partials(C, v, K)
    m = curves.marginal(C)
    h = curves.curvature(C)

    inside = (C > atol) & (C < 1.0 - atol)
    active = np.flatnonzero(inside)
    # Features that a small change may move off their bound; strictly flat ones never move.
    movable = ~inside & (v >= 0) & (K > 1)
    tight = movable & (np.abs(m - lam) <= KINK_RTOL * max(1.0, lam))
    kinks = tuple(int(i) for i in np.flatnonzero(tight))
    budget_tight = abs(float(np.sum(C)) - d) <= atol * max(1.0, d)

    dC_dv = np.zeros((n, n))
    dC_dK = np.zeros((n, n))
    dC_dd = np.zeros(n)
    dlam_dv = np.zeros(n)
    dlam_dK = np.zeros(n)
    dlam_dd = 0.0
    if lam > 0 and active.size:
        f = active.size
        A = np.zeros((f + 1, f + 1))
        A[np.arange(f), np.arange(f)] = -h[active]
        A[:f, f] = -1.0
        A[f, :f] = 1.0
        # Right-hand sides: one column per parameter v_j (j in F), K_j (j in F) and d.
        # Parameters of features at a bound move neither C_F nor lam.
        rhs = np.zeros((f + 1, 2 * f + 1))
        rhs[np.arange(f), np.arange(f)] = -dm_dv[active]
        rhs[np.arange(f), f + np.arange(f)] = -dm_dK[active]
        rhs[f, 2 * f] = 1.0
        try:
            x = np.linalg.solve(A, rhs)
        except np.linalg.LinAlgError:
            x = np.full_like(rhs, np.nan)
        dC_dv[np.ix_(active, active)] = x[:f, :f]
        dC_dK[np.ix_(active, active)] = x[:f, f : 2 * f]
        dC_dd[active] = x[:f, 2 * f]
        dlam_dv[active] = x[f, :f]
        dlam_dK[active] = x[f, f : 2 * f]
        dlam_dd = float(x[f, 2 * f])
    elif lam > 0:
        # A vertex: lam is the marginal of the tight feature that sets it.
        j = int(np.argmin(np.where(movable, np.abs(m - lam), np.inf)))
        dlam_dv[j] = dm_dv[j]
        dlam_dK[j] = dm_dK[j]
        dC_dd[:] = np.nan
        dlam_dd = np.nan
    differentiable = not kinks and not (lam == 0 and budget_tight and np.any(movable))
    return Sensitivity(
        capacity_d_importance=dC_dv,
        capacity_d_kurtosis=dC_dK,
        capacity_d_budget=dC_dd,
        multiplier_d_importance=dlam_dv,
        multiplier_d_kurtosis=dlam_dK,
        multiplier_d_budget=dlam_dd,
        loss_d_importance=dl_dv,
        loss_d_kurtosis=dl_dK,
        loss_d_budget=-lam,
        active=tuple(int(i) for i in active),
        kinks=kinks,
        differentiable=bool(differentiable),
    )
