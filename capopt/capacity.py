"""Capacity of the features of an embedding matrix, and the bounds that go with it.

Glossary: ``W`` embedding with one column per feature (features on ``feature_axis``), ``d``
embedding dimension, ``N`` number of features, ``G = W^T W`` Gram matrix, ``C`` capacity,
``t_ij = W_i.W_j / ||W_i||^2`` coupling of feature i to feature j, ``U`` and ``e`` the columns
split as ``W_j = U_j 2**e_j``, ``g`` a group of columns of like magnitude, ``X`` W with its
features last, a *block* the float64 copy of consecutive columns of X (:mod:`capopt._blocks`),
``h`` leverage score.

A W with ``d < N`` is read block by block, so that a dictionary of 1e5-1e6 features in
float32, memory-mapped or in dask, is measured in memory O(d^2 + block) beyond its own.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal, cast, overload

import numpy as np

from . import _blocks
from ._typing import ArrayLike
from ._validation import as_float_array

__all__ = ["capacity", "leverage_scores", "capacity_summary", "CapacitySummary"]


def _move_features_last(arr: Any, feature_axis: int, name: str) -> Any:
    """``arr`` (a numpy or dask array) with the axis ``feature_axis`` (one of its last
    two) last, as a view."""
    if not isinstance(feature_axis, (int, np.integer)) or isinstance(feature_axis, bool):
        raise TypeError(f"feature_axis must be an int, got {type(feature_axis).__name__}")
    allowed = (-1, -2, arr.ndim - 1, arr.ndim - 2)
    if feature_axis not in allowed:
        raise ValueError(
            "feature_axis must name one of the last two axes of W (-1 for W[..., hidden, "
            f"feature], -2 for W[..., feature, hidden]), got {feature_axis} for {name} of "
            f"shape {arr.shape}"
        )
    return arr if feature_axis % arr.ndim == arr.ndim - 1 else arr.swapaxes(-1, -2)


def _features_last(W: ArrayLike, feature_axis: int, name: str = "W") -> np.ndarray:
    """Validate ``W`` and return a float64 view of shape (..., d, N), features last."""
    return _move_features_last(as_float_array(W, name, min_ndim=2), feature_axis, name)


def _features_last_as_given(W: ArrayLike, feature_axis: int, name: str = "W") -> tuple[Any, bool]:
    """Validate the kind and shape of ``W`` and return it features last in its own dtype
    and container (numpy array, memmap or dask array), without reading its values, and
    whether its last two axes were swapped to put them there.

    Its values are checked (finite) as the blocks are read (:func:`_column_maxima`).
    """
    arr: Any = W  # a dask array, or the numpy array below
    if not _blocks.is_dask(W):
        try:
            arr = np.asarray(W)
        except Exception:
            arr = as_float_array(W, name)  # raises the TypeError that names the argument
    if arr.dtype.kind not in "biuf":
        as_float_array(np.empty(0, dtype=arr.dtype), name)  # raises: complex or not numeric
    if arr.ndim < 2:
        raise ValueError(f"{name} must have at least 2 axes, got shape {arr.shape}")
    return _move_features_last(arr, feature_axis, name), feature_axis % arr.ndim == arr.ndim - 2


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


def _scale_columns(X: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``X_j 2**k_j`` for every column, in place: ``np.ldexp``, but by one multiplication
    where every ``2**k_j`` is a float64 (exactly the same numbers: the product by an exact
    power of two is rounded once, as ldexp rounds). ``k_j = _NO_EXPONENT`` zeroes column j."""
    if not k.any():
        return X
    if k.max() > 1023:  # a column below 2**-1023 is scaled up past 2**1023
        X[...] = np.where((k == _NO_EXPONENT)[..., None, :], 0.0, np.ldexp(X, k[..., None, :]))
        return X
    return np.multiply(X, np.ldexp(1.0, k)[..., None, :], out=X)


