r"""Loss-curve families: the loss :math:`\ell_i(C)` a feature incurs when it holds capacity C.

Glossary: ``C`` capacity in [0, 1], ``v`` importance of a quadratic-model feature, ``K``
fourth moment (plain kurtosis) of its input, ``I`` importance of an autoencoder feature,
``lam`` multiplier (marginal value of a dimension). Each family evaluates, per feature and
vectorised over leading axes, the loss :math:`\ell_i(C)`, the marginal benefit
:math:`-\ell_i'(C)` and the curvature :math:`\ell_i''(C)`, using the formulas derived
symbolically in ``derivations/`` (see :mod:`capopt._formulas`).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field

import numpy as np

from . import _formulas as F
from ._validation import as_float_array

__all__ = [
    "Shape",
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
    curve that is neither (only the grid dynamic programme solves it), ``MIXED`` a family
    holding both convex and concave curves (a non-convex allocation problem).
    """

    CONVEX = "convex"
    LINEAR = "linear"
    CONCAVE = "concave"
    MIXED = "mixed"
    IRREGULAR = "irregular"


def combined_shape(shapes) -> Shape:
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
_SHAPE_CODES = {shape: code for code, shape in enumerate(Shape)}
_SHAPE_BY_CODE = np.array(list(Shape), dtype=object)


def _readonly_codes(codes: np.ndarray) -> np.ndarray:
    codes.setflags(write=False)
    return codes


