r"""Sensitivities of an optimal allocation, by implicit differentiation of its KKT system.

At an optimum :math:`(C^*, \lambda)` of

.. math::

    \min_C \sum_i \ell_i(C_i; \theta_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\
    \sum_i C_i \le d,

the features strictly inside a smooth piece of their curve (the active set F) satisfy
:math:`m_i(C_i; \theta_i) = \lambda` with :math:`m_i = -\ell_i'`, and a binding budget
:math:`\sum_{i \in F} C_i = d - \sum_{i \notin F} C_i`. Every other feature sits at a bound
(0 or 1) or at a knot of a tabulated curve, and stays there under a small change unless
its KKT inequality is tight (a *kink*). Differentiating the square system in a parameter
while the others stay put gives the bordered system

.. math::

    \begin{pmatrix} -\operatorname{diag}(h_F) & -\mathbf 1 \\ \mathbf 1^\top & 0 \end{pmatrix}
    \begin{pmatrix} \partial C_F \\ \partial \lambda \end{pmatrix}
    = \begin{pmatrix} -\partial m_F \\ \partial d \end{pmatrix},
    \qquad h_i = \ell_i''(C_i),

whose solution, with :math:`g = 1/h_F` and :math:`S = \sum_F g`, is

.. math::

    \partial\lambda = \frac{g^\top \partial m_F - \partial d}{S}, \qquad
    \partial C_F = g \odot (\partial m_F - \partial\lambda\, \mathbf 1):

a diagonal plus a rank-one term in the marginals' changes (Sherman--Morrison), O(N)
(:class:`~capopt.perturbation.jacobian.CapacityJacobian`). One linear curve z in F
(:math:`h_z = 0`) pins :math:`\lambda = m_z` and absorbs the budget; a slack budget
(:math:`\lambda = 0`) decouples the features, :math:`\partial C_i = g_i \partial m_i`. The
same system serves every shape: a concave feature in F (the fraction of a vertex) has
:math:`h < 0`. The envelope theorem gives the loss,
:math:`\partial L^* = \sum_i \partial_\theta \ell_i - \lambda\, \partial d`.

Where the KKT system does not determine the optimum locally the derivative does not
exist, and the result says so per feature instead of giving a number: two vertices of a
non-convex family with the same loss (a tie: exchanging whole features, or the fraction,
costs nothing), or two linear curves in F at the same marginal.

Glossary: ``C`` capacities, ``lam`` multiplier, ``d`` budget, ``m`` marginals, ``h``
curvatures, ``g`` inverse curvatures on F, ``w`` the border :math:`\partial\lambda / \partial
m_F`, ``F`` the active set.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .._validation import check_scalar
from ..curves import LossCurves, Shape, _frozen
from ..regimes import DEFAULT_REGIME_ATOL
from ..solvers import AllocationResult, Status, solve
from ..solvers._kernels import ACTIVE, AT_ONE, AT_ZERO, KINK_RTOL, TIGHT, kkt_structure
from .jacobian import CapacityJacobian
from .partials import LocalTerms, Parameter, local_terms

__all__ = ["Sensitivity", "sensitivity", "KINK_RTOL", "TIE_RTOL"]

#: Two vertices whose losses differ by at most this, relative to the largest whole-feature
#: gain involved, are tied: the optimum may jump between them.
TIE_RTOL = 1e-12


def _by_name(table: str, name: str, doc: str) -> property:
    """A read-only attribute ``<table>_<name>``: the entry ``name`` of the mapping ``table``,
    or an AttributeError naming the parameters the family has."""

    def get(self):
        entries = getattr(self, table)
        if name not in entries:
            raise AttributeError(
                f"{table}_{name}: this family has no parameter {name!r}; its parameters are "
                f"{sorted(entries) or 'none (only the budget)'}"
            )
        return entries[name]

    return property(get, doc=doc)


@dataclass(frozen=True, repr=False)
class Sensitivity:
    r"""Derivatives of an optimum :math:`(C^*, \lambda, L^*)` in the problem's parameters.

    Attributes
    ----------
    capacity_d : mapping of str to CapacityJacobian
        :math:`\partial C^* / \partial \theta` for each parameter of the family
        (``importance`` and ``kurtosis`` of the quadratic model, ``importance`` of the
        linear autoencoder, ``values`` of a table; none for curves given as functions),
        as an O(N) :class:`scipy.sparse.linalg.LinearOperator`.
    multiplier_d, loss_d : mapping of str to ndarray
        :math:`\partial \lambda / \partial \theta` and :math:`\partial L^* / \partial
        \theta`, each of the parameter's shape.
    capacity_d_budget : ndarray, shape (N,)
        :math:`\partial C_i / \partial d` (NaN where it does not exist).
    multiplier_d_budget : float
        :math:`\partial \lambda / \partial d`.
    loss_d_budget : float
        :math:`\partial L^* / \partial d = -\lambda` (the right derivative at a kink).
    active : ndarray of int
        The features strictly inside a smooth piece of their curve.
    kinks : ndarray of int
        Features at a bound or knot whose KKT inequality is tight: there the derivatives
        are one-sided (those of the active set as found).
    undetermined : ndarray of int
        Features whose optimum the KKT system does not determine locally (tied vertices,
        tied linear curves): their derivatives, and those in their parameters, are NaN.
    differentiable : bool
        No kink, no undetermined feature, and not the degenerate budget at which every
        useful feature just fits: the derivatives are two-sided.
    status : Status
        The status of the optimum differentiated; derivatives of a solution that is not
        OPTIMAL are those of the point found.
    """

    capacity_d: Mapping[str, CapacityJacobian]
    multiplier_d: Mapping[str, np.ndarray]
    loss_d: Mapping[str, np.ndarray]
    capacity_d_budget: np.ndarray
    multiplier_d_budget: float
    loss_d_budget: float
    active: np.ndarray
    kinks: np.ndarray
    undetermined: np.ndarray
    differentiable: bool
    status: Status

    capacity_d_importance = _by_name(
        "capacity_d", "importance", r""":math:`\partial C_i / \partial v_j`, an N x N operator.""")
    capacity_d_kurtosis = _by_name(
        "capacity_d", "kurtosis", r""":math:`\partial C_i / \partial K_j`; for one shared K, ``... @ ones``.""")
    multiplier_d_importance = _by_name(
        "multiplier_d", "importance", r""":math:`\partial \lambda / \partial v_j`, shape (N,).""")
    multiplier_d_kurtosis = _by_name(
        "multiplier_d", "kurtosis", r""":math:`\partial \lambda / \partial K_j`, shape (N,).""")
    loss_d_importance = _by_name(
        "loss_d", "importance", r""":math:`\partial L^* / \partial v_j`, shape (N,).""")
    loss_d_kurtosis = _by_name(
        "loss_d", "kurtosis", r""":math:`\partial L^* / \partial K_j`, shape (N,).""")

    def to_dict(self) -> dict:
        """The budget derivatives and the feature sets as plain Python values (for JSON);
        the parameter Jacobians stay operators (apply them, or ``todense()`` for small N)."""
        return {
            "capacity_d_budget": self.capacity_d_budget.tolist(),
            "multiplier_d_budget": self.multiplier_d_budget,
            "loss_d_budget": self.loss_d_budget,
            "multiplier_d": {k: v.tolist() for k, v in self.multiplier_d.items()},
            "loss_d": {k: v.tolist() for k, v in self.loss_d.items()},
            "active": list(self.active),
            "kinks": list(self.kinks),
            "undetermined": list(self.undetermined),
            "differentiable": self.differentiable,
            "status": self.status.name,
        }

    def __repr__(self) -> str:
        return (
            f"Sensitivity(n_features={self.capacity_d_budget.size}, active={len(self.active)}, "
            f"kinks={len(self.kinks)}, undetermined={len(self.undetermined)}, "
            f"parameters={list(self.capacity_d)}, dlam/dd={self.multiplier_d_budget:.6g}, "
            f"dL/dd={self.loss_d_budget:.6g}, differentiable={self.differentiable})"
        )


@dataclass(frozen=True)
class _Structure:
    """The local KKT structure of an optimum: who moves, and how lam follows them."""

    F: np.ndarray  # active features
    g: np.ndarray  # inverse curvatures, (N,), 0 off F and where a linear curve pins lam
    w: np.ndarray  # border, (N,): d lam = w . d m, and dC/dd on F
    lam_d_budget: float
    undetermined: np.ndarray  # mask (N,)
    kinks: np.ndarray  # indices
    setter: int  # at a vertex (F empty, binding budget): the tight feature lam follows, or -1
    differentiable: bool


def sensitivity(
    curves: LossCurves,
    budget: float,
    *,
    result: AllocationResult | None = None,
    atol: float = DEFAULT_REGIME_ATOL,
) -> Sensitivity:
    r"""Derivatives of the optimal capacities, multiplier and loss of an allocation.

    Differentiates the KKT system on the active set (module docstring) with respect to the
    budget d and every parameter of the family, for any family: convex, concave, mixed,
    tables and curves given as functions (the budget only).

    Parameters
    ----------
    curves : LossCurves
        The problem's curves.
    budget : float
        d >= 0.
    result : AllocationResult, optional
        Its optimum, if already solved (by :func:`capopt.solve` on the same curves and
        budget); solved here otherwise.
    atol : float
        Capacities within ``atol`` of 0 or 1 are at that bound (as :func:`capopt.classify`).

    Returns
    -------
    Sensitivity

    Raises
    ------
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.LossCurves` or ``result`` not an
        :class:`~capopt.solvers.AllocationResult`.
    ValueError
        If ``result`` was solved for other curves or another budget, or failed.

    Notes
    -----
    O(N) time and memory beyond the solve: the Jacobians are operators (diagonal plus a
    rank-one border), never N x N matrices. With a binding budget and F empty (a vertex,
    e.g. K < 3 at a whole budget) capacities are locally constant in the parameters,
    :math:`\lambda` follows the tight feature that sets it, and the budget derivatives of C
    and :math:`\lambda` do not exist (NaN). Derivatives are computed in the user's units;
    curves whose curvatures overflow float64 give NaN there.

    Examples
    --------
    The worked case of theory §3, C = (5/6, 1/6) with lam = 81/8: one more dimension lowers
    the loss by lam, and with one kurtosis every capacity is affine in the level, so the
    polysemantic features share it in proportion to their importances.

    >>> import numpy as np
    >>> from capopt.curves import quadratic
    >>> s = sensitivity(quadratic([2.0, 1.0], 7.0), 1.0)
    >>> s.loss_d_budget, s.capacity_d_budget.round(12).tolist()
    (-10.125, [0.666666666667, 0.333333333333])
    >>> s.capacity_d_kurtosis @ np.ones(2)        # one shared K: the row sums
    array([-0.04166667,  0.04166667])
    """
    if not isinstance(curves, LossCurves):
        raise TypeError(f"curves must be a LossCurves family (capopt.quadratic(...), ...), got "
                        f"{type(curves).__name__}")
    d = check_scalar(budget, "budget", minimum=0.0)
    if result is None:
        result = solve(curves, d)
    _check_result(result, curves, d)
    C = np.asarray(result.capacities, dtype=np.float64)
    lam = float(result.multiplier)
    terms = local_terms(curves, C)
    s = _structure(curves, terms, C, lam, d, atol)
    return _derivatives(s, terms.parameters, curves.n_features, lam, result.status)


def _check_result(result, curves: LossCurves, d: float) -> None:
    if not isinstance(result, AllocationResult):
        raise TypeError(f"result must be an AllocationResult (from capopt.solve), got {type(result).__name__}")
    if result.curves is not curves or result.budget != d:
        raise ValueError(
            f"result must be the optimum of these curves at budget {d:g}; it was solved for "
            f"{'other curves' if result.curves is not curves else f'budget {result.budget:g}'}"
        )
    if result.status is Status.FAILED:
        raise ValueError(f"result has no allocation to differentiate (FAILED: {result.reason})")


def _structure(curves: LossCurves, terms: LocalTerms, C: np.ndarray, lam: float, d: float,
               atol: float) -> _Structure:
    """Active set, kinks, ties and the border of the bordered KKT system at (C, lam)."""
    n = C.size
    place = np.empty(n, dtype=np.int8)
    g = np.empty(n)
    linear = curves.shape_mask(Shape.LINEAR)
    S, pins, first_pin, _ = kkt_structure(C, terms.right, terms.left, terms.curvature, linear, lam,
                                       atol, KINK_RTOL, place, g)
    F = np.flatnonzero(place == ACTIVE)
    kinks = np.flatnonzero(place >= TIGHT)
    undetermined = _vertex_ties(curves, C, place, F)
    w = np.zeros(n)
    lam_d_budget = 0.0
    binding = lam > 0
    if binding and F.size:
        if pins == 1:
            w[first_pin] = 1.0
        elif pins > 1:
            # Linear curves tied at lam: how the budget splits among them is not determined.
            undetermined[F[(g[F] == 0)]] = True
        elif S != 0 and np.isfinite(S):
            w = g / S
            lam_d_budget = -1.0 / S
        else:
            undetermined[F] = True
    elif pins:
        # A slack budget: a linear curve with zero marginal can sit anywhere.
        undetermined[F[(g[F] == 0)]] = True
    setter = -1
    vertex = binding and F.size == 0
    if vertex:
        gives = (terms.right != 0) | (lam != 0)
        gap = np.minimum(np.abs(terms.right - lam), np.abs(terms.left - lam))
        setter = int(np.argmin(np.where(gives, gap, np.inf))) if gives.any() else -1
    # Every feature that takes capacity just fits (lam = 0): less budget makes lam > 0.
    budget_tight = abs(float(np.sum(C)) - d) <= atol * max(1.0, d)
    just_fits = lam == 0 and budget_tight and bool(np.any(place != AT_ZERO))
    return _Structure(
        F=F, g=g, w=w, lam_d_budget=np.nan if vertex else lam_d_budget,
        undetermined=undetermined, kinks=kinks, setter=setter,
        differentiable=not (kinks.size or undetermined.any() or vertex or just_fits),
    )


def _vertex_ties(curves: LossCurves, C: np.ndarray, place: np.ndarray, F: np.ndarray) -> np.ndarray:
    r"""Features of non-convex curves at an optimum tied with another vertex (mask).

    Exchanging a whole feature i (C = 1) with an empty one j (C = 0) changes the loss by
    :math:`\Delta_i - \Delta_j`, :math:`\Delta = \ell(0) - \ell(1)`; moving the fraction
    :math:`\phi` of a non-convex feature f to j (empty) or i (whole) by
    :math:`[\ell_j(\phi) - \ell_j(0)] - [\ell_f(\phi) - \ell_f(0)]` or
    :math:`[\ell_i(\phi) - \ell_i(1)] - [\ell_f(\phi) - \ell_f(1)]`. A change of zero is a
    tie: a small change of the parameters may make the other vertex optimal, so C jumps.
    """
    n = curves.n_features
    tied = np.zeros(n, dtype=bool)
    convex = curves.shape_mask(Shape.CONVEX)
    if convex.all():
        return tied
    lower, upper = place % TIGHT == AT_ZERO, place % TIGHT == AT_ONE
    zero, one = curves.loss(np.zeros(n)), curves.loss(np.ones(n))
    gain = zero - one
    whole, empty = upper & ~convex & (gain != 0), lower & ~convex & (gain > 0)
    scale = float(np.max(np.abs(gain), initial=0.0))
    tol = TIE_RTOL * scale
    if whole.any() and empty.any():
        low, high = float(np.min(gain[whole])), float(np.max(gain[empty]))
        if low - high <= tol:
            tied |= (whole & (gain <= high + tol)) | (empty & (gain >= low - tol))
    fractions = F[~convex[F]]
    if fractions.size == 1:
        f = int(fractions[0])
        phi = C[f]
        at_phi = curves.loss(np.full(n, phi))
        to_empty = (at_phi - zero) - (at_phi[f] - zero[f])
        to_whole = (at_phi - one) - (at_phi[f] - one[f])
        swap = (empty & (np.abs(to_empty) <= tol)) | (whole & (np.abs(to_whole) <= tol))
        if swap.any():
            tied |= swap
            tied[f] = True
    return tied


def _derivatives(s: _Structure, params: tuple[Parameter, ...], n: int, lam: float, status: Status) -> Sensitivity:
    """The Jacobians, multiplier and loss derivatives from the structure and the partials."""
    undetermined = s.undetermined
    unknown = bool(undetermined.any())
    capacity_d, multiplier_d, loss_d = {}, {}, {}
    for p in params:
        capacity_d[p.name] = CapacityJacobian(s.F, s.g, s.w, p.marginal, undetermined)
        dlam = s.w[:, None] * p.marginal
        if s.setter >= 0:
            dlam[s.setter] = p.marginal[s.setter]
        dloss = p.loss
        if unknown:
            dlam[undetermined] = np.nan
            dloss = np.where(undetermined[:, None], np.nan, p.loss)
        multiplier_d[p.name] = dlam.reshape(p.shape)
        loss_d[p.name] = np.array(dloss, dtype=np.float64).reshape(p.shape)
    if s.setter >= 0 or np.isnan(s.lam_d_budget):
        dC_dd = np.full(n, np.nan)
    else:
        dC_dd = s.w.copy()
    dC_dd[undetermined] = np.nan
    return Sensitivity(
        capacity_d=MappingProxyType(capacity_d),
        multiplier_d=MappingProxyType(multiplier_d),
        loss_d=MappingProxyType(loss_d),
        capacity_d_budget=dC_dd,
        multiplier_d_budget=float(s.lam_d_budget),
        loss_d_budget=-lam,
        active=_frozen(s.F),
        kinks=_frozen(s.kinks),
        undetermined=_frozen(np.flatnonzero(undetermined)),
        differentiable=bool(s.differentiable),
        status=status,
    )
