r"""numba kernels: many quadratic-model allocation problems solved exactly, in parallel.

Each problem is a quadratic-model family with one kurtosis K for all its N features
(N may differ between problems) and a budget d,

.. math::

    \min_C \sum_i \ell_i(C_i), \quad
    \ell_i(C) = \frac{2 (K - 1) v_i^2 (1 - C)}{2 + (K - 3) C},
    \quad \text{s.t.} \quad 0 \le C_i \le 1, \ \sum_i C_i \le d,

solved by the same rules as the numpy methods the kernels mirror, and checked against them
to 1e-12 in ``tests/test_sweeps.py``:

* K > 3 (convex): :func:`capopt.solvers._kernels.waterfill_quadratic`, the one kernel
  :func:`capopt.solve` runs for :func:`capopt.solvers.waterfill.waterfill`.
* K <= 3 (concave, or linear at K = 3): :func:`capopt.solvers.vertex.vertex`, the best
  vertex, with its tie rules (equal gains rank by index; the fraction goes to the first
  feature after the whole ones). At K = 3 it coincides with water-filling, which
  :func:`capopt.solve` would pick for that linear family.

Features with :math:`v_i \le 0`, and every feature when K = 1, have flat curves and get 0.
The formulas come from :mod:`capopt._formulas`, compiled here rather than re-typed. numba's
cache checks only the source file of each cached function, so after regenerating
``_formulas.py`` remove the ``*.nbi``/``*.nbc`` files under ``capopt/sweeps/__pycache__``.

Glossary: ``v`` importances, ``K`` kurtosis, ``d`` budget, ``C`` capacities, ``lam``
multiplier; ``w`` the useful importances sorted in decreasing order; ``t`` the level
:math:`s (K - 1)/(K - 3)` with :math:`s = \sqrt{2/\lambda}`, in which a convex feature's
capacity is :math:`\operatorname{clip}(v_i t - \beta, 0, 1)` with
:math:`\beta = 2/(K - 3)`; ``k`` whole dimensions, ``f`` the fraction of the budget.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .. import _formulas as F
from .._jit import jit
from ..solvers._kernels import waterfill_quadratic

__all__ = ["solve_grid"]

_loss = jit(F.quadratic_loss)
_marginal = jit(F.quadratic_marginal)
_benefit = jit(F.quadratic_benefit)


@jit
def _flat(v, K):
    """True when the feature's curve is flat (it can gain nothing from capacity)."""
    return v <= 0.0 or K == 1.0


@jit
def _feature_loss(C, v, K):
    r""":math:`\ell(C)`, with a flat curve's constant loss :math:`(K - 1) v^2`.

    Matches :meth:`capopt.curves.QuadraticCurves.loss`: a flat curve is evaluated as
    v = 0 (and K = 3, where the formula would be 0/0 at K = 1) plus its constant.
    """
    if _flat(v, K):
        return _loss(C, 0.0, 3.0) + (K - 1.0) * v * v
    return _loss(C, v, K)


@jit
def _feature_marginal(C, v, K):
    r"""Marginal benefit :math:`-\ell'(C)`; 0 for a flat curve."""
    if _flat(v, K):
        return _marginal(C, 0.0, 3.0)
    return _marginal(C, v, K)


