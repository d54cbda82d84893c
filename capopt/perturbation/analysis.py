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
costs nothing), two structures the global method compared with the same loss (a dense
feature taken whole against sparse ones water-filled in its place:
:attr:`capopt.solvers.AllocationResult.alternatives`), or two linear curves in F at the
same marginal. The loss is still differentiable from each side: with :math:`P_s` and
:math:`Q_s` the smallest and largest multipliers that satisfy the KKT conditions at each
optimum s (the best marginal of a feature that can grow, and the worst of one that can
shrink; :math:`Q_s = 0` under a slack budget),

.. math::

    \partial_d^+ L^* = -\max_s P_s, \qquad \partial_d^- L^* = -\min_s Q_s,

since one more dimension goes where it gains most, and one fewer is taken where it costs
least, over every optimum.

*Parameters.* A family declares its parameters :math:`\theta_{jp}` with the partials
:math:`\partial m_j / \partial \theta_{jp}` and :math:`\partial \ell_j / \partial
\theta_{jp}` at fixed capacity (:meth:`capopt.curves.LossCurves.parameters`: the quadratic
model's importances and kurtoses, the linear autoencoder's importances, a table's values;
none for curves given as functions, differentiated in the budget only), and what the KKT
system reads, its one-sided marginals and curvatures
(:meth:`~capopt.curves.LossCurves.structure_terms`).

*Units.* Everything is computed in the solver's units (:mod:`capopt.solvers.units`: the
family's losses divided by :math:`2^E`, tier by tier where its scales cannot share one)
and converted at the end, exactly, by powers of two: a parameter that scales as the loss
to the power u (:attr:`capopt.curves.Parameter.loss_power`) is there the user's times
:math:`2^{-uE}`, so :math:`\partial m / \partial \theta = 2^{E(1 - u)}\,\partial \hat m /
\partial \hat \theta`. A derivative that truly exceeds float64 is :math:`\pm\infty`,
never a wrong finite number, and importances anywhere in the float64 range are
differentiated as accurately as they are solved.

*Memory.* :func:`sensitivity` keeps the structure only (where each feature sits, the
inverse curvatures): about three arrays of N during the call. The Jacobians, the
multiplier's and the loss's derivatives are formed on first access.

Glossary: ``C`` capacities, ``lam`` multiplier, ``d`` budget, ``m`` marginals, ``h``
curvatures, ``g`` inverse curvatures on F, ``w`` the border :math:`\partial\lambda / \partial
m_F`, ``F`` the active set, ``E`` the exponent of a tier's units (its losses are the
user's times :math:`2^{-E}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .._validation import check_scalar
from ..curves import LossCurves, Parameter, Shape, _frozen
from ..regimes import DEFAULT_REGIME_ATOL
from ..solvers import AllocationResult, Status, multiplier_interval, solve, units
from .._kernels.kkt import ACTIVE, AT_ONE, AT_ZERO, KINK_RTOL, TIGHT, kkt_structure
from .jacobian import CapacityJacobian

__all__ = ["Sensitivity", "sensitivity", "KINK_RTOL", "TIE_RTOL"]

#: Two vertices whose losses differ by at most this, relative to the largest whole-feature
#: gain involved, are tied: the optimum may jump between them.
TIE_RTOL = 1e-12


def _by_name(table: str, name: str, doc: str) -> property:
    """A read-only attribute ``<table>_<name>``: the entry ``name`` of the mapping ``table``,
    or an AttributeError naming the parameters the family has."""

    def get(self: Sensitivity) -> Any:
        entries = getattr(self, table)
        if name not in entries:
            raise AttributeError(
                f"{table}_{name}: this family has no parameter {name!r}; its parameters are "
                f"{sorted(entries) or 'none (only the budget)'}"
            )
        return entries[name]

    return property(get, doc=doc)


def _ldexp(x: Any, e: int) -> Any:
    """``x * 2**e``, exact where representable, +-inf where it overflows, without warnings."""
    if e == 0:
        return x
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(x, e)


