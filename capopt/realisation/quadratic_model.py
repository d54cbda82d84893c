r"""The quadratic model that attains an allocation: its embedding, bias and exact loss.

Glossary: ``C`` capacity, ``v`` importance, ``K`` kurtosis, ``a`` squared norm
:math:`\|W_i\|^2`, ``lam_b`` the eigenvalue of :math:`W W^\top` on block b, ``w`` the weight
of a norm's distance from its optimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import _formulas as F
from .._validation import as_float_array, check_model
from ..models import quadratic_model_bias, quadratic_model_loss
from ..solvers.result import AllocationResult
from .embedding import DEFAULT_REALIZE_TOL, realize_blocks
from .._typing import ArrayLike, RandomSeed

if TYPE_CHECKING:
    from ..curves import QuadraticCurves

__all__ = ["QuadraticModel", "optimal_quadratic_model"]


@dataclass(frozen=True, repr=False)
class QuadraticModel:
    r"""An explicit quadratic model :math:`\hat y = x^\top W^\top W x + b`.

    Attributes
    ----------
    W : ndarray, shape (d, N)
        Embedding, features on the last axis.
    bias : float
        The loss-optimal bias :math:`b^* = \sum_i (v_i - \|W_i\|^2)`.
    loss : float
        Its exact expected loss :math:`L(W, b^*)` (:func:`capopt.quadratic_model_loss`).
    """

    W: np.ndarray
    bias: float
    loss: float

    def __repr__(self) -> str:
        d, n = self.W.shape
        return f"QuadraticModel(dim={d}, n_features={n}, bias={self.bias:.6g}, loss={self.loss:.6g})"


def optimal_quadratic_model(
    curves: QuadraticCurves,
    allocation: AllocationResult | ArrayLike,
    *,
    dim: int | None = None,
    method: str = "dense",
    seed: RandomSeed = None,
    tol: float = DEFAULT_REALIZE_TOL,
) -> QuadraticModel:
    r"""The quadratic model that attains an allocation's loss: W, bias and exact loss.

    With :math:`a_i = \|W_i\|^2` and capacities :math:`C_i`, the loss of theory §3 separates,

    .. math::

        L(W) = \sum_i (K_i - 1)(v_i - a_i)^2 + 2 a_i^2 \Big(\frac{1}{C_i} - 1\Big)
             = \sum_i \ell_i(C_i) + w_i \big(a_i - a_i^*(C_i)\big)^2,

    :math:`w_i = K_i - 1 + 2(1/C_i - 1)`, :math:`a_i^*(C) = (K_i - 1) v_i C/(2 + (K_i - 3) C)`
    (both derived in ``derivations/quadratic.py``). The embedding is
    :func:`~capopt.realisation.realize`'s, with block b scaled to eigenvalue :math:`\lambda_b`
    (then :math:`a_i = \lambda_b C_i`, capacities unchanged), :math:`\lambda_b` minimising
    :math:`\sum_{i \in b} w_i (\lambda_b C_i - a_i^*)^2`:

    .. math:: \lambda_b = \frac{\sum_{i \in b} w_i C_i a_i^*}{\sum_{i \in b} w_i C_i^2}.

    At an optimal allocation every feature gets its optimal norm and :math:`L(W)` equals the
    solver's loss: a monosemantic feature is alone in its block, so :math:`a_i = a_i^*(1) =
    v_i`; a polysemantic one satisfies the KKT condition
    :math:`2 (K_i - 1)^2 v_i^2/(2 + (K_i - 3) C_i)^2 = \lambda`, i.e.
    :math:`a_i^*/C_i = (K_i - 1) v_i/(2 + (K_i - 3) C_i) = \mu = \sqrt{\lambda/2}` for every
    such feature whatever its kurtosis, so one :math:`\lambda_b = \mu` fits the whole
    polysemantic block exactly. For a non-optimal allocation the result is the best model
    with that embedding's directions, and ``loss`` exceeds :math:`\sum_i \ell_i(C_i)`.

    Parameters
    ----------
    curves : QuadraticCurves
        The problem, from :func:`capopt.quadratic`.
    allocation : AllocationResult or array_like, shape (N,)
        A solved allocation (e.g. ``capopt.solve(curves, d)``) or capacities.
    dim : int, optional
        Embedding dimension; default the result's budget (rounded down to whole dimensions),
        or for plain capacities the smallest whole number at least their sum.
    method, seed, tol
        As in :func:`~capopt.realisation.realize`.

    Returns
    -------
    QuadraticModel

    Raises
    ------
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.QuadraticCurves`.
    ValueError
        If the allocation has the wrong length or is not block-realisable (see
        :func:`~capopt.realisation.realize`).

    Examples
    --------
    The worked case of theory §3 (a = 2, b = 1, K = 7 in one neuron, minimum loss 5.25):

    >>> import capopt
    >>> curves = capopt.quadratic([2.0, 1.0], 7.0)
    >>> model = optimal_quadratic_model(curves, capopt.solve(curves, 1))
    >>> (model.W**2).round(12)          # a* = (15/8, 3/8)
    array([[1.875, 0.375]])
    >>> round(model.loss, 12)
    5.25
    """
    check_model(curves, "curves", "quadratic", "QuadraticCurves (capopt.quadratic(...))")
    if isinstance(allocation, AllocationResult):
        C = allocation.capacities
        default_dim = np.floor(allocation.budget + tol)
    else:
        C = as_float_array(allocation, "allocation")
        default_dim = np.ceil(np.sum(C) - tol)
    if C.shape != (curves.n_features,):
        raise ValueError(
            f"allocation must have one capacity per feature, shape ({curves.n_features},), "
            f"got shape {C.shape}"
        )
    W, groups = realize_blocks(C, default_dim if dim is None else dim, method, seed, tol)

    C_real = np.sum(W * W, axis=0)  # blocks have eigenvalue 1: the realised capacities
    a_star = curves.optimal_norm(C_real)
    K = curves.kurtosis
    for group in groups:
        c, a = C_real[group], a_star[group]
        w = F.quadratic_norm_weight(c, K[group])
        den = np.sum(w * c * c)
        # den = 0 only for a lone flat feature (K = 1, C = 1), whose loss ignores its norm.
        lam_b = max(float(np.sum(w * c * a) / den), 0.0) if den > 0 else 1.0
        W[:, group] *= np.sqrt(lam_b)
    v = curves.importance
    return QuadraticModel(
        W=W,
        bias=float(quadratic_model_bias(W, v)),
        loss=float(quadratic_model_loss(W, v, K)),
    )
