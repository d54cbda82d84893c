r"""numba kernels of the quadratic model: exact water-filling and the fused certificate.

Private: :func:`capopt.solve` (through :mod:`capopt.solvers.waterfill` and
:mod:`capopt.solvers.certificate`) and :func:`capopt.sweep` validate their inputs once and
call these with clean float64 arrays; ``tests/test_kernels.py`` checks them against naive
numpy references. Every formula comes from :mod:`capopt._formulas`, compiled here.

Water-filling
-------------
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
are folded into sums. For many features a first bracket comes from a sample of
:math:`N^{2/3}` of them, checked against the whole problem. O(N) in all.

*Exact answer.* Inside the final bracket :math:`(lo, hi)`, which no breakpoint crosses, the
affine features F, the :math:`n_1` saturated ones and :math:`R = d - n_1` give

.. math:: \frac{1}{\mu^*} = \frac{R + E}{P}, \qquad
          C_i = \frac{p_i R + D_i E - 2 Q}{\epsilon_i P},

with :math:`P = \sum_F p_k/\epsilon_k`, :math:`E = \sum_F 2/\epsilon_k`,
:math:`D_k = p_k - 2\,lo = 2 (v_k - lo) + \epsilon_k v_k` and :math:`Q = \sum_F D_k/\epsilon_k`.
This is :math:`C_i(\mu^*)` rearranged so that nothing cancels: :math:`v_k - lo` is exact
(the two are within a factor 2), :math:`|D_k| \le \epsilon_k v_k`, and the capacities sum to
R by construction -- even for kurtoses a few ulps from 3, where :math:`C_i(\mu)` evaluated
at a rounded :math:`\mu^*` would be off by :math:`\epsilon_{\text{mach}}/\epsilon_i`. The
bracket itself is verified with the exact per-feature :math:`C_i` at its ends (breakpoints
are data values, so :math:`v_i - \mu` is exact there), and every feature's class is checked
against the answer and corrected if a rounded breakpoint misplaced it.

Certificate
-----------
:func:`certify_quadratic` evaluates, in one pass (on numba's threads for large problems),
everything :func:`capopt.solvers.certificate.certify` computes for a generic family: the
loss, the KKT residuals, the Lagrangian dual terms, the scales, and the regime codes.

Also here: the water-filled part of a mixed family at a level and along a concave feature's
window (:mod:`capopt.solvers.structured`), and :func:`solve_grid`, many problems of one
kurtosis each solved in parallel for :func:`capopt.sweep` with this water-filling and the
vertex rule of :func:`capopt.solvers.vertex.vertex`.

Sensitivities: :func:`kkt_structure` (where each feature sits in the KKT system),
:func:`apply_border` (the Jacobian's diagonal-plus-border product) and
:func:`quadratic_partials` serve :func:`capopt.sensitivity`; :func:`solve_grid_sensitivities`
differentiates every problem of a sweep in the pass that solves it.

Every kernel that calls another lives in this one module because numba's cache checks
only the source file of each cached function: kernels split across modules would keep a
stale copy of the others after an edit. ``python -m derivations`` drops the caches when it
rewrites the formulas.

Glossary: ``v`` importances, ``K`` kurtoses (length 1 when shared), ``d`` budget, ``C``
capacities, ``mu`` level, ``lam`` multiplier, ``eps`` K - 3, ``p`` (K - 1) v, ``z`` the ignore
level p / 2, ``lo``/``hi`` the bracket of levels, ``n_full`` saturated features.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .. import _formulas as F
from .._jit import jit

__all__ = [
    "waterfill_quadratic",
    "best_vertex",
    "certify_quadratic",
    "solve_grid",
    "solve_grid_sensitivities",
    "quadratic_partials",
    "kkt_structure",
    "KINK_RTOL",
    "apply_border",
    "PARTIAL_ROWS",
    "ACTIVE",
    "AT_ZERO",
    "AT_ONE",
    "AT_KNOT",
    "TIGHT",
    "response_totals",
    "total_loss",
    "kkt_interval",
    "dominance_records",
    "stationary_levels",
    "pair_assembly",
    "CERTIFICATE_FIELDS",
]

_response = jit(F.quadratic_response)
_loss = jit(F.quadratic_loss)
_marginal = jit(F.quadratic_marginal)
_gain = jit(F.quadratic_gain)
_ignore_level = jit(F.quadratic_ignore_level)
_ignore_multiplier = jit(F.quadratic_ignore_multiplier)
_full_multiplier = jit(F.quadratic_full_multiplier)
_level_multiplier = jit(F.quadratic_level_multiplier)
_multiplier_level = jit(F.quadratic_multiplier_level)
_benefit = jit(F.quadratic_benefit)
_curvature = jit(F.quadratic_curvature)
_level_multiplier_slope = jit(F.quadratic_level_multiplier_slope)
_full_level = jit(F.quadratic_full_level)
_marginal_d_importance = jit(F.quadratic_marginal_d_importance)
_marginal_d_kurtosis = jit(F.quadratic_marginal_d_kurtosis)
_loss_d_importance = jit(F.quadratic_loss_d_importance)
_loss_d_kurtosis = jit(F.quadratic_loss_d_kurtosis)

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
#: A capacity this far outside the range its class allows means the class was misread
#: from a rounded breakpoint; closer, the clipped value is the answer to rounding.
CLASS_TOL = 1e-12
EPS = 2.0**-52
#: Relative rounding of the level P / (R + E): a few operations on positive sums.
LEVEL_RTOL = 16 * EPS
#: The capacities must sum to the budget left to them, R, to this relative accuracy.
SUM_RTOL = 1e-12

# Features without a breakpoint inside the current bracket of levels are folded into
# ``sums``: sums[N_FULL] saturated ones (sums[AT_HI] of them linear steps sitting at hi),
# and for the affine ones A = sum v, B = sum 2 (v - ref) / eps, E = sum 2 / eps with
# ref = sums[REF], so that their total at a level mu of the bracket is
# (A + B - (mu - ref) E) / mu. Every term is bounded by its own v: a feature affine
# throughout the bracket has |mu - ref| <= z - v = eps v / 2.
N_FULL, A_SUM, B_SUM, E_SUM, REF, AT_HI = range(6)


@jit
def _new_sums(ref):
    sums = np.zeros(6)
    sums[REF] = ref
    return sums


@jit
def _on_bracket(x, k, lo, hi):
    """How one feature sits on the open bracket (lo, hi) of levels, without branches.

    Returns (useful, full, affine, live): useful unless flat; full (C = 1 throughout)
    when v >= hi; affine (a convex response throughout) when v <= lo and z >= hi; live
    when a breakpoint lies strictly inside. A linear feature has z = v exactly, so the
    same tests serve its single breakpoint.
    """
    useful = (x > 0.0) & (k != 1.0)
    z = 0.5 * (k - 1.0) * x
    full = useful & (x >= hi)
    affine = useful & (k > 3.0) & (x <= lo) & (z >= hi)
    live = useful & (x < hi) & (z > lo) & ((x > lo) | (z < hi))
    return useful, full, affine, live


@jit
def _capacity(x, k, mu):
    """Response of one feature at level mu, without branches: 1 up to v, 0 from z on,
    C(mu) between (a linear step counts 0 at its own level, a flat curve 0)."""
    useful = (x > 0.0) & (k != 1.0)
    z = 0.5 * (k - 1.0) * x
    inside = min(max(_response(mu, x, k), 0.0), 1.0) if k > 3.0 else 0.0
    value = 1.0 if mu <= x else 0.0 if mu >= z else inside
    value = 0.0 if (k == 3.0) & (mu == x) else value
    return value if useful else 0.0


@jit
def _total(v, K, mu):
    """S(mu) over the features of (v, K), each response exact."""
    shared = K.size == 1
    s = 0.0
    for i in range(v.size):
        s += _capacity(v[i], K[0] if shared else K[i], mu)
    return s


@jit
def _fold(v, K, lo, hi, sums):
    """Fold the features without a breakpoint in (lo, hi) into ``sums`` (REF = lo).

    Returns the live features as compact arrays (v, K) and the number of useful
    features. One pass with no data-dependent branch: every feature is written to the
    live buffer and only a live one advances its end. A buffer too small for the live
    features (a wide bracket) is followed by a second pass that gathers them.
    """
    shared = K.size == 1
    k0 = K[0] if K.size else 3.0  # no feature: any value, never read
    shared_inverse = 2.0 / (k0 - 3.0) if k0 > 3.0 else 0.0
    room = min(v.size, 4096 + v.size // 16)
    live_v = np.empty(room + 1)
    live_K = np.empty(room + 1 if not shared else 1)
    live_K[0] = k0
    n_useful = 0
    n_live = 0
    n_full = 0.0
    at_hi = 0.0
    A = 0.0
    B = 0.0
    E = 0.0
    for i in range(v.size):
        x = v[i]
        k = k0 if shared else K[i]
        useful, full, affine, live = _on_bracket(x, k, lo, hi)
        inverse = (shared_inverse if shared else 2.0 / (k - 3.0)) if affine else 0.0
        n_useful += useful
        at = min(n_live, room)
        live_v[at] = x
        if not shared:
            live_K[at] = k
        n_live += live
        n_full += 1.0 if full else 0.0
        at_hi += 1.0 if full & (k == 3.0) & (x == hi) else 0.0
        A += x if affine else 0.0
        B += (x - lo) * inverse
        E += inverse
    sums[N_FULL] += n_full
    sums[AT_HI] += at_hi
    sums[A_SUM] += A
    sums[B_SUM] += B
    sums[E_SUM] += E
    if n_live > room:
        live_v = np.empty(n_live + 1)
        live_K = np.empty(n_live + 1 if not shared else 1)
        live_K[0] = k0
        m = 0
        for i in range(v.size):
            k = k0 if shared else K[i]
            live_v[m] = v[i]
            if not shared:
                live_K[m] = k
            m += _on_bracket(v[i], k, lo, hi)[3]
    return live_v[:n_live], live_K[: n_live if not shared else 1], n_useful


@jit
def _folded_total(sums, mu):
    if sums[E_SUM] == 0.0:
        return sums[N_FULL]
    return sums[N_FULL] + (sums[A_SUM] + sums[B_SUM] - (mu - sums[REF]) * sums[E_SUM]) / mu


@jit
def _breakpoints(v, K, lo, hi):
    """Breakpoints v_i and z_i strictly inside (lo, hi), one slot per candidate."""
    shared = K.size == 1
    out = np.empty(2 * v.size + 1)
    n = 0
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        z = 0.5 * (k - 1.0) * x
        out[n] = x
        n += (lo < x) & (x < hi)
        out[n] = z
        n += (k != 3.0) & (lo < z) & (z < hi)
    return out[:n]


@jit
def _narrow(v, K, new_lo, new_hi, old_hi, sums):
    """Shrink the bracket to (new_lo, new_hi): refer B to new_lo and fold what left it."""
    sums[B_SUM] -= (new_lo - sums[REF]) * sums[E_SUM]
    sums[REF] = new_lo
    if new_hi < old_hi:
        # The steps counted at the old hi now lie above the bracket.
        sums[AT_HI] = 0.0
    return _fold(v, K, new_lo, new_hi, sums)


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
        points = _breakpoints(v, K, lo, hi)
        if points.size == 0:
            return lo, hi, rounds
        rounds += 1
        if points.size > SORT_BELOW:
            pivot = np.partition(points, points.size // 2)[points.size // 2]
            if _folded_total(sums, pivot) + _total(v, K, pivot) > target:
                v, K, _ = _narrow(v, K, pivot, hi, hi, sums)
                lo = pivot
            else:
                v, K, _ = _narrow(v, K, lo, pivot, hi, sums)
                hi = pivot
            continue
        points.sort()
        a, b = -1, points.size
        while b - a > 1:
            m = (a + b) // 2
            if _folded_total(sums, points[m]) + _total(v, K, points[m]) > target:
                a = m
            else:
                b = m
        new_lo = points[a] if a >= 0 else lo
        new_hi = points[b] if b < points.size else hi
        v, K, _ = _narrow(v, K, new_lo, new_hi, hi, sums)
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
    live_v, live_K, useful = _fold(sample_v, sample_K, 0.0, np.inf, _new_sums(0.0))
    if target >= useful:
        return 0.0, np.inf
    level = _search(live_v, live_K, 0.0, np.inf, target, _new_sums(0.0))[1]
    mean = _total(sample_v, sample_K, level) / m
    spread = 0.0
    for j in range(m):
        c = _capacity(sample_v[j], sample_K[0] if shared else sample_K[j], level)
        spread += (c - mean) ** 2
    margin = spread_margin * math.sqrt(spread) + 1.0
    p, q = 0.0, np.inf
    if target + margin < useful:
        p = _search(live_v, live_K, 0.0, np.inf, target + margin, _new_sums(0.0))[0]
    if target > margin:
        q = _search(live_v, live_K, 0.0, np.inf, target - margin, _new_sums(0.0))[1]
    return p, q


@jit
def _walk(v, k, d):
    """Bracket (lo, hi) for one shared kurtosis k > 3, by a walk down the sorted levels.

    In decreasing order of importance w, the features start (C > 0 below z = c w,
    c = (k - 1) / 2) and saturate (C = 1 from w down) in that same order, so two pointers
    walk the merged breakpoints downwards in mu: features [q, p) affine, the q before them
    saturated, S = q + (2 / eps) (c W / mu - (p - q)) with W their summed importance. The
    first breakpoint where S exceeds d is lo, the one before hi. O(N log N), for few
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
        while m > 0 and not v[m - 1] > 0.0:
            m -= 1
        w = v
    else:
        w = np.empty(n)
        m = 0
        for i in range(n):
            if v[i] > 0.0:
                w[m] = -v[i]
                m += 1
        w = w[:m]
        w.sort()
        for i in range(m):
            w[i] = -w[i]
    c = 0.5 * (k - 1.0)
    beta = 2.0 / (k - 3.0)
    p = 0
    q = 0
    W = 0.0
    hi = np.inf
    while q < m:
        start = c * w[p] if p < m else 0.0
        full = w[q]
        level = max(start, full)
        # S at the breakpoint, its own feature counted exactly (0 at its start, 1 at its
        # saturation).
        if start >= full:
            total = q + (beta * (c * W / level - (p - q)) if p > q else 0.0)
        else:
            rest = W - w[q]
            total = q + 1.0 + (beta * (c * rest / level - (p - q - 1)) if p > q + 1 else 0.0)
        if total > d:
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
        if x <= 0.0 or k == 1.0:
            continue
        for b in (x, 0.5 * (k - 1.0) * x):
            if upward and mu < b < best:
                best = b
            if not upward and best < b < mu:
                best = b
    return best