@dataclass(frozen=True)
class _Structure:
    """The local KKT structure of an optimum: who moves, and how lam follows them.

    ``g`` holds the inverse curvatures in the reference units (losses times
    ``2**-exponent``), zero off the active set and where a linear curve pins lam.
    """

    place: np.ndarray  # int8 (N,): ACTIVE, AT_ZERO, AT_ONE, AT_KNOT, + TIGHT at a kink
    F: np.ndarray  # the active features
    g: np.ndarray
    S: float  # sum of g over F
    pins: int  # active features on a linear piece
    first_pin: int
    exponent: int
    binding: bool
    undetermined: np.ndarray  # mask (N,)
    setter: int  # at a vertex (F empty, binding budget): the tight feature lam follows, or -1
    just_fits: bool

    @property
    def vertex(self) -> bool:
        return self.binding and self.F.size == 0

    @cached_property
    def w(self) -> np.ndarray:
        """The border: d lam = w . d m on F, and dC/dd there."""
        w = np.zeros(self.g.size)
        if self.binding and self.F.size:
            if self.pins == 1:
                w[self.first_pin] = 1.0
            elif self.pins == 0 and self.S != 0 and np.isfinite(self.S):
                np.divide(self.g, self.S, out=w)
        return w

    @property
    def lam_d_budget(self) -> float:
        if self.vertex:
            return np.nan
        if not self.binding or self.pins or self.S == 0 or not np.isfinite(self.S):
            return 0.0
        return -float(_ldexp(1.0 / self.S, self.exponent))

    @property
    def differentiable(self) -> bool:
        return not (np.any(self.place >= TIGHT) or self.undetermined.any() or self.vertex
                    or self.just_fits)