def _readonly(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out


class LossCurves(abc.ABC):
    r"""A family of N loss curves :math:`\ell_i : [0, 1] \to \mathbb{R}`, one per feature.

    Subclasses implement :meth:`loss`, :meth:`marginal`, :meth:`curvature` and
    :attr:`shapes`. Every method takes ``C`` of shape (..., N) (or anything broadcasting to
    it) and returns an array of the broadcast shape.
    """

    @property
    @abc.abstractmethod
    def n_features(self) -> int:
        """Number of features N."""

    @abc.abstractmethod
    def loss(self, C) -> np.ndarray:
        r""":math:`\ell_i(C_i)` per feature."""

    @abc.abstractmethod
    def marginal(self, C) -> np.ndarray:
        r"""Marginal benefit :math:`-\ell_i'(C_i)` per feature."""

    @abc.abstractmethod
    def curvature(self, C) -> np.ndarray:
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

    def capacity_at(self, lam) -> np.ndarray:
        r"""Smallest minimiser of :math:`\ell_i(C) + \lambda C` over [0, 1], per feature.

        For a convex curve this is the feature's allocation at multiplier ``lam`` (the
        "response" that water-filling sums): :math:`C_i(\lambda) = 0` if
        :math:`-\ell_i'(0) \le \lambda`, 1 if :math:`-\ell_i'(1) > \lambda`, otherwise the
        root of :math:`-\ell_i'(C) = \lambda`. Only meaningful for convex or linear curves.

        The default finds the root by vectorised bisection on the non-increasing marginal
        (60 halvings reach float64 resolution on [0, 1]); families with a closed-form
        inverse override it.

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
        m0 = np.broadcast_to(self.marginal(lo), shape)
        m1 = np.broadcast_to(self.marginal(hi), shape)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            above = self.marginal(mid) > lam
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        C = 0.5 * (lo + hi)
        return np.where(m0 <= lam, 0.0, np.where(m1 > lam, 1.0, C))

    def total_loss(self, C) -> np.ndarray:
        r""":math:`\sum_i \ell_i(C_i)` over the last axis."""
        return np.sum(self.loss(C), axis=-1)

    def _capacities(self, C) -> np.ndarray:
        """Validate capacities ``C`` against the family's feature count."""
        arr = as_float_array(C, "C")
        if arr.ndim and arr.shape[-1] not in (1, self.n_features):
            raise ValueError(
                f"C must have {self.n_features} entries on its last axis (one per feature), "
                f"got shape {arr.shape}"
            )
        return arr


def _importance(importance, name: str) -> np.ndarray:
    v = as_float_array(importance, name, allow_empty=False)
    if v.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array with one entry per feature, got shape {v.shape}")
    return v


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

    Use :func:`quadratic` to build one.
    """

    importance: np.ndarray
    kurtosis: np.ndarray
    _v: np.ndarray = field(init=False, repr=False)
    _K: np.ndarray = field(init=False, repr=False)
    _codes: np.ndarray = field(init=False, repr=False)
    _shape: Shape = field(init=False, repr=False)
    _flat_loss: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        # Flat curves (v <= 0, or K = 1) are evaluated as v = 0, which the derived formulas
        # turn into a zero benefit; K = 1 is also moved to 3 because the formulas are 0/0
        # at K = 1, C = 1 (2 + (K - 3) C vanishes there).
        v, K = self.importance, self.kurtosis
        object.__setattr__(self, "_v", _readonly(np.where(K == 1, 0.0, np.maximum(v, 0.0))))
        object.__setattr__(self, "_K", _readonly(np.where(K == 1, 3.0, K)))
        # A flat feature keeps the loss of an unrepresented one, (K - 1) v^2, at any C.
        object.__setattr__(self, "_flat_loss", _readonly((K - 1.0) * (v * v - self._v * self._v)))
        codes = np.select(
            [(self._v == 0) | (self._K == 3), self._K > 3],
            [_SHAPE_CODES[Shape.LINEAR], _SHAPE_CODES[Shape.CONVEX]],
            _SHAPE_CODES[Shape.CONCAVE],
        ).astype(np.int8)
        object.__setattr__(self, "_codes", _readonly_codes(codes))
        # The family is immutable; classify it once rather than on every solve() check.
        object.__setattr__(self, "_shape", combined_shape(_SHAPE_BY_CODE[np.unique(codes)].tolist()))

    @property
    def n_features(self) -> int:
        return self.importance.shape[0]

    def loss(self, C) -> np.ndarray:
        C = self._capacities(C)
        return F.quadratic_loss(C, self._v, self._K) + self._flat_loss

    def marginal(self, C) -> np.ndarray:
        return F.quadratic_marginal(self._capacities(C), self._v, self._K)

    def curvature(self, C) -> np.ndarray:
        return F.quadratic_curvature(self._capacities(C), self._v, self._K)

    def optimal_norm(self, C) -> np.ndarray:
        r"""Loss-optimal squared norm :math:`a_i^*(C) = \|W_i\|^2` at capacity C.

        .. math:: a_i^*(C) = \frac{(K_i - 1) v_i C}{2 + (K_i - 3) C}
        """
        return F.quadratic_optimal_norm(self._capacities(C), self._v, self._K)

    def capacity_at(self, lam) -> np.ndarray:
        """Closed-form :meth:`LossCurves.capacity_at` from the derived inverse marginal."""
        lam = np.asarray(lam, dtype=np.float64)
        v, K = self._v, self._K
        m0 = F.quadratic_ignore_multiplier(v, K)
        m1 = F.quadratic_full_multiplier(v, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = F.quadratic_marginal_inverse(np.maximum(lam, np.finfo(float).tiny), v, K)
        # Linear (K = 3) and flat curves have m0 == m1: the response is a step, and the
        # inverse formula is 0/0 there, so only the two outer branches are used.
        return np.where(m0 <= lam, 0.0, np.where(m1 > lam, 1.0, np.clip(inner, 0.0, 1.0)))

    @property
    def shapes(self) -> tuple[Shape, ...]:
        return tuple(_SHAPE_BY_CODE[self._codes].tolist())

    @property
    def shape(self) -> Shape:
        return self._shape

    def shape_mask(self, shape: Shape) -> np.ndarray:
        return self._codes == _SHAPE_CODES[shape]

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

    def loss(self, C) -> np.ndarray:
        return F.linear_autoencoder_loss(self._capacities(C), self.importance)

    def marginal(self, C) -> np.ndarray:
        return F.linear_autoencoder_marginal(self._capacities(C), self.importance)

    def curvature(self, C) -> np.ndarray:
        return F.linear_autoencoder_curvature(self._capacities(C), self.importance)

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


def quadratic(importance, kurtosis) -> QuadraticCurves:
    r"""Loss curves of the quadratic toy model, one per feature.

    Parameters
    ----------
    importance : array_like, shape (N,)
        :math:`v_i`, the weight of :math:`x_i^2` in the target :math:`y = \sum_i v_i x_i^2`.
        Finite; a feature with :math:`v_i \le 0` has a flat curve and is ignored.
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
    >>> curves.loss([5 / 6, 1 / 6]).sum()        # the worked case of theory §3
    np.float64(5.25)
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
    return QuadraticCurves(_readonly(v), _readonly(np.broadcast_to(K, v.shape)))


def linear_autoencoder(importance) -> LinearAutoencoderCurves:
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


def gated_kurtosis(density, base: str = "gaussian") -> np.ndarray | float:
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