# ----------------------------------------------------------------------------------------
# Exact assembly


@jit
def _sums_of(v, K, lo, hi, state):
    """The fold's sums for the bracket with the classes in ``state`` (the slow path)."""
    sums = _new_sums(lo)
    shared = K.size == 1
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        if state[i] == 1 and x > 0.0 and k != 1.0:
            sums[N_FULL] += 1.0
            sums[AT_HI] += 1.0 if (k == 3.0) & (x == hi) else 0.0
        elif state[i] == 2 and x > 0.0 and k > 3.0:
            inverse = 2.0 / (k - 3.0)
            sums[A_SUM] += x
            sums[B_SUM] += (x - lo) * inverse
            sums[E_SUM] += inverse
    return sums


@jit
def _most_linear(v, K, lo, hi, state, x_extra, eps_extra):
    """Importance and K - 3 of the affine feature with the smallest |K - 3| (the extra
    feature included when eps_extra is not 0)."""
    shared = K.size == 1
    best_v, best_eps = x_extra, eps_extra
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        useful, full, affine, live = _on_bracket(x, k, lo, hi)
        c = state[i] if state.size else 2 if affine else 0
        if (c == 2) & useful & (k > 3.0) and (best_eps == 0.0 or k - 3.0 < abs(best_eps)):
            best_v, best_eps = x, k - 3.0
    return best_v, best_eps