@dataclass(frozen=True, repr=False)
class Sensitivity:
    r"""Derivatives of an optimum :math:`(C^*, \lambda, L^*)` in the problem's parameters.

    The budget derivatives and the feature sets are computed with the structure; the
    parameter Jacobians and the multiplier's and loss's derivatives on first access.

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
        :math:`\partial \lambda / \partial d` (NaN where it does not exist).
    loss_d_budget : float
        :math:`\partial L^* / \partial d` from the right: :math:`-\lambda`, or at a tie
        the steepest of the tied optima (module docstring).
    loss_d_budget_left : float
        :math:`\partial L^* / \partial d` from the left; equal to :attr:`loss_d_budget`
        where the loss is differentiable in the budget.
    active : ndarray of int
        The features strictly inside a smooth piece of their curve.
    kinks : ndarray of int
        Features at a bound or knot whose KKT inequality is tight: there the derivatives
        are one-sided (those of the active set as found).
    undetermined : ndarray of int
        Features whose optimum the KKT system does not determine locally (tied vertices,
        tied structures of a non-convex family, tied linear curves): their derivatives,
        and those in their parameters, are NaN.
    differentiable : bool
        No kink, no undetermined feature, and not the degenerate budget at which every
        useful feature just fits: the derivatives are two-sided.
    status : Status
        The status of the optimum differentiated; derivatives of a solution that is not
        OPTIMAL are those of the point found.
    """

    multiplier_d_budget: float
    loss_d_budget: float
    loss_d_budget_left: float
    active: np.ndarray
    kinks: np.ndarray
    undetermined: np.ndarray
    differentiable: bool
    status: Status
    _structure: _Structure = field(repr=False)
    _curves: LossCurves = field(repr=False)
    _capacities: np.ndarray = field(repr=False)
    _tiers: tuple[units.Tier, ...] = field(repr=False)

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

    @cached_property
    def capacity_d_budget(self) -> np.ndarray:
        s = self._structure
        if s.setter >= 0 or np.isnan(s.lam_d_budget):
            dC_dd = np.full(s.g.size, np.nan)
        else:
            dC_dd = s.w.copy()
        dC_dd[s.undetermined] = np.nan
        return _frozen(dC_dd)

    @cached_property
    def _parameters(self) -> tuple[tuple[Parameter, np.ndarray, np.ndarray, np.ndarray], ...]:
        """Each parameter with its partials in the user's units: (parameter, d m, d l, and
        d m in the reference units of the inverse curvatures, for the Jacobian)."""
        return _user_partials(self._curves, self._capacities, self._tiers, self._structure.exponent)

    @cached_property
    def capacity_d(self) -> Mapping[str, CapacityJacobian]:
        s = self._structure
        # A column outside F does not move C (its g and w are 0): its partial, which may
        # overflow in other tiers' units, is not read.
        off = np.ones(s.g.size, dtype=bool)
        off[s.F] = False
        return MappingProxyType({
            p.name: CapacityJacobian(s.F, s.g, s.w, np.where(off[:, None], 0.0, reference), s.undetermined)
            for p, _, _, reference in self._parameters
        })

    @cached_property
    def multiplier_d(self) -> Mapping[str, np.ndarray]:
        s = self._structure
        out = {}
        for p, dm, _, _ in self._parameters:
            # Only features with a border weight move lam: elsewhere 0, also where the
            # partial itself overflows (0 * inf would be NaN).
            with np.errstate(over="ignore", invalid="ignore"):
                dlam = np.where(s.w[:, None] != 0, s.w[:, None] * dm, 0.0)
            if s.setter >= 0:
                dlam[s.setter] = dm[s.setter]
            dlam[s.undetermined] = np.nan
            out[p.name] = _frozen(dlam.reshape(p.shape))
        return MappingProxyType(out)

    @cached_property
    def loss_d(self) -> Mapping[str, np.ndarray]:
        s = self._structure
        out = {}
        for p, _, dl, _ in self._parameters:
            dloss = np.array(dl, dtype=np.float64)
            dloss[s.undetermined] = np.nan
            out[p.name] = _frozen(dloss.reshape(p.shape))
        return MappingProxyType(out)

    def to_dict(self) -> dict:
        """The budget derivatives and the feature sets as plain Python values (for JSON);
        the parameter Jacobians stay operators (apply them, or ``todense()`` for small N)."""
        return {
            "capacity_d_budget": self.capacity_d_budget.tolist(),
            "multiplier_d_budget": self.multiplier_d_budget,
            "loss_d_budget": self.loss_d_budget,
            "loss_d_budget_left": self.loss_d_budget_left,
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
            f"Sensitivity(n_features={self._capacities.size}, active={len(self.active)}, "
            f"kinks={len(self.kinks)}, undetermined={len(self.undetermined)}, "
            f"parameters={[p.name for p, *_ in self._parameters]}, "
            f"dlam/dd={self.multiplier_d_budget:.6g}, dL/dd={self.loss_d_budget:.6g}, "
            f"differentiable={self.differentiable})"
        )


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
    and :math:`\lambda` do not exist (NaN). At a tie between optima (non-convex families:
    :attr:`~capopt.solvers.AllocationResult.alternatives`, and exchanges of vertices) the
    features whose capacity differs between them are undetermined, and the loss has the
    one-sided derivatives of the module docstring. Derivatives are computed in the
    solver's units and converted exactly: a value beyond float64 is :math:`\pm\infty`.

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

    A dense feature taken whole ties with two sparse ones sharing its dimension: the
    optimum jumps with d, the loss falls faster on the right (the dense feature's side).

    >>> t = sensitivity(quadratic([6.11146463623901, 1.0, 0.8], [1.2, 7.0, 7.0]), 1.0)
    >>> t.undetermined.tolist(), round(t.loss_d_budget, 6), round(t.loss_d_budget_left, 6)
    ([0, 1, 2], -18.0, -3.645)
    """
    if not isinstance(curves, LossCurves):
        raise TypeError(f"curves must be a LossCurves family (capopt.quadratic(...), ...), got "
                        f"{type(curves).__name__}")
    d = check_scalar(budget, "budget", minimum=0.0)
    if result is None:
        result = solve(curves, d)
    _check_result(result, curves, d)
    C = np.asarray(result.capacities, dtype=np.float64)
    tier_list = tuple(units.tiers(curves)[0])
    s = _structure(curves, tier_list, C, result, d, atol)
    right, left = _loss_slopes(tier_list, result, C, d, atol)
    return Sensitivity(
        multiplier_d_budget=np.nan if result.alternatives else float(s.lam_d_budget),
        loss_d_budget=right,
        loss_d_budget_left=left,
        active=_frozen(s.F),
        kinks=_frozen(np.flatnonzero(s.place >= TIGHT)),
        undetermined=_frozen(np.flatnonzero(s.undetermined)),
        differentiable=bool(s.differentiable),
        status=result.status,
        _structure=s,
        _curves=curves,
        _capacities=C,
        _tiers=tier_list,
    )


def _check_result(result: object, curves: LossCurves, d: float) -> None:
    if not isinstance(result, AllocationResult):
        raise TypeError(f"result must be an AllocationResult (from capopt.solve), got {type(result).__name__}")
    if result.curves is not curves or result.budget != d:
        raise ValueError(
            f"result must be the optimum of these curves at budget {d:g}; it was solved for "
            f"{'other curves' if result.curves is not curves else f'budget {result.budget:g}'}"
        )
    if result.status is Status.FAILED:
        raise ValueError(f"result has no allocation to differentiate (FAILED: {result.reason})")


def _reference_exponent(result: AllocationResult, tier_list: tuple[units.Tier, ...]) -> int:
    """The units of lam's tier (where the budget binds), else the first tier's."""
    return result.multiplier_exponent if result.scaled_multiplier > 0 else tier_list[0].exponent


def _in_tier(result: AllocationResult, tier: units.Tier) -> float:
    """The multiplier in the tier's units; the largest float where it exceeds them (a tier
    below the one where the budget binds: none of its marginals comes near)."""
    lam = float(_ldexp(result.scaled_multiplier, result.multiplier_exponent - tier.exponent))
    return min(lam, float(np.finfo(np.float64).max))


def _structure(curves: LossCurves, tier_list: tuple[units.Tier, ...], C: np.ndarray,
               result: AllocationResult, d: float, atol: float) -> _Structure:
    """Active set, kinks, ties and inverse curvatures at (C, lam), tier by tier in the
    tiers' units, the inverse curvatures brought to the reference units."""
    n = C.size
    exponent = _reference_exponent(result, tier_list)
    single = len(tier_list) == 1
    place = np.empty(n, dtype=np.int8)
    g = None if single else np.zeros(n)
    undetermined = np.zeros(n, dtype=bool)
    S, pins, first_pin, setter = 0.0, 0, -1, -1
    binding = result.scaled_multiplier > 0  # lam itself may underflow float64
    F = np.empty(0, dtype=np.intp)
    for tier in tier_list:
        idx = tier.features
        Ct = C if idx is None else np.ascontiguousarray(C[idx])
        lam = _in_tier(result, tier)
        right, left, h = tier.curves.structure_terms(Ct)
        place_t = place if idx is None else np.empty(Ct.size, dtype=np.int8)
        # h becomes g, the inverse curvatures, in place.
        S_t, pins_t, first_t, _ = kkt_structure(Ct, right, left, h, tier.curves.shape_mask(Shape.LINEAR),
                                                lam, atol, KINK_RTOL, place_t, h)
        F_t = np.flatnonzero(place_t == ACTIVE)
        ties = _vertex_ties(tier.curves, Ct, place_t, F_t)
        shift = exponent - tier.exponent
        if binding and F_t.size == 0 and tier.exponent == exponent and setter < 0:
            setter = _setter(right, left, lam)
            setter = setter if idx is None or setter < 0 else int(idx[setter])
        del right, left
        if single:
            F, g, undetermined = F_t, h, ties
        else:
            assert g is not None and idx is not None  # several tiers: each names its features
            place[idx] = place_t
            g[idx] = _ldexp(h, shift)
            undetermined[idx] = ties
            F = np.concatenate([F, idx[F_t]])
        S += float(_ldexp(S_t, shift))
        if pins_t and first_pin < 0:
            first_pin = first_t if idx is None else int(idx[first_t])
        pins += pins_t
    assert g is not None
    F.sort()
    if binding and F.size:
        if pins > 1:
            # Linear curves tied at lam: how the budget splits among them is not determined.
            undetermined[F[g[F] == 0]] = True
        elif pins == 0 and not (S != 0 and np.isfinite(S)):
            undetermined[F] = True
    elif pins:
        # A slack budget: a linear curve with zero marginal can sit anywhere.
        undetermined[F[g[F] == 0]] = True
    for alternative in result.alternatives:
        difference = np.subtract(alternative, C)
        undetermined |= np.abs(difference, out=difference) > atol
        del difference
    # Every feature that takes capacity just fits (lam = 0): less budget makes lam > 0.
    budget_tight = abs(float(np.sum(C)) - d) <= atol * max(1.0, d)
    just_fits = not binding and budget_tight and bool(np.any(place != AT_ZERO))
    return _Structure(place=place, F=F, g=g, S=S, pins=pins, first_pin=first_pin, exponent=exponent,
                      binding=binding, undetermined=undetermined, setter=setter, just_fits=just_fits)


