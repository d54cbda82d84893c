"""Capacity of the features of an embedding matrix, and the bounds that go with it.

Glossary: ``W`` embedding with one column per feature (features on ``feature_axis``), ``d``
embedding dimension, ``N`` number of features, ``G = W^T W`` Gram matrix, ``C`` capacity,
``t_ij = W_i.W_j / ||W_i||^2`` coupling of feature i to feature j, ``U`` and ``e`` the columns
split as ``W_j = U_j 2**e_j``, ``g`` a group of columns of like magnitude.
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
    """Divide each matrix by its largest entry, for quantities invariant under scaling the
    whole matrix but not single columns (leverage scores, block geometry, the participation
    ratio of neurons):
    keeps their squares and fourth powers of tiny or huge weights inside the float64 range.
    Capacity scales each column instead (:func:`_column_exponents`)."""
    if X.size == 0:  # d = 0 (or N = 0): nothing to scale
        return X
    scale = np.max(np.abs(X), axis=(-2, -1), keepdims=True)
    return X / np.where(scale > 0, scale, 1.0)


#: Width, in powers of two, of a group of columns whose couplings are evaluated together as
#: one quadratic form (see :func:`capacity`, Notes). That form loses about 2r bits for a
#: column 2**r below the largest of its group, so 16 keeps at least 20 of float64's 52 bits
#: in the worst, nearly orthogonal, case; the columns of a typical embedding lie within a
#: factor 2**16 of each other and form a single group.
_GROUP_BITS = 16

#: Lower than the exponent np.frexp gives any nonzero float64 (-1073 for the smallest).
_NO_EXPONENT = -1075


def _column_exponents(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split every column exactly as ``X_j = U_j 2**e_j`` with ``max |U_j|`` in [1/2, 1).

    Powers of two scale without rounding, so products of the ``U_j`` round as those of the
    ``X_j`` do, while their squares stay inside the float64 range whatever the column's
    magnitude. Returns ``U``, ``e`` and which columns are nonzero; a zero column has
    ``U_j = 0`` and ``e_j = 0``.
    """
    mantissa, e = np.frexp(np.max(np.abs(X), axis=-2, initial=0.0))
    return np.ldexp(X, -e[..., None, :]), e, mantissa > 0


def _capacity_from_gram(U: np.ndarray, e: np.ndarray, nonzero: np.ndarray) -> np.ndarray:
    """Capacities from every coupling ``t_ij = W_i.W_j / ||W_i||^2`` (the d >= N path)."""
    P = np.swapaxes(U, -1, -2) @ U
    own = np.where(nonzero, np.diagonal(P, axis1=-2, axis2=-1), 1.0)
    # A coupling beyond the float64 range becomes inf and sends C_i to 0, its value to
    # within 1e-308; an exactly orthogonal pair has P_ij = 0 and ldexp keeps it 0.
    with np.errstate(over="ignore"):
        t = np.ldexp(P / own[..., :, None], e[..., None, :] - e[..., :, None])
        total = np.sum(t * t, axis=-1)
    return 1.0 / np.where(nonzero, total, 1.0)


