r"""An allocation as an explicit block-semi-orthogonal embedding.

Glossary: ``C`` capacity, ``d`` embedding dimension (``dim``), ``N`` number of features,
``k`` dimension of a block.

An allocation is block-realisable (theory §2), i.e. some block-semi-orthogonal embedding has
it, iff its features can be grouped into blocks whose capacities sum to integers. Other
embeddings realise other allocations as well, so an allocation that is not block-realisable
may still be realisable. Inside a block of dimension k the features form a tight frame,
:math:`X X^\top = I_k`, with squared norms :math:`\|X_i\|^2 = C_i`
(:mod:`capopt.realisation.frames`); such a frame exists iff :math:`0 \le C_i \le 1` and
:math:`\sum_i C_i = k` (Schur–Horn: the spectrum :math:`(1, \dots, 1, 0, \dots, 0)` of the
Gram matrix majorises its diagonal ``C``), and then :math:`C_i = \|X_i\|^2/1` is exactly
feature i's capacity.
"""

from __future__ import annotations

import itertools
import numbers
from typing import SupportsInt, cast

import numpy as np

from .._validation import as_float_array, check_scalar
from .frames import FRAME_BUILDERS
from .._typing import ArrayLike, RandomSeed

__all__ = ["realize", "realize_blocks", "DEFAULT_REALIZE_TOL", "REALIZE_METHODS"]

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

#: Largest distance from an integer of a subset the sparse grouping splits off. Tighter
#: than ``tol``: a split is optional, and a subset that sums to an integer only within
#: ``tol`` would be realised with its capacities moved by up to ``tol``.
_SPLIT_TOL = 1e-12


def _check_dim(dim: object) -> int:
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, numbers.Real):
        raise TypeError(f"dim must be a whole number, got {type(dim).__name__}: {dim!r}")
    if not (np.isfinite(np.asarray(dim)) and float(dim).is_integer() and float(dim) >= 0):
        raise ValueError(f"dim must be a whole number of dimensions >= 0, got {dim!r}")
    # typeshed's numbers.Real declares no __int__, but every real number converts.
    return int(cast(SupportsInt, dim))


def _check_capacities(capacities: ArrayLike, tol: float) -> np.ndarray:
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


def _polysemantic_groups(
    C: np.ndarray,
    poly: list[int],
    split: bool,
    tol: float,
) -> list[list[int]]:
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


def realize_blocks(
    capacities: ArrayLike,
    dim: float,
    method: str,
    seed: RandomSeed,
    tol: float,
) -> tuple[np.ndarray, list[list[int]]]:
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
        assert k is not None, "every group sums to an integer (checked when it was formed)"
        # Rescaling to an exact integer sum moves each capacity by at most tol.
        W[row:row + k, group] = FRAME_BUILDERS[method](C[group] * (k / total), k)
        row += k
    if method == "dense" and d > 1:
        from scipy.stats import ortho_group  # scipy.stats costs 0.4 s: import on use

        W = ortho_group.rvs(d, random_state=np.random.default_rng(seed)) @ W
    return W, groups


def realize(
    capacities: ArrayLike,
    dim: int,
    *,
    method: str = "dense",
    seed: RandomSeed = None,
    tol: float = DEFAULT_REALIZE_TOL,
) -> np.ndarray:
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
    neuron, or straddle two neurons in pairs (:func:`~capopt.realisation.frames.tetris_frame`), so a feature touches
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
    return realize_blocks(capacities, dim, method, seed, tol)[0]