#: What a pass reads of a run of blocks: the largest magnitude of each column (one array per
#: block), the index of the first non-finite entry (None when all are finite), and, for
#: the Gram pass, ``X X^T`` (None once a non-finite entry is found).
_Scan = tuple[list[np.ndarray], tuple[int, ...] | None, np.ndarray | None]


def _scan_block(block: np.ndarray,
                columns: np.ndarray) -> tuple[list[np.ndarray], tuple[int, ...] | None]:
    """Largest magnitude of each column of a block (in its own float dtype: exact), and
    the index in X (..., d, N) of its first non-finite entry (None when all are finite);
    ``columns`` are the block's column numbers."""
    if block.dtype.kind != "f":  # integers: |x| of the most negative one overflows
        block = block.astype(np.float64)
    if block.shape[-2] == 0:
        return [np.zeros(block.shape[:-2] + block.shape[-1:])], None
    # max and min carry a NaN or an infinity through to the column's maximum.
    maxima = np.maximum(np.max(block, axis=-2), -np.min(block, axis=-2))
    if not np.isfinite(maxima).all():
        *batch, hidden, column = (int(i) for i in np.argwhere(~np.isfinite(block))[0])
        return [], (*batch, hidden, int(columns[column]))
    return [maxima.astype(np.float64)], None


def _scan_gram_block(block: np.ndarray, columns: np.ndarray) -> _Scan:
    """:func:`_scan_block` and the block's ``X X^T``, unscaled."""
    maxima, bad = _scan_block(block, columns)
    return maxima, bad, None if bad is not None else block @ np.swapaxes(block, -1, -2)


def _combine_scans(a: _Scan, b: _Scan) -> _Scan:
    """Join the scans of two runs of blocks in column order (the first bad entry wins)."""
    bad = a[1] if a[1] is not None else b[1]
    if bad is not None:
        return a[0] + b[0], bad, None
    # Neither run has a bad entry, so both carry their X X^T.
    return a[0] + b[0], None, cast(np.ndarray, a[2]) + cast(np.ndarray, b[2])


def _check_finite(blocks: _blocks.Blocks, bad: tuple[int, ...] | None, swapped: bool) -> None:
    """Raise on a non-finite entry of X at ``bad``, naming it by its index in ``W`` as
    given (``swapped``: W's features are on axis -2)."""
    if bad is None:
        return
    *batch, hidden, feature = bad
    value = np.asarray(blocks.X[bad]).item()
    index = (*batch, feature, hidden) if swapped else bad
    raise ValueError(
        f"W must be finite, got {value} at index {index} (feature {feature}, hidden "
        f"unit {hidden}); replace or drop the non-finite weights first"
    )


def _column_maxima(blocks: _blocks.Blocks, swapped: bool) -> np.ndarray:
    """``max_k |X_kj|`` of every column, read block by block; raises on NaN or inf."""
    scanned = blocks.map(_scan_block, (np.arange(blocks.shape[-1]),), float64=False)
    _check_finite(blocks, next((bad for _, bad in scanned if bad is not None), None), swapped)
    return np.concatenate([part for parts, _ in scanned for part in parts], axis=-1)


