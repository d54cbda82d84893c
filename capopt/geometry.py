r"""Geometry of an embedding: its blocks, how close it is to block-semi-orthogonal, and how
many features each neuron carries.

Glossary: ``W`` embedding with one column per feature (features on ``feature_axis``), ``d``
embedding dimension, ``N`` number of features, ``W_i`` column of feature i, ``M = W W^T``
the frame operator, ``lam_b`` the eigenvalue of ``M`` on block b's subspace, ``C``
capacity.

An embedding is *block-semi-orthogonal* (theory §1) when its nonzero features split into
blocks spanning mutually orthogonal subspaces :math:`E_b` with :math:`W_b W_b^\top =
\lambda_b I` on :math:`E_b`; equivalently every nonzero column is an eigenvector of
:math:`M`. Then :math:`C_i = \|W_i\|^2/\lambda_b` and :math:`\sum_{i \in b} C_i = \dim E_b`,
so :math:`\sum_i C_i` reaches the rank of ``W``: these are the embeddings that use every
dimension they span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_scalar
from .capacity import _features_last, _normalised, capacity
from ._typing import ArrayLike

__all__ = [
    "Block",
    "BlockStructure",
    "blocks",
    "represented",
    "features_per_neuron",
    "block_sizes",
    "block_summary",
    "DEFAULT_BLOCK_TOL",
    "DEFAULT_ZERO_TOL",
]

#: Default tolerance of :func:`blocks`. Two features whose cosine exceeds it in magnitude
#: share a block, a block's dimension counts the eigenvalues above it (relative to the
#: block's largest), and an embedding wasting at most this fraction of its dimensions is
#: block-semi-orthogonal. Exact constructions sit at rounding level (~1e-15); trained
#: weights carry relative errors of ~1e-6..1e-4, which leave cross-block cosines of that
#: size (a 1e-6 threshold would merge the blocks) and, the waste being second order, a
#: residual of ~1e-8. A cosine of 1e-3 changes a capacity by ~1e-6 (the Gram entry enters
#: squared), so nothing measurable is lost by ignoring it.
DEFAULT_BLOCK_TOL = 1e-3

#: Columns shorter than this fraction of the longest column are ignored features. Small
#: enough that a polysemantic feature of capacity ~1e-5 (norm ~3e-3 of its block's scale)
#: still counts, large enough that the residue training leaves on ignored features does not.
DEFAULT_ZERO_TOL = 1e-6


@dataclass(frozen=True, repr=False)
class Block:
    r"""Features spanning one subspace :math:`E_b`, orthogonal to every other block's.

    Attributes
    ----------
    features : tuple of int
        Indices of the block's features, ascending.
    dim : int
        :math:`\dim E_b`, the number of eigenvalues of :math:`W_b W_b^\top` above ``tol``
        times the largest.
    eigenvalue : float
        :math:`\lambda_b`, the mean of those eigenvalues.
    eigenvalue_spread : float
        (largest - smallest) / mean of those eigenvalues; 0 for a tight block.
    capacity_sum : float
        :math:`\sum_{i \in b} C_i`, equal to ``dim`` for a tight block.
    """

    features: tuple[int, ...]
    dim: int
    eigenvalue: float
    eigenvalue_spread: float
    capacity_sum: float

    def __repr__(self) -> str:
        return (
            f"Block(features={list(self.features)}, dim={self.dim}, "
            f"eigenvalue={self.eigenvalue:.6g}, capacity_sum={self.capacity_sum:.6g})"
        )


@dataclass(frozen=True, repr=False)
class BlockStructure:
    r"""The blocks of an embedding and how far it is from block-semi-orthogonal.

    Attributes
    ----------
    blocks : tuple of Block
        Ordered by their smallest feature index.
    ignored : tuple of int
        Features whose column is (numerically) zero; they belong to no block.
    residual : float
        Fraction of the spanned dimensions not held as capacity,
        :math:`|\sum_b \dim E_b - \sum_i C_i| / \sum_b \dim E_b`: 0 iff ``W`` is
        block-semi-orthogonal, second order in a perturbation of ``W``.
    eigen_residual : float
        :math:`\max_i \tan\theta_i`, with :math:`\theta_i` the angle between :math:`W_i` and
        :math:`W W^\top W_i` over the nonzero features: also 0 iff every nonzero column is an
        eigenvector of :math:`W W^\top`, but first order, and relative to each feature's own
        norm, so noise on short columns is magnified. A diagnostic, not used for the verdict.
    overlap : float
        Largest :math:`|\cos|` between two features in different blocks (at most ``tol`` by
        construction): how cleanly the blocks separate.
    tol : float
        The tolerance the structure was computed with.
    dim : int
        Embedding dimension ``d``.
    """

    blocks: tuple[Block, ...]
    ignored: tuple[int, ...]
    residual: float
    eigen_residual: float
    overlap: float
    tol: float
    dim: int

    @property
    def is_block_semi_orthogonal(self) -> bool:
        """Whether ``residual <= tol``."""
        return self.residual <= self.tol

    @property
    def dims_used(self) -> int:
        """:math:`\\sum_b \\dim E_b`, the rank of ``W`` its blocks account for."""
        return sum(b.dim for b in self.blocks)

    def __repr__(self) -> str:
        return (
            f"BlockStructure(n_blocks={len(self.blocks)}, dims_used={self.dims_used}/{self.dim}, "
            f"ignored={len(self.ignored)}, residual={self.residual:.2g}, "
            f"block_semi_orthogonal={self.is_block_semi_orthogonal})"
        )

    def table(self) -> str:
        """Plain-text table: one line per block, then the totals."""
        lines = [f"{'block':>5}  {'dim':>3}  {'eigenvalue':>10}  {'capacity_sum':>12}  features"]
        lines += [
            f"{k:>5d}  {b.dim:>3d}  {b.eigenvalue:>10.6g}  {b.capacity_sum:>12.6f}  {list(b.features)}"
            for k, b in enumerate(self.blocks)
        ]
        lines.append(
            f"{len(self.blocks)} blocks using {self.dims_used} of d = {self.dim} dimensions, "
            f"{len(self.ignored)} ignored features, residual {self.residual:.2g} "
            f"({'' if self.is_block_semi_orthogonal else 'not '}block-semi-orthogonal at tol {self.tol:g})"
        )
        return "\n".join(lines)


def _represented(Y: np.ndarray, zero_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Column norms of ``Y`` (..., d, N) and whether each exceeds ``zero_tol`` times the
    longest of its matrix."""
    norms = np.linalg.norm(Y, axis=-2)
    longest = np.max(norms, axis=-1, keepdims=True, initial=0.0)
    return norms, norms > zero_tol * longest


