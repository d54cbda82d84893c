r"""Exact expected losses of the toy models whose loss curves capopt derives.

These evaluate a model's loss for an explicit embedding ``W`` (features on ``feature_axis``),
so that an allocation, a realised embedding or a trained model can be scored against the
solver's prediction. Glossary as in :mod:`capopt.curves`; ``a_i = G_ii = \|W_i\|^2``.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_float_array
from .capacity import _features_last

__all__ = ["quadratic_model_loss", "quadratic_model_bias", "linear_autoencoder_model_loss"]


def _per_feature(values, name: str, n: int, *, scalar_ok: bool) -> np.ndarray:
    arr = as_float_array(values, name)
    if arr.shape != (n,) and not (scalar_ok and arr.shape == ()):
        want = "a scalar or shape" if scalar_ok else "shape"
        raise ValueError(f"{name} must have {want} ({n},) to match W's {n} features, got shape {arr.shape}")
    return np.broadcast_to(arr, (n,))


def _gram(W, feature_axis: int) -> np.ndarray:
    X = _features_last(W, feature_axis)
    return np.swapaxes(X, -1, -2) @ X


def quadratic_model_bias(W, importance, *, feature_axis: int = -1) -> np.ndarray:
    r"""Loss-optimal bias of the quadratic model, :math:`b^* = \sum_i (v_i - G_{ii})`.

    Parameters
    ----------
    W : array_like, shape (..., d, N) or (..., N, d)
    importance : array_like, shape (N,)
    feature_axis : {-1, -2}
    """
    G = _gram(W, feature_axis)
    v = _per_feature(importance, "importance", G.shape[-1], scalar_ok=False)
    return np.sum(v - np.diagonal(G, axis1=-2, axis2=-1), axis=-1)


def quadratic_model_loss(W, importance, kurtosis, *, bias=None, feature_axis: int = -1) -> np.ndarray:
    r"""Exact expected loss :math:`E[(y - \hat y)^2]` of the quadratic model.

    Target :math:`y = \sum_i v_i x_i^2`, model :math:`\hat y = x^\top W^\top W x + b`,
    independent inputs of mean 0, variance 1 and fourth moment :math:`K_i`:

    .. math::

        L(W, b) = \sum_i (K_i - 1)(v_i - G_{ii})^2 + 2 \sum_{i \ne j} G_{ij}^2
                  + \Big(\sum_i (v_i - G_{ii}) - b\Big)^2 .

    The first two terms are derived in ``derivations/quadratic.py`` from the moment rules;
    the last vanishes at the optimal bias, used when ``bias`` is None.

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
    G = _gram(W, feature_axis)
    n = G.shape[-1]
    v = _per_feature(importance, "importance", n, scalar_ok=False)
    K = _per_feature(kurtosis, "kurtosis", n, scalar_ok=True)
    a = np.diagonal(G, axis1=-2, axis2=-1)
    off_diagonal = np.sum(G * G, axis=(-2, -1)) - np.sum(a * a, axis=-1)
    loss = np.sum((K - 1.0) * (v - a) ** 2, axis=-1) + 2.0 * off_diagonal
    if bias is not None:
        b = as_float_array(bias, "bias")
        loss = loss + (np.sum(v - a, axis=-1) - b) ** 2
    return loss


def linear_autoencoder_model_loss(W, importance, *, feature_axis: int = -1) -> np.ndarray:
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
    G = _gram(W, feature_axis)
    I = _per_feature(importance, "importance", G.shape[-1], scalar_ok=False)
    a = np.diagonal(G, axis1=-2, axis2=-1)
    row_off = np.sum(G * G, axis=-1) - a * a
    return np.sum(I * ((1.0 - a) ** 2 + row_off), axis=-1)