@dataclass(frozen=True)
class _Groups:
    """Columns grouped by magnitude (see :func:`_capacity_of_blocks`)."""

    e: np.ndarray  # (..., N) column exponents
    group: np.ndarray  # (..., N) group of each column, -1 for a zero column
    top: np.ndarray  # (..., 1) largest exponent of each matrix
    present: tuple[int, ...]  # the groups that hold a column in some matrix

    @classmethod
    def of(cls, maxima: np.ndarray) -> "_Groups":
        mantissa, e = np.frexp(maxima)
        nonzero = mantissa > 0
        top = np.max(np.where(nonzero, e, _NO_EXPONENT), axis=-1, keepdims=True)
        group = np.where(nonzero, (top - e) // _GROUP_BITS, -1)
        return cls(e, group, top, tuple(int(g) for g in np.unique(group[nonzero])))

    @classmethod
    def unscaled(cls, maxima: np.ndarray) -> "_Groups":
        """All columns in one group of unit 1, with ``e = 0``: the grouped evaluation
        without any scaling."""
        nonzero = maxima > 0
        zeros = np.zeros(maxima.shape, dtype=int)
        present = (0,) if nonzero.any() else ()
        return cls(zeros, np.where(nonzero, 0, -1), zeros[..., :1], present)

    def unit(self, g: int) -> np.ndarray:
        """Exponent of group g's unit ``2**s_g``, shape (..., 1)."""
        return self.top - g * _GROUP_BITS

    @property
    def factored(self) -> tuple[int, ...]:
        """The groups with smaller ones below them, which need the factor ``R_g``."""
        return self.present[:-1]


#: Every group's ``A_g A_g^T`` and the ``R_g`` of the groups in ``_Groups.factored``, of one
#: run of blocks.
_Factors = tuple[list[np.ndarray], list[np.ndarray]]


def _group_block(block: np.ndarray, e: np.ndarray, group: np.ndarray, groups: _Groups) -> _Factors:
    """One block's share of every group's ``A_g A_g^T`` and ``R_g`` (a QR of ``A_g^T``)."""
    grams, factors = [], []
    for g in groups.present:
        member = group == g
        # A_g = X_j 2**-s_g on the group's columns, 0 elsewhere; the last group may
        # overwrite the block.
        last = g == groups.present[-1]
        k = np.where(member, -groups.unit(g), _NO_EXPONENT)
        A = _scale_columns(block if last else block.copy(), k)
        grams.append(A @ np.swapaxes(A, -1, -2))
        if g in groups.factored:
            factors.append(_r_factor(np.swapaxes(A, -1, -2)))
    return grams, factors


def _r_factor(A: np.ndarray) -> np.ndarray:
    """The R of a QR of each (..., m, n) matrix, shape (..., min(m, n), n)."""
    return cast(np.ndarray, np.linalg.qr(A, mode="r"))


def _stack_factors(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """The R of a QR of ``[A_a; A_b]`` from those of ``A_a`` and ``A_b``: a QR of ``[R_a;
    R_b]`` (one step of a tall-skinny QR, backward stable as a QR of the whole)."""
    return _r_factor(np.concatenate([Ra, Rb], axis=-2))


def _combine_groups(a: _Factors, b: _Factors) -> _Factors:
    """Sum the ``A_g A_g^T`` of two sets of blocks and join their ``R_g``."""
    return [x + y for x, y in zip(a[0], b[0])], [_stack_factors(x, y) for x, y in zip(a[1], b[1])]


def _quadratic_forms(U: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``U_i^T M U_i`` for every column i, with ``M U`` laid out in memory as U is, so
    that the sums over each column run along memory (a block read from a
    ``W[feature, hidden]`` file holds its columns contiguously)."""
    if U.strides[-2] < U.strides[-1]:
        V = np.swapaxes(U, -1, -2)
        return np.einsum("...ik,...ik->...i", V, V @ np.swapaxes(M, -1, -2))
    return np.einsum("...ki,...ki->...i", U, M @ U)


def _totals_block(block: np.ndarray, e: np.ndarray, group: np.ndarray, groups: _Groups,
                  grams: list[np.ndarray], factors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``||U_i||^2`` and ``sum_j t_ij^2 ||U_i||^4`` for the columns of one block."""
    U = _scale_columns(block, -e)
    n = np.einsum("...ki,...ki->...i", U, U)
    total = np.zeros(n.shape)
    for g, M in zip(groups.present, grams):
        shift = groups.unit(g) - e  # 2**shift turns group g's unit into column i's
        at_most_g = group <= g
        q = _quadratic_forms(U, M)
        total += np.where(at_most_g, np.ldexp(q, np.where(at_most_g, 2 * shift, 0)), 0.0)
        if g in groups.factored:
            R = factors[groups.factored.index(g)]
            # As in the Gram path: a coupling beyond the float64 range sends C_i to 0.
            with np.errstate(over="ignore"):
                y = np.ldexp(R @ U, shift[..., None, :])
                total += np.where(at_most_g, 0.0, np.sum(y * y, axis=-2))
    return n, total


def _capacity_of_blocks(blocks: _blocks.Blocks, maxima: np.ndarray) -> np.ndarray:
    """Capacities from ``d x d`` matrices of groups of columns of like magnitude (d < N).

    Group g holds the columns whose exponent lies ``[g B, (g + 1) B)`` below the largest
    (``B = _GROUP_BITS``), as ``A_g = [U_j 2**(e_j - s_g)] = [X_j 2**-s_g]`` in its own
    unit ``2**s_g``. Its couplings to column i sum to ``2**(2 (s_g - e_i)) sum_j (U_i .
    A_gj)^2``: a quadratic form in ``A_g A_g^T`` for the columns of group g and larger
    ones, and the squared norm of ``R_g U_i``, with ``R_g^T R_g = A_g A_g^T`` from a QR of
    ``A_g^T``, for smaller ones. The quadratic form would square the smaller column's
    entries before the group's scale multiplies them back and so lose the coupling to
    underflow; ``R_g U_i`` is linear in them and exact zeros stay zero through the
    Householder reflections. One pass over the blocks sums the ``A_g A_g^T`` and refactors
    the ``R_g`` block by block (a tall-skinny QR); a second evaluates every column's forms.
    """
    groups = _Groups.of(maxima)
    columns = (groups.e, groups.group)
    grams, factors = blocks.reduce(_group_block, _combine_groups, columns, (groups,))
    return _capacity_from_factors(blocks, maxima, groups, grams, factors)


def _capacity_from_factors(blocks: _blocks.Blocks, maxima: np.ndarray, groups: _Groups,
                           grams: list[np.ndarray], factors: list[np.ndarray]) -> np.ndarray:
    """Capacities from every group's ``A_g A_g^T`` and ``R_g``: one pass over the blocks."""
    parts = blocks.map(_totals_block, (groups.e, groups.group), (groups, grams, factors))
    n = np.concatenate([p[0] for p in parts], axis=-1)
    total = np.concatenate([p[1] for p in parts], axis=-1)
    nonzero = maxima > 0
    return np.clip(np.where(nonzero, n * n / np.where(nonzero, total, 1.0), 0.0), 0.0, 1.0)


def _exact_in_float64(dtype: np.dtype) -> bool:
    """Whether products up to the fourth power of entries of this dtype, converted to
    float64, neither underflow nor overflow: float16 and float32 (their smallest magnitude
    to the fourth, 2**-596, and largest, 2**512, are normal float64 numbers), integers
    and booleans. For such input the power-of-two scaling of the columns changes no bit
    of any product and can be skipped."""
    return dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 4)


def _capacities(blocks: _blocks.Blocks, swapped: bool) -> tuple[np.ndarray, np.ndarray]:
    """Capacities and column maxima of X (..., d, N), d < N, read block by block.

    float32, float16 and integer input whose columns form one magnitude group (norms
    within a factor ``2**_GROUP_BITS``, the common case) is read twice: a first pass finds
    the column maxima and sums ``X X^T`` unscaled, a second evaluates every column's form
    (:func:`_exact_in_float64`). Otherwise three passes: maxima, then the groups' factors
    (:func:`_capacity_of_blocks`), then the forms.
    """
    if _exact_in_float64(np.dtype(blocks.X.dtype)):
        columns = (np.arange(blocks.shape[-1]),)
        parts, bad, gram = blocks.reduce(_scan_gram_block, _combine_scans, columns)
        _check_finite(blocks, bad, swapped)
        maxima = np.concatenate(parts, axis=-1)
        if len(_Groups.of(maxima).present) <= 1:
            groups = _Groups.unscaled(maxima)
            return _capacity_from_factors(blocks, maxima, groups, [gram], []), maxima
    else:
        maxima = _column_maxima(blocks, swapped)
    return _capacity_of_blocks(blocks, maxima), maxima


def _unit_exponent(maxima: np.ndarray) -> np.ndarray:
    """Exponent of each matrix's largest entry, shape (..., 1): dividing by ``2**`` it keeps
    the matrix's squares in range, as :func:`_normalised` does, without rounding."""
    return np.frexp(np.max(maxima, axis=-1, keepdims=True))[1]


def _factor_block(block: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """R of a QR of one block's ``(X 2**-unit)^T``."""
    scaled = _scale_columns(block, np.broadcast_to(-unit, block.shape[:-2] + block.shape[-1:]))
    return _r_factor(np.swapaxes(scaled, -1, -2))


def _leverage_block(block: np.ndarray, unit: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``||T X_i 2**-unit||^2`` for the columns of one block."""
    Y = T @ _scale_columns(block, np.broadcast_to(-unit, block.shape[:-2] + block.shape[-1:]))
    return np.einsum("...ki,...ki->...i", Y, Y)


def _leverage_of_blocks(blocks: _blocks.Blocks, maxima: np.ndarray,
                        rtol: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Leverage scores and rank of (..., d, N) matrices read block by block (d < N).

    A tall-skinny QR of ``X^T`` (one pass) gives ``R`` (d x d) with the singular values and
    right singular vectors of ``X``, ``R = P S V^T``; then ``h_i = ||S_k^{-1} V_k^T X_i||^2``
    over the kept singular values (a second pass). Same rank rule as
    :func:`_leverage_and_rank`.
    """
    unit = _unit_exponent(maxima)
    R = blocks.reduce(_factor_block, _stack_factors, shared=(unit,))
    _, s, Vh = np.linalg.svd(R)
    keep = _kept(s, blocks.shape, rtol)
    T = np.where(keep[..., :, None], Vh / np.where(keep, s, 1.0)[..., :, None], 0.0)
    h = np.concatenate(blocks.map(_leverage_block, shared=(unit, T)), axis=-1)
    return np.clip(h, 0.0, 1.0), np.sum(keep, axis=-1)


def capacity(W: ArrayLike, *, feature_axis: int = -1) -> np.ndarray:
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
        Embedding matrix, optionally with leading batch axes, of any real dtype (float64,
        float32, float16; convert bfloat16 to float32 first). Accepts numpy arrays, an
        ``np.memmap`` (for example ``np.load(path, mmap_mode="r")``), dask arrays, lists
        and anything with ``__array__`` (for example a CPU torch tensor; call
        ``.detach()`` first on one that requires grad). It is never modified, and never
        converted to float64 as a whole when ``d < N``: it is read a block of features at
        a time.
    feature_axis : {-1, -2}
        Which of the last two axes indexes features: ``-1`` for ``W[..., hidden, feature]``
        (ARENA / tms-kit layout), ``-2`` for ``W[..., feature, hidden]`` (the Toy Models of
        Superposition notebook layout, and a sparse autoencoder's decoder stored as
        ``(n_features, d)``).

    Returns
    -------
    ndarray, shape (..., N), float64
        Capacities in [0, 1].

    Raises
    ------
    ValueError
        If ``W`` has fewer than two axes, NaN or infinite entries (the message gives the
        first one's index, feature and hidden unit), or ``feature_axis`` does not name one
        of its last two axes.
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
    Cost :math:`O(d^2 N)` per group; an embedding whose column norms lie within a factor
    :math:`2^{16}` of each other is one group. The quadratic form loses about 2r bits for
    a column :math:`2^r` below the largest of its group when that column is nearly
    orthogonal to the larger ones. The result is clipped to [0, 1] against rounding.

    The ``d < N`` evaluation reads ``W`` in blocks of features, each converted to float64
    on its own (the conversion of float32 or float16 is exact): a first pass finds each
    column's exponent (and checks that the entries are finite), a second sums every
    group's :math:`A_g A_g^\top` and builds its :math:`R_g` block by block (a tall-skinny
    QR: the R of a QR of two stacked R factors), a third evaluates every column's forms.
    For float32, float16 and integer input the scaling changes no bit (no product of
    their float64 conversions up to the fourth power under- or overflows), so when the
    columns form one group the first pass also sums :math:`W W^\top` and two passes
    suffice. The memory beyond the input is :math:`O(d^2)` per group plus a few blocks of
    ``capopt._blocks.BLOCK_BYTES`` (4 MiB) each, and :math:`O(N)` for the results,
    whatever N. A dask array is computed by its own scheduler, one task per chunk of its
    feature axis (its hidden and batch axes are joined into one chunk), with the partial
    :math:`A_g A_g^\top` and :math:`R_g` combined in a tree of tasks; it gives the
    numbers of the same array in memory to rounding (1e-12 relative).

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

    A float32 dictionary stored as ``W[feature, hidden]`` and memory-mapped from disk:

    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "decoder.npy")
    >>> np.save(path, np.tile(np.eye(4, dtype=np.float32), (1000, 1)))  # 4000 x 4
    >>> C = capacity(np.load(path, mmap_mode="r"), feature_axis=-2)
    >>> C.shape, round(float(C.sum()), 9)        # 1000 copies of each of 4 axes
    ((4000,), 4.0)
    >>> tmp.cleanup()
    """
    X, swapped = _features_last_as_given(W, feature_axis)
    d, N = X.shape[-2:]
    if d >= N:
        U, e, nonzero = _column_exponents(_features_last(W, feature_axis))
        C = np.where(nonzero, _capacity_from_gram(U, e, nonzero), 0.0)
    else:
        C = _capacities(_blocks.Blocks(X), swapped)[0]
    return np.clip(C, 0.0, 1.0)


def _kept(s: np.ndarray, shape: tuple, rtol: float | None) -> np.ndarray:
    """Which singular values ``s`` (..., k), in decreasing order, of matrices of ``shape``
    count as nonzero: those above ``rtol * s_max``, by default ``rtol = max(d, N) * eps``
    (numpy's ``matrix_rank`` rule)."""
    if rtol is None:
        rtol = max(shape[-2:]) * np.finfo(np.float64).eps
    return s > rtol * s[..., :1] if s.shape[-1] else s > 0


def _leverage_and_rank(X: np.ndarray, rtol: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Leverage scores and numerical rank of (..., d, N) matrices from one thin SVD.

    Singular values below ``rtol * s_max`` count as zero; the default ``max(d, N) * eps`` is
    numpy's ``matrix_rank`` rule.
    """
    X = _normalised(X)
    _, s, Vh = np.linalg.svd(X, full_matrices=False)
    keep = _kept(s, X.shape, rtol)
    h = np.sum(np.where(keep[..., :, None], Vh * Vh, 0.0), axis=-2)
    return np.clip(h, 0.0, 1.0), np.sum(keep, axis=-1)


def leverage_scores(W: ArrayLike, *, feature_axis: int = -1, rtol: float | None = None) -> np.ndarray:
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
    return _measure(W, feature_axis, rtol, capacities=False)[1]


@overload
def _measure(W: ArrayLike, feature_axis: int, rtol: float | None, *,
             capacities: Literal[True] = ...
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]: ...


@overload
def _measure(W: ArrayLike, feature_axis: int, rtol: float | None, *,
             capacities: Literal[False]
             ) -> tuple[None, np.ndarray, np.ndarray, np.ndarray, int]: ...


def _measure(W: ArrayLike, feature_axis: int, rtol: float | None, *,
             capacities: bool = True
             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, int]:
    """Capacities (when asked), leverage scores, rank, dead (zero) columns and ``d`` of ``W``.

    In memory when ``W`` fits in one block or ``d >= N`` (one thin SVD), otherwise block
    by block in four passes: column maxima, then the factors of capacity and leverage,
    then each column's forms.
    """
    X, swapped = _features_last_as_given(W, feature_axis)
    d, N = X.shape[-2:]
    blocks = _blocks.Blocks(X)
    if d >= N or (len(blocks.bounds) == 1 and not blocks.dask):
        X = _features_last(W, feature_axis)
        h, rank = _leverage_and_rank(X, rtol)
        return capacity(X) if capacities else None, h, rank, ~np.any(X != 0, axis=-2), d
    if capacities:
        C, maxima = _capacities(blocks, swapped)
    else:
        C, maxima = None, _column_maxima(blocks, swapped)
    h, rank = _leverage_of_blocks(blocks, maxima, rtol)
    return C, h, rank, maxima == 0, d


#: Probabilities of the quantiles of C that :class:`CapacitySummary` reports.
QUANTILE_LEVELS = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)

#: :class:`CapacitySummary` counts the features near ``1/k`` for ``k = 1 .. TIGHT_FRAME_K``:
#: a feature in a tight frame of k equal vectors in one dimension, or of k' k in k'.
TIGHT_FRAME_K = 8

#: A capacity counts as near ``1/k`` when ``|C - 1/k| <= TIGHT_FRAME_RTOL / k``. The
#: windows of neighbouring k stay apart for k < 1 / TIGHT_FRAME_RTOL - 1/2 (up to k = 9),
#: and 5% holds the jitter of trained weights around their sticky values (~1e-2).
TIGHT_FRAME_RTOL = 0.05


@dataclass(frozen=True, repr=False)
class CapacitySummary:
    """Per-feature capacities of an embedding with the totals they are bounded by, and the
    distribution of its capacities.

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
    dead : ndarray of bool, shape (..., N)
        Features whose column is exactly zero (:math:`C_i = 0`, not represented at all).
    quantiles : ndarray, shape (..., len(QUANTILE_LEVELS))
        Quantiles of the capacities of the live (not dead) features at the probabilities
        :data:`QUANTILE_LEVELS` (NaN when every feature is dead).
    near_tight_frame : ndarray, shape (..., TIGHT_FRAME_K)
        Entry ``k - 1``: the fraction of the live features with
        :math:`|C_i - 1/k| \\le` ``TIGHT_FRAME_RTOL / k``, the value of a feature in a tight
        frame of k vectors per dimension (1 monosemantic, 1/2 antipodal pairs, ...).
    """

    capacities: np.ndarray
    leverage: np.ndarray
    total: np.ndarray | float
    rank: np.ndarray | int
    dim: int
    dead: np.ndarray
    quantiles: np.ndarray
    near_tight_frame: np.ndarray

    @property
    def n_dead(self) -> np.ndarray | int:
        """Number of dead features."""
        count = np.sum(self.dead, axis=-1)
        return int(count) if count.ndim == 0 else count

    @property
    def fill(self) -> np.ndarray | float:
        """:math:`\\sum_i C_i / \\operatorname{rank} W`, the fraction of the spanned
        dimensions held as capacity: 1 iff block-semi-orthogonal (0 when the rank is 0)."""
        rank = np.asarray(self.rank)
        fill = np.where(rank > 0, self.total / np.maximum(rank, 1), 0.0)
        return float(fill) if fill.ndim == 0 else fill

    def __repr__(self) -> str:
        n = self.capacities.shape[-1]
        return (
            f"CapacitySummary(n_features={n}, dim={self.dim}, rank={self.rank}, "
            f"total={np.round(self.total, 6)}, n_dead={self.n_dead})"
        )

    def _single(self, method: str) -> None:
        if self.capacities.ndim != 1:
            raise ValueError(
                f"{method}() needs a single embedding, got batch shape {self.capacities.shape[:-1]}"
            )

    def table(self) -> str:
        """Plain-text table of the per-feature values and the totals (2-d ``W`` only)."""
        self._single("table")
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

    def describe(self) -> str:
        """Plain-text distribution of the capacities, for a dictionary too large for
        :meth:`table` (2-d ``W`` only): live and dead features, quantiles of C, the
        fractions near each ``1/k``, and :math:`\\sum_i C_i` against the rank."""
        self._single("describe")
        n = self.capacities.shape[-1]
        live = n - self.n_dead
        levels = "".join(f"{q:>9g}" for q in QUANTILE_LEVELS)
        values = "".join(f"{c:>9.4f}" for c in self.quantiles)
        ks = "".join(f"{'1' if k == 1 else f'1/{k}':>7}" for k in range(1, TIGHT_FRAME_K + 1))
        near = "".join(f"{100 * f:>6.1f}%" for f in self.near_tight_frame)
        return "\n".join([
            f"features {n}: {live} live, {self.n_dead} dead (zero columns)",
            "quantiles of C over the live features",
            f"  {'level':>6}{levels}",
            f"  {'C':>6}{values}",
            f"live features within {100 * TIGHT_FRAME_RTOL:g}% of 1/k",
            f"  {'C ~':>6}{ks}",
            f"  {'share':>6}{near}",
            f"sum C = {self.total:.6f} of rank {self.rank} ({100 * self.fill:.1f}%), "
            f"d = {self.dim}",
        ])


def _distribution(C: np.ndarray, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles of the live capacities and their fractions near each ``1/k``."""
    live = np.where(dead, np.nan, C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every feature dead: NaN quantiles
        quantiles = np.moveaxis(np.nanquantile(live, QUANTILE_LEVELS, axis=-1), 0, -1)
    k = np.arange(1, TIGHT_FRAME_K + 1)
    near = np.abs(C[..., None] - 1.0 / k) <= TIGHT_FRAME_RTOL / k
    n_live = np.sum(~dead, axis=-1)[..., None]
    fractions = np.sum(near & ~dead[..., None], axis=-2) / np.maximum(n_live, 1)
    return quantiles, fractions


def capacity_summary(W: ArrayLike, *, feature_axis: int = -1, rtol: float | None = None) -> CapacitySummary:
    """Capacities, leverage scores, :math:`\\sum_i C_i`, rank, dimension, dead features and
    the distribution of the capacities of an embedding.

    Parameters are those of :func:`leverage_scores`; like :func:`capacity`, a large
    float32 array, memmap or dask array is read block by block.

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
    >>> summary
    CapacitySummary(n_features=3, dim=2, rank=2, total=2.0, n_dead=1)

    Three antipodal pairs and a monosemantic feature in four dimensions:

    >>> W = np.hstack([np.eye(4, 3), -np.eye(4, 3), np.eye(4)[:, 3:]])
    >>> print(capacity_summary(W).describe())
    features 7: 7 live, 0 dead (zero columns)
    quantiles of C over the live features
       level        0     0.01      0.1     0.25      0.5     0.75      0.9     0.99        1
           C   0.5000   0.5000   0.5000   0.5000   0.5000   0.5000   0.7000   0.9700   1.0000
    live features within 5% of 1/k
         C ~      1    1/2    1/3    1/4    1/5    1/6    1/7    1/8
       share  14.3%  85.7%   0.0%   0.0%   0.0%   0.0%   0.0%   0.0%
    sum C = 4.000000 of rank 4 (100.0%), d = 4
    """
    C, h, rank, dead, dim = _measure(W, feature_axis, rtol)
    quantiles, near = _distribution(C, dead)
    total, single = C.sum(axis=-1), C.ndim == 1
    return CapacitySummary(
        capacities=C, leverage=h, total=float(total) if single else total,
        rank=int(rank) if single else rank, dim=dim, dead=dead, quantiles=quantiles,
        near_tight_frame=near,
    )