def represented(
    W: ArrayLike,
    *,
    zero_tol: float = DEFAULT_ZERO_TOL,
    feature_axis: int = -1,
) -> np.ndarray:
    r"""Which features an embedding represents: columns longer than ``zero_tol`` of the longest.

    .. math:: \text{represented}_i \iff \|W_i\| > \text{zero\_tol} \cdot \max_j \|W_j\|

    The rest are the ignored features of :func:`blocks`. Trained weights leave small
    residual columns on features the model does not use, and capacity, being scale free per
    column, can read any value on them (a short column alone in a spare direction has
    C = 1); the norm says whether the feature is used at all.

    Parameters
    ----------
    W : array_like, shape (..., d, N) or (..., N, d)
        Embedding(s), optionally with leading batch axes.
    zero_tol : float
        Relative norm below which a column counts as unused, >= 0.
    feature_axis : {-1, -2}

    Returns
    -------
    ndarray of bool, shape (..., N)

    Examples
    --------
    >>> import numpy as np
    >>> represented(np.array([[1.0, 0.05, 0.0], [0.0, 0.0, 0.5]]), zero_tol=0.1)
    array([ True, False,  True])
    """
    zero_tol = check_scalar(zero_tol, "zero_tol", minimum=0.0)
    return _represented(_normalised(_features_last(W, feature_axis)), zero_tol)[1]


def _single_embedding(W: ArrayLike, feature_axis: int) -> np.ndarray:
    X = _features_last(W, feature_axis)
    if X.ndim != 2:
        raise ValueError(
            f"W must be a single embedding (2 axes), got shape {X.shape}; loop over the "
            "leading batch axes"
        )
    return X


