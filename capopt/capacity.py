"""Capacity of the features of an embedding matrix, and the bounds that go with it.

Glossary: ``W`` embedding with one column per feature (features on ``feature_axis``), ``d``
embedding dimension, ``N`` number of features, ``G = W^T W`` Gram matrix, ``C`` capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import as_float_array

__all__ = ["capacity", "leverage_scores", "capacity_summary", "CapacitySummary"]


def _features_last(W, feature_axis: int, name: str = "W") -> np.ndarray:
    """Validate ``W`` and return a float64 view of shape (..., d, N), features last."""
    arr = as_float_array(W, name, min_ndim=2)
    if not isinstance(feature_axis, (int, np.integer)) or isinstance(feature_axis, bool):
        raise TypeError(f"feature_axis must be an int, got {type(feature_axis).__name__}")
    allowed = (-1, -2, arr.ndim - 1, arr.ndim - 2)
    if feature_axis not in allowed:
        raise ValueError(
            "feature_axis must name one of the last two axes of W (-1 for W[..., hidden, "
            f"feature], -2 for W[..., feature, hidden]), got {feature_axis} for W of shape "
            f"{arr.shape}"
        )
    return arr if feature_axis % arr.ndim == arr.ndim - 1 else np.swapaxes(arr, -1, -2)


def _normalised(X: np.ndarray) -> np.ndarray:
    """Divide each matrix by its largest entry; capacity is scale invariant, and this keeps
    fourth powers of tiny or huge weights inside the float64 range."""
    if X.size == 0:  # d = 0 (or N = 0): nothing to scale
        return X
    scale = np.max(np.abs(X), axis=(-2, -1), keepdims=True)
    return X / np.where(scale > 0, scale, 1.0)


def capacity(W, *, feature_axis: int = -1) -> np.ndarray:
    r"""Capacity of every feature of an embedding.

    .. math::

        C_i = \frac{G_{ii}^2}{\sum_j G_{ij}^2}, \qquad G = W^\top W,

    with :math:`C_i = 0` when column :math:`W_i` is zero. This is the "feature
    dimensionality" :math:`D_i` of Toy Models of Superposition.

    Parameters
    ----------
    W : array_like, shape (..., d, N) or (..., N, d)
        Embedding matrix, optionally with leading batch axes. Accepts numpy arrays, lists
        and anything with ``__array__`` (for example a CPU torch tensor; call
        ``.detach()`` first on one that requires grad). It is never modified.
    feature_axis : {-1, -2}
        Which of the last two axes indexes features: ``-1`` for ``W[..., hidden, feature]``
        (ARENA / tms-kit layout), ``-2`` for ``W[..., feature, hidden]`` (the Toy Models of
        Superposition notebook layout).

    Returns
    -------
    ndarray, shape (..., N), float64
        Capacities in [0, 1].

    Raises
    ------
    ValueError
        If ``W`` has fewer than two axes, NaN or infinite entries, or ``feature_axis`` does
        not name one of its last two axes.
    TypeError
        If ``W`` is not real and numeric.

    Notes
    -----
    The denominator is evaluated as :math:`\hat W_i^\top (W W^\top) \hat W_i\,\|W_i\|^2` with
    :math:`\hat W_i = W_i/\|W_i\|` when ``d < N`` (cost :math:`O(d^2 N)`, memory
    :math:`O(dN)`, no ``N x N`` Gram matrix), and as the row norms of ``G`` otherwise
    (:math:`O(d N^2)`). The result is clipped to [0, 1] against rounding.

    Examples
    --------
    Three unit vectors at 120 degrees in the plane (a tight frame) share two dimensions:

    >>> import numpy as np
    >>> angles = 2 * np.pi * np.arange(3) / 3
    >>> W = np.stack([np.cos(angles), np.sin(angles)])      # d=2, N=3
    >>> np.round(capacity(W), 12)
    array([0.66666667, 0.66666667, 0.66666667])
    >>> float(np.round(capacity(W).sum(), 12))
    2.0
    """
    X = _normalised(_features_last(W, feature_axis))
    d, N = X.shape[-2], X.shape[-1]
    norms2 = np.sum(X * X, axis=-2)
    nonzero = norms2 > 0
    if d < N:
        safe = np.sqrt(np.where(nonzero, norms2, 1.0))[..., None, :]
        U = X / safe
        M = X @ np.swapaxes(X, -1, -2)
        # sum_j (U_i . W_j)^2 = U_i^T (W W^T) U_i
        quad = np.sum(U * (M @ U), axis=-2)
        denom = quad
        numer = norms2
    else:
        Gram = np.swapaxes(X, -1, -2) @ X
        denom = np.sum(Gram * Gram, axis=-1)
        numer = norms2 * norms2
    C = np.where(nonzero, numer / np.where(nonzero, denom, 1.0), 0.0)
    return np.clip(C, 0.0, 1.0)


def _leverage_and_rank(X: np.ndarray, rtol: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Leverage scores and numerical rank of (..., d, N) matrices from one thin SVD.

    Singular values below ``rtol * s_max`` count as zero; the default ``max(d, N) * eps`` is
    numpy's ``matrix_rank`` rule.
    """
    X = _normalised(X)
    _, s, Vh = np.linalg.svd(X, full_matrices=False)
    if rtol is None:
        rtol = max(X.shape[-2:]) * np.finfo(np.float64).eps
    keep = s > rtol * s[..., :1] if s.shape[-1] else s > 0
    h = np.sum(np.where(keep[..., :, None], Vh * Vh, 0.0), axis=-2)
    return np.clip(h, 0.0, 1.0), np.sum(keep, axis=-1)


