r"""numba kernels: many quadratic-model allocation problems solved exactly, in parallel.

Each problem is a quadratic-model family with one kurtosis K for all its N features
(N may differ between problems) and a budget d,

.. math::

    \min_C \sum_i \ell_i(C_i), \quad
    \ell_i(C) = \frac{2 (K - 1) v_i^2 (1 - C)}{2 + (K - 3) C},
    \quad \text{s.t.} \quad 0 \le C_i \le 1, \ \sum_i C_i \le d,

solved by the same rules as the numpy methods the kernels mirror, and checked against them
to 1e-12 in ``tests/test_sweeps.py``:

* K > 3 (convex): :func:`capopt.solvers.waterfill.waterfill`. Here by sorting the
  importances and walking the 2N breakpoints of the total capacity in the level; the
  numpy method selects without sorting, which pays off only for large N.
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
from ._jit import jit

__all__ = ["solve_grid"]

_loss = jit(F.quadratic_loss)
_marginal = jit(F.quadratic_marginal)


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
def _waterfill(v, K, d, C):
    """Convex case (K > 3): fill ``C`` in place, return the smallest KKT multiplier.

    Sorted in decreasing order, the importances start (reach C > 0, at level
    a = beta / w) and saturate (C = 1, at b = (1 + beta) / w) in the order of the sort, so
    two pointers walk the merged breakpoints: features [q, p) of ``w`` are affine on the
    current segment and the q before them saturated. The first breakpoint at which the
    total capacity exceeds d closes the segment holding the solution (the last one, so
    the largest level and the smallest lam where the total is flat at d), solved in closed
    form with its sums recomputed from scratch: the running sums only pick the segment,
    where continuity of the total forgives their rounding. O(N log N).
    """
    n = v.size
    C[:] = 0.0
    if d == 0.0:
        # Everything at 0, which KKT allows from lam = max_i m_i(0) on.
        lam = 0.0
        for i in range(n):
            lam = max(lam, _feature_marginal(0.0, v[i], K))
        return lam
    n_useful = 0
    for i in range(n):
        n_useful += not _flat(v[i], K)
    if n_useful <= d:
        # Room for every useful feature: lam = 0 is KKT-valid.
        for i in range(n):
            C[i] = 0.0 if _flat(v[i], K) else 1.0
        return 0.0
    # Negated, sorted in place, negated back: decreasing order without another array.
    w = np.empty(n_useful)
    j = 0
    for i in range(n):
        if not _flat(v[i], K):
            w[j] = -v[i]
            j += 1
    w.sort()
    for i in range(n_useful):
        w[i] = -w[i]
    beta = 2.0 / (K - 3.0)
    p = 0
    q = 0
    slope = 0.0
    lo = 0.0
    hi = np.inf
    while q < n_useful:
        start = beta / w[p] if p < n_useful else np.inf
        full = (1.0 + beta) / w[q]
        # The total at the next breakpoint, with the feature that meets it counted exactly
        # (0 at its start, 1 at its saturation), as the reference does: a total that is
        # flat at d must not look larger than d by rounding.
        if start <= full:
            hi = start
            total = q + slope * hi - beta * (p - q)
        else:
            hi = full
            rest = 0.0 if p == q + 1 else slope - w[q]
            total = q + 1.0 + rest * hi - beta * (p - q - 1)
        if total > d:
            break
        if start <= full:
            slope += w[p]
            p += 1
        else:
            slope -= w[q]
            q += 1
        if p == q:
            # No affine feature left: the total is flat at q, exactly.
            slope = 0.0
        lo = hi
        hi = np.inf
    slope = 0.0
    for i in range(q, p):
        slope += w[i]
    # A flat segment (slope 0) can only hold the solution at its left end, up to rounding.
    t = lo
    if slope > 0.0:
        t = min(max((d - q + beta * (p - q)) / slope, lo), hi)
    for i in range(n):
        if not _flat(v[i], K):
            C[i] = min(max(v[i] * t - beta, 0.0), 1.0)
    s = t * (K - 3.0) / (K - 1.0)
    return 2.0 / (s * s)


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
    at_zero = np.empty(n)
    gain = np.empty(n)
    n_positive = 0
    for i in range(n):
        at_zero[i] = _feature_loss(0.0, v[i], K)
        gain[i] = at_zero[i] - _feature_loss(1.0, v[i], K)
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
            part = at_zero[i] - _feature_loss(f, v[i], K)
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
    """Solve one problem into ``C`` and ``counts``; return (multiplier, loss)."""
    lam = _waterfill(v, K, d, C) if K > 3.0 else _vertex(v, K, d, C)
    loss = 0.0
    counts[:] = 0
    for i in range(v.size):
        loss += _feature_loss(C[i], v[i], K)
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
        lam[p], loss[p] = _solve_one(v[p, :m], K[p], d[p], atol, C[p, :m], counts[p])
    return C, lam, loss, counts
