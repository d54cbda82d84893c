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
