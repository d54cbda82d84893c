r"""Exact water-filling of the quadratic model's convex, linear and flat curves.

Private: :func:`capopt.solve` (through :mod:`capopt.solvers.waterfill`) validates its inputs
once and calls :func:`waterfill_quadratic` with clean float64 arrays; ``tests/test_waterfill.py``
checks it against independent routes (the closed form at 50 digits, the generic root-finding
path, SLSQP, planted optima), on every path of the search.

For convex (:math:`K_i > 3`), linear (:math:`K_i = 3`) and flat curves, the allocation at
the smallest multiplier :math:`\lambda = 2\mu^2` that fits the budget is every feature's
response to one level :math:`\mu`: a convex feature has :math:`C_i = 1` for
:math:`\mu \le v_i`, 0 for :math:`\mu \ge z_i = (K_i - 1) v_i / 2`, and in between

.. math:: C_i(\mu) = \frac{p_i / \mu - 2}{\epsilon_i}
          = \frac{v_i + 2 (v_i - \mu)/\epsilon_i}{\mu},
          \qquad p_i = (K_i - 1) v_i,\ \epsilon_i = K_i - 3;

a linear feature steps from 1 to 0 at :math:`\mu = v_i`. :math:`S(\mu) = \sum_i C_i(\mu)` is
non-increasing; the level sought is :math:`\mu^* = \inf\{\mu : S(\mu) \le d\}`.

*Search.* The breakpoints :math:`v_i, z_i` bracketing :math:`\mu^*` are found by selection:
rounds evaluate S at the median breakpoint of the features still undecided ("live") and
keep the half holding :math:`\mu^*`; features with no breakpoint left inside the bracket
are folded into sums (:mod:`capopt._kernels.bracket`). For many features a first bracket
comes from a sample of :math:`N^{2/3}` of them, checked against the whole problem; few
features of one kurtosis (the sweeps' problems) are bracketed by a walk down their sorted
levels. O(N) in all.

*Exact answer.* Inside the final bracket the level and the capacities have a closed form
without cancellation (:mod:`capopt._kernels.assembly`). The bracket itself is verified with
the exact per-feature :math:`C_i` at its ends (breakpoints are data values, so
:math:`v_i - \mu` is exact there), and every feature's class is checked against the answer
and corrected if a rounded breakpoint misplaced it.

Glossary: ``v`` importances, ``K`` kurtoses (length 1 when shared), ``d`` budget, ``C``
capacities, ``mu`` level, ``lam`` multiplier, ``eps`` K - 3, ``p`` (K - 1) v, ``z`` the ignore
level p / 2, ``lo``/``hi`` the bracket of levels, ``sums`` the folded features.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from . import quadratic
from .assembly import exact_assembly
from .bracket import breakpoints, fold, folded_total, narrow, new_sums, on_bracket, sums_of, total

__all__ = ["waterfill_quadratic", "SAMPLE_FROM", "SAMPLE_MARGIN", "WALK_BELOW"]

#: Features from which the first bracket comes from a sample of N^(2/3) of them.
SAMPLE_FROM = 1 << 15
#: The sample holds this times N^(2/3) features: a smaller sample costs less to solve
#: and leaves a wider bracket, more features for the search to sort out.
SAMPLE_FRACTION = 0.25
#: Half-width of the sampled bracket, in standard deviations of the sampled total.
SAMPLE_MARGIN = 4.0
#: Problems of fewer features, with one kurtosis, are bracketed by a walk down their sorted
#: levels (the sweeps' case) rather than by selection.
WALK_BELOW = 512
#: Live features at which the search stops halving and sorts what is left.
SORT_BELOW = 64
#: Rounds of class corrections after the exact assembly (each a pass over the features).
MAX_CORRECTIONS = 8


@jit
def _search(v, K, lo, hi, target, sums):
    """Bracket (lo, hi) of consecutive breakpoints with S(lo) > target >= S(hi).

    (v, K) are the live features of the starting bracket, ``sums`` the folded rest. A
    round evaluates S at the median breakpoint still inside and keeps the half holding the
    level; once few are left, their sorted breakpoints are bisected. On return every
    feature is folded for the bracket returned. The sums carry rounding, so the assembly
    checks the bracket.
    """
    rounds = 0
    while True:
        points = breakpoints(v, K, lo, hi)
        if points.size == 0:
            return lo, hi, rounds
        rounds += 1
        if points.size > SORT_BELOW:
            pivot = np.partition(points, points.size // 2)[points.size // 2]
            if folded_total(sums, pivot) + total(v, K, pivot) > target:
                v, K, _ = narrow(v, K, pivot, hi, hi, sums)
                lo = pivot
            else:
                v, K, _ = narrow(v, K, lo, pivot, hi, sums)
                hi = pivot
            continue
        points.sort()
        a, b = -1, points.size
        while b - a > 1:
            m = (a + b) // 2
            if folded_total(sums, points[m]) + total(v, K, points[m]) > target:
                a = m
            else:
                b = m
        new_lo = points[a] if a >= 0 else lo
        new_hi = points[b] if b < points.size else hi
        v, K, _ = narrow(v, K, new_lo, new_hi, hi, sums)
        lo, hi = new_lo, new_hi


@jit
def _sampled_bracket(v, K, d, spread_margin):
    """Levels (p, q) bracketing the solution with high probability, from a strided sample.

    The sample's own level for the budget scaled to it gives responses c_j; its total
    estimates S m / N with a standard deviation of about sqrt(m var(c)). The bracket is
    the sample's level for the budget moved up and down by ``spread_margin`` of them (and
    one feature, so that a sample of identical responses still gets a bracket).
    """
    n = v.size
    m = int(SAMPLE_FRACTION * n ** (2.0 / 3.0))
    shared = K.size == 1
    sample_v = np.empty(m)
    sample_K = np.empty(m if not shared else 1)
    sample_K[0] = K[0]
    for j in range(m):
        sample_v[j] = v[(j * n) // m]
        if not shared:
            sample_K[j] = K[(j * n) // m]
    target = d * m / n
    live_v, live_K, useful = fold(sample_v, sample_K, 0.0, np.inf, new_sums(0.0))
    if target >= useful:
        return 0.0, np.inf
    level = _search(live_v, live_K, 0.0, np.inf, target, new_sums(0.0))[1]
    mean = total(sample_v, sample_K, level) / m
    spread = 0.0
    for j in range(m):
        c = quadratic.capacity(sample_v[j], sample_K[0] if shared else sample_K[j], level)
        spread += (c - mean) ** 2
    margin = spread_margin * math.sqrt(spread) + 1.0
    p, q = 0.0, np.inf
    if target + margin < useful:
        p = _search(live_v, live_K, 0.0, np.inf, target + margin, new_sums(0.0))[0]
    if target > margin:
        q = _search(live_v, live_K, 0.0, np.inf, target - margin, new_sums(0.0))[1]
    return p, q


@jit
def _walk(v, k, d):
    """Bracket (lo, hi) for one shared kurtosis k > 3, by a walk down the sorted levels.

    In decreasing order of importance w, the features start (C > 0 below their ignore
    level z(w)) and saturate (C = 1 from their full level w down) in that same order, so two
    pointers walk the merged breakpoints downwards in mu: features [q, p) affine, the q
    before them saturated, S = q + (2 / eps) (z(W) / mu - (p - q)) with W their summed
    importance (:func:`capopt._formulas.quadratic_response_total`). The first breakpoint
    where S exceeds d is lo, the one before hi. O(N log N), for few
    features (the sweeps' case); the running sum only picks the bracket, which the
    assembly checks.
    """
    n = v.size
    ordered = True
    for i in range(1, n):
        ordered &= v[i] <= v[i - 1]
    m = n
    if ordered:
        # Already decreasing (a sweep's v_i = r^i): walk v itself, up to its flat tail.
        while m > 0 and quadratic.flat(v[m - 1], k):
            m -= 1
        w = v
    else:
        w = np.empty(n)
        m = 0
        for i in range(n):
            if not quadratic.flat(v[i], k):
                w[m] = -v[i]
                m += 1
        w = w[:m]
        w.sort()
        for i in range(m):
            w[i] = -w[i]
    p = 0
    q = 0
    W = 0.0
    hi = np.inf
    while q < m:
        start = quadratic.ignore_level(w[p], k) if p < m else 0.0
        full = w[q]
        level = max(start, full)
        # S at the breakpoint, its own feature counted exactly (0 at its start, 1 at its
        # saturation).
        if start >= full:
            S = q + (quadratic.response_total(level, W, p - q, k) if p > q else 0.0)
        else:
            rest = W - w[q]
            S = q + 1.0 + (quadratic.response_total(level, rest, p - q - 1, k) if p > q + 1 else 0.0)
        if S > d:
            return level, hi
        if start >= full:
            W += w[p]
            p += 1
        else:
            W -= w[q]
            q += 1
        if p == q:
            W = 0.0
        hi = level
    return 0.0, hi


@jit
def _neighbour(v, K, mu, upward):
    """The nearest breakpoint strictly above (or below) mu; inf (or 0) if none."""
    best = np.inf if upward else 0.0
    shared = K.size == 1
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        if quadratic.flat(x, k):
            continue
        for b in (x, quadratic.ignore_level(x, k)):
            if upward and mu < b < best:
                best = b
            if not upward and best < b < mu:
                best = b
    return best




@jit
def waterfill_quadratic(v, K, d, C, sample_from=SAMPLE_FROM, margin=SAMPLE_MARGIN, walk_below=WALK_BELOW):
    """Exact water-filling of convex, linear and flat quadratic curves (see module doc).

    Parameters
    ----------
    v : ndarray, shape (N,)
    K : ndarray, shape (1,) or (N,)
        Kurtoses, each >= 3 or exactly 1 (no concave curve).
    d : float
        Budget, finite and >= 0.
    C : ndarray, shape (N,)
        Output capacities.
    sample_from, margin, walk_below
        :data:`SAMPLE_FROM`, :data:`SAMPLE_MARGIN` and :data:`WALK_BELOW`, as arguments
        so that tests can take every path (they change the time, not the answer).

    Returns
    -------
    lam : float
        The smallest KKT multiplier.
    rounds : int
        Selection rounds and corrections (a work counter).
    exact : bool
        False if the class corrections did not settle (the certificate then judges).
    """
    n = v.size
    shared = K.size == 1
    if d == 0.0:
        # Everything at 0, which KKT allows from lam = max_i m_i(0) on.
        top = 0.0
        for i in range(n):
            k = K[0] if shared else K[i]
            C[i] = 0.0
            if not quadratic.flat(v[i], k):
                top = max(top, quadratic.ignore_multiplier(v[i], k))
        return top, 0, True
    walk = shared and n < walk_below and K[0] > 3.0
    p, q = _sampled_bracket(v, K, d, margin) if n >= sample_from else (0.0, np.inf)
    sums = new_sums(p)
    if walk:
        n_useful = 0
        for i in range(n):
            n_useful += not quadratic.flat(v[i], K[0])
    else:
        live_v, live_K, n_useful = fold(v, K, p, q, sums)
    if n_useful <= d:
        # Room for every feature that can use capacity: lam = 0 is KKT-valid.
        for i in range(n):
            k = K[0] if shared else K[i]
            C[i] = 0.0 if quadratic.flat(v[i], k) else 1.0
        return 0.0, 0, True
    if walk:
        lo, hi = _walk(v, K[0], d)
        sums = new_sums(lo)
        fold(v, K, lo, hi, sums)
        rounds = 1
    else:
        s_p = folded_total(sums, p) + total(live_v, live_K, p) if p > 0.0 else n_useful
        s_q = folded_total(sums, q) + total(live_v, live_K, q) if q < np.inf else 0.0
        if not s_p > d >= s_q:
            # The sample misled (rare): search the whole problem.
            p, q = 0.0, np.inf
            sums = new_sums(p)
            live_v, live_K, _ = fold(v, K, p, q, sums)
        lo, hi, rounds = _search(live_v, live_K, p, q, d, sums)
    mu, corrections, _, _, _ = exact_assembly(
        v, K, d, lo, hi, sums, C, np.empty(0, np.int8), 0.0, 3.0
    )
    if corrections == 0:
        return quadratic.level_multiplier(mu), rounds, True
    # Rounding misled the search, or a rounded breakpoint misplaced a feature (rare):
    # check S(lo) > d >= S(hi) with exact responses, stepping to the neighbouring
    # breakpoint while it fails, then correct the classes against the answer.
    while True:
        if lo > 0.0 and total(v, K, lo) <= d:
            lo, hi = _neighbour(v, K, lo, False), lo
        elif hi < np.inf and total(v, K, hi) > d:
            lo, hi = hi, _neighbour(v, K, hi, True)
        else:
            break
        rounds += 1
    state = np.empty(n, np.int8)
    for i in range(n):
        _, full, affine, _ = on_bracket(v[i], K[0] if shared else K[i], lo, hi)
        state[i] = 1 if full else 2 if affine else 0
    for _ in range(MAX_CORRECTIONS):
        rounds += 1
        sums = sums_of(v, K, lo, hi, state)
        mu, corrections, _, _, _ = exact_assembly(v, K, d, lo, hi, sums, C, state, 0.0, 3.0)
        if corrections == 0:
            return quadratic.level_multiplier(mu), rounds, True
    return quadratic.level_multiplier(mu), rounds, False
