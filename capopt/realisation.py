r"""Embeddings that realise an allocation, and the optimal quadratic model itself.

Glossary: ``C`` capacity, ``d`` embedding dimension (``dim``), ``N`` number of features,
``k`` dimension of a block, ``lam_b`` the eigenvalue of :math:`W W^\top` on block b,
``v`` importance, ``K`` kurtosis, ``a`` squared norm :math:`\|W_i\|^2`.

An allocation is block-realisable (theory §2), i.e. some block-semi-orthogonal embedding has
it, iff its features can be grouped into blocks whose capacities sum to integers. Other
embeddings realise other allocations as well, so an allocation that is not block-realisable
may still be realisable. Inside a block of dimension k the features form a tight frame,
:math:`X X^\top = I_k`, with squared norms :math:`\|X_i\|^2 = C_i`; such a frame exists iff
:math:`0 \le C_i \le 1` and :math:`\sum_i C_i = k` (Schur–Horn: the spectrum
:math:`(1, \dots, 1, 0, \dots, 0)` of the Gram matrix majorises its diagonal ``C``), and
then :math:`C_i = \|X_i\|^2/1` is exactly feature i's capacity.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass

import numpy as np

from ._validation import as_float_array, check_scalar
from .curves import QuadraticCurves
from .geometry import features_per_neuron
from .models import quadratic_model_bias, quadratic_model_loss
from .solvers.result import AllocationResult

__all__ = ["realize", "optimal_quadratic_model", "QuadraticModel", "DEFAULT_REALIZE_TOL", "REALIZE_METHODS"]

#: Capacities within this distance of 0 or 1 are taken as exactly 0 or 1, and a group of
#: capacities whose sum is this close to an integer is a block. Exact solvers return
#: capacities to rounding (~1e-15 per feature); the margin leaves room for sums over many
#: features. Allocations from iterative references (cvxpy, scipy) need ``tol`` near their
#: solver accuracy, and are then realised to that accuracy.
DEFAULT_REALIZE_TOL = 1e-9

#: The realisation methods ``realize`` offers.
REALIZE_METHODS = ("dense", "sparse")

#: Most subsets the sparse grouping examines per split. Finding the finest partition into
#: integer-sum groups is a subset-sum problem (NP-hard in general); capped, the search costs
#: at most ~N * 2e4 sum evaluations, and an allocation it cannot split keeps one block,
#: which is always valid.
SUBSET_SEARCH_CAP = 20_000

#: Rounding slack of the sparse construction's bookkeeping of how full a neuron is.
_FIT_EPS = 1e-12

#: Largest distance from an integer of a subset the sparse grouping splits off. Tighter
#: than ``tol``: a split is optional, and a subset that sums to an integer only within
#: ``tol`` would be realised with its capacities moved by up to ``tol``.
_SPLIT_TOL = 1e-12

#: Iteration cap of the quartimax rotation; it stops earlier once a step gains < 1e-12.
_QUARTIMAX_MAX_ITER = 500


def _check_dim(dim) -> int:
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, numbers.Real):
        raise TypeError(f"dim must be a whole number, got {type(dim).__name__}: {dim!r}")
    if not (np.isfinite(dim) and float(dim).is_integer() and dim >= 0):
        raise ValueError(f"dim must be a whole number of dimensions >= 0, got {dim!r}")
    return int(dim)


def _check_capacities(capacities, tol: float) -> np.ndarray:
    """Validated float64 copy of ``capacities`` with values within ``tol`` of 0 or 1 snapped."""
    C = as_float_array(capacities, "capacities", allow_empty=False)
    if C.ndim != 1:
        raise ValueError(f"capacities must be 1-d with one entry per feature, got shape {C.shape}")
    outside = np.flatnonzero((C < -tol) | (C > 1 + tol))
    if outside.size:
        i = int(outside[0])
        raise ValueError(
            f"capacities must lie in [0, 1] (a feature owns at most one dimension), got "
            f"{C[i]:.6g} for feature {i}"
        )
    return np.where(C >= 1 - tol, 1.0, np.where(C <= tol, 0.0, C))


def _integer_part(total: float, tol: float) -> int | None:
    """``round(total)`` if ``total`` is within ``tol`` of a positive integer, else None."""
    k = round(total)
    return k if k >= 1 and abs(total - k) <= tol else None


def _split_off_group(C: np.ndarray, members: list[int], tol: float) -> list[int] | None:
    """Smallest subset of ``members`` (at most half of them, fewest first) whose capacities
    sum to an integer, or None when there is none within :data:`SUBSET_SEARCH_CAP` subsets.

    Only subsets up to half the size are tried: the complement of an integer-sum subset of
    an integer-sum group sums to an integer too.
    """
    budget = SUBSET_SEARCH_CAP
    for size in range(2, len(members) // 2 + 1):
        for subset in itertools.combinations(members, size):
            if _integer_part(float(C[list(subset)].sum()), tol) is not None:
                return list(subset)
            budget -= 1
            if budget == 0:
                return None
    return None


def _polysemantic_groups(C: np.ndarray, poly: list[int], split: bool, tol: float) -> list[list[int]]:
    """Group the polysemantic features into integer-sum blocks (one block unless ``split``)."""
    total = float(C[poly].sum())
    if _integer_part(total, tol) is None:
        raise ValueError(
            f"capacities of features {poly} sum to {total:.6g}; a block must sum to an integer "
            "(inside a block sum_i C_i = dim E_b, theory §2), so they are not block-realisable. "
            "realize() builds block-semi-orthogonal embeddings, for which the features with "
            "0 < C < 1 must together sum to a whole number of dimensions; embeddings of "
            "another kind may still realise these capacities"
        )
    groups, rest = [], list(poly)
    while split:
        found = _split_off_group(C, rest, min(tol, _SPLIT_TOL))
        if found is None:
            break
        groups.append(found)
        rest = [i for i in rest if i not in found]
    return groups + [rest]


def _schur_horn_frame(spectrum: np.ndarray, targets: np.ndarray) -> np.ndarray:
    r"""Matrix X (m x n) with :math:`X X^\top = \mathrm{diag}(\text{spectrum})` and column
    squared norms ``targets``, by plane rotations of columns (Dhillon et al. 2005).

    Requires n >= m and that ``spectrum`` (padded with zeros to n) majorises ``targets``.

    Start from :math:`X = [\mathrm{diag}(\sqrt{\text{spectrum}}), 0]`: mutually orthogonal
    "slot" columns with squared norms c. Each step takes the smallest remaining target a and
    the two slots whose norms bracket it in sorted order, :math:`c_j \ge a \ge c_{j+1}`,
    rotates them so that one has squared norm a (that column is final) and the other
    :math:`c_j + c_{j+1} - a`, still orthogonal to the other slots. The new norms, sorted,
    replace :math:`(c_j, c_{j+1})` by a value between them and drop a; every partial sum of
    the top p norms becomes :math:`\sum_{i \le p+1} c_i - a \ge \sum_{i \le p+1} a_i - a_{\min}
    \ge \sum_{i \le p} a_i`, so majorisation is kept and the next step exists. Rotations act
    on the right, so :math:`X X^\top` never changes. Cost :math:`O(n(m + n \log n))`.
    """
    m, n = spectrum.size, targets.size
    slots = np.zeros((m, n))
    slots[np.arange(m), np.arange(m)] = np.sqrt(spectrum)
    norms = np.concatenate([spectrum, np.zeros(n - m)])
    alive = list(range(n))
    X = np.zeros((m, n))
    order = np.argsort(targets, kind="stable")
    for feature in order[:-1]:
        a = targets[feature]
        alive.sort(key=lambda s: -norms[s])
        c = norms[alive]
        # Last slot at or above a, kept off the end so that a slot below exists; rounding
        # may leave a a hair outside [c_min, c_max], which the clip absorbs.
        j = min(int(np.sum(c >= a)) - 1, len(alive) - 2)
        j = max(j, 0)
        hi, lo = alive[j], alive[j + 1]
        gap = norms[hi] - norms[lo]
        cos2 = 1.0 if gap <= 0 else float(np.clip((a - norms[lo]) / gap, 0.0, 1.0))
        cos, sin = np.sqrt(cos2), np.sqrt(1.0 - cos2)
        X[:, feature] = cos * slots[:, hi] + sin * slots[:, lo]
        slots[:, lo] = -sin * slots[:, hi] + cos * slots[:, lo]
        norms[lo] = slots[:, lo] @ slots[:, lo]
        alive.remove(hi)
    X[:, order[-1]] = slots[:, alive[0]]
    return X


def _tetris_frame(targets: np.ndarray, k: int) -> np.ndarray:
    r"""Sparse tight frame X (k x n), :math:`X X^\top = I_k`, column squared norms ``targets``
    (summing to k, each in (0, 1)), in the spirit of spectral tetris (Casazza et al. 2011).

    Rows (neurons) are filled one at a time with the features in decreasing order of
    capacity. A feature that fits in the current row's remaining room r goes there whole
    (the largest that fits first). When none fits, the two smallest remaining features
    t, u (both > r) straddle this row and the next through a 2 x 2 block
    :math:`\mathrm{diag}(\sqrt r, \sqrt q) \begin{pmatrix} c & s \\ s & -c \end{pmatrix}`,
    :math:`q = C_t + C_u - r`, whose rows are orthogonal with squared norms r and q and whose
    columns have squared norms :math:`r c^2 + q s^2 = C_t` and :math:`C_u`; it exists when
    :math:`q \le 1`. Such a frame has features on one neuron or two, and each neuron
    carries the features that fit plus at most two straddling pairs.

    If :math:`C_t + C_u > 1 + r` no 2 x 2 block fits, and the remaining features are laid on
    the remaining rows (squared norms r, 1, ..., 1, which majorise any capacities in [0, 1]
    with that sum) by :func:`_schur_horn_frame`, which is denser. Equal capacities above
    1/2 (e.g. the tetrahedron, 3/4) take that route, as spectral tetris itself needs
    redundancy n/k >= 2.
    """
    n = targets.size
    X = np.zeros((k, n))
    remaining = sorted(range(n), key=lambda i: -targets[i])
    row, room = 0, 1.0
    while remaining:
        if row == k - 1:
            # The last row's room equals the sum of what is left, up to rounding.
            X[row, remaining] = np.sqrt(targets[remaining])
            break
        fitting = [i for i in remaining if targets[i] <= room + _FIT_EPS]
        if fitting:
            i = fitting[0]
            X[row, i] = np.sqrt(targets[i])
            remaining.remove(i)
            room -= targets[i]
        else:
            t, u = remaining[-2], remaining[-1]
            q = targets[t] + targets[u] - room
            if q > 1 + _FIT_EPS:
                spectrum = np.concatenate([[room], np.ones(k - row - 1)])
                X[row:, remaining] = _schur_horn_frame(spectrum, targets[remaining])
                break
            q = min(q, 1.0)
            cos2 = (targets[t] - q) / (room - q)
            cos, sin = np.sqrt(cos2), np.sqrt(1.0 - cos2)
            X[row, [t, u]] = np.sqrt(room) * cos, np.sqrt(room) * sin
            X[row + 1, [t, u]] = np.sqrt(q) * sin, -np.sqrt(q) * cos
            remaining = remaining[:-2]
            row, room = row + 1, 1.0 - q
        if room <= _FIT_EPS:
            row, room = row + 1, 1.0
    return X


def _quartimax(X: np.ndarray) -> np.ndarray:
    r"""Rotate the rows (neurons) of a frame X to maximise :math:`\sum_{k,i} X_{ki}^4`.

    With unit row norms, a neuron's participation ratio is :math:`1/\sum_i X_{ki}^4`, so
    this concentrates each neuron on few features (the quartimax criterion of factor
    analysis). Each step maximises the criterion's linearisation over rotations,
    :math:`R = U V^\top` from the SVD of :math:`X (X^\top R)^{\circ 3}`; the criterion is
    convex, so the steps never decrease it. Rotating rows keeps :math:`X X^\top` and the Gram
    matrix, hence the capacities.
    """
    L, R = X.T, np.eye(X.shape[0])
    value = np.sum(L**4)
    for _ in range(_QUARTIMAX_MAX_ITER):
        U, _, Vt = np.linalg.svd(L.T @ (L @ R) ** 3)
        R = U @ Vt
        new = np.sum((L @ R) ** 4)
        if new - value <= 1e-12 * value:
            break
        value = new
    return R.T @ X


def _sparse_frame(targets: np.ndarray, k: int) -> np.ndarray:
    """The candidate frame with the fewest features per neuron (smallest summed
    participation ratio): spectral tetris, the Givens construction, or either after a
    quartimax rotation. Tetris comes first and wins ties, keeping its exact zeros."""
    tetris, givens = _tetris_frame(targets, k), _schur_horn_frame(np.ones(k), targets)
    candidates = [tetris, _quartimax(tetris), givens, _quartimax(givens)]
    return min(candidates, key=lambda X: float(np.sum(features_per_neuron(X))))


_FRAME_BUILDERS = {
    "dense": lambda targets, k: _schur_horn_frame(np.ones(k), targets),
    "sparse": _sparse_frame,
}


def _realize_blocks(capacities, dim, method: str, seed, tol) -> tuple[np.ndarray, list[list[int]]]:
    """:func:`realize` that also returns the blocks (lists of feature indices) it built."""
    tol = check_scalar(tol, "tol", minimum=0.0)
    C = _check_capacities(capacities, tol)
    d = _check_dim(dim)
    if method not in REALIZE_METHODS:
        raise ValueError(f"method must be one of {list(REALIZE_METHODS)}, got {method!r}")
    if C.sum() > d + tol:
        raise ValueError(
            f"capacities sum to {C.sum():.10g} > dim = {d}; a d-dimensional embedding holds at "
            "most d (sum_i C_i <= rank W <= d, theory §1). Raise dim or lower the capacities"
        )
    monosemantic = [[int(i)] for i in np.flatnonzero(C == 1.0)]
    poly = [int(i) for i in np.flatnonzero((C > 0) & (C < 1))]
    groups = monosemantic
    if poly:
        groups = groups + _polysemantic_groups(C, poly, split=method == "sparse", tol=tol)

    W = np.zeros((d, C.size))
    row = 0
    for group in groups:
        total = float(C[group].sum())
        k = _integer_part(total, tol)
        # Rescaling to an exact integer sum moves each capacity by at most tol.
        W[row:row + k, group] = _FRAME_BUILDERS[method](C[group] * (k / total), k)
        row += k
    if method == "dense" and d > 1:
        from scipy.stats import ortho_group  # scipy.stats costs 0.4 s: import on use

        W = ortho_group.rvs(d, random_state=np.random.default_rng(seed)) @ W
    return W, groups


def realize(capacities, dim, *, method: str = "dense", seed=None, tol: float = DEFAULT_REALIZE_TOL) -> np.ndarray:
    r"""An embedding whose features have the given capacities.

    Returns a d x N matrix W, block-semi-orthogonal, with

    .. math::

        C_i(W) = \frac{G_{ii}^2}{\sum_j G_{ij}^2} = C_i \quad (G = W^\top W),

    built from blocks: each monosemantic feature (:math:`C_i = 1`) on its own axis, each
    ignored feature (:math:`C_i = 0`) a zero column, and the polysemantic features in
    blocks whose capacities sum to an integer k, as a tight frame
    :math:`X X^\top = I_k` with :math:`\|X_i\|^2 = C_i`. Every block has eigenvalue 1, so
    :math:`\|W_i\|^2 = C_i` and :math:`\sum_i C_i` is the number of dimensions used.

    Parameters
    ----------
    capacities : array_like, shape (N,)
        :math:`C_i \in [0, 1]`; never modified.
    dim : int
        Embedding dimension d; :math:`\sum_i C_i \le d` (dimensions beyond the sum stay
        unused).
    method : {"dense", "sparse"}
        ``"dense"``: all polysemantic features in one block (the structure of the quadratic
        model's optimum), each block built by Givens rotations (Dhillon et al. 2005), then
        the whole space rotated by a Haar-random orthogonal matrix, like weights trained
        from a random start in a rotation-invariant model. ``"sparse"``: polysemantic
        features split into the smallest integer-sum groups a capped search finds, each a
        spectral-tetris-style frame on consecutive neurons, unrotated, so that each neuron
        carries few features (see Notes).
    seed : int or numpy.random.Generator, optional
        Randomness of the dense rotation (numpy's convention: None draws fresh entropy).
        The sparse construction is deterministic and ignores it.
    tol : float
        Capacities within ``tol`` of 0 or 1 count as exactly 0 or 1, and a group summing to
        within ``tol`` of an integer is a block (default :data:`DEFAULT_REALIZE_TOL`).

    Returns
    -------
    ndarray, shape (d, N)
        Features on the last axis, as :func:`capopt.capacity` expects by default.

    Raises
    ------
    ValueError
        If a capacity lies outside [0, 1], the capacities sum to more than ``dim``, the
        polysemantic capacities do not sum to an integer (the allocation is not
        block-realisable, theory §2, though another kind of embedding may realise it),
        ``dim`` is not a whole number >= 0, or ``method`` is unknown.
    TypeError
        If ``capacities`` is not numeric or ``dim`` is not a number.

    Notes
    -----
    Realisability: a block of dimension k holding features with capacities :math:`C_i` is
    a tight frame whose Gram matrix has spectrum :math:`(1^k, 0^{n-k})` and diagonal
    :math:`C`, which exists iff that spectrum majorises C (Schur–Horn), i.e. iff
    :math:`C_i \le 1` and :math:`\sum_i C_i = k`. Block sums add up to the total, so the
    polysemantic capacities are block-realisable iff they sum to an integer, and then one
    block always works. Embeddings that are not block-semi-orthogonal reach further: the
    capacities of two nonzero features in d = 2 can be any pair with
    :math:`C_1 + C_2 \ge 1`, so ``[0.7, 0.7]`` is realisable although ``realize`` rejects it.

    Sparse grouping: repeatedly split off the smallest subset (fewest features, at most
    half the rest, :data:`SUBSET_SEARCH_CAP` subsets per split) whose capacities sum to an
    integer; what is left is the last block. Inside a block, features are placed on one
    neuron, or straddle two neurons in pairs (:func:`_tetris_frame`), so a feature touches
    at most two neurons unless a block needs the dense fallback described there.
    The result is a heuristic for few features per neuron, not a proven minimum.

    Cost: :math:`O(N^2 \log N + d^2 N)` plus the capped subset search.

    References
    ----------
    I. S. Dhillon, R. W. Heath, M. A. Sustik, J. A. Tropp, "Generalized finite algorithms
    for constructing Hermitian matrices with prescribed diagonal and spectrum", SIAM J.
    Matrix Anal. Appl. 27(1), 61-71 (2005).

    P. G. Casazza, M. Fickus, D. G. Mixon, Y. Wang, Z. Zhou, "Constructing tight fusion
    frames", Appl. Comput. Harmon. Anal. 30(2), 175-187 (2011) (spectral tetris).

    Examples
    --------
    Two features sharing one dimension next to a monosemantic one:

    >>> import numpy as np
    >>> from capopt import capacity
    >>> C = [0.75, 0.25, 1.0]
    >>> W = realize(C, 2, method="sparse")
    >>> W.round(6)
    array([[0.   , 0.   , 1.   ],
           [0.866025, 0.5  , 0.   ]])
    >>> capacity(realize(C, 3, seed=0)).round(12)
    array([0.75, 0.25, 1.  ])
    >>> realize([0.5, 0.3], 1)
    Traceback (most recent call last):
    ...
    ValueError: capacities of features [0, 1] sum to 0.8; a block must sum to an integer (inside a block sum_i C_i = dim E_b, theory §2), so they are not block-realisable. realize() builds block-semi-orthogonal embeddings, for which the features with 0 < C < 1 must together sum to a whole number of dimensions; embeddings of another kind may still realise these capacities
    """
    return _realize_blocks(capacities, dim, method, seed, tol)[0]


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
    allocation,
    *,
    dim=None,
    method: str = "dense",
    seed=None,
    tol: float = DEFAULT_REALIZE_TOL,
) -> QuadraticModel:
    r"""The quadratic model that attains an allocation's loss: W, bias and exact loss.

    With :math:`a_i = \|W_i\|^2` and capacities :math:`C_i`, the loss of theory §3 separates,

    .. math::

        L(W) = \sum_i (K_i - 1)(v_i - a_i)^2 + 2 a_i^2 \Big(\frac{1}{C_i} - 1\Big)
             = \sum_i \ell_i(C_i) + w_i \big(a_i - a_i^*(C_i)\big)^2,

    :math:`w_i = K_i - 1 + 2(1/C_i - 1)`, :math:`a_i^*(C) = (K_i - 1) v_i C/(2 + (K_i - 3) C)`.
    The embedding is :func:`realize`'s, with block b scaled to eigenvalue :math:`\lambda_b`
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
        As in :func:`realize`.

    Returns
    -------
    QuadraticModel

    Raises
    ------
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.QuadraticCurves`.
    ValueError
        If the allocation has the wrong length or is not block-realisable (see
        :func:`realize`).

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
    if not isinstance(curves, QuadraticCurves):
        raise TypeError(
            f"curves must be QuadraticCurves (capopt.quadratic(...)), got {type(curves).__name__}"
        )
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
    W, groups = _realize_blocks(C, default_dim if dim is None else dim, method, seed, tol)

    C_real = np.sum(W * W, axis=0)  # blocks have eigenvalue 1: the realised capacities
    a_star = curves.optimal_norm(C_real)
    K = curves.kurtosis
    for group in groups:
        c, a = C_real[group], a_star[group]
        w = K[group] - 1.0 + 2.0 * (1.0 / c - 1.0)
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