@jit
def _reference_sum(v, K, lo, hi, state, ref_v, ref_eps):
    """Q = sum over the affine class of D / eps, D = p - p_ref (see _assemble): one pass."""
    shared = K.size == 1
    Q = 0.0
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        useful, full, affine, live = _on_bracket(x, k, lo, hi)
        c = state[i] if state.size else 2 if affine else 0
        eps = k - 3.0
        D = 2.0 * (x - ref_v) + (eps * x - ref_eps * ref_v)
        Q += D / eps if (c == 2) & useful & (k > 3.0) else 0.0
    return Q


@jit
def _assemble(v, K, d, lo, hi, sums, C, state, ref_v, ref_eps, Q):
    r"""Write the exact capacities for the classes in ``sums``; return (mu, corrections, error).

    The level is hi when the linear steps sitting at hi must share the budget (the total
    just below hi exceeds d), else the root P / (R + E) of the affine total (module doc),
    with :math:`D_i = p_i - p_{ref} = 2 (v_i - v_{ref}) + (\epsilon_i v_i - \epsilon_{ref}
    v_{ref})` and Q = sum D_k / eps_k: the module doc's reference 2 lo is ``ref_v = lo``,
    ``ref_eps = 0``; a feature of the affine class as the reference makes D vanish exactly
    for it and for every identical one. ``error`` bounds the rounding of the capacities'
    sum. A correction is a feature whose class disagrees with the answer, possible only
    within rounding of a breakpoint; the corrected classes are written to ``state`` when
    the classes came from it (the caller's slow path), else the classes are the bracket's.
    """
    ref_sums, E = sums[REF], sums[E_SUM]
    affine_at_hi = (sums[A_SUM] + sums[B_SUM] - (hi - ref_sums) * E) / hi if E > 0.0 else 0.0
    below_hi = sums[N_FULL] + affine_at_hi
    tie = sums[AT_HI] > 0.0 and below_hi > d
    R = d - sums[N_FULL]
    P = sums[A_SUM] + sums[B_SUM] + ref_sums * E
    corrections = 0
    if tie:
        mu = hi
    elif E > 0.0:
        mu = P / (R + E)
        # At an end of the bracket up to the rounding of the quotient.
        if not lo * (1.0 - LEVEL_RTOL) <= mu <= hi * (1.0 + LEVEL_RTOL):
            corrections += 1
        mu = min(max(mu, lo), hi)
    else:
        mu = lo
        corrections += 1
    shared = K.size == 1
    k0 = K[0] if K.size else 3.0  # no feature: any value, never read
    shared_scale = 1.0 / ((k0 - 3.0) * P)
    from_state = state.size > 0
    error = 0.0
    for i in range(v.size):
        x = v[i]
        k = k0 if shared else K[i]
        useful, full, affine, live = _on_bracket(x, k, lo, hi)
        c = state[i] if from_state else 1 if full else 2 if affine else 0
        convex = useful & (k > 3.0)
        eps = k - 3.0
        if tie:
            value = _capacity(x, k, hi)
        else:
            D = 2.0 * (x - ref_v) + (eps * x - ref_eps * ref_v)
            scale = shared_scale if shared else 1.0 / (eps * P)
            p = 2.0 * x + eps * x
            value = (p * R + D * E - 2.0 * Q) * scale
            size = (abs(p * R) + abs(D * E) + 2.0 * abs(Q)) * abs(scale)
            error += size if (c == 2) & convex else 0.0
        wanted = 0 if value < CLASS_TOL else 1 if value > 1.0 - CLASS_TOL else 2
        if c == 2:
            wanted = 0 if value < -CLASS_TOL else 1 if value > 1.0 + CLASS_TOL else 2
        bad = convex & ((wanted != c) | (live & ~from_state))
        corrections += bad
        if from_state and bad:
            state[i] = wanted
        # A linear step is 1 on the bracket when it lies at or above hi (the steps at hi
        # share the budget below only when they overfill it, the tie handled after).
        step = useful & (k == 3.0) & full
        C[i] = min(max(value, 0.0), 1.0) if convex else 1.0 if step else 0.0
    if tie:
        # The steps at hi share what the others leave, in index order.
        left = d - (below_hi - sums[AT_HI])
        if left < -CLASS_TOL:
            corrections += 1
        for i in range(v.size):
            if v[i] == hi and (K[0] if shared else K[i]) == 3.0:
                C[i] = min(max(left, 0.0), 1.0)
                left -= C[i]
    return mu, corrections, 4.0 * EPS * error


