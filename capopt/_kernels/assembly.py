r"""The exact answer of water-filling inside a final bracket of levels.

Inside the final bracket :math:`(lo, hi)`, which no breakpoint crosses, the affine features
F, the :math:`n_1` saturated ones and :math:`R = d - n_1` give

.. math:: \frac{1}{\mu^*} = \frac{R + E}{P}, \qquad
          C_i = \frac{p_i R + D_i E - 2 Q}{\epsilon_i P},

with :math:`P = \sum_F p_k/\epsilon_k`, :math:`E = \sum_F 2/\epsilon_k`,
:math:`D_k = p_k - 2\,lo = 2 (v_k - lo) + \epsilon_k v_k` and :math:`Q = \sum_F D_k/\epsilon_k`
(``derivations/waterfilling.py`` derives them; :mod:`capopt._formulas` evaluates them).
This is :math:`C_i(\mu^*)` rearranged so that nothing cancels: :math:`v_k - lo` is exact
(the two are within a factor 2), :math:`|D_k| \le \epsilon_k v_k`, and the capacities sum to
R by construction -- even for kurtoses a few ulps from 3, where :math:`C_i(\mu)` evaluated
at a rounded :math:`\mu^*` would be off by :math:`\epsilon_{\text{mach}}/\epsilon_i`. Every
feature's class is checked against the answer and counted as a correction if a rounded
breakpoint misplaced it (:func:`capopt._kernels.waterfill.waterfill_quadratic` then
corrects the classes). :func:`capopt._kernels.mixed.pair_assembly` assembles a concave
feature with the affine ones the same way: the algebra holds for either sign of eps.

Glossary: ``v``, ``K`` the features (``K`` of length 1 when shared), ``d`` the budget,
``lo``/``hi`` the bracket, ``sums`` the folded sums of :mod:`capopt._kernels.bracket`,
``mu`` the level, ``eps`` K - 3, ``p`` the level numerator (K - 1) v, ``D`` its gap to the
reference numerator of (``ref_v``, ``ref_K``): the level lo is the reference
(lo, 3), whose numerator is 2 lo.
"""

from __future__ import annotations

from .._jit import jit
from . import quadratic
from .bracket import A_SUM, AT_HI, B_SUM, E_SUM, N_FULL, REF, on_bracket

__all__ = ["CLASS_TOL", "LEVEL_RTOL", "SUM_RTOL", "exact_assembly"]

#: A capacity this far outside the range its class allows means the class was misread
#: from a rounded breakpoint; closer, the clipped value is the answer to rounding.
CLASS_TOL = 1e-12
EPS = 2.0**-52
#: Relative rounding of the level P / (R + E): a few operations on positive sums.
LEVEL_RTOL = 16 * EPS
#: The capacities must sum to the budget left to them, R, to this relative accuracy.
SUM_RTOL = 1e-12


@jit
def _most_linear(v, K, lo, hi, state, x_extra, K_extra):
    """Importance and kurtosis of the affine feature with the smallest |K - 3| (the extra
    feature included when K_extra is not 3)."""
    shared = K.size == 1
    best_v, best_K = x_extra, K_extra
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        useful, full, affine, live = on_bracket(x, k, lo, hi)
        c = state[i] if state.size else 2 if affine else 0
        if (c == 2) & useful & (k > 3.0) and (best_K == 3.0 or k - 3.0 < abs(best_K - 3.0)):
            best_v, best_K = x, k
    return best_v, best_K


@jit
def _reference_sum(v, K, lo, hi, state, ref_v, ref_K):
    """Q = sum over the affine class of D / eps, D = p - p_ref (see _assemble): one pass."""
    shared = K.size == 1
    Q = 0.0
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        useful, full, affine, live = on_bracket(x, k, lo, hi)
        c = state[i] if state.size else 2 if affine else 0
        D = quadratic.numerator_gap(x, k, ref_v, ref_K)
        Q += D / (k - 3.0) if (c == 2) & useful & (k > 3.0) else 0.0
    return Q


