r"""Features against a bracket of levels: their classes, and the sums the rest fold into.

Water-filling (:mod:`capopt._kernels.waterfill`) narrows a bracket :math:`(lo, hi)` of levels
around the level sought. On an open bracket each feature is full (C = 1 throughout, its full
level :math:`v \ge hi`), affine (a convex response throughout: :math:`v \le lo` and its
ignore level :math:`z \ge hi`), live (a breakpoint strictly inside) or nothing (C = 0
throughout; flat curves among them). Features without a breakpoint inside are folded into
``sums``, so that each round only looks at the live ones:

* ``sums[N_FULL]`` saturated features, ``sums[AT_HI]`` of them linear steps sitting at hi;
* for the affine ones :math:`A = \sum v`, :math:`B = \sum (v - ref)\,e`, :math:`E = \sum e`
  with :math:`e = 2 / (K - 3)` the response's offset and ``ref = sums[REF]`` the reference
  level, so that their total at a level mu of the bracket is
  :math:`(A + B - (\mu - ref) E) / \mu`, :func:`capopt._formulas.quadratic_folded_numerator`
  over mu. Every term is bounded by its own v: a feature affine throughout the bracket has
  :math:`|\mu - ref| \le z - v = \epsilon v / 2` (``derivations/waterfilling.py``).

Glossary: ``v``, ``K`` the features (``K`` of length 1 when shared), ``x``, ``k`` one of them,
``lo``/``hi`` the bracket, ``mu`` a level in it, ``z`` an ignore level, ``e`` an offset
2 / (K - 3).
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from . import quadratic

__all__ = [
    "N_FULL", "A_SUM", "B_SUM", "E_SUM", "REF", "AT_HI", "new_sums", "on_bracket", "total", "fold",
    "fold_affine", "folded_total", "breakpoints", "narrow", "sums_of",
]

#: Slots of ``sums`` (module docstring).
N_FULL, A_SUM, B_SUM, E_SUM, REF, AT_HI = range(6)


@jit
def new_sums(ref):
    """Empty sums about the reference level ``ref``."""
    sums = np.zeros(6)
    sums[REF] = ref
    return sums


@jit
def on_bracket(x, k, lo, hi):
    """How one feature sits on the open bracket (lo, hi) of levels, without branches.

    Returns (useful, full, affine, live): useful unless flat; full (C = 1 throughout)
    when v >= hi; affine (a convex response throughout) when v <= lo and z >= hi; live
    when a breakpoint lies strictly inside. A linear feature has z = v exactly, so the
    same tests serve its single breakpoint.
    """
    useful = not quadratic.flat(x, k)
    z = quadratic.ignore_level(x, k)
    full = useful & (x >= hi)
    affine = useful & (k > 3.0) & (x <= lo) & (z >= hi)
    live = useful & (x < hi) & (z > lo) & ((x > lo) | (z < hi))
    return useful, full, affine, live


@jit
def total(v, K, mu):
    """S(mu) over the features of (v, K), each response exact."""
    shared = K.size == 1
    s = 0.0
    for i in range(v.size):
        s += quadratic.capacity(v[i], K[0] if shared else K[i], mu)
    return s


@jit
def fold(v, K, lo, hi, sums):
    """Fold the features without a breakpoint in (lo, hi) into ``sums`` (REF = lo).

    Returns the live features as compact arrays (v, K) and the number of useful
    features. One pass with no data-dependent branch: every feature is written to the
    live buffer and only a live one advances its end. A buffer too small for the live
    features (a wide bracket) is followed by a second pass that gathers them.
    """
    shared = K.size == 1
    k0 = K[0] if K.size else 3.0  # no feature: any value, never read
    shared_offset = quadratic.response_offset(k0) if k0 > 3.0 else 0.0
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
        useful, full, affine, live = on_bracket(x, k, lo, hi)
        e = (shared_offset if shared else quadratic.response_offset(k)) if affine else 0.0
        n_useful += useful
        at = min(n_live, room)
        live_v[at] = x
        if not shared:
            live_K[at] = k
        n_live += live
        n_full += 1.0 if full else 0.0
        at_hi += 1.0 if full & (k == 3.0) & (x == hi) else 0.0
        A += x if affine else 0.0
        B += (x - lo) * e
        E += e
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
            m += on_bracket(v[i], k, lo, hi)[3]
    return live_v[:n_live], live_K[: n_live if not shared else 1], n_useful


@jit
def fold_affine(sums, x, k):
    """Fold one feature that is affine on the bracket into ``sums``, about sums[REF]."""
    e = quadratic.response_offset(k)
    sums[A_SUM] += x
    sums[B_SUM] += (x - sums[REF]) * e
    sums[E_SUM] += e


@jit
def folded_total(sums, mu):
    """The folded features' total capacity at the level mu of the bracket."""
    if sums[E_SUM] == 0.0:
        return sums[N_FULL]
    numerator = quadratic.folded_numerator(mu, sums[A_SUM], sums[B_SUM], sums[E_SUM], sums[REF])
    return sums[N_FULL] + numerator / mu


@jit
def breakpoints(v, K, lo, hi):
    """Breakpoints v_i and z_i strictly inside (lo, hi), one slot per candidate."""
    shared = K.size == 1
    out = np.empty(2 * v.size + 1)
    n = 0
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        z = quadratic.ignore_level(x, k)
        out[n] = x
        n += (lo < x) & (x < hi)
        out[n] = z
        n += (k != 3.0) & (lo < z) & (z < hi)
    return out[:n]


@jit
def narrow(v, K, new_lo, new_hi, old_hi, sums):
    """Shrink the bracket to (new_lo, new_hi): refer B to new_lo and fold what left it."""
    sums[B_SUM] -= (new_lo - sums[REF]) * sums[E_SUM]
    sums[REF] = new_lo
    if new_hi < old_hi:
        # The steps counted at the old hi now lie above the bracket.
        sums[AT_HI] = 0.0
    return fold(v, K, new_lo, new_hi, sums)


@jit
def sums_of(v, K, lo, hi, state):
    """The fold's sums for the bracket with the classes in ``state`` (the slow path)."""
    sums = new_sums(lo)
    shared = K.size == 1
    for i in range(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        useful = not quadratic.flat(x, k)
        if state[i] == 1 and useful:
            sums[N_FULL] += 1.0
            sums[AT_HI] += 1.0 if (k == 3.0) & (x == hi) else 0.0
        elif state[i] == 2 and useful and k > 3.0:
            fold_affine(sums, x, k)
    return sums