def _setter(right: np.ndarray, left: np.ndarray, lam: float) -> int:
    """At a vertex: the feature whose one-sided marginal is nearest lam (it sets lam), or -1."""
    gives = (right != 0) | (lam != 0)
    if not gives.any():
        return -1
    gap = np.minimum(np.abs(right - lam), np.abs(left - lam))
    return int(np.argmin(np.where(gives, gap, np.inf)))


def _loss_slopes(tier_list: tuple[units.Tier, ...], result: AllocationResult, C: np.ndarray, d: float,
                 atol: float) -> tuple[float, float]:
    r""":math:`\partial_d^\pm L^*`: from the right :math:`-\max_s P_s`, from the left
    :math:`-\min_s Q_s` over the optimum and its tied alternatives (module docstring)."""
    right = -result.multiplier
    Q = _multiplier_interval(tier_list, C, d, atol)[1]
    for alternative in result.alternatives:
        P_s, Q_s = _multiplier_interval(tier_list, alternative, d, atol)
        right = min(right, -P_s)
        Q = min(Q, Q_s)
    return float(right), float(-Q)


def _multiplier_interval(tier_list: tuple[units.Tier, ...], C: np.ndarray, d: float,
                         atol: float) -> tuple[float, float]:
    """(P, Q) of an allocation in the user's units
    (:func:`capopt.solvers.certificate.multiplier_interval`, tier by tier), with Q = 0 under
    a slack budget: less budget costs nothing there."""
    P, Q = 0.0, np.inf
    for tier in tier_list:
        Ct = C if tier.features is None else C[tier.features]
        P_t, Q_t = multiplier_interval(tier.curves, Ct, atol=atol)
        P, Q = max(P, float(_ldexp(P_t, tier.exponent))), min(Q, float(_ldexp(Q_t, tier.exponent)))
    slack = float(np.sum(C)) < d - atol * max(1.0, d)
    return P, 0.0 if slack else Q