@jit
def _assemble(v, K, d, lo, hi, sums, C, state, ref_v, ref_K, Q):
    r"""Write the exact capacities for the classes in ``sums``; return (mu, corrections, error).

    The level is hi when the linear steps sitting at hi must share the budget (the total
    just below hi exceeds d), else the root P / (R + E) of the affine total (module docstring),
    with :math:`D_i = p_i - p_{ref} = 2 (v_i - v_{ref}) + (\epsilon_i v_i - \epsilon_{ref}
    v_{ref})` and Q = sum D_k / eps_k: the module docstring's reference 2 lo is ``ref_v = lo``,
    ``ref_K = 3``; a feature of the affine class as the reference makes D vanish exactly
    for it and for every identical one. ``error`` bounds the rounding of the capacities'
    sum. A correction is a feature whose class disagrees with the answer, possible only
    within rounding of a breakpoint; the corrected classes are written to ``state`` when
    the classes came from it (the caller's slow path), else the classes are the bracket's.
    """
    A, B, E, ref = sums[A_SUM], sums[B_SUM], sums[E_SUM], sums[REF]
    affine_at_hi = quadratic.folded_numerator(hi, A, B, E, ref) / hi if E > 0.0 else 0.0
    below_hi = sums[N_FULL] + affine_at_hi
    tie = sums[AT_HI] > 0.0 and below_hi > d
    R = d - sums[N_FULL]
    P = quadratic.folded_numerator(0.0, A, B, E, ref)
    corrections = 0
    if tie:
        mu = hi
    elif E > 0.0:
        mu = quadratic.shared_level(R, E, P)
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
        useful, full, affine, live = on_bracket(x, k, lo, hi)
        c = state[i] if from_state else 1 if full else 2 if affine else 0
        convex = useful & (k > 3.0)
        if tie:
            value = quadratic.capacity(x, k, hi)
        else:
            D = quadratic.numerator_gap(x, k, ref_v, ref_K)
            scale = shared_scale if shared else 1.0 / ((k - 3.0) * P)
            p = quadratic.level_numerator(x, k)
            value = quadratic.shared_numerator(p, D, R, E, Q) * scale
            # The sum of the numerator's terms' sizes bounds its rounding.
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
            k = K[0] if shared else K[i]
            if v[i] == hi and k == 3.0:
                C[i] = min(max(left, 0.0), 1.0)
                left -= C[i]
    return mu, corrections, 4.0 * EPS * error


@jit
def exact_assembly(v, K, d, lo, hi, sums, C, state, x_extra, K_extra):
    """Assemble with D referred to the level lo; if that leaves the budget's sum inexact
    (a budget small against the affine features' scale), again with the most nearly linear
    affine feature as the reference, against which the differences D are smallest.

    Returns (mu, corrections, ref_v, ref_K, Q): the reference and the sum Q the
    capacities were written with, so that a caller can evaluate one more affine feature
    alike. That feature (importance ``x_extra``, kurtosis ``K_extra``, 3 for none) is in
    ``sums`` but not in (v, K).
    """
    Q = quadratic.folded_numerator(lo, sums[A_SUM], sums[B_SUM], sums[E_SUM], sums[REF])
    ref_v, ref_K = lo, 3.0
    mu, corrections, error = _assemble(v, K, d, lo, hi, sums, C, state, ref_v, ref_K, Q)
    R = d - sums[N_FULL]
    if corrections == 0 and error > SUM_RTOL * abs(R):
        ref_v, ref_K = _most_linear(v, K, lo, hi, state, x_extra, K_extra)
        Q = _reference_sum(v, K, lo, hi, state, ref_v, ref_K)
        if K_extra != 3.0:
            Q += quadratic.numerator_gap(x_extra, K_extra, ref_v, ref_K) / (K_extra - 3.0)
        mu, corrections, error = _assemble(v, K, d, lo, hi, sums, C, state, ref_v, ref_K, Q)
    return mu, corrections, ref_v, ref_K, Q