@jit
def _vertex(v, K, d, C):
    """Concave or linear case (K <= 3): fill ``C`` in place, return the multiplier.

    The best vertex: the k largest gains l(0) - l(1) at 1, or k at 1 and one feature at
    the fraction f; candidates are compared exactly as :func:`capopt.solvers.vertex.vertex`
    compares them, including its order among equal totals. O(N log N).
    """
    n = v.size
    k = min(int(math.floor(d)), n)
    f = d - k if k < n else 0.0
    gain = np.empty(n)
    n_positive = 0
    for i in range(n):
        # Benefits l(0) - l(C) in their derived form, as the vertex method takes them.
        gain[i] = 0.0 if _flat(v[i], K) else _benefit(1.0, v[i], K)
        n_positive += gain[i] > 0.0
    # mergesort is stable: equal gains keep index order, the lower index ranks first.
    order = np.argsort(-gain, kind="mergesort")
    C[:] = 0.0
    best = 0.0
    for r in range(min(k, n_positive)):
        best += gain[order[r]]
        C[order[r]] = 1.0
    fractional = -1
    if f > 0.0:
        top = 0.0
        for r in range(k):
            top += gain[order[r]]
        after = gain[order[k]]
        # Candidates in the reference's queue order, the first maximum kept: the features
        # after the top k, then the top k from the last one up.
        chosen = -1
        chosen_total = -np.inf
        for r in range(n):
            i = order[k + r] if r < n - k else order[n - 1 - r]
            part = 0.0 if _flat(v[i], K) else _benefit(f, v[i], K)
            total = part + (top if r < n - k else top + (after - gain[i]))
            if total > chosen_total:
                chosen, chosen_total = i, total
        if chosen_total > best:
            fractional = chosen
            C[:] = 0.0
            # A fraction taken from the top k moves the (k+1)-th feature up to 1.
            whole = k
            for r in range(k):
                whole += order[r] == chosen
            for r in range(whole):
                C[order[r]] = 1.0
            C[chosen] = f
    if fractional >= 0:
        return _feature_marginal(f, v[fractional], K)
    lam = 0.0
    for i in range(n):
        if C[i] == 0.0:
            lam = max(lam, _feature_marginal(0.0, v[i], K))
    return lam


@jit
def _solve_one(v, K, d, atol, C, counts):
    """Solve one problem into ``C`` and ``counts``; return (multiplier, loss).

    ``K`` is the problem's kurtosis as an array of one element (the shape the shared
    water-filling kernel takes for one kurtosis per problem).
    """
    k = K[0]
    lam = waterfill_quadratic(v, K, d, C)[0] if k > 3.0 else _vertex(v, k, d, C)
    loss = 0.0
    counts[:] = 0
    for i in range(v.size):
        loss += _feature_loss(C[i], v[i], k)
        # Regimes as capopt.classify reads them: 0 monosemantic, 1 polysemantic, 2 ignored.
        counts[0 if C[i] >= 1.0 - atol else 2 if C[i] <= atol else 1] += 1
    return lam, loss


@jit(parallel=True)
def solve_grid(v, n, K, d, atol):
    r"""Solve P quadratic-model problems exactly, in parallel over problems.

    Parameters
    ----------
    v : ndarray, shape (P, W)
        Importances; problem p uses ``v[p, :n[p]]`` (the rest is ignored).
    n : ndarray of int, shape (P,)
        Number of features of each problem, 1 <= n[p] <= W.
    K : ndarray, shape (P,)
        Kurtosis of each problem, >= 1.
    d : ndarray, shape (P,)
        Budget of each problem, finite and >= 0.
    atol : float
        Regime tolerance: C >= 1 - atol is monosemantic, C <= atol ignored.

    Returns
    -------
    C : ndarray, shape (P, W)
        Capacities, NaN beyond each problem's n.
    lam : ndarray, shape (P,)
        Smallest KKT multiplier.
    loss : ndarray, shape (P,)
        Optimal loss.
    counts : ndarray of int64, shape (P, 3)
        Monosemantic, polysemantic and ignored features.

    Notes
    -----
    Inputs are trusted (the public wrappers validate them). O(N log N) per problem, no
    allocation shared between problems; the loop over problems is split over numba's
    threads.
    """
    P, W = v.shape
    C = np.full((P, W), np.nan)
    lam = np.empty(P)
    loss = np.empty(P)
    counts = np.zeros((P, 3), dtype=np.int64)
    for p in prange(P):
        m = n[p]
        lam[p], loss[p] = _solve_one(v[p, :m], K[p : p + 1], d[p], atol, C[p, :m], counts[p])
    return C, lam, loss, counts