def _user_partials(curves: LossCurves, C: np.ndarray, tier_list: tuple[units.Tier, ...],
                   exponent: int) -> tuple[tuple[Parameter, np.ndarray, np.ndarray, np.ndarray], ...]:
    r"""Each parameter's partials in the user's units, and its marginal partials in the
    reference units of the inverse curvatures (so that :math:`g\,\partial m` is the
    user's :math:`\partial C`), from the tiers' partials (module docstring, Units)."""
    n = C.size
    gathered: dict[str, list] = {}
    for tier in tier_list:
        idx = slice(None) if tier.features is None else tier.features
        for p in tier.curves.parameters(C[idx]):
            shift = tier.exponent * (1.0 - p.loss_power)
            assert shift == int(shift), "a parameter's units are a whole power of two"
            shift = int(shift)
            if p.name not in gathered:
                width = p.marginal.shape[1]
                whole = replace(p, shape=(n, *p.shape[1:]))
                gathered[p.name] = [whole, np.empty((n, width)), np.empty((n, width)), np.empty((n, width))]
            _, dm, dl, reference = gathered[p.name]
            dm[idx] = _ldexp(p.marginal, shift)
            dl[idx] = _ldexp(p.loss, shift)
            reference[idx] = _ldexp(p.marginal, shift - exponent)
    _flat_partials(curves, C, tier_list, gathered)
    return tuple(tuple(entry) for entry in gathered.values())  # type: ignore[misc]