def _capacity_by_groups(U: np.ndarray, e: np.ndarray, nonzero: np.ndarray) -> np.ndarray:
    """Capacities from ``d x d`` matrices of groups of columns of like magnitude (d < N).

    Group g holds the columns whose exponent lies ``[g B, (g + 1) B)`` below the largest
    (``B = _GROUP_BITS``), as ``A_g = [U_j 2**(e_j - s_g)]`` in its own unit ``2**s_g``.
    Its couplings to column i sum to ``2**(2 (s_g - e_i)) sum_j (U_i . A_gj)^2``: a quadratic
    form in ``A_g A_g^T`` for the columns of group g and larger ones, and the squared norm of
    ``R_g U_i``, with ``R_g^T R_g = A_g A_g^T`` from a QR of ``A_g^T``, for smaller ones. The
    quadratic form would square the smaller column's entries before the group's scale
    multiplies them back and so lose the coupling to underflow; ``R_g U_i`` is linear in
    them and exact zeros stay zero through the Householder reflections.
    """
    n = np.sum(U * U, axis=-2)
    top = np.max(np.where(nonzero, e, _NO_EXPONENT), axis=-1, keepdims=True)
    group = np.where(nonzero, (top - e) // _GROUP_BITS, -1)
    present = np.unique(group[nonzero])
    total = np.zeros(n.shape)
    for g in present:
        member = group == g
        unit = top - g * _GROUP_BITS
        # Every |U_kj| < 1, so a shift below -1074 makes a non-member's column exactly 0.
        A = np.ldexp(U, np.where(member, e - unit, _NO_EXPONENT)[..., None, :])
        shift = unit - e  # 2**shift turns group g's unit into column i's
        at_most_g = group <= g
        q = np.sum(U * ((A @ np.swapaxes(A, -1, -2)) @ U), axis=-2)
        total += np.where(at_most_g, np.ldexp(q, np.where(at_most_g, 2 * shift, 0)), 0.0)
        if present[-1] > g:
            R = np.linalg.qr(np.swapaxes(A, -1, -2), mode="r")
            # As in the Gram path: a coupling beyond the float64 range sends C_i to 0.
            with np.errstate(over="ignore"):
                y = np.ldexp(R @ U, shift[..., None, :])
                total += np.where(at_most_g, 0.0, np.sum(y * y, axis=-2))
    return n * n / np.where(nonzero, total, 1.0)


def capacity(W, *, feature_axis: int = -1) -> np.ndarray:
    r"""Capacity of every feature of an embedding.

    .. math::

        C_i = \frac{G_{ii}^2}{\sum_j G_{ij}^2}
            = \Big(\sum_j t_{ij}^2\Big)^{-1}, \qquad
        t_{ij} = \frac{W_i^\top W_j}{\|W_i\|^2}, \qquad G = W^\top W,

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
    Each column is first scaled exactly by a power of two, :math:`W_j = U_j 2^{e_j}` with
    :math:`\max_k |U_{kj}| \in [1/2, 1)`, so :math:`t_{ij} = 2^{e_j - e_i}\, U_i^\top U_j
    / \|U_i\|^2` and nothing under- or overflows however small or large a column is
    (down to the smallest subnormal, up to the largest float64). A coupling too large to
    represent gives :math:`C_i = 0`, within :math:`10^{-308}` of its value, and an
    exactly orthogonal pair contributes exactly 0. Entries smaller than
    :math:`2^{-1074}` times their column's largest entry cannot be represented in its
    scale and count as zero.

    When ``d >= N`` every :math:`t_{ij}` comes from the Gram matrix of the :math:`U_j`:
    cost :math:`O(d N^2)`. When ``d < N`` no ``N x N`` matrix is formed: columns are grouped
    by magnitude, a factor :math:`2^{16}` per group, and the couplings to group g are
    :math:`\sum_{j \in g} t_{ij}^2 = U_i^\top (A_g A_g^\top) U_i\, 2^{2(s_g - e_i)} / \|U_i\|^4`
    with :math:`A_g` the group's columns in its own unit :math:`2^{s_g}`; for columns
    smaller than the group the factor :math:`R_g` of a QR of :math:`A_g^\top` replaces
    :math:`A_g A_g^\top` so that small entries are not squared before they are scaled up.
    Cost :math:`O(d^2 N)` and memory :math:`O(dN)` per group; an embedding whose column
    norms lie within a factor :math:`2^{16}` of each other is one group. The quadratic form
    loses about 2r bits for a column :math:`2^r` below the largest of its group when that
    column is nearly orthogonal to the larger ones. The result is clipped to [0, 1]
    against rounding.

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

    A feature far smaller than the others still has its full capacity when it is
    orthogonal to them:

    >>> capacity(np.array([[1.0, 0.0, 0.0], [0.0, 1e-170, 0.0]]))
    array([1., 1., 0.])
    """
    U, e, nonzero = _column_exponents(_features_last(W, feature_axis))
    d, N = U.shape[-2], U.shape[-1]
    C = _capacity_by_groups(U, e, nonzero) if d < N else _capacity_from_gram(U, e, nonzero)
    return np.clip(np.where(nonzero, C, 0.0), 0.0, 1.0)


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
    Leverage scores change when single columns are rescaled, so the SVD is taken of the
    whole matrix in one scale (its largest entry): singular values below about
    :math:`10^{-308}` times the largest read as zero even with ``rtol=0``, where
    :func:`capacity`, which scales each column on its own, has no such limit.

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
        return CapacitySummary(
            capacities=C, leverage=h, total=float(total), rank=int(rank), dim=X.shape[-2]
        )
    return CapacitySummary(capacities=C, leverage=h, total=total, rank=rank, dim=X.shape[-2])