def blocks(
    W: ArrayLike,
    *,
    feature_axis: int = -1,
    tol: float = DEFAULT_BLOCK_TOL,
    zero_tol: float = DEFAULT_ZERO_TOL,
) -> BlockStructure:
    r"""Partition the nonzero features of an embedding into blocks of orthogonal subspaces.

    Features i and j share a block when their columns are not orthogonal,

    .. math:: |\cos\angle(W_i, W_j)| = \frac{|W_i^\top W_j|}{\|W_i\|\,\|W_j\|} > \mathrm{tol},

    and transitively (connected components of that graph): the finest partition into groups
    spanning mutually orthogonal subspaces. For each block, the eigenvalues of
    :math:`W_b W_b^\top` give its dimension and eigenvalue; the residual says whether each
    block is tight, :math:`W_b W_b^\top = \lambda_b I` on its span, by how many of the
    spanned dimensions the capacities fail to use.

    Parameters
    ----------
    W : array_like, shape (d, N) or (N, d)
        A single embedding (see :func:`capopt.capacity`); never modified.
    feature_axis : {-1, -2}
        Which axis indexes features.
    tol : float
        Cosine threshold for sharing a block, relative eigenvalue threshold for a block's
        dimension, and the largest residual (fraction of wasted dimensions) of a
        block-semi-orthogonal embedding. The default :data:`DEFAULT_BLOCK_TOL` = 1e-3 suits
        trained weights; exact constructions pass at 1e-12.
    zero_tol : float
        Columns with norm at most ``zero_tol`` times the largest column norm are ignored
        features (:data:`DEFAULT_ZERO_TOL` = 1e-6).

    Returns
    -------
    BlockStructure

    Raises
    ------
    ValueError
        For a batch of embeddings, non-finite entries, or a negative tolerance.

    Notes
    -----
    Each capacity is at most the feature's leverage score, :math:`C_i \le h_i =
    W_i^\top (W W^\top)^+ W_i`, with equality iff :math:`W_i` is an eigenvector of
    :math:`M = W W^\top`, and :math:`\sum_i h_i = \operatorname{rank} W` (theory §1). So

    .. math::

        \text{residual} = \frac{\operatorname{rank} W - \sum_i C_i}{\operatorname{rank} W}
                        = \frac{\sum_i (h_i - C_i)}{\operatorname{rank} W}

    vanishes iff every nonzero column is an eigenvector of :math:`M`, the definition of
    block-semi-orthogonal; ``rank W`` is counted as :math:`\sum_b \dim E_b`, so noise does
    not inflate it. As :math:`\sum_i C_i` is maximal at such a W, an error of relative
    size :math:`\varepsilon` costs only :math:`O(\varepsilon^2)` of it, and a short stray
    column (a trained "ignored" feature) costs its own small capacity: the verdict is robust
    to the noise of trained weights. The first-order ``eigen_residual``, with the Rayleigh
    quotient :math:`\rho_i = W_i^\top M W_i/\|W_i\|^2`,

    .. math::

        \max_i \frac{\|M W_i - \rho_i W_i\|}{\rho_i \|W_i\|} = \max_i \tan\angle(W_i, M W_i),

    locates the feature furthest from an eigenvector. Columns that share an eigenvector's
    eigenvalue and overlap are one block, so at zero residual each block has a single
    eigenvalue (``eigenvalue_spread = 0``) and ``capacity_sum = dim``. Both residuals are
    invariant under rotations of the embedding space and scaling of ``W``.

    Cost: :math:`O(dN^2)` for the cosines, :math:`O(d^2 N)` for the capacities and the
    eigen-residual, and an eigen-decomposition of each block's :math:`n_b \times n_b` Gram
    matrix.

    Examples
    --------
    A triangle in the plane plus a feature on its own axis, in a rotated basis:

    >>> import numpy as np
    >>> t = 2 * np.pi * np.arange(3) / 3
    >>> W = np.zeros((3, 4))
    >>> W[:2, :3] = np.cos(t), np.sin(t)
    >>> W[2, 3] = 2.0
    >>> Q = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    >>> structure = blocks(Q @ W)
    >>> structure.blocks
    (Block(features=[0, 1, 2], dim=2, eigenvalue=1.5, capacity_sum=2), Block(features=[3], dim=1, eigenvalue=4, capacity_sum=1))
    >>> structure.is_block_semi_orthogonal
    True
    """
    X = _single_embedding(W, feature_axis)
    tol = check_scalar(tol, "tol", minimum=0.0)
    zero_tol = check_scalar(zero_tol, "zero_tol", minimum=0.0)
    d, n = X.shape
    C = capacity(X)
    # Capacity, cosines, residuals and eigenvalue ratios are scale free; the largest-entry
    # normalisation keeps fourth powers in range, and eigenvalues are scaled back below.
    scale = float(np.max(np.abs(X))) if X.size else 0.0
    Y = _normalised(X)
    norms, nonzero = _represented(Y, zero_tol)
    ignored = tuple(int(i) for i in np.flatnonzero(~nonzero))
    active = np.flatnonzero(nonzero)
    if active.size == 0:
        return BlockStructure((), ignored, 0.0, 0.0, 0.0, tol, d)

    U = Y[:, active] / norms[active]
    cosines = np.abs(U.T @ U)
    from scipy.sparse.csgraph import connected_components  # slow to import; only here

    n_comp, labels = connected_components(cosines > tol, directed=False)
    different = labels[:, None] != labels[None, :]
    overlap = float(np.max(cosines, where=different, initial=0.0))

    MU = Y @ (Y.T @ U)
    rho = np.sum(U * MU, axis=0)
    eigen_residual = float(np.max(np.linalg.norm(MU - rho * U, axis=0) / rho))

    found = []
    for comp in range(n_comp):
        members = active[labels == comp]
        Zb = Y[:, members]
        # The nonzero eigenvalues of W_b W_b^T are those of the (n_b x n_b) Gram matrix.
        eig = np.linalg.eigvalsh(Zb.T @ Zb)[::-1]
        kept = eig[eig > tol * eig[0]]
        mean = float(kept.mean())
        found.append(
            Block(
                features=tuple(int(i) for i in members),
                dim=int(kept.size),
                eigenvalue=mean * scale**2,
                eigenvalue_spread=float((kept[0] - kept[-1]) / mean),
                capacity_sum=float(C[members].sum()),
            )
        )
    found.sort(key=lambda b: b.features[0])
    rank = sum(b.dim for b in found)
    residual = abs(rank - float(C[active].sum())) / rank
    return BlockStructure(tuple(found), ignored, residual, eigen_residual, overlap, tol, d)


