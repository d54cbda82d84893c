r"""Loss-curve families: the loss :math:`\ell_i(C)` a feature incurs when it holds capacity C.

Glossary: ``C`` capacity in [0, 1], ``v`` importance of a quadratic-model feature, ``K``
fourth moment (plain kurtosis) of its input, ``I`` importance of an autoencoder feature,
``lam`` multiplier (marginal value of a dimension), ``mu`` the quadratic model's level
:math:`\sqrt{\lambda/2}`. Each family evaluates, per feature and vectorised over leading
axes, the loss :math:`\ell_i(C)`, the marginal benefit :math:`-\ell_i'(C)` and the curvature
:math:`\ell_i''(C)`, using the formulas derived symbolically in ``derivations/`` (see
:mod:`capopt._formulas`), and tells the solvers what they need to certify an answer: the
one-sided marginals at kinks, the exact minimum of :math:`\ell_i(c) + \lambda c` (the
Lagrangian dual), and the scale of its losses.

A family also declares what it knows beyond its curves, each with a documented default,
so that every consumer reads the family instead of asking what class it is:
:meth:`~LossCurves.parameters` (named parameters with their partials, for
:func:`capopt.sensitivity`), :meth:`~LossCurves.model` (an explicit model with its loss,
optimal embedding and trainer, for :func:`capopt.compare` and :func:`capopt.crosscheck`),
:meth:`~LossCurves.cvxpy_objective` (its disciplined convex form, for the ``cvxpy``
reference method), :meth:`~LossCurves.kernel_arrays` (the arrays numba kernels read) and
:attr:`~LossCurves.exact_method` (a method exact for it whatever its shapes).

Adding a family
---------------
One class in one module, nothing else edited:

1. Subclass :class:`LossCurves`; implement :attr:`~LossCurves.n_features`,
   :meth:`~LossCurves.loss`, :meth:`~LossCurves.marginal`, :meth:`~LossCurves.curvature`
   and :attr:`~LossCurves.shapes` (vectorised over leading axes of C). Every solver,
   certificate and :mod:`capopt.testing` strategy (``problems(families=...)``,
   ``check_certificate``) then works on it.
2. Override what the defaults get wrong or slow: :meth:`~LossCurves.one_sided_marginals`
   at kinks, :meth:`~LossCurves.capacity_at` and :meth:`~LossCurves.lagrangian_minimum`
   in closed form, :meth:`~LossCurves.loss_range`, :meth:`~LossCurves.normalized` and
   :meth:`~LossCurves.subset` (scales far from 1), :attr:`~LossCurves.assumptions`
   (anything a certificate must take on trust).
3. Declare what else it knows: :meth:`~LossCurves.parameters` (derivatives in them
   follow), :meth:`~LossCurves.model` (an :class:`capopt.models.ExplicitModel`:
   ``compare`` scores W with its loss, ``crosscheck`` trains it),
   :meth:`~LossCurves.cvxpy_objective`.
4. Derive its formulas in ``derivations/`` and call the generated forms.

``tests/test_new_family.py`` defines such a family in the test file and runs every
consumer on it.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from . import _formulas as F
from ._validation import as_float_array
from ._typing import ArrayLike

if TYPE_CHECKING:
    from .models import ExplicitModel

__all__ = [
    "Shape",
    "Parameter",
    "LossCurves",
    "QuadraticCurves",
    "LinearAutoencoderCurves",
    "quadratic",
    "linear_autoencoder",
    "gated_kurtosis",
]


class Shape(str, enum.Enum):
    """Shape of a loss curve on [0, 1], equivalently the returns on capacity.

    ``CONVEX`` diminishing returns (interior, polysemantic optima possible), ``LINEAR``
    constant returns, ``CONCAVE`` increasing returns (all-or-nothing), ``IRREGULAR`` a
    curve that is neither, ``MIXED`` a family holding both convex and concave curves (a
    non-convex allocation problem).
    """

    CONVEX = "convex"
    LINEAR = "linear"
    CONCAVE = "concave"
    MIXED = "mixed"
    IRREGULAR = "irregular"


def combined_shape(shapes: Iterable[Shape]) -> Shape:
    """Shape of a family from the shapes of its curves (linear curves combine with either)."""
    kinds = set(shapes) - {Shape.LINEAR}
    if Shape.IRREGULAR in kinds:
        return Shape.IRREGULAR
    if not kinds:
        return Shape.LINEAR
    if kinds == {Shape.CONVEX}:
        return Shape.CONVEX
    if kinds == {Shape.CONCAVE}:
        return Shape.CONCAVE
    return Shape.MIXED


#: Integer code of each per-curve shape, for families that classify their curves in bulk.
SHAPE_CODES = {shape: code for code, shape in enumerate(Shape)}
_SHAPE_BY_CODE = np.array(list(Shape), dtype=object)


def _readonly(a: ArrayLike) -> np.ndarray:
    out = np.array(a, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Parameter:
    r"""One named parameter of a family, and its partials at fixed capacities.

    Attributes
    ----------
    name : str
        As the family's constructor calls it (``"importance"``, ``"kurtosis"``,
        ``"values"``).
    shape : tuple of int
        The parameter's shape: (N,), or (N, P) for P values per feature.
    marginal : ndarray, shape (N, P)
        :math:`\partial m_j / \partial \theta_{jp}` (:math:`m = -\ell'`).
    loss : ndarray, shape (N, P)
        :math:`\partial \ell_j / \partial \theta_{jp}`.
    loss_power : float
        u such that multiplying every loss by s multiplies the parameter by :math:`s^u`
        (the partials above then scale by :math:`s^{1 - u}`): 1/2 for the quadratic
        model's importances, 0 for its kurtoses, 1 for the linear autoencoder's importances
        and a table's values. The sensitivities work in the solver's units with it.
    """

    name: str
    shape: tuple[int, ...]
    marginal: np.ndarray
    loss: np.ndarray
    loss_power: float

    @classmethod
    def per_feature(cls, name: str, marginal: ArrayLike, loss: ArrayLike, n: int,
                    loss_power: float) -> Parameter:
        """A parameter with one value per feature, its partials broadcast to (N, 1)."""
        column = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).reshape(n, 1)  # noqa: E731
        return cls(name, (n,), column(marginal), column(loss), loss_power)


class LossCurves(abc.ABC):
    r"""A family of N loss curves :math:`\ell_i : [0, 1] \to \mathbb{R}`, one per feature.

    Subclasses implement :meth:`loss`, :meth:`marginal`, :meth:`curvature` and
    :attr:`shapes`. Every method takes ``C`` of shape (..., N) (or anything broadcasting to
    it) and returns an array of the broadcast shape.

    The certificate of a solution also reads :meth:`one_sided_marginals` (kinks),
    :meth:`lagrangian_minimum` (the dual bound), :meth:`loss_range` (the scale of the
    losses) and :attr:`assumptions` (what the family cannot prove about itself); the
    defaults suit smooth curves of known shape.
    """

    @property
    @abc.abstractmethod
    def n_features(self) -> int:
        """Number of features N."""

    @abc.abstractmethod
    def loss(self, C: ArrayLike) -> np.ndarray:
        r""":math:`\ell_i(C_i)` per feature."""

    @abc.abstractmethod
    def marginal(self, C: ArrayLike) -> np.ndarray:
        r"""Marginal benefit :math:`-\ell_i'(C_i)` per feature."""

    @abc.abstractmethod
    def curvature(self, C: ArrayLike) -> np.ndarray:
        r""":math:`\ell_i''(C_i)` per feature."""

    @property
    @abc.abstractmethod
    def shapes(self) -> tuple[Shape, ...]:
        """Shape of each feature's curve."""

    @property
    def shape(self) -> Shape:
        """Shape of the family: convex, linear, concave, mixed, or irregular."""
        return combined_shape(self.shapes)

    def shape_mask(self, shape: Shape) -> np.ndarray:
        """Boolean mask, shape (N,), of the features whose curve has ``shape``."""
        return np.fromiter((s is shape for s in self.shapes), dtype=bool, count=self.n_features)

    @property
    def assumptions(self) -> tuple[str, ...]:
        """What a certificate for this family takes on trust; empty when nothing is."""
        return ()

    @property
    def shapes_proven(self) -> bool:
        """Whether every curve is exactly of the shape :attr:`shapes` gives it.

        Methods whose own bound rests on the shapes (the vertex enumeration) claim it only
        when this holds. True for the closed-form families; tables check their knots.
        """
        return not self.assumptions

    def one_sided_marginals(self, C: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        r"""Right and left marginals :math:`-\ell_i'(C^+)`, :math:`-\ell_i'(C^-)`.

        They differ only at a kink of a curve; at such a point the KKT condition asks the
        multiplier to lie between them. Smooth curves return the marginal twice.
        """
        m = self.marginal(C)
        return m, m

    def capacity_at(self, lam: ArrayLike) -> np.ndarray:
        r"""Smallest minimiser of :math:`\ell_i(C) + \lambda C` over [0, 1], per feature.

        For a convex curve this is the feature's allocation at multiplier ``lam`` (the
        "response" that water-filling sums): :math:`C_i(\lambda) = 0` if
        :math:`-\ell_i'(0) \le \lambda`, 1 if :math:`-\ell_i'(1) > \lambda`, otherwise the
        root of :math:`-\ell_i'(C) = \lambda`; for a concave one it is an end point. It is
        the default bisection for convex and linear curves (60 halvings reach float64
        resolution on [0, 1]); families with a closed form override it.

        Parameters
        ----------
        lam : float or array_like broadcasting against (N,)

        Returns
        -------
        ndarray, shape broadcast(lam, (N,))
        """
        lam = np.asarray(lam, dtype=np.float64)
        shape = np.broadcast_shapes(lam.shape, (self.n_features,))
        lo, hi = np.zeros(shape), np.ones(shape)
        starts = self._marginal_above(lo, lam)
        fills = self._marginal_above(hi, lam)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            above = self._marginal_above(mid, lam)
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        C = np.where(~starts, 0.0, np.where(fills, 1.0, 0.5 * (lo + hi)))
        concave = self.shape_mask(Shape.CONCAVE)
        if concave.any():
            ends = self.loss(np.stack([np.zeros(self.n_features), np.ones(self.n_features)]))
            C = np.where(concave, (ends[0] - ends[1] > lam).astype(np.float64), C)
        return C

    def _marginal_above(self, C: np.ndarray, lam: np.ndarray) -> np.ndarray:
        r"""Whether :math:`-\ell_i'(C^+) > \lambda` (:math:`-\ell_i'(1^-)` at C = 1), shape of C.

        The test :meth:`capacity_at` bisects on: for a convex curve, whether its response
        to ``lam`` lies above C. The default reads :meth:`marginal`.
        """
        return self.marginal(C) > lam

    def lagrangian_minimum(self, lam: float) -> np.ndarray:
        r""":math:`\min_{0 \le c \le 1} \ell_i(c) + \lambda c` per feature, exactly.

        The terms of the Lagrangian dual bound. A convex curve attains it at
        :meth:`capacity_at`, a concave or linear one at an end point; an irregular curve
        has no exact closed form here and gives ``-inf`` (no bound), unless the family
        overrides this (tabulated curves are exact at their knots). A family whose
        responses are only approximate bounds its convex curves' terms from below instead
        (:meth:`_convex_lagrangian_minimum`).
        """
        n = self.n_features
        ends = self.loss(np.stack([np.zeros(n), np.ones(n)]))
        out = np.minimum(ends[0], ends[1] + lam)
        convex = self.shape_mask(Shape.CONVEX)
        if convex.any():
            out = np.where(convex, self._convex_lagrangian_minimum(lam, convex), out)
        return np.where(self.shape_mask(Shape.IRREGULAR), -np.inf, out)

    def _convex_lagrangian_minimum(self, lam: float, convex: np.ndarray) -> np.ndarray:
        r""":meth:`lagrangian_minimum` of the ``convex`` curves (other entries unused),
        shape (N,): the value at the response :meth:`capacity_at`, exact when it is."""
        c = self.capacity_at(lam)
        return self.loss(c) + lam * c

    def benefit(self, C: ArrayLike) -> np.ndarray:
        r"""Loss removed by capacity C, :math:`\ell_i(0) - \ell_i(C)`.

        The default subtracts; families with a closed form override it so that small
        benefits of large losses keep their digits.
        """
        C = self._capacities(C)
        return self.loss(np.zeros(np.broadcast_shapes(C.shape, (self.n_features,)))) - self.loss(C)

    def benefit_lipschitz(self) -> np.ndarray:
        r"""A proven bound on :math:`\max(0, \max_{[0, 1]} m_i)` per curve, NaN where unknown.

        A monotone marginal (convex, concave or linear curve) peaks at an end; an irregular
        curve has no bound the family can prove (NaN) unless it overrides this.
        """
        n = self.n_features
        ends = self.marginal(np.stack([np.zeros(n), np.ones(n)]))
        bound = np.maximum(0.0, np.max(ends, axis=0))
        return np.where(self.shape_mask(Shape.IRREGULAR), np.nan, bound)

    def loss_range(self) -> np.ndarray:
        r"""How much each loss can change over [0, 1], :math:`\max \ell_i - \min \ell_i`.

        :math:`|\ell_i(0) - \ell_i(1)|` for monotone curves (the default); the scale against
        which a certificate judges loss residuals.
        """
        n = self.n_features
        ends = self.loss(np.stack([np.zeros(n), np.ones(n)]))
        return np.abs(ends[0] - ends[1])

    def total_loss(self, C: ArrayLike) -> np.ndarray:
        r""":math:`\sum_i \ell_i(C_i)` over the last axis."""
        return np.sum(self.loss(C), axis=-1)

    def normalized(self) -> tuple[LossCurves, int, float]:
        r"""An equivalent family in units the solvers compute in.

        Returns ``(family, e, constant)`` with :math:`\sum_i \ell_i = 2^e \sum_i
        \hat\ell_i + \text{constant}`: the same minimisers, the losses of ``family`` of order
        1, and the constant (the losses of curves that do not depend on capacity) in the
        user's units. The default is the family itself, ``e = 0``, no constant.
        """
        return self, 0, 0.0

    def subset(self, features: np.ndarray) -> LossCurves:
        """The family of the given features only (index array), in their order."""
        raise NotImplementedError(f"{type(self).__name__} has no subset()")

    # What the family knows beyond its curves (module docstring): each optional, with a
    # default that every consumer handles.

    #: A method (a key of :data:`capopt.solvers.METHODS`) exact for this family whatever
    #: its shapes, which ``method="auto"`` picks; None (default): picked by shape.
    exact_method: ClassVar[str | None] = None

    def parameters(self, C: ArrayLike) -> tuple[Parameter, ...]:
        """The family's named parameters with their partials at capacities ``C`` (N,),
        which :func:`capopt.sensitivity` differentiates in. Default: none (the budget only)."""
        return ()

    def structure_terms(self, C: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""What the KKT system reads at capacities ``C`` (N,): the one-sided marginals
        :math:`-\ell_i'(C_i^\pm)` and the curvatures :math:`\ell_i''(C_i)`, each (N,).
        Default: :meth:`one_sided_marginals` and :meth:`curvature`; a family with a fused
        kernel overrides it."""
        right, left = self.one_sided_marginals(C)
        return right, left, self.curvature(C)

    def model(self) -> ExplicitModel | None:
        """The explicit model whose optimal per-feature losses these curves are (its exact
        loss at an embedding, the embedding that attains an optimum, its trainer), or None
        (default): :func:`capopt.compare` then scores capacities only and
        :func:`capopt.crosscheck` refuses the family."""
        return None

    def cvxpy_objective(self, x: Any) -> Any:
        r""":math:`\sum_i \ell_i(x_i)`, up to a constant, as a disciplined convex cvxpy
        expression of the variable ``x`` (N,), for the ``cvxpy`` reference method; None
        (default) when the family has no such form."""
        return None

    def kernel_arrays(self) -> tuple[np.ndarray, ...] | None:
        """The float64 arrays the family's numba kernels read, or None (default): the
        solvers' fast paths for a family call their kernels with these."""
        return None

    def marginal_range_log2(self) -> tuple[np.ndarray, np.ndarray] | None:
        r""":math:`\log_2` of the smallest and largest marginal of each curve over [0, 1].

        ``-inf`` for a flat curve. Families that return it (the importance families) can be
        split into tiers of separated scale (:mod:`capopt.solvers.units`); ``None``
        (default) means one tier.
        """
        return None

    def scale_span_log2(self) -> float:
        """An upper bound on log2(largest marginal / smallest positive one), 0 if unknown.

        Cheap where the family caches its extremes; the solvers split a family into tiers
        only when this exceeds what one unit can hold.
        """
        ranges = self.marginal_range_log2()
        if ranges is None or not np.isfinite(ranges[1]).any():
            return 0.0
        finite = np.isfinite(ranges[1])
        return float(np.max(ranges[1][finite]) - np.min(ranges[0][finite]))

    def _capacities(self, C: ArrayLike) -> np.ndarray:
        """Validate capacities ``C`` against the family's feature count."""
        arr = as_float_array(C, "C")
        if arr.ndim and arr.shape[-1] not in (1, self.n_features):
            raise ValueError(
                f"C must have {self.n_features} entries on its last axis (one per feature), "
                f"got shape {arr.shape}"
            )
        return arr


def _importance(importance: ArrayLike, name: str) -> np.ndarray:
    v = as_float_array(importance, name, allow_empty=False)
    if v.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array with one entry per feature, got shape {v.shape}")
    return v


#: Largest |log2| of an importance (times |K - 1| where that is larger) the solvers use as
#: given; beyond it a family is rescaled by a power of two (exact), so that the squares the
#: formulas form stay far inside float64.
SAFE_EXPONENT = 200


def _power_of_two_unit(top_log2: float) -> int:
    """Exponent e of the power of two 2^e closest above a magnitude 2^top_log2."""
    return int(np.ceil(top_log2))


@dataclass(frozen=True, repr=False)
class QuadraticCurves(LossCurves):
    r"""Loss curves of the quadratic model :math:`\hat y = x^\top W^\top W x + b` (theory §3).

    .. math::

        \ell_i(C) = \frac{2 (K_i - 1)\, v_i^2 (1 - C)}{2 + (K_i - 3) C},
        \qquad -\ell_i'(C) = \frac{2 (K_i - 1)^2 v_i^2}{(2 + (K_i - 3) C)^2}.

    Convex for :math:`K_i > 3`, linear at :math:`K_i = 3`, concave for :math:`K_i < 3`.
    A feature with :math:`v_i \le 0` can gain nothing from capacity: the model's quadratic
    form is positive semi-definite, so its diagonal weight :math:`a_i \ge 0` sits at 0 and
    :math:`\ell_i(C) = (K_i - 1) v_i^2` is flat; such features are ignored by every solver.
    A feature with :math:`K_i = 1` has :math:`x_i^2 \equiv 1`, absorbed by the bias, and a
    flat zero curve.

    The formulas are evaluated in the forms of :mod:`capopt._formulas`, accurate for
    importances anywhere in the float64 range and kurtoses within rounding of 1 or 3; a
    loss overflows only where its value does. One kurtosis for all features is kept as a
    scalar (``kurtosis`` is then a read-only broadcast view).

    Use :func:`quadratic` to build one.
    """

    importance: np.ndarray
    _K: float | np.ndarray = field(repr=False)
    _codes: np.ndarray = field(init=False, repr=False)
    _shape: Shape = field(init=False, repr=False)
    _flat: np.ndarray | None = field(init=False, repr=False)
    _extremes: tuple[float, float, float, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        v, K = self.importance, self._K
        flat = (v <= 0) | (K == 1)
        object.__setattr__(self, "_flat", _frozen(flat) if flat.any() else None)
        useful_v = v if self._flat is None else v[~flat]
        useful_K = K if np.ndim(K) == 0 or self._flat is None else np.asarray(K)[~flat]
        extremes = (0.0, 0.0, 3.0, 3.0)
        if useful_v.size:
            extremes = (
                float(np.min(useful_v)), float(np.max(useful_v)),
                float(np.min(useful_K)), float(np.max(useful_K)),
            )
        object.__setattr__(self, "_extremes", extremes)
        codes = np.select(
            [flat | (K == 3), K > 3],
            [SHAPE_CODES[Shape.LINEAR], SHAPE_CODES[Shape.CONVEX]],
            SHAPE_CODES[Shape.CONCAVE],
        ).astype(np.int8)
        object.__setattr__(self, "_codes", _frozen(codes))
        # The family is immutable; classify it once rather than on every solve() check.
        present = np.flatnonzero(np.bincount(codes, minlength=len(Shape)))
        object.__setattr__(self, "_shape", combined_shape(_SHAPE_BY_CODE[present].tolist()))

    @property
    def kurtosis(self) -> np.ndarray:
        """:math:`K_i`, shape (N,) (read-only; a broadcast view when one K is shared)."""
        return np.broadcast_to(self._K, self.importance.shape)

    @property
    def shared_kurtosis(self) -> float | None:
        """The kurtosis of every feature when one is shared, else None."""
        return float(self._K) if np.ndim(self._K) == 0 else None

    def kernel_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(v, K)`` as the numba kernels read them: float64 importances, shape (N,), and
        kurtoses, shape (1,) when one is shared (no copy of N values), else (N,)."""
        return self.importance, np.atleast_1d(np.asarray(self._K, dtype=np.float64))

    def _partials(self, C: ArrayLike, rows: int) -> np.ndarray:
        """The first ``rows`` rows of the fused kernel's marginal, curvature and partials at C
        (:data:`capopt._kernels.kkt.PARTIAL_ROWS`), in one pass."""
        from ._kernels.kkt import quadratic_partials

        out = np.empty((rows, self.n_features))
        quadratic_partials(np.ascontiguousarray(self._capacities(C), dtype=np.float64),
                           *self.kernel_arrays(), out)
        return out

    def structure_terms(self, C: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m, h = self._partials(C, 2)
        return m, m, h

    def parameters(self, C: ArrayLike) -> tuple[Parameter, ...]:
        """``importance`` (losses scale as v^2 at fixed K) and ``kurtosis``, their partials
        derived in ``derivations/quadratic.py``; a flat curve's loss partials are those of
        its constant :math:`(K - 1) v^2`."""
        _, _, dm_dv, dm_dK, dl_dv, dl_dK = self._partials(C, 6)
        n = self.n_features
        return (Parameter.per_feature("importance", dm_dv, dl_dv, n, 0.5),
                Parameter.per_feature("kurtosis", dm_dK, dl_dK, n, 0.0))

    def model(self) -> ExplicitModel:
        from .toy_models import QuadraticToyModel

        return QuadraticToyModel(self)

    def cvxpy_objective(self, x: Any) -> Any:
        r"""Convex and linear curves only (a concave one has a negative coefficient, which
        cvxpy refuses as non-DCP rather than solving wrongly):

        .. math:: \ell_i(x) = \frac{c_i}{\alpha_i + \beta_i x} + \text{const}

        with :math:`c_i` :func:`~capopt._formulas.quadratic_dcp_coefficient` and
        :math:`\alpha_i + \beta_i x` the curve's denominator; a linear curve is
        :math:`-m_i x`, a flat one constant."""
        import cvxpy as cp  # slow to import; only the reference method needs it

        useful = np.ones(self.n_features, dtype=bool) if self._flat is None else ~self._flat
        linear = useful & self.shape_mask(Shape.LINEAR)
        curved = np.flatnonzero(useful & ~linear)
        straight = np.flatnonzero(linear)
        objective = 0
        if curved.size:
            v, K = self.importance[curved], self.kurtosis[curved]
            denominator = F.quadratic_denominator_intercept(K) + cp.multiply(
                F.quadratic_denominator_slope(K), x[curved])
            objective = F.quadratic_dcp_coefficient(v, K) @ cp.inv_pos(denominator)
        if straight.size:
            objective = objective - self.marginal(np.zeros(self.n_features))[straight] @ x[straight]
        return objective

    @property
    def n_features(self) -> int:
        return self.importance.shape[0]

    def _evaluate(self, formula: Callable[..., np.ndarray], C: ArrayLike) -> np.ndarray:
        """``formula(C, v, K)`` with flat curves evaluated as zero-benefit ones."""
        C = self._capacities(C)
        if self._flat is None:
            return formula(C, self.importance, self._K)
        # v = 0, K = 3: zero benefit, and no 0/0 where K = 1 makes the denominator vanish.
        v = np.where(self._flat, 0.0, self.importance)
        K = np.where(self._flat, 3.0, self._K)
        return formula(C, v, K)

    def loss(self, C: ArrayLike) -> np.ndarray:
        out = self._evaluate(F.quadratic_loss, C)
        if self._flat is not None:
            # A flat feature keeps the loss of an unrepresented one, (K - 1) v^2, at any C.
            out = out + np.where(self._flat, F.quadratic_gain(self.importance, self._K), 0.0)
        return out

    def marginal(self, C: ArrayLike) -> np.ndarray:
        return self._evaluate(F.quadratic_marginal, C)

    def curvature(self, C: ArrayLike) -> np.ndarray:
        return self._evaluate(F.quadratic_curvature, C)

    def benefit(self, C: ArrayLike) -> np.ndarray:
        r"""Loss removed by capacity C, :math:`\ell_i(0) - \ell_i(C)`, without cancellation."""
        return self._evaluate(F.quadratic_benefit, C)

    def optimal_norm(self, C: ArrayLike) -> np.ndarray:
        r"""Loss-optimal squared norm :math:`a_i^*(C) = \|W_i\|^2` at capacity C.

        .. math:: a_i^*(C) = \frac{(K_i - 1) v_i C}{2 + (K_i - 3) C}
        """
        return self._evaluate(F.quadratic_optimal_norm, C)

    def capacity_at(self, lam: ArrayLike) -> np.ndarray:
        r"""Closed-form :meth:`LossCurves.capacity_at`.

        Convex curves answer the clipped response :math:`C_i(\mu)` at the level
        :math:`\mu = \sqrt{\lambda / 2}`, linear ones a step (0 at their own multiplier,
        the smallest minimiser), concave ones 1 exactly where their gain exceeds
        :math:`\lambda`.
        """
        lam = np.asarray(lam, dtype=np.float64)
        v = self.importance
        codes = self._codes
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            mu = F.quadratic_multiplier_level(lam)
            convex = np.clip(F.quadratic_response(mu, v, self._K), 0.0, 1.0)
            # Exact at the thresholds, where the response formula is only close to 0 or 1.
            convex = np.where(mu <= F.quadratic_full_level(v, self._K), 1.0, convex)
            convex = np.where(mu >= F.quadratic_ignore_level(v, self._K), 0.0, convex)
            step = (F.quadratic_full_multiplier(v, self._K) > lam).astype(np.float64)
            whole = (F.quadratic_gain(v, self._K) > lam).astype(np.float64)
        C = np.where(
            codes == SHAPE_CODES[Shape.CONVEX],
            convex,
            np.where(codes == SHAPE_CODES[Shape.CONCAVE], whole, step),
        )
        return C if self._flat is None else np.where(self._flat, 0.0, C)

    def lagrangian_minimum(self, lam: float) -> np.ndarray:
        c = self.capacity_at(lam)
        # At c in {0, 1} or the convex response, l(c) + lam c is the minimum by shape.
        return self.loss(c) + lam * c

    def loss_range(self) -> np.ndarray:
        gain = F.quadratic_gain(self.importance, self._K)
        return gain if self._flat is None else np.where(self._flat, 0.0, gain)

    def marginal_range_log2(self) -> tuple[np.ndarray, np.ndarray]:
        # The marginal is monotone: its ends m(0) and m(1) are its extremes over [0, 1].
        v, K = self.importance, self.kurtosis
        with np.errstate(divide="ignore", invalid="ignore"):
            ends = F.quadratic_log2_ignore_multiplier(v, K), F.quadratic_log2_full_multiplier(v, K)
        lo, hi = np.minimum(*ends), np.maximum(*ends)
        if self._flat is not None:
            lo, hi = np.where(self._flat, -np.inf, lo), np.where(self._flat, -np.inf, hi)
        return lo, hi

    def scale_span_log2(self) -> float:
        bottom, top, k_lo, k_hi = self._extremes
        if top == 0.0:
            return 0.0
        # Over [0, 1] a marginal lies between its ends m(0) and m(1), v^2 times a factor of K
        # alone: the ends at v = 1, in log2 (the squares of kurtoses beyond 1e154 overflow).
        factors = [F.quadratic_log2_full_multiplier(1.0, k_lo),
                   F.quadratic_log2_ignore_multiplier(1.0, k_lo),
                   F.quadratic_log2_ignore_multiplier(1.0, k_hi)]
        return float(2.0 * (np.log2(top) - np.log2(bottom)) + max(factors) - min(factors))

    def _unit_log2(self) -> tuple[float, float]:
        """log2 of the smallest and largest of v and v (K - 1): the magnitudes whose squares
        the formulas form (a marginal at 0 is (v (K - 1))^2 / 2)."""
        bottom, top, k_lo, k_hi = self._extremes
        return (
            float(np.log2(bottom) + min(0.0, np.log2(k_lo - 1.0))),
            float(np.log2(top) + max(0.0, np.log2(k_hi - 1.0))),
        )

    def normalized(self) -> tuple[QuadraticCurves, int, float]:
        if self._extremes[1] == 0.0:
            return self, 0, 0.0
        low, high = self._unit_log2()
        in_range = -SAFE_EXPONENT <= low and high <= SAFE_EXPONENT
        # A flat curve's constant loss is kept aside: scaled it could leave the range, and
        # unscaled a large one (v = -1e16) rounds away the others' gains in every total.
        v, constant = self.importance, 0.0
        if self._flat is not None:
            with np.errstate(over="ignore"):
                constant = math.fsum(
                    F.quadratic_gain(v[self._flat], self.kurtosis[self._flat]).tolist()
                )
            v = np.where(self._flat, 0.0, v)
        if in_range and constant == 0.0:
            return self, 0, 0.0
        # Losses scale as v^2: dividing v by 2^e (exact) divides them by 2^(2e).
        e = 0 if in_range else _power_of_two_unit(high)
        return QuadraticCurves(_frozen(np.ldexp(v, -e)), self._K), 2 * e, constant

    def subset(self, features: np.ndarray) -> QuadraticCurves:
        K = self._K if np.ndim(self._K) == 0 else _frozen(np.asarray(self._K)[features])
        return QuadraticCurves(_frozen(self.importance[features]), K)

    @property
    def shapes(self) -> tuple[Shape, ...]:
        return tuple(_SHAPE_BY_CODE[self._codes].tolist())

    @property
    def shape(self) -> Shape:
        return self._shape

    @property
    def shape_codes(self) -> np.ndarray:
        """:data:`SHAPE_CODES` of each feature's curve, int8, shape (N,) (read-only)."""
        return self._codes

    def shape_mask(self, shape: Shape) -> np.ndarray:
        return self._codes == SHAPE_CODES[shape]

    def __repr__(self) -> str:
        return f"QuadraticCurves(n_features={self.n_features}, shape={self.shape.value})"


@dataclass(frozen=True, repr=False)
class LinearAutoencoderCurves(LossCurves):
    r"""Loss curves of the linear autoencoder :math:`\hat x = W^\top W x` (theory §3).

    .. math:: \ell_i(C) = I_i (1 - C), \qquad -\ell_i'(C) = I_i.

    Constant returns: the optimum keeps the ``d`` most important features (PCA-like).
    Use :func:`linear_autoencoder` to build one.
    """

    importance: np.ndarray

    @property
    def n_features(self) -> int:
        return self.importance.shape[0]

    def loss(self, C: ArrayLike) -> np.ndarray:
        return F.linear_autoencoder_loss(self._capacities(C), self.importance)

    def marginal(self, C: ArrayLike) -> np.ndarray:
        return F.linear_autoencoder_marginal(self._capacities(C), self.importance)

    def curvature(self, C: ArrayLike) -> np.ndarray:
        return F.linear_autoencoder_curvature(self._capacities(C), self.importance)

    def capacity_at(self, lam: ArrayLike) -> np.ndarray:
        """The step of a linear curve: 1 where the importance exceeds ``lam``, else 0."""
        return (self.importance > np.asarray(lam, dtype=np.float64)).astype(np.float64)

    def marginal_range_log2(self) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore"):
            level = np.log2(self.importance)
        return level, level

    def normalized(self) -> tuple[LinearAutoencoderCurves, int, float]:
        top = float(np.max(self.importance))
        positive = self.importance[self.importance > 0]
        if top == 0 or (2.0**-SAFE_EXPONENT <= positive.min() and top <= 2.0**SAFE_EXPONENT):
            return self, 0, 0.0
        e = _power_of_two_unit(np.log2(top))
        return LinearAutoencoderCurves(_frozen(np.ldexp(self.importance, -e))), e, 0.0

    def subset(self, features: np.ndarray) -> LinearAutoencoderCurves:
        return LinearAutoencoderCurves(_frozen(self.importance[features]))

    def parameters(self, C: ArrayLike) -> tuple[Parameter, ...]:
        """``importance``, which scales as the loss."""
        C = self._capacities(C)
        I = self.importance  # noqa: E741 -- the importance's name in the paper
        return (Parameter.per_feature("importance", F.linear_autoencoder_marginal_d_importance(C, I),
                                      F.linear_autoencoder_loss_d_importance(C, I), self.n_features, 1.0),)

    def model(self) -> ExplicitModel:
        from .toy_models import LinearAutoencoderModel

        return LinearAutoencoderModel(self)

    def cvxpy_objective(self, x: Any) -> Any:
        r""":math:`\ell_i(x) = I_i (1 - x)`: :math:`-I^\top x` up to a constant."""
        return -(self.importance @ x)

    @property
    def shapes(self) -> tuple[Shape, ...]:
        return (Shape.LINEAR,) * self.n_features

    @property
    def shape(self) -> Shape:
        return Shape.LINEAR

    def shape_mask(self, shape: Shape) -> np.ndarray:
        return np.full(self.n_features, shape is Shape.LINEAR)

    def __repr__(self) -> str:
        return f"LinearAutoencoderCurves(n_features={self.n_features})"


def quadratic(importance: ArrayLike, kurtosis: ArrayLike) -> QuadraticCurves:
    r"""Loss curves of the quadratic toy model, one per feature.

    Parameters
    ----------
    importance : array_like, shape (N,)
        :math:`v_i`, the weight of :math:`x_i^2` in the target :math:`y = \sum_i v_i x_i^2`.
        Finite, anywhere in the float64 range; a feature with :math:`v_i \le 0` has a flat
        curve and is ignored.
    kurtosis : float or array_like, shape (N,)
        :math:`K_i = E[x_i^4] \ge 1` (plain, not excess, kurtosis of unit-variance inputs),
        one for all features or one per feature. See :func:`gated_kurtosis` for sparse inputs.

    Returns
    -------
    QuadraticCurves

    Raises
    ------
    ValueError
        On empty or non-1-d ``importance``, NaN or infinite entries, kurtosis below 1 or of
        a shape other than () or (N,).

    Examples
    --------
    >>> curves = quadratic([2.0, 1.0], 7.0)
    >>> curves.shape.value
    'convex'
    >>> round(float(curves.loss([5 / 6, 1 / 6]).sum()), 12)     # the worked case of theory §3
    5.25
    >>> quadratic([1.0, 1.0], [2.0, 5.0]).shape.value
    'mixed'
    """
    v = _importance(importance, "importance")
    K = as_float_array(kurtosis, "kurtosis")
    if K.shape not in ((), v.shape):
        raise ValueError(
            f"kurtosis must be a scalar or have one entry per feature (shape {v.shape}), "
            f"got shape {K.shape}"
        )
    if np.any(K < 1):
        raise ValueError(
            "kurtosis must be >= 1 (E[x^4] >= E[x^2]^2 = 1 for unit-variance inputs), got "
            f"min {K.min():g}"
        )
    return QuadraticCurves(_readonly(v), float(K) if K.ndim == 0 else _readonly(K))


def linear_autoencoder(importance: ArrayLike) -> LinearAutoencoderCurves:
    r"""Loss curves of the linear autoencoder with importance-weighted MSE.

    Parameters
    ----------
    importance : array_like, shape (N,)
        :math:`I_i \ge 0`, the weight of feature i's squared reconstruction error. Negative
        weights are rejected: they reward error without bound, so no optimum exists.

    Returns
    -------
    LinearAutoencoderCurves

    Examples
    --------
    >>> linear_autoencoder([3.0, 1.0]).loss([0.5, 0.25])
    array([1.5 , 0.75])
    """
    I = _importance(importance, "importance")
    if np.any(I < 0):
        raise ValueError(
            "importance must be >= 0 for the linear autoencoder (a negative weight rewards "
            f"reconstruction error without bound), got min {I.min():g}"
        )
    return LinearAutoencoderCurves(_readonly(I))


def gated_kurtosis(density: ArrayLike, base: str = "gaussian") -> np.ndarray | float:
    r"""Kurtosis of a sparse input :math:`x = B z / \sqrt{p}`, :math:`B \sim \mathrm{Bernoulli}(p)`.

    .. math:: K = E[x^4] = K_z / p, \qquad E[x^2] = 1,

    with :math:`K_z = 3` (Gaussian z), 1 (Rademacher) or 9/5 (centred uniform).

    Parameters
    ----------
    density : float or array_like
        :math:`p \in (0, 1]`, the probability that the feature is active; the Toy Models of
        Superposition sparsity is :math:`S = 1 - p`.
    base : {"gaussian", "rademacher", "uniform"}
        Distribution of the active value z (unit variance).

    Examples
    --------
    >>> gated_kurtosis(1.0, "uniform")      # dense uniform features: increasing returns
    1.8
    >>> gated_kurtosis(0.25)               # sparse Gaussian features: diminishing returns
    12.0
    """
    if base not in F.BASE_FOURTH_MOMENT:
        raise ValueError(
            f"base must be one of {sorted(F.BASE_FOURTH_MOMENT)}, got {base!r}"
        )
    p = as_float_array(density, "density")
    if np.any((p <= 0) | (p > 1)):
        raise ValueError(f"density must lie in (0, 1], got {p.min() if np.any(p <= 0) else p.max():g}")
    K = F.gated_kurtosis(p, F.BASE_FOURTH_MOMENT[base])
    return float(K) if K.ndim == 0 else K