@jit
def _exact_assembly(v, K, d, lo, hi, sums, C, state, x_extra, eps_extra):
    """Assemble with D referred to the level lo; if that leaves the budget's sum inexact
    (a budget small against the affine features' scale), again with the most nearly linear
    affine feature as the reference, against which the differences D are smallest.

    Returns (mu, corrections, ref_v, ref_eps, Q): the reference and the sum Q the
    capacities were written with, so that a caller can evaluate one more affine feature
    alike. That feature (importance ``x_extra``, K - 3 = ``eps_extra``, 0 for none) is in
    ``sums`` but not in (v, K).
    """
    Q = sums[A_SUM] + sums[B_SUM] - (lo - sums[REF]) * sums[E_SUM]
    ref_v, ref_eps = lo, 0.0
    mu, corrections, error = _assemble(v, K, d, lo, hi, sums, C, state, ref_v, ref_eps, Q)
    R = d - sums[N_FULL]
    if corrections == 0 and error > SUM_RTOL * abs(R):
        ref_v, ref_eps = _most_linear(v, K, lo, hi, state, x_extra, eps_extra)
        Q = _reference_sum(v, K, lo, hi, state, ref_v, ref_eps)
        if eps_extra != 0.0:
            Q += (2.0 * (x_extra - ref_v) + (eps_extra * x_extra - ref_eps * ref_v)) / eps_extra
        mu, corrections, error = _assemble(v, K, d, lo, hi, sums, C, state, ref_v, ref_eps, Q)
    return mu, corrections, ref_v, ref_eps, Q


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
            if v[i] > 0.0 and k != 1.0:
                top = max(top, _ignore_multiplier(v[i], k))
        return top, 0, True
    walk = shared and n < walk_below and K[0] > 3.0
    p, q = _sampled_bracket(v, K, d, margin) if n >= sample_from else (0.0, np.inf)
    sums = _new_sums(p)
    if walk:
        n_useful = 0
        for i in range(n):
            n_useful += v[i] > 0.0
    else:
        live_v, live_K, n_useful = _fold(v, K, p, q, sums)
    if n_useful <= d:
        # Room for every feature that can use capacity: lam = 0 is KKT-valid.
        for i in range(n):
            k = K[0] if shared else K[i]
            C[i] = 1.0 if v[i] > 0.0 and k != 1.0 else 0.0
        return 0.0, 0, True
    if walk:
        lo, hi = _walk(v, K[0], d)
        sums = _new_sums(lo)
        _fold(v, K, lo, hi, sums)
        rounds = 1
    else:
        s_p = _folded_total(sums, p) + _total(live_v, live_K, p) if p > 0.0 else n_useful
        s_q = _folded_total(sums, q) + _total(live_v, live_K, q) if q < np.inf else 0.0
        if not s_p > d >= s_q:
            # The sample misled (rare): search the whole problem.
            p, q = 0.0, np.inf
            sums = _new_sums(p)
            live_v, live_K, _ = _fold(v, K, p, q, sums)
        lo, hi, rounds = _search(live_v, live_K, p, q, d, sums)
    mu, corrections, _, _, _ = _exact_assembly(
        v, K, d, lo, hi, sums, C, np.empty(0, np.int8), 0.0, 0.0
    )
    if corrections == 0:
        return _level_multiplier(mu), rounds, True
    # Rounding misled the search, or a rounded breakpoint misplaced a feature (rare):
    # check S(lo) > d >= S(hi) with exact responses, stepping to the neighbouring
    # breakpoint while it fails, then correct the classes against the answer.
    while True:
        if lo > 0.0 and _total(v, K, lo) <= d:
            lo, hi = _neighbour(v, K, lo, False), lo
        elif hi < np.inf and _total(v, K, hi) > d:
            lo, hi = hi, _neighbour(v, K, hi, True)
        else:
            break
        rounds += 1
    state = np.empty(n, np.int8)
    for i in range(n):
        _, full, affine, _ = _on_bracket(v[i], K[0] if shared else K[i], lo, hi)
        state[i] = 1 if full else 2 if affine else 0
    for _ in range(MAX_CORRECTIONS):
        rounds += 1
        sums = _sums_of(v, K, lo, hi, state)
        mu, corrections, _, _, _ = _exact_assembly(v, K, d, lo, hi, sums, C, state, 0.0, 0.0)
        if corrections == 0:
            return _level_multiplier(mu), rounds, True
    return _level_multiplier(mu), rounds, False


# ----------------------------------------------------------------------------------------
# Certificate

#: Names of the values :func:`certify_quadratic` returns, in order.
CERTIFICATE_FIELDS = (
    "loss", "stationarity", "bound_signs", "total", "below_zero", "above_one", "dual_terms",
    "marginal_scale", "loss_scale", "not_finite",
)

_response_loss = jit(F.quadratic_response_loss)