def features_per_neuron(W: ArrayLike, *, feature_axis: int = -1) -> np.ndarray:
    r"""Effective number of features each neuron (embedding coordinate) carries.

    The participation ratio of neuron k's row of weights,

    .. math:: \mathrm{PR}_k = \frac{\big(\sum_i W_{ki}^2\big)^2}{\sum_i W_{ki}^4} \in [1, N],

    is 1 for a neuron that reads a single feature and ``m`` for one that reads ``m``
    features with equal weight; an unused neuron gets 0. Unlike capacity it depends on the
    neuron basis: it tells how interpretable the neurons of a particular ``W`` are, e.g. a
    dense versus a sparse realisation (:func:`capopt.realize`) of one allocation.

    Parameters
    ----------
    W : array_like, shape (..., d, N) or (..., N, d)
        Embedding(s), optionally with leading batch axes.
    feature_axis : {-1, -2}

    Returns
    -------
    ndarray, shape (..., d)

    Examples
    --------
    >>> import numpy as np
    >>> features_per_neuron(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]]))
    array([2., 1., 0.])
    """
    X = _normalised(_features_last(W, feature_axis))
    sq = X * X
    num = np.sum(sq, axis=-1) ** 2
    den = np.sum(sq * sq, axis=-1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def block_sizes(structure: BlockStructure) -> tuple[tuple[int, int], ...]:
    """The (features, dims) of each block of ``structure``, largest first."""
    return tuple(sorted(((len(b.features), b.dim) for b in structure.blocks), reverse=True))


def block_summary(structure: BlockStructure) -> str:
    """Blocks as 'features/dims' terms, largest first, e.g. '1/1 x2, 5/2' ('none' if none).

    Examples
    --------
    >>> import numpy as np
    >>> block_summary(blocks(np.eye(2)))
    '1/1 x2'
    """
    if not structure.blocks:
        return "none"
    sizes = block_sizes(structure)
    terms = []
    for size in dict.fromkeys(sizes):
        count = sizes.count(size)
        terms.append(f"{size[0]}/{size[1]}" + (f" x{count}" if count > 1 else ""))
    return ", ".join(terms)
