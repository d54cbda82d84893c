r"""The vertex rule for concave and linear curves: the best 0/1 point with one fraction.

For concave curves (:math:`K \le 3` in the quadratic model) the loss is concave in C, so
an optimum sits at a vertex of :math:`\{0 \le C_i \le 1, \sum_i C_i \le d\}`: whole
dimensions and at most one fraction. :func:`best_vertex` picks it from the features'
gains, for any family (:func:`capopt.solvers.vertex.vertex`), and :func:`vertex` for the
quadratic model's curves of one kurtosis (:func:`capopt._kernels.grid.solve_grid`). Private:
the wrappers validate once; ``tests/test_vertex.py`` checks :func:`best_vertex` against the
naive exchange of ``tests/references.py``.

Glossary: ``gain`` benefit of a whole dimension, ``part`` of the fraction, ``order`` the
features by decreasing gain, ``k`` whole dimensions, ``f`` the fraction, ``C`` capacities.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from . import quadratic

__all__ = ["best_vertex", "vertex"]


@jit
def best_vertex(gain, part, order, k, f, C):
    r"""The best vertex of :math:`\{0 \le C_i \le 1, \sum_i C_i \le d\}` for concave curves.

    Fills ``C`` in place and returns the position of the feature at the fraction, or -1.

    Parameters
    ----------
    gain : ndarray, shape (N,)
        :math:`\Delta_i = \ell_i(0) - \ell_i(1)`, the benefit of a whole dimension.
    part : ndarray, shape (N,)
        :math:`\ell_i(0) - \ell_i(f)`, the benefit of the fraction (read only when
        ``f > 0``).
    order : ndarray of int, shape (N,)
        The features by decreasing gain, stably: ``argsort(-gain, kind="stable")`` (the
        caller sorts, with numpy's faster sort where it can).
    k : int
        Whole dimensions :math:`\min(\lfloor d \rfloor, N)`.
    f : float
        The fraction :math:`d - k` (0 when k = N).
    C : ndarray, shape (N,)
        Written with the vertex.

    Notes
    -----
    The best 0/1 vertex puts the k largest positive gains at 1. A fraction can only help
    when more than k features gain: a concave curve lies above its chord, so a partial gain
    at f is at most f times the full gain. The best vertex with feature j at f has the k
    largest gains other than j at 1; for j among the top k the (k+1)-th gain replaces j's,
    written as ``top + (next - gain_j)`` so that equal gains give exactly equal totals.
    Ties: gains are ranked stably (the lower index first), and among equal totals the
    first candidate in the queue wins -- the features after the top k, then the top k from
    the last one up -- so the top k stay whole where they can. O(N log N).
    """
    n = gain.size
    n_positive = 0
    for i in range(n):
        n_positive += gain[i] > 0.0
    C[:] = 0.0
    best = 0.0
    for r in range(min(k, n_positive)):
        best += gain[order[r]]
        C[order[r]] = 1.0
    if not (f > 0.0 and n_positive > k):
        return -1
    top = best  # the same k gains, summed once, so equal vertices tie exactly
    after = gain[order[k]]
    chosen = -1
    chosen_total = -np.inf
    for r in range(n):
        i = order[k + r] if r < n - k else order[n - 1 - r]
        total = part[i] + (top if r < n - k else top + (after - gain[i]))
        if total > chosen_total:
            chosen, chosen_total = i, total
    if not chosen_total > best:
        return -1
    C[:] = 0.0
    # A fraction taken from the top k moves the (k+1)-th feature up to 1.
    whole = k
    for r in range(k):
        whole += order[r] == chosen
    for r in range(whole):
        C[order[r]] = 1.0
    C[chosen] = f
    return chosen


@jit
def vertex(v, K, d, C):
    """Concave or linear case (K <= 3): fill ``C`` in place, return the multiplier.

    The gains of the quadratic model's curves in their derived form, handed to
    :func:`best_vertex`, the kernel :func:`capopt.solvers.vertex.vertex` uses too.
    """
    n = v.size
    k = min(int(math.floor(d)), n)
    f = d - k if k < n else 0.0
    gain = np.empty(n)
    part = np.empty(n)
    for i in range(n):
        flat = quadratic.flat(v[i], K)
        gain[i] = 0.0 if flat else quadratic.benefit(1.0, v[i], K)
        part[i] = 0.0 if flat or f == 0.0 else quadratic.benefit(f, v[i], K)
    # mergesort is stable: equal gains keep index order, the lower index ranks first.
    fractional = best_vertex(gain, part, np.argsort(-gain, kind="mergesort"), k, f, C)
    if fractional >= 0:
        return quadratic.feature_marginal(f, v[fractional], K)
    lam = 0.0
    for i in range(n):
        if C[i] == 0.0:
            lam = max(lam, quadratic.feature_marginal(0.0, v[i], K))
    return lam
