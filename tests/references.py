"""Reference values computed independently of capopt, shared by several test modules.

The exact brute force of small problems lives in :mod:`brute_force`; here is the theory §3
closed form for larger convex problems of one kurtosis.
"""

import mpmath
import numpy as np

#: Bisection steps of the closed form's level: each halves the bracket, and 50-digit
#: arithmetic holds far more than the float64 answers are compared at.
BISECTION_STEPS = 400


def closed_form(v, K, d):
    """theory §3 for one K > 3: C_i = clip(((K-1) v_i/mu - 2)/(K-3), 0, 1), mu = sqrt(lam/2).

    mu is the smallest level with sum C <= d, bisected in 50-digit arithmetic.

    Returns
    -------
    C : ndarray
    lam : float
        2 mu^2.
    """
    with mpmath.workdps(50):
        v = [mpmath.mpf(float(x)) for x in v]
        K = mpmath.mpf(float(K))

        def capacities(mu):
            return [min(max(((K - 1) * x / mu - 2) / (K - 3), 0), 1) for x in v]

        lo, hi = mpmath.mpf(0), (K - 1) * max(v) / 2
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if sum(capacities(mid)) > d else (lo, mid)
        return np.array([float(c) for c in capacities(hi)]), float(2 * hi**2)


def best_vertex(gain, part, k, f):
    """The naive numpy exchange the vertex kernel (``capopt._kernels.vertex.best_vertex``)
    is tested against: every candidate vertex's benefit formed as one array.

    Returns
    -------
    C : ndarray
        The best vertex: the k largest positive gains at 1, or k at 1 and one feature at f.
    fractional : int
        The feature at f, or -1.
    """
    gain, part = np.asarray(gain, float), np.asarray(part, float)
    n = gain.size
    order = np.argsort(-gain, kind="stable")
    n_positive = int(np.count_nonzero(gain > 0))
    ones = order[: min(k, n_positive)]
    best = float(np.sum(gain[ones]))
    C = np.zeros(n)
    C[ones] = 1.0
    if not (f > 0 and n_positive > k):
        return C, -1
    in_top = np.zeros(n, dtype=bool)
    in_top[order[:k]] = True
    total = part + np.where(in_top, best + (gain[order[k]] - gain), best)
    # Candidates in queue order, the first maximum kept: after the top k, then the top k
    # from the last one up.
    queue = np.concatenate((order[k:], order[:k][::-1]))
    j = int(queue[np.argmax(total[queue])])
    if not total[j] > best:
        return C, -1
    C = np.zeros(n)
    C[order[: k + 1] if in_top[j] else order[:k]] = 1.0
    C[j] = f
    return C, j
