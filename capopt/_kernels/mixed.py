r"""The water-filled part of a mixed family, at a level and along a concave feature's window.

:mod:`capopt.solvers.structured` solves a family of convex, linear and concave curves by
water-filling the convex and linear ones (V) around each candidate set of concave ones
(U). These kernels serve it: :func:`response_totals` (V's total capacity and loss at a
level: a point of its value function), :func:`stationary_levels` and
:func:`pair_assembly` (where one concave feature shares the budget with V as a local
minimum, exactly), :func:`dominance_records` (which concave features no earlier one
dominates) and :func:`total_loss` (a compensated sum of losses). Private: the solver
validates once; ``tests/test_nonconvex.py`` checks the global method built on them against
exhaustive grids, vertex enumeration and planted optima.

Glossary: ``v``, ``K`` the curves V (``K`` of length 1 when shared), ``x``, ``k`` one
concave feature, ``mu`` level, ``lo``/``hi`` a stretch of levels, ``target`` the budget V
and the concave feature share, ``P``, ``E`` sums of response slopes and offsets, ``U`` the
concave features and ``order`` their ranking.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from . import quadratic
from .assembly import CLASS_TOL, exact_assembly
from .bracket import A_SUM, AT_HI, B_SUM, E_SUM, N_FULL, REF, fold, fold_affine, new_sums

__all__ = ["response_totals", "stationary_levels", "pair_assembly", "total_loss", "dominance_records"]


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
        c = quadratic.capacity(x, k, mu)
        total += c
        loss += quadratic.feature_loss(c, x, k)
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
        if quadratic.flat(xi, ki):
            continue
        zi = quadratic.ignore_level(xi, ki)
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
    lo = quadratic.ignore_level(x, k)
    hi = x if top >= 1.0 else quadratic.window_level(top, x, k)
    n_full = 0.0
    P = np.zeros(2)
    E = np.zeros(2)
    for i in range(v.size):
        xi = v[i]
        ki = K[0] if shared else K[i]
        if quadratic.flat(xi, ki):
            continue
        # The state just above lo.
        if xi > lo:
            n_full += 1.0
        elif ki > 3.0 and quadratic.ignore_level(xi, ki) > lo:
            _add(P, quadratic.response_slope(xi, ki))
            _add(E, quadratic.response_offset(ki))
    n = _window_events(v, K, lo, hi, np.empty(0), np.empty(0, np.int64))
    levels = np.empty(n)
    owner = np.empty(n, np.int64)
    _window_events(v, K, lo, hi, levels, owner)
    order = np.argsort(levels)
    found = np.empty((n + 1, 2))
    m = 0
    pj = quadratic.response_slope(x, k)
    start = lo
    e = 0
    while True:
        end = levels[order[e]] if e < n else hi
        a = P[0] + P[1] + pj
        b = n_full - (E[0] + E[1]) - quadratic.response_offset(k) - target
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
            term = quadratic.response_slope(xi, ki) if ki > 3.0 else 0.0
            if up:
                n_full -= 1.0
                if ki > 3.0:
                    _add(P, term)
                    _add(E, quadratic.response_offset(ki))
            else:
                _add(P, -term)
                _add(E, -quadratic.response_offset(ki))
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
    sums = new_sums(lo)
    live_v, live_K, _ = fold(v, K, lo, hi, sums)
    fold_affine(sums, x, k)
    # Linear steps at hi would belong to a total that falls across hi; here it rises.
    sums[AT_HI] = 0.0

    mu, corrections, ref_v, ref_K, Q = exact_assembly(
        v, K, target, lo, hi, sums, C, np.empty(0, np.int8), x, k
    )
    R = target - sums[N_FULL]
    E = sums[E_SUM]
    P = quadratic.folded_numerator(0.0, sums[A_SUM], sums[B_SUM], E, sums[REF])
    D = quadratic.numerator_gap(x, k, ref_v, ref_K)
    c = quadratic.shared_numerator(quadratic.level_numerator(x, k), D, R, E, Q) / ((k - 3.0) * P)
    exact = corrections == 0 and live_v.size == 0 and -CLASS_TOL <= c <= 1.0 + CLASS_TOL
    return min(max(c, 0.0), 1.0), mu, exact


@jit
def total_loss(v, K, C):
    r""":math:`\sum_i \ell_i(C_i)` of the quadratic model in one pass (``K`` one entry or N),
    each term as :func:`capopt._kernels.quadratic.feature_loss`, summed with compensation:
    the total is then good to a few roundings of itself, whatever N."""
    shared = K.size == 1
    acc = np.zeros(2)
    for i in range(v.size):
        _add(acc, quadratic.feature_loss(C[i], v[i], K[0] if shared else K[i]))
    return acc[0] + acc[1]


@jit
def _walk_records(v, K, U, order, first, last, step, full, out):
    """:func:`dominance_records` into ``out`` (when it has room); returns how many."""
    shared = K.size == 1
    n = 0
    guard = math.inf if full else -math.inf
    for r in range(first, last, step):
        j = U[order[r]]
        k = K[0] if shared else K[j]
        m = quadratic.full_multiplier(v[j], k) if full else quadratic.ignore_multiplier(v[j], k)
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
