r"""The explicit toy models whose loss curves capopt derives: exact loss and gradient of W.

These evaluate a model's loss for an explicit embedding ``W`` (features on ``feature_axis``),
so that an allocation, a realised embedding or a trained model can be scored against the
solver's prediction, and give the gradient that exact-loss training follows. Both losses
separate per feature in the entries of :math:`G = W^\top W`,

.. math::

    L(W) = \sum_i \ell_i(a_i, S_i), \qquad a_i = G_{ii} = \|W_i\|^2, \quad
    S_i = \sum_{j \ne i} G_{ij}^2,

in the forms derived in ``derivations/`` (:mod:`capopt._formulas`: ``*_gram_loss`` and its
partials); the optimal realisation of an allocation by the quadratic model is
:func:`capopt.realisation.optimal_quadratic_model`. :class:`ExplicitModel` is what a family
declares of its model (:meth:`capopt.curves.LossCurves.model`): its loss, the embedding of
an optimum and its trainer (the built-in families' in :mod:`capopt.toy_models`). Glossary as in :mod:`capopt.curves`;
``S`` interference, ``P`` the matrix of partials :math:`\partial \ell_i / \partial G_{ij}`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from . import _formulas as F
from ._validation import as_float_array
from .capacity import _features_last
from ._typing import ArrayLike

if TYPE_CHECKING:
    from .solvers.result import AllocationResult
    from .training.results import ExactFit, SampledFit

__all__ = [
    "ExplicitModel",
    "quadratic_model_loss",
    "quadratic_model_bias",
    "quadratic_model_loss_and_gradient",
    "linear_autoencoder_model_loss",
    "linear_autoencoder_model_loss_and_gradient",
]


def _per_feature(values: ArrayLike, name: str, n: int, *, scalar_ok: bool) -> np.ndarray:
    arr = as_float_array(values, name)
    if arr.shape != (n,) and not (scalar_ok and arr.shape == ()):
        want = "a scalar or shape" if scalar_ok else "shape"
        raise ValueError(f"{name} must have {want} ({n},) to match W's {n} features, got shape {arr.shape}")
    return np.broadcast_to(arr, (n,))


def _gram(W: ArrayLike, feature_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """W with features last, and its Gram matrix."""
    X = _features_last(W, feature_axis)
    return X, np.swapaxes(X, -1, -2) @ X


def _interference(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Squared norms :math:`a_i = G_{ii}` and interferences :math:`S_i = \sum_{j \ne i} G_{ij}^2`.

    The diagonal is left out of the sum rather than subtracted from it, so that a feature
    orthogonal to the others has exactly :math:`S_i = 0`.
    """
    squares = G * G
    diagonal = np.arange(G.shape[-1])
    squares[..., diagonal, diagonal] = 0.0
    return np.diagonal(G, axis1=-2, axis2=-1), np.sum(squares, axis=-1)


def _separable_loss(
    G: np.ndarray,
    feature_loss: Callable[..., np.ndarray],
    *params: np.ndarray,
) -> np.ndarray:
    r""":math:`\sum_i \ell(a_i, S_i; \text{params}_i)` of a batch of Gram matrices (..., N, N)."""
    a, S = _interference(G)
    return np.sum(feature_loss(a, S, *params), axis=-1)


def _separable_gradient(
    W: np.ndarray,
    G: np.ndarray,
    d_norm: Callable[..., np.ndarray],
    d_entry: Callable[..., np.ndarray],
    *params: np.ndarray,
) -> np.ndarray:
    r""":math:`\partial L / \partial W = W (P + P^\top)` of a loss :math:`\sum_i \ell_i(a_i, S_i)`.

    :math:`P_{ii} = \partial \ell_i / \partial a`, :math:`P_{ij} = \partial \ell_i / \partial
    G_{ij}` for :math:`j \ne i` (row i takes feature i's parameters): with the entries of G
    treated as independent, :math:`dL = \operatorname{tr}(P^\top dG)` and
    :math:`dG = dW^\top W + W^\top dW`. W is (d, N).
    """
    P = d_entry(G, *(p[:, None] for p in params))
    diagonal = np.arange(G.shape[-1])
    P[diagonal, diagonal] = d_norm(np.diagonal(G), *params)
    return W @ (P + P.T)


