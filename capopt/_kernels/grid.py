r"""Many quadratic-model problems at once, one kurtosis each: the sweeps' grid.

:func:`solve_grid` solves P problems in parallel over problems for :func:`capopt.sweep`.
K > 3 is water-filled by :func:`capopt._kernels.waterfill.waterfill_quadratic`; K <= 3
(concave, or linear at K = 3) takes the vertex rule of :func:`capopt.solvers.vertex.vertex`
(:func:`capopt._kernels.vertex.vertex`), with its tie rules (equal gains rank by index; the
fraction goes to the first feature after the whole ones), which at K = 3 coincides with
water-filling. Features with v <= 0, and every feature when K = 1, have flat curves and get
0. Private: :func:`capopt.sweep` validates the grid once; ``tests/test_sweeps.py`` checks
the kernel against the exact brute force and the closed forms, compiled and not.

Glossary: ``P`` problems, ``W`` the widest problem's number of features, ``v``, ``n``,
``K``, ``d`` each problem's importances, number of features, kurtosis and budget, ``atol``
the regime tolerance.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import jit
from . import quadratic
from .vertex import vertex
from .waterfill import waterfill_quadratic

__all__ = ["solve_one", "solve_grid"]


@jit
def solve_one(v, K, d, atol, C, counts):
    """Solve one problem into ``C`` and ``counts``; return (multiplier, loss).

    ``K`` is the problem's kurtosis as an array of one element (the shape the shared
    water-filling kernel takes for one kurtosis per problem).
    """
    k = K[0]
    lam = waterfill_quadratic(v, K, d, C)[0] if k > 3.0 else vertex(v, k, d, C)
    loss = 0.0
    counts[:] = 0
    for i in range(v.size):
        loss += quadratic.feature_loss(C[i], v[i], k)
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
        lam[p], loss[p] = solve_one(v[p, :m], K[p : p + 1], d[p], atol, C[p, :m], counts[p])
    return C, lam, loss, counts