def leverage_scores(W, *, feature_axis: int = -1, rtol: float | None = None) -> np.ndarray:
    r"""Leverage score of every feature, an upper bound on its capacity.

    .. math::

        h_i = W_i^\top (W W^\top)^{+} W_i \;\ge\; C_i, \qquad \sum_i h_i = \operatorname{rank} W.

    Parameters
    ----------
    W : array_like, shape (..., d, N) or (..., N, d)
        Embedding matrix (see :func:`capacity`).
    feature_axis : {-1, -2}
        Which of the last two axes indexes features.
    rtol : float, optional
        Singular values below ``rtol * s_max`` are treated as zero. Default
        ``max(d, N) * eps`` (numpy's ``matrix_rank`` rule); raise it for noisy trained weights.

    Returns
    -------
    ndarray, shape (..., N)
        Leverage scores in [0, 1].

    Notes
    -----
    With the thin SVD :math:`W = U S V^\top`, :math:`h_i = \sum_{r:\,s_r>0} V_{ir}^2`.
    Equality :math:`h_i = C_i` holds iff :math:`W_i` is an eigenvector of :math:`W W^\top`.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    >>> leverage_scores(W).round(6)
    array([0.666667, 0.666667, 0.666667])
    >>> capacity(W).round(6)            # the middle feature is an eigenvector of W W^T
    array([0.5     , 0.666667, 0.5     ])
    """
    return _leverage_and_rank(_features_last(W, feature_axis), rtol)[0]


@dataclass(frozen=True, repr=False)
class CapacitySummary:
    """Per-feature capacities of an embedding with the totals they are bounded by.

    Attributes
    ----------
    capacities : ndarray, shape (..., N)
        :math:`C_i`.
    leverage : ndarray, shape (..., N)
        Leverage scores :math:`h_i \\ge C_i`.
    total : ndarray or float
        :math:`\\sum_i C_i`, at most ``rank`` (equal iff block-semi-orthogonal with full rank).
    rank : ndarray or int
        Numerical rank of ``W``.
    dim : int
        Embedding dimension ``d``.
    """

    capacities: np.ndarray
    leverage: np.ndarray
    total: np.ndarray | float
    rank: np.ndarray | int
    dim: int

    def __repr__(self) -> str:
        n = self.capacities.shape[-1]
        return (
            f"CapacitySummary(n_features={n}, dim={self.dim}, rank={self.rank}, "
            f"total={np.round(self.total, 6)})"
        )

    def table(self) -> str:
        """Plain-text table of the per-feature values and the totals (2-d ``W`` only)."""
        if self.capacities.ndim != 1:
            raise ValueError(
                f"table() needs a single embedding, got batch shape {self.capacities.shape[:-1]}"
            )
        lines = [f"{'feature':>7}  {'capacity':>10}  {'leverage':>10}"]
        lines += [
            f"{i:>7d}  {c:>10.6f}  {h:>10.6f}"
            for i, (c, h) in enumerate(zip(self.capacities, self.leverage))
        ]
        lines.append(
            f"sum C = {self.total:.6f}   rank = {self.rank}   d = {self.dim}   "
            f"(sum C <= rank <= d)"
        )
        return "\n".join(lines)


def capacity_summary(W, *, feature_axis: int = -1, rtol: float | None = None) -> CapacitySummary:
    """Capacities, leverage scores, :math:`\\sum_i C_i`, rank and dimension of an embedding.

    Parameters are those of :func:`leverage_scores`.

    Examples
    --------
    >>> import numpy as np
    >>> summary = capacity_summary(np.eye(2, 3))
    >>> print(summary.table())
    feature    capacity    leverage
          0    1.000000    1.000000
          1    1.000000    1.000000
          2    0.000000    0.000000
    sum C = 2.000000   rank = 2   d = 2   (sum C <= rank <= d)
    """
    X = _features_last(W, feature_axis)
    C = capacity(X)
    h, rank = _leverage_and_rank(X, rtol)
    total = C.sum(axis=-1)
    if X.ndim == 2:
        rank, total = int(rank), float(total)
    return CapacitySummary(capacities=C, leverage=h, total=total, rank=rank, dim=X.shape[-2])