def _flat_partials(curves: LossCurves, C: np.ndarray, tier_list: tuple[units.Tier, ...],
                   gathered: dict[str, list]) -> None:
    """Partials of the flat curves from the user's family itself: the solver's units keep
    only what capacity can change (a flat curve's constant loss is set aside there).
    Flatness is read in each tier's units, where a tiny curve's range does not underflow."""
    if not gathered:
        return
    flat = np.concatenate([np.flatnonzero(~(tier.curves.loss_range() > 0)) if tier.features is None
                           else tier.features[~(tier.curves.loss_range() > 0)] for tier in tier_list])
    if not flat.size:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        for p in curves.subset(flat).parameters(C[flat]):
            _, dm, dl, reference = gathered[p.name]
            dm[flat], dl[flat] = p.marginal, p.loss
            reference[flat] = 0.0


#: Features evaluated at a time where only some of a family's curves are needed: the
#: temporaries stay small whatever N.
CHUNK = 1 << 16


def _losses_at(curves: LossCurves, features: np.ndarray, c: float) -> np.ndarray:
    r""":math:`\ell_i(c)` for the given features, a chunk at a time (all of the family at
    once where it has no :meth:`~capopt.curves.LossCurves.subset`)."""
    out = np.empty(features.size)
    for start in range(0, features.size, CHUNK):
        part = features[start : start + CHUNK]
        try:
            sub = curves.subset(part)
        except NotImplementedError:
            return curves.loss(np.full(curves.n_features, c))[features]
        out[start : start + part.size] = sub.loss(np.full(part.size, c))
    return out


def _vertex_ties(curves: LossCurves, C: np.ndarray, place: np.ndarray, F: np.ndarray) -> np.ndarray:
    r"""Features of non-convex curves at an optimum tied with another vertex (mask).

    Exchanging a whole feature i (C = 1) with an empty one j (C = 0) changes the loss by
    :math:`\Delta_i - \Delta_j`, :math:`\Delta = \ell(0) - \ell(1)`; moving the fraction
    :math:`\phi` of a non-convex feature f to j (empty) or i (whole) by
    :math:`[\ell_j(\phi) - \ell_j(0)] - [\ell_f(\phi) - \ell_f(0)]` or
    :math:`[\ell_i(\phi) - \ell_i(1)] - [\ell_f(\phi) - \ell_f(1)]`. A change of zero is a
    tie: a small change of the parameters may make the other vertex optimal, so C jumps.
    Only the non-convex curves are evaluated.
    """
    n = curves.n_features
    tied = np.zeros(n, dtype=bool)
    convex = curves.shape_mask(Shape.CONVEX)
    if convex.all():
        return tied
    others = np.flatnonzero(~convex)
    at = lambda c: _losses_at(curves, others, c)  # noqa: E731
    sits = place[others] % TIGHT
    gain = at(0.0)
    gain -= at(1.0)
    whole, empty = (sits == AT_ONE) & (gain != 0), (sits == AT_ZERO) & (gain > 0)
    del sits
    scale = float(np.max(np.abs(gain), initial=0.0))
    tol = TIE_RTOL * scale
    mark = np.zeros(others.size, dtype=bool)
    if whole.any() and empty.any():
        low, high = float(np.min(gain[whole])), float(np.max(gain[empty]))
        if low - high <= tol:
            mark |= (whole & (gain <= high + tol)) | (empty & (gain >= low - tol))
    del gain
    fractions = F[~convex[F]]
    if fractions.size == 1:
        f = int(np.searchsorted(others, fractions[0]))
        at_phi = at(float(C[fractions[0]]))
        zero = at(0.0)
        to_empty = (at_phi - zero) - (at_phi[f] - zero[f])
        del zero
        one = at(1.0)
        to_whole = (at_phi - one) - (at_phi[f] - one[f])
        swap = (empty & (np.abs(to_empty) <= tol)) | (whole & (np.abs(to_whole) <= tol))
        if swap.any():
            mark |= swap
            mark[f] = True
    tied[others] = mark
    return tied