def quadratic_model_bias(
    W: ArrayLike,
    importance: ArrayLike,
    *,
    feature_axis: int = -1,
) -> np.ndarray:
    r"""Loss-optimal bias of the quadratic model, :math:`b^* = \sum_i (v_i - G_{ii})`.

    Parameters
    ----------
    W : array_like, shape (..., d, N) or (..., N, d)
    importance : array_like, shape (N,)
    feature_axis : {-1, -2}
    """
    _, G = _gram(W, feature_axis)
    v = _per_feature(importance, "importance", G.shape[-1], scalar_ok=False)
    return np.sum(F.quadratic_bias_term(np.diagonal(G, axis1=-2, axis2=-1), v), axis=-1)


def quadratic_model_loss(
    W: ArrayLike,
    importance: ArrayLike,
    kurtosis: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    feature_axis: int = -1,
) -> np.ndarray:
    r"""Exact expected loss :math:`E[(y - \hat y)^2]` of the quadratic model.

    Target :math:`y = \sum_i v_i x_i^2`, model :math:`\hat y = x^\top W^\top W x + b`,
    independent inputs of mean 0, variance 1 and fourth moment :math:`K_i`:

    .. math::

        L(W, b) = \sum_i (K_i - 1)(v_i - G_{ii})^2 + 2 \sum_{i \ne j} G_{ij}^2
                  + \Big(\sum_i (v_i - G_{ii}) - b\Big)^2 .

    Derived in ``derivations/quadratic.py`` from the moment rules; the last term vanishes
    at the optimal bias, used when ``bias`` is None.

    Parameters
    ----------
    W : array_like, shape (..., d, N) or (..., N, d)
    importance : array_like, shape (N,)
    kurtosis : float or array_like, shape (N,)
    bias : float or array_like of the batch shape, optional
    feature_axis : {-1, -2}

    Returns
    -------
    ndarray of the batch shape (a 0-d array for a single W)

    Examples
    --------
    Two features sharing one neuron with the worked-case optimum of theory §3:

    >>> import numpy as np
    >>> a = np.array([15 / 8, 3 / 8])        # a*(C) at the optimum C = (5/6, 1/6)
    >>> W = np.sqrt(a)[None, :]              # d = 1, N = 2
    >>> float(np.round(quadratic_model_loss(W, [2.0, 1.0], 7.0), 12))
    5.25
    """
    _, G = _gram(W, feature_axis)
    n = G.shape[-1]
    v = _per_feature(importance, "importance", n, scalar_ok=False)
    K = _per_feature(kurtosis, "kurtosis", n, scalar_ok=True)
    loss = _separable_loss(G, F.quadratic_gram_loss, v, K)
    if bias is not None:
        a = np.diagonal(G, axis1=-2, axis2=-1)
        b_opt = np.sum(F.quadratic_bias_term(a, v), axis=-1)
        loss = loss + F.quadratic_bias_loss(as_float_array(bias, "bias"), b_opt)
    return loss


def quadratic_model_loss_and_gradient(
    W: ArrayLike,
    importance: ArrayLike,
    kurtosis: ArrayLike,
) -> tuple[float, np.ndarray]:
    r"""Exact expected loss of the quadratic model and its gradient in W.

    .. math::

        L(W) = \sum_i (K_i - 1)(v_i - G_{ii})^2 + 2 \sum_{i \ne j} G_{ij}^2, \qquad
        \frac{\partial L}{\partial W} = W (P + P^\top), \quad
        P_{ii} = -2 (K_i - 1)(v_i - G_{ii}), \quad P_{ij} = 4 G_{ij}\ (i \ne j).

    The loss is :func:`quadratic_model_loss` (bias at its optimum; by the envelope theorem
    the profiled bias adds nothing to the gradient).

    Parameters
    ----------
    W : array_like, shape (d, N)
        Features on the last axis.
    importance : array_like, shape (N,)
    kurtosis : float or array_like, shape (N,)

    Returns
    -------
    loss : float
    grad : ndarray, shape (d, N)

    Examples
    --------
    At the worked-case optimum of theory §3 (C = (5/6, 1/6), d = 1) the gradient vanishes:

    >>> import numpy as np
    >>> W = np.sqrt([[15 / 8, 3 / 8]])
    >>> loss, grad = quadratic_model_loss_and_gradient(W, [2.0, 1.0], 7.0)
    >>> round(loss, 12), bool(np.abs(grad).max() < 1e-12)
    (5.25, True)
    """
    X, G = _gram(W, -1)
    n = G.shape[-1]
    v = _per_feature(importance, "importance", n, scalar_ok=False)
    K = _per_feature(kurtosis, "kurtosis", n, scalar_ok=True)
    loss = float(_separable_loss(G, F.quadratic_gram_loss, v, K))
    grad = _separable_gradient(
        X, G, F.quadratic_gram_loss_d_norm, F.quadratic_gram_loss_d_entry, v, K
    )
    return loss, grad