def _certify(v, K, C, lam, atol, codes):
    r"""One pass over a quadratic-model allocation: loss, KKT residuals, dual terms, scales.

    Parameters
    ----------
    v, K : ndarray
        The family (K of length 1 when shared).
    C : ndarray, shape (N,)
        Capacities to certify.
    lam : float
        The multiplier claimed.
    atol : float
        Capacities within atol of 0 or 1 count as at that bound.
    codes : ndarray of int8, shape (N,)
        Output: regime codes, 0 monosemantic, 1 polysemantic, 2 ignored.

    Returns
    -------
    tuple of float
        :data:`CERTIFICATE_FIELDS`: :math:`\sum \ell_i(C_i)`; the largest
        :math:`|m_i(C_i) - \lambda|` inside (0, 1); the largest sign violation at a bound;
        :math:`\sum C_i`; the largest :math:`-C_i` and :math:`C_i - 1`;
        :math:`\sum_i \min_c \ell_i(c) + \lambda c`; the largest marginal (and
        :math:`\lambda`); :math:`\sum_i |\ell_i(0) - \ell_i(1)|`; how many capacities are
        not finite (max and min pass NaN by).

    Notes
    -----
    A feature exactly at 0 or 1 takes its loss and marginal from the gain and the end
    multipliers, with no division: in a typical optimum most features sit there.
    """
    mu = _multiplier_level(lam)
    shared = K.size == 1
    loss = 0.0
    stationarity = 0.0
    signs = max(-lam, 0.0)
    total = 0.0
    below = 0.0
    above = 0.0
    dual = 0.0
    scale = lam
    spread = 0.0
    bad = 0
    for i in prange(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        c = C[i]
        bad += not np.isfinite(c)
        total += c
        below = max(below, -c)
        above = max(above, c - 1.0)
        codes[i] = 0 if c >= 1.0 - atol else 2 if c <= atol else 1
        if not ((x > 0.0) & (k != 1.0)):
            # A flat curve: constant loss (K - 1) v^2 (0 when K = 1), zero marginal.
            flat = _gain(x, k)
            loss += flat
            dual += flat
            signs = max(signs, 0.0 if c <= atol else lam)
            continue
        gain = _gain(x, k)
        m0 = _ignore_multiplier(x, k)
        m1 = _full_multiplier(x, k)
        spread += gain
        if c == 0.0:
            m = m0
            loss += gain
        elif c == 1.0:
            m = m1
        else:
            m = _marginal(c, x, k)
            loss += _loss(c, x, k)
        scale = max(scale, max(m, max(m0, m1)))
        if c <= atol:
            signs = max(signs, m - lam)
        elif c >= 1.0 - atol:
            signs = max(signs, lam - m)
        else:
            stationarity = max(stationarity, abs(m - lam))
        # min over [0, 1] of l(c) + lam c: at the response of a convex curve, where the loss
        # is affine in the level, and an end otherwise.
        if k > 3.0 and mu > x and mu < _ignore_level(x, k):
            r = min(max(_response(mu, x, k), 0.0), 1.0)
            dual += _response_loss(mu, x, k) + lam * r
        else:
            dual += min(gain, lam)
    return loss, stationarity, signs, total, below, above, dual, scale, spread, bad


_certify_serial = jit(_certify)
_certify_parallel = jit(_certify, parallel=True)

#: Features from which the certificate's pass runs on numba's threads: below, waking
#: them costs more than the pass.
PARALLEL_FROM = 1 << 18


def certify_quadratic(v, K, C, lam, atol, codes):
    """:func:`_certify` on numba's threads for large problems, serially for small ones."""
    run = _certify_parallel if v.size >= PARALLEL_FROM else _certify_serial
    return run(v, K, C, lam, atol, codes)


# ----------------------------------------------------------------------------------------
# The water-filled part of a mixed family, at a level and along a concave feature's window


@jit
def response_totals(v, K, mu):
    """Total capacity and total loss of convex, linear and flat curves at level mu.

    Each feature takes its response (the smallest minimiser of l + lam c at lam = 2 mu^2),
    so the pair is (b, V(b)) for the budget b that level fills: a point of the water-filled
    value function.
    """
    shared = K.size == 1
    total = 0.0
    loss = 0.0
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        useful = (x > 0.0) & (k != 1.0)
        xe = x if useful else 0.0
        ke = k if useful else 3.0
        c = _capacity(x, k, mu)
        total += c
        loss += _loss(c, xe, ke) + (0.0 if useful else _gain(x, k))
    return total, loss


@jit
def _add(acc, x):
    """Neumaier's compensated accumulation of x into (sum, compensation)."""
    s = acc[0] + x
    if abs(acc[0]) >= abs(x):
        acc[1] += (acc[0] - s) + x
    else:
        acc[1] += (x - s) + acc[0]
    acc[0] = s


@jit
def _window_events(v, K, lo, hi, levels, owner):
    """The curves' breakpoints strictly inside the window of levels (lo, hi): +i at v_i
    (saturated -> affine, or a step down), -(i + 1) at z_i of a convex curve. Written into
    ``levels`` and ``owner`` where they have room; returns how many (few: the window is
    where the budget is tight), so that a first call with empty arrays sizes the second."""
    shared = K.size == 1
    n = 0
    for i in range(v.size):
        xi = v[i]
        ki = K[0] if shared else K[i]
        if not ((xi > 0.0) & (ki != 1.0)):
            continue
        zi = 0.5 * (ki - 1.0) * xi
        if (lo < xi) & (xi < hi):
            if n < levels.size:
                levels[n], owner[n] = xi, i
            n += 1
        if (ki > 3.0) & (lo < zi) & (zi < hi):
            if n < levels.size:
                levels[n], owner[n] = zi, -(i + 1)
            n += 1
    return n


@jit
def stationary_levels(v, K, x, k, target, top):
    r"""Levels at which a concave feature and the water-filled curves share ``target``
    as a local minimum of the loss.

    With the concave feature (importance x, kurtosis k < 3) at capacity c and the
    curves (v, K) water-filled with the rest, the loss is stationary where both sit at
    one level mu: c(mu) + S(mu) = target, c(mu) the feature's response (increasing in
    mu) and S(mu) the curves' total (non-increasing). On a stretch without breakpoints of
    the curves, :math:`c(\mu) + S(\mu) = a / \mu + b` with
    :math:`a = \sum p / \epsilon` over the affine curves and the feature; it is a local
    minimum exactly where that total increases with mu, :math:`a < 0`, and the root is
    :math:`\mu = -a / b`. The stretches are walked through the sorted breakpoints inside
    the feature's window, from c = 0 (mu = (k - 1) x / 2) up to c = 1 or the level where
    c reaches ``top``; the sums are compensated, since curves near K = 3 add and remove
    large terms. O(N + B log B) time for B breakpoints in the window, O(B) memory.

    Returns
    -------
    ndarray, shape (S, 2)
        The stretches (lo, hi) of levels holding a candidate, increasing.
    """
    shared = K.size == 1
    lo = 0.5 * (k - 1.0) * x
    eps_j = k - 3.0
    hi = x if top >= 1.0 else (k - 1.0) * x / (2.0 * (1.0 - top) + (k - 1.0) * top)
    n_full = 0.0
    P = np.zeros(2)
    E = np.zeros(2)
    for i in range(v.size):
        xi = v[i]
        ki = K[0] if shared else K[i]
        if not ((xi > 0.0) & (ki != 1.0)):
            continue
        # The state just above lo.
        if xi > lo:
            n_full += 1.0
        elif ki > 3.0 and 0.5 * (ki - 1.0) * xi > lo:
            _add(P, (2.0 * xi + (ki - 3.0) * xi) / (ki - 3.0))
            _add(E, 2.0 / (ki - 3.0))
    n = _window_events(v, K, lo, hi, np.empty(0), np.empty(0, np.int64))
    levels = np.empty(n)
    owner = np.empty(n, np.int64)
    _window_events(v, K, lo, hi, levels, owner)
    order = np.argsort(levels)
    found = np.empty((n + 1, 2))
    m = 0
    pj = (2.0 * x + eps_j * x) / eps_j
    start = lo
    e = 0
    while True:
        end = levels[order[e]] if e < n else hi
        a = P[0] + P[1] + pj
        b = n_full - (E[0] + E[1]) - 2.0 / eps_j - target
        if a < 0.0 and b > 0.0:
            root = -a / b
            if start <= root <= end:
                found[m, 0] = start
                found[m, 1] = end
                m += 1
        if e == n:
            break
        # Cross every event at this level, upwards in mu.
        while e < n and levels[order[e]] == end:
            i = owner[order[e]]
            up = i >= 0
            i = i if up else -i - 1
            xi = v[i]
            ki = K[0] if shared else K[i]
            term = (2.0 * xi + (ki - 3.0) * xi) / (ki - 3.0) if ki > 3.0 else 0.0
            if up:
                n_full -= 1.0
                if ki > 3.0:
                    _add(P, term)
                    _add(E, 2.0 / (ki - 3.0))
            else:
                _add(P, -term)
                _add(E, -2.0 / (ki - 3.0))
            e += 1
        start = end
    return found[:m]


@jit
def pair_assembly(v, K, x, k, target, lo, hi, C):
    """Exact capacities at a stationary point found by :func:`stationary_levels`.

    On the stretch (lo, hi) of levels, without breakpoints of the curves (v, K), the
    concave feature (x, k) and the curves' affine ones share ``target`` as one affine
    set: the water-filling assembly, whose algebra holds for either sign of eps, gives all
    their capacities without cancellation. Writes the curves' capacities into C; returns
    (c, mu, exact) for the concave feature.
    """
    sums = _new_sums(lo)
    live_v, live_K, _ = _fold(v, K, lo, hi, sums)
    eps = k - 3.0
    inverse = 2.0 / eps
    sums[A_SUM] += x
    sums[B_SUM] += (x - lo) * inverse
    sums[E_SUM] += inverse
    # Linear steps at hi would belong to a total that falls across hi; here it rises.
    sums[AT_HI] = 0.0

    mu, corrections, ref_v, ref_eps, Q = _exact_assembly(
        v, K, target, lo, hi, sums, C, np.empty(0, np.int8), x, eps
    )
    R = target - sums[N_FULL]
    P = sums[A_SUM] + sums[B_SUM] + sums[REF] * sums[E_SUM]
    D = 2.0 * (x - ref_v) + (eps * x - ref_eps * ref_v)
    c = ((2.0 * x + eps * x) * R + D * sums[E_SUM] - 2.0 * Q) / (eps * P)
    exact = corrections == 0 and live_v.size == 0 and -CLASS_TOL <= c <= 1.0 + CLASS_TOL
    return min(max(c, 0.0), 1.0), mu, exact


# ----------------------------------------------------------------------------------------
# Many problems at once: the sweeps' grid, one kurtosis per problem
#
# K > 3 is water-filled by waterfill_quadratic; K <= 3 (concave, or linear at K = 3) takes
# the vertex rule of capopt.solvers.vertex.vertex, with its tie rules (equal gains rank by
# index; the fraction goes to the first feature after the whole ones), which at K = 3
# coincides with water-filling. Features with v <= 0, and every feature when K = 1, have
# flat curves and get 0.


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
def total_loss(v, K, C):
    r""":math:`\sum_i \ell_i(C_i)` of the quadratic model in one pass (``K`` one entry or N),
    each term as :func:`_feature_loss`, summed with compensation: the total is then good to
    a few roundings of itself, whatever N."""
    shared = K.size == 1
    acc = np.zeros(2)
    for i in range(v.size):
        _add(acc, _feature_loss(C[i], v[i], K[0] if shared else K[i]))
    return acc[0] + acc[1]


@jit
def kkt_interval(v, K, C, atol):
    r"""The multipliers that satisfy the KKT conditions at C: ``(P, Q)`` with
    :math:`P = \max(0, \max_{C_i < 1} m_i(C_i))` and :math:`Q = \min_{C_i > 0} m_i(C_i)`
    (inf when no capacity is held), capacities within ``atol`` of a bound being at it; one
    pass, for :func:`capopt.solvers.certificate.multiplier_interval`."""
    shared = K.size == 1
    P = 0.0
    Q = math.inf
    for i in range(v.size):
        c = C[i]
        m = _feature_marginal(c, v[i], K[0] if shared else K[i])
        if c < 1.0 - atol:
            P = max(P, m)
        if c > atol:
            Q = min(Q, m)
    return P, Q


@jit
def _walk_records(v, K, U, order, first, last, step, full, out):
    """:func:`dominance_records` into ``out`` (when it has room); returns how many."""
    shared = K.size == 1
    n = 0
    guard = math.inf if full else -math.inf
    for r in range(first, last, step):
        j = U[order[r]]
        k = K[0] if shared else K[j]
        m = _full_multiplier(v[j], k) if full else _ignore_multiplier(v[j], k)
        if (m < guard) if full else (m > guard):
            guard = m
            if n < out.size:
                out[n] = r
            n += 1
    return n


@jit
def dominance_records(v, K, U, order, first, last, step, full):
    r"""The ranks no earlier one dominates, walking ``range(first, last, step)`` of the
    concave features ``U[order[r]]``: with ``full`` False those whose :math:`m(0)` exceeds
    every earlier one's, with ``full`` True those whose :math:`m(1)` is below every earlier
    one's (see :mod:`capopt.solvers.structured`). Two passes, so that the memory is that of
    the records."""
    out = np.empty(_walk_records(v, K, U, order, first, last, step, full, np.empty(0, np.int64)), np.int64)
    _walk_records(v, K, U, order, first, last, step, full, out)
    return out


@jit
def _feature_marginal(C, v, K):
    r"""Marginal benefit :math:`-\ell'(C)`; 0 for a flat curve."""
    if _flat(v, K):
        return _marginal(C, 0.0, 3.0)
    return _marginal(C, v, K)


#: The rows :func:`quadratic_partials` writes, in order.
PARTIAL_ROWS = ("marginal", "curvature", "marginal_d_importance", "marginal_d_kurtosis",
                "loss_d_importance", "loss_d_kurtosis")


@jit
def quadratic_partials(C, v, K, out):
    r"""Each feature's marginal, curvature and partials in v and K at C, in one pass.

    Writes ``out[r, i]`` for the first ``out.shape[0]`` rows of :data:`PARTIAL_ROWS`:
    :math:`m_i`, :math:`\ell_i''`, :math:`\partial m_i / \partial v_i`,
    :math:`\partial m_i / \partial K_i`, :math:`\partial \ell_i / \partial v_i`,
    :math:`\partial \ell_i / \partial K_i` (the sensitivities' terms; the sweeps need
    only the first four, the KKT structure the first two; ``out`` has 2, 4 or 6 rows).
    ``K`` has one entry (shared) or N. A flat curve has zero
    marginal and curvature; its loss partials are those of its constant
    :math:`(K - 1) v^2`, which the formulas give at C = 0, where it sits.
    """
    shared = K.size == 1
    rows = out.shape[0]
    with_partials = rows > 2
    with_loss = rows > 4
    for i in range(C.size):
        c, x, k = C[i], v[i], K[0] if shared else K[i]
        flat = _flat(x, k)
        out[0, i] = _feature_marginal(c, x, k)
        out[1, i] = 0.0 if flat else _curvature(c, x, k)
        if with_partials:
            out[2, i] = _marginal_d_importance(c, x, k)
            out[3, i] = _marginal_d_kurtosis(c, x, k)
        if with_loss:
            out[4, i] = _loss_d_importance(c, x, k)
            out[5, i] = _loss_d_kurtosis(c, x, k)


# ----------------------------------------------------------------------------------------
# Sensitivities: the local structure of the KKT system (capopt.perturbation.analysis)

#: Where :func:`kkt_structure` places a feature; ``TIGHT`` is added for a kink.
ACTIVE, AT_ZERO, AT_ONE, AT_KNOT, TIGHT = 0, 1, 2, 3, 4
#: A feature at a bound (or knot) whose one-sided marginal is within this distance of lam,
#: relative to the largest marginal, is at a kink: a small change may move it.
KINK_RTOL = 1e-9


@jit
def kkt_structure(C, right, left, h, linear, lam, atol, kink_rtol, place, g):
    r"""Place every feature in the KKT system at (C, lam) and invert the active curvatures.

    Writes ``place[i]``: ``ACTIVE`` (inside a smooth piece, :math:`m_i = \lambda`),
    ``AT_ZERO``, ``AT_ONE`` (within ``atol`` of a bound) or ``AT_KNOT`` (a knot of a
    table: the one-sided marginals differ), plus ``TIGHT`` when a one-sided marginal on
    the side where it can move is within ``kink_rtol`` of lam, relative to the largest
    marginal (a kink; a marginal of 0 at lam = 0 never moves). Writes ``g[i]``
    :math:`= 1 / \ell_i''` for an active feature whose piece is curved, else 0 (``g``
    may be ``h`` itself).

    Returns
    -------
    S : float
        :math:`\sum g_i`.
    pins : int
        Active features on a linear piece (``linear[i]`` or :math:`\ell_i'' = 0`).
    first_pin : int
        The first of them, or -1.
    active : int
        Active features.
    """
    scale = abs(lam)
    for i in range(C.size):
        scale = max(scale, abs(right[i]), abs(left[i]))
    tol = kink_rtol * scale
    S = 0.0
    pins = 0
    first_pin = -1
    active = 0
    for i in range(C.size):
        # Read before writing: g may be h itself (the curvature turned into its inverse).
        hi = h[i]
        g[i] = 0.0
        gives = right[i] != 0.0 or lam != 0.0
        near_right = gives and abs(right[i] - lam) <= tol
        near_left = gives and abs(left[i] - lam) <= tol
        if C[i] <= atol:
            place[i] = AT_ZERO + TIGHT * near_right
        elif C[i] >= 1.0 - atol:
            place[i] = AT_ONE + TIGHT * near_left
        elif right[i] != left[i]:
            place[i] = AT_KNOT + TIGHT * (near_right or near_left)
        else:
            place[i] = ACTIVE
            active += 1
            if linear[i] or hi == 0.0:
                pins += 1
                first_pin = i if first_pin < 0 else first_pin
            else:
                g[i] = 1.0 / hi
                S += g[i]
    return S, pins, first_pin, active


@jit
def apply_border(g, w, Y, out):
    r""":math:`Q^\top \operatorname{diag}(g) Q y` with :math:`Q = I - \mathbf 1 w^\top`, for each row y of Y.

    ``Y`` and ``out`` have shape (k, N): k changes of the marginals at once, in three passes
    over the features, O(k N). ``g`` and ``w`` are zero outside the active set, so the
    result is too: the changes of the capacities (:mod:`capopt.perturbation.jacobian`).
    """
    k, n = Y.shape
    for j in range(k):
        wy = 0.0
        for i in range(n):
            wy += w[i] * Y[j, i]
        total = 0.0
        for i in range(n):
            out[j, i] = g[i] * (Y[j, i] - wy)
            total += out[j, i]
        for i in range(n):
            out[j, i] -= w[i] * total


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
def _vertex(v, K, d, C):
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
        flat = _flat(v[i], K)
        gain[i] = 0.0 if flat else _benefit(1.0, v[i], K)
        part[i] = 0.0 if flat or f == 0.0 else _benefit(f, v[i], K)
    # mergesort is stable: equal gains keep index order, the lower index ranks first.
    fractional = best_vertex(gain, part, np.argsort(-gain, kind="mergesort"), k, f, C)
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


@jit
def _margin(dist, theta):
    """The relative change ``dist / |theta|`` of a parameter, 0 for no distance at all."""
    return 0.0 if dist == 0.0 else dist / abs(theta)


@jit
def _nearer(dist, gap, rate):
    """``min(dist, gap / |rate|)``, dividing only when it is smaller (no change at rate 0)."""
    rate = abs(rate)
    return gap / rate if gap < dist * rate else dist


@jit
def _regime_distances(C, v, K, d, m, place, w, lam, lam_dd, dC_dd, dC_dK, dC_dr, dm_dK, dm_dr, lo, hi, out):
    r"""How far d, K and r may each move before a feature of a convex family changes regime.

    Writes the three distances (in the parameters' own units) into ``out``, looking at the
    features ``lo <= i < hi`` only: the active ones and their two neighbours. That is
    enough for a sweep's problems, whose importances decrease with i: with one kurtosis
    each capacity is non-decreasing in the importance, so the features are in the order
    monosemantic, active, ignored, and the first to change regime is an active one, the
    last at 1 or the first at 0.

    * **Budget, exact.** With one kurtosis K > 3 each capacity inside (0, 1) is affine in
      :math:`u = 1/\mu` (module docstring: :math:`C_i = (p_i u - 2)/\epsilon_i`), so
      :math:`\sum_i C_i = d` makes u, and every active capacity, affine in d within a
      regime, :math:`du/dd = -(d\lambda/dd) / (\lambda'(\mu) \mu^2)`. An active feature
      reaches a bound after :math:`\min(C_i, 1 - C_i) / |\partial C_i|`; one at a bound
      starts to move when u reaches :math:`1/z_i` (at 0) or :math:`1/v_i` (at 1), both
      linearly in d. With a slack budget the first change is where it binds,
      :math:`d = \sum_i C_i`.
    * **K and r, to first order.** An active feature as above; a feature at a bound starts
      to move once :math:`\lambda - m_i` closes, after :math:`|\lambda - m_i| /
      |\partial\lambda - \partial m_i|` with :math:`\partial\lambda = w^\top \partial m`.

    A kink is at distance 0 in every parameter.
    """
    dlam_dK = 0.0
    dlam_dr = 0.0
    for i in range(lo, hi):
        dlam_dK += w[i] * dm_dK[i]
        dlam_dr += w[i] * dm_dr[i]
    to_d = np.inf
    if lam == 0.0:
        total = 0.0
        for i in range(C.size):
            total += C[i]
        to_d = d - total
    to_K = np.inf
    to_r = np.inf
    # The nearest level at which a feature leaves a bound: the largest ignore level z_i of
    # the features at 0 (all below mu), the smallest full level v_i of those at 1 (above).
    z_max = 0.0
    v_min = np.inf
    for i in range(lo, hi):
        where = place[i]
        if where >= TIGHT:
            out[:] = 0.0
            return
        if where == ACTIVE:
            inside = min(C[i], 1.0 - C[i])
            if lam > 0.0:
                to_d = _nearer(to_d, inside, dC_dd[i])
            to_K = _nearer(to_K, inside, dC_dK[i])
            to_r = _nearer(to_r, inside, dC_dr[i])
        elif v[i] > 0.0:  # flat curves (v = 0; K = 1 never reaches here) never move
            if where == AT_ZERO:
                z_max = max(z_max, _ignore_level(v[i], K))
            else:
                v_min = min(v_min, _full_level(v[i], K))
            gap = abs(lam - m[i])
            to_K = _nearer(to_K, gap, dlam_dK - dm_dK[i])
            to_r = _nearer(to_r, gap, dlam_dr - dm_dr[i])
    if lam > 0.0:
        mu = _multiplier_level(lam)
        du = abs((lam_dd / _level_multiplier_slope(mu)) / (mu * mu))
        u = 1.0 / mu
        if du != 0.0 and z_max > 0.0:
            to_d = min(to_d, abs(1.0 / z_max - u) / du)
        if du != 0.0 and v_min < np.inf:
            to_d = min(to_d, abs(u - 1.0 / v_min) / du)
    out[0], out[1], out[2] = to_d, to_K, to_r


@jit
def _differentiate_one(C, v, K, r, d, lam, atol, n_full, n_active, dC_dd, dC_dK, dC_dr, margins, scratch,
                       place, linear):
    r"""Sensitivities of one sweep problem at its optimum (C, lam); returns dlam/dd.

    ``n_full`` and ``n_active`` count the monosemantic and polysemantic features (the
    solve's counts); the importances decrease with i, so those are the first ``n_full``,
    then the next ``n_active`` (:func:`_regime_distances`), and only they and their two
    neighbours need more than their marginal. ``scratch`` (9, >= N) and ``place``,
    ``linear`` (>= N) are work space. The KKT
    structure of :func:`kkt_structure`, the border of
    :mod:`capopt.perturbation.analysis`, and :func:`apply_border` for the shared kurtosis
    K and the decay r of :math:`v_i = r^i` (:math:`\partial v_i / \partial r = i r^{i-1}`).
    ``margins`` gets, for d, K and r, the smallest relative change that changes a
    regime: exact for the budget, to first order for K and r (:func:`_regime_distances`).
    At K <= 3 (the vertex rule) the margin in K is the distance to K = 3, a lower bound.
    Where the optimum is not locally determined (a vertex at a whole budget; equal concave
    features, r = 1) the budget's margin is 0 and the derivatives that do not exist are
    NaN.
    """
    n = C.size
    lo, hi = max(n_full - 1, 0), min(n_full + n_active + 1, n)
    terms = scratch[:4, :n]
    m, h, dm_dv, dm_dK = terms[0], terms[1], terms[2], terms[3]
    for i in range(n):  # kkt_structure reads every marginal; the rest only in [lo, hi)
        m[i] = _feature_marginal(C[i], v[i], K[0])
    quadratic_partials(C[lo:hi], v[lo:hi], K, terms[:, lo:hi])
    # Rows 3 and 4 are the marginals' changes in K and r, side by side for apply_border; the
    # border w is dC/dd, written in place.
    y, g, w, moved = scratch[4, :n], scratch[5, :n], dC_dd, scratch[7:9, :n]
    place, linear = place[:n], linear[:n]
    linear[:] = K[0] == 3.0
    S, pins, first_pin, active = kkt_structure(C, m, m, h, linear, lam, atol, KINK_RTOL, place, g)
    w[:] = 0.0
    lam_dd = 0.0
    tied = K[0] <= 3.0 and r == 1.0 and 0.0 < d < n and n > 1
    vertex = lam > 0.0 and active == 0
    if lam > 0.0 and active > 0:
        if pins == 1:
            w[first_pin] = 1.0
        elif pins > 1 or not (S != 0.0 and math.isfinite(S)):
            tied = True
        else:
            inverse = 1.0 / S
            for i in range(n):
                w[i] = g[i] * inverse
            lam_dd = -inverse
    # The marginals' changes in K and in r (dv_i/dr = i r^(i-1) = i v_(i-1)), then the
    # capacities' through the border, both at once.
    for i in range(lo, hi):
        y[i] = dm_dv[i] * i * v[i - 1] if i > 0 else 0.0
    apply_border(g[lo:hi], w[lo:hi], scratch[3:5, lo:hi], moved[:, lo:hi])
    dC_dK[:] = 0.0
    dC_dr[:] = 0.0
    dC_dK[lo:hi] = moved[0, lo:hi]
    dC_dr[lo:hi] = moved[1, lo:hi]
    if K[0] <= 3.0:
        # The vertex rule: whole features and one fraction, constant in K and r until the
        # fraction reaches a bound; in K, the distance to K = 3, where the convex branch
        # takes over (a lower bound of the margin).
        f = d - math.floor(d)
        margins[0] = _margin(d - n if d >= n else min(f, 1.0 - f), d)
        margins[1] = _margin(3.0 - K[0], K[0])
        margins[2] = np.inf
    else:
        _regime_distances(C, v, K[0], d, m, place, w, lam, lam_dd, dC_dd, dC_dK, dC_dr, dm_dK, y, lo, hi,
                          margins)
        margins[0] = _margin(margins[0], d)
        margins[1] = _margin(margins[1], K[0])
        margins[2] = _margin(margins[2], r)
    if tied or vertex:
        # A whole budget at a vertex: any change of d moves a feature off its bound.
        dC_dd[:] = np.nan
        lam_dd = np.nan
        margins[0] = 0.0
    if tied:
        margins[:] = 0.0
        dC_dK[:] = np.nan
        dC_dr[:] = np.nan
    return lam_dd


#: Problems of a sweep that share one scratch space in :func:`solve_grid_sensitivities`.
GRID_BLOCK = 256


@jit(parallel=True)
def solve_grid_sensitivities(v, n, K, r, d, atol):
    r""":func:`solve_grid` with each optimum's sensitivities, in the same pass.

    Parameters as :func:`solve_grid`, plus ``r`` (P,), the decay of each problem's
    importances :math:`v_i = r^i`.

    Returns
    -------
    C, lam, loss, counts
        As :func:`solve_grid`.
    lam_dd : ndarray, shape (P,)
        :math:`\partial\lambda / \partial d`.
    dC_dd, dC_dK, dC_dr : ndarray, shape (P, W)
        :math:`\partial C_i / \partial d`, :math:`\partial C_i / \partial K` (the shared
        kurtosis), :math:`\partial C_i / \partial r`; NaN beyond each n and where they do
        not exist.
    margins : ndarray, shape (P, 3)
        The first-order relative margins of d, K and r (:func:`_differentiate_one`).
    """
    P, W = v.shape
    C = np.full((P, W), np.nan)
    lam = np.empty(P)
    loss = np.empty(P)
    counts = np.zeros((P, 3), dtype=np.int64)
    lam_dd = np.empty(P)
    dC_dd = np.empty((P, W))
    dC_dK = np.empty((P, W))
    dC_dr = np.empty((P, W))
    margins = np.empty((P, 3))
    # Blocks of problems share one scratch space (allocating it per problem costs as much
    # as the differentiation of a small one).
    blocks = (P + GRID_BLOCK - 1) // GRID_BLOCK
    for b in prange(blocks):
        scratch = np.empty((9, W))
        place = np.empty(W, dtype=np.int8)
        linear = np.empty(W, dtype=np.bool_)
        for p in range(b * GRID_BLOCK, min(P, (b + 1) * GRID_BLOCK)):
            m = n[p]
            lam[p], loss[p] = _solve_one(v[p, :m], K[p : p + 1], d[p], atol, C[p, :m], counts[p])
            lam_dd[p] = _differentiate_one(C[p, :m], v[p, :m], K[p : p + 1], r[p], d[p], lam[p], atol,
                                           counts[p, 0], counts[p, 1], dC_dd[p, :m], dC_dK[p, :m],
                                           dC_dr[p, :m], margins[p], scratch, place, linear)
            dC_dd[p, m:] = np.nan
            dC_dK[p, m:] = np.nan
            dC_dr[p, m:] = np.nan
    return C, lam, loss, counts, lam_dd, dC_dd, dC_dK, dC_dr, margins