def linear_autoencoder_model_loss(
    W: ArrayLike,
    importance: ArrayLike,
    *,
    feature_axis: int = -1,
) -> np.ndarray:
    r"""Exact expected loss of the linear autoencoder :math:`\hat x = W^\top W x`.

    For independent unit-variance inputs (derived in ``derivations/linear_autoencoder.py``):

    .. math::

        L(W) = \sum_i I_i \Big[(1 - G_{ii})^2 + \sum_{j \ne i} G_{ij}^2\Big].

    Examples
    --------
    >>> import numpy as np
    >>> float(linear_autoencoder_model_loss(np.eye(1, 2), [3.0, 1.0]))  # keeps feature 0
    1.0
    """
    _, G = _gram(W, feature_axis)
    I = _per_feature(importance, "importance", G.shape[-1], scalar_ok=False)
    return _separable_loss(G, F.linear_autoencoder_gram_loss, I)


def linear_autoencoder_model_loss_and_gradient(
    W: ArrayLike,
    importance: ArrayLike,
) -> tuple[float, np.ndarray]:
    r"""Exact loss of the linear autoencoder on unit-variance inputs, and its gradient.

    .. math::

        L(W) = \sum_i I_i \Big[(1 - G_{ii})^2 + \sum_{j \ne i} G_{ij}^2\Big], \qquad
        \frac{\partial L}{\partial W} = W (P + P^\top),\quad
        P_{ii} = -2 I_i (1 - G_{ii}),\ P_{ij} = 2 I_i G_{ij}\ (i \ne j).

    Parameters
    ----------
    W : array_like, shape (d, N)
        Features on the last axis.
    importance : array_like, shape (N,)

    Returns
    -------
    loss : float
    grad : ndarray, shape (d, N)

    Examples
    --------
    >>> import numpy as np
    >>> loss, grad = linear_autoencoder_model_loss_and_gradient(np.eye(1, 2), [3.0, 1.0])
    >>> loss, grad.tolist()                   # keeping feature 0 is stationary
    (1.0, [[0.0, 0.0]])
    """
    X, G = _gram(W, -1)
    I = _per_feature(importance, "importance", G.shape[-1], scalar_ok=False)
    loss = float(_separable_loss(G, F.linear_autoencoder_gram_loss, I))
    grad = _separable_gradient(
        X, G, F.linear_autoencoder_gram_loss_d_norm, F.linear_autoencoder_gram_loss_d_entry, I
    )
    return loss, grad


# ----------------------------------------------------------------------------------------
# Explicit models as a family declares them (capopt.curves.LossCurves.model)

class ExplicitModel(abc.ABC):
    r"""An explicit model whose loss-optimal per-feature losses are a family's curves.

    What :func:`capopt.compare` and :func:`capopt.crosscheck` read of a family
    (:meth:`capopt.curves.LossCurves.model`): the model's exact loss at an embedding W, the
    embedding that attains an optimal allocation, and how to train the model.

    The built-in families' models are in :mod:`capopt.toy_models`.

    Class attributes
    ----------------
    name : str
        What the model is ("quadratic", "linear autoencoder", ...): the trainers and
        realisations of a model accept any family that declares it
        (:func:`capopt._validation.check_model`).
    routes : tuple of str
        The training routes :meth:`train` offers (``"exact"``: L-BFGS on the exact loss;
        ``"sampled"``: Adam on sampled minibatches); empty when it has no trainer.
    """

    name: ClassVar[str] = ""
    routes: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def loss(self, W: ArrayLike) -> np.ndarray:
        """Exact expected loss at ``W`` (features on the last axis, optional leading batch
        axes; the result has the batch shape), every other parameter at its optimum."""

    @abc.abstractmethod
    def optimal_embedding(self, result: AllocationResult) -> np.ndarray:
        """An embedding W (d, N) whose loss is the optimum ``result`` of the family."""

    def train(self, budget: int, route: str, options: dict[str, Any]) -> ExactFit | SampledFit:
        """Train the model with ``budget`` hidden dimensions along ``route`` (one of
        :attr:`routes`), with the trainer's ``options``."""
        raise TypeError(f"{type(self).__name__} has no trainer")

    def training_options(self, route: str) -> tuple[str, ...] | None:
        """The options :meth:`train` takes along ``route``, so that a wrong one is named
        before any work; None (default) when the model does not say."""
        return None
