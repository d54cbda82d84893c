r"""Water-filling: the exact allocation for families of convex and linear loss curves.

For convex (diminishing-returns) and linear curves the allocation problem is convex and its
KKT conditions are sufficient: every feature takes its *response* to one common multiplier
:math:`\lambda` (the capacity at which its marginal benefit falls to :math:`\lambda`), and
:math:`\lambda` is set so that the responses fill the budget. Water-filling finds that level.

Glossary: ``C`` capacity, ``lam`` multiplier, ``d`` budget, ``v`` importance, ``K`` kurtosis,
``s`` level :math:`\sqrt{2/\lambda}` of the quadratic model and ``t`` a multiple of it; per
feature ``a`` and ``b`` its ignore and full levels (:math:`C_i = 0` for :math:`t \le a_i`, 1
for :math:`t \ge b_i`), ``alpha`` and ``beta`` the slope and intercept of
:math:`C_i(t) = \alpha_i t - \beta_i` between them; ``S(t)`` the total capacity
:math:`\sum_i C_i(t)` at level t.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from ..curves import LossCurves, QuadraticCurves, Shape
from . import register
from .result import Solution

__all__ = ["waterfill"]

#: Problems with at least this many features take their first bracket from a sample.
SAMPLE_FROM = 1 << 15
#: Half-width of the sampled bracket, in standard deviations of the sampled total capacity.
SAMPLE_MARGIN = 4.0
#: Fixed seed of the sample: the result never depends on it, only the running time does.
SAMPLE_SEED = 0
_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
#: Breakpoint evaluations per selection round (features x pivots) once few features remain.
ROUND_WORK = 4096


@register(
    "waterfill",
    shapes={Shape.CONVEX, Shape.LINEAR},
    tol=1e-9,
    summary="exact water-filling for convex and linear curves (O(N) for the quadratic model)",
    auto_for=(Shape.CONVEX, Shape.LINEAR),
)
def waterfill(curves: LossCurves, budget: float) -> Solution:
    r"""Exact water-filling for a family of convex and linear loss curves.

    Solves

    .. math::

        \min_{C \in \mathbb{R}^N} \sum_i \ell_i(C_i)
        \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad \sum_i C_i \le d,

    when every :math:`\ell_i` is convex or linear (the caller, :func:`capopt.solve`, checks
    the family's shape).

    Parameters
    ----------
    curves : LossCurves
        Convex and linear curves, N of them. A :class:`~capopt.curves.QuadraticCurves`
        family is solved in closed form by selection; any other family by safeguarded root
        finding on its response :meth:`~capopt.curves.LossCurves.capacity_at`.
    budget : float
        :math:`d \ge 0`, validated by :func:`capopt.solve`.

    Returns
    -------
    Solution
        Capacities, the smallest valid multiplier :math:`\lambda`, and the number of
        selection rounds or root-finding steps as ``iterations``.

    Notes
    -----
    KKT conditions, sufficient here, with :math:`m_i = -\ell_i'`:

    .. math::

        0 < C_i < 1 \Rightarrow m_i(C_i) = \lambda, \quad
        C_i = 1 \Rightarrow m_i(1) \ge \lambda, \quad
        C_i = 0 \Rightarrow m_i(0) \le \lambda, \quad
        \lambda \ge 0, \quad \lambda (d - \textstyle\sum_i C_i) = 0 .

    So :math:`C_i = C_i(\lambda)`, the feature's response, and :math:`\sum_i C_i(\lambda)`
    is non-increasing in :math:`\lambda`. The returned :math:`\lambda` is the smallest with
    :math:`\sum_i C_i(\lambda) \le d` (the marginal value of the next dimension). Where that
    sum jumps past d (linear curves with equal marginals), the tied features take the rest
    of the budget in index order: the first ones get 1, at most one gets a fraction. Flat
    curves get 0. With :math:`d = 0`, :math:`\lambda = \max_i m_i(0)`; when the budget
    exceeds what the features can use, every useful feature gets 1 and :math:`\lambda = 0`.

    *Quadratic model.* In the level :math:`s = \sqrt{2/\lambda}` each response is affine
    between two breakpoints,

    .. math::

        C_i(s) = \operatorname{clip}\Big(\frac{(K_i - 1) v_i s - 2}{K_i - 3}, 0, 1\Big),
        \qquad a_i = \frac{2}{(K_i - 1) v_i}, \quad b_i = \frac{1}{v_i},

    a step at :math:`b_i` for :math:`K_i = 3`, so :math:`S(s)` is piecewise linear with at
    most 2N breakpoints. The segment holding :math:`S(s) = d` is found by selection, not by
    sorting: each round takes the median of the breakpoints left inside the bracket
    (``np.partition``), evaluates S there and keeps the half that holds the solution; a
    feature with no breakpoint left inside the bracket is folded into constants (a count
    :math:`n_1` of saturated features and the summed slope and intercept of affine ones),
    so a round costs time proportional to the breakpoints still inside, and the rounds
    cost O(N) in all. Once few features are left, a round evaluates S at several evenly
    ranked breakpoints at once (:data:`ROUND_WORK` evaluations), which saves rounds, not
    work. For N of at least :data:`SAMPLE_FROM` features, the first bracket comes from the
    same selection run on a random sample of :math:`N^{2/3}` features, widened by
    :data:`SAMPLE_MARGIN` standard deviations and checked against the full problem; a
    bracket that fails the check is replaced, so the sample affects only the time. The
    last segment is solved in closed form, :math:`s = (d - n_1 + \sum \beta_i) / \sum
    \alpha_i` over its affine features. Nothing is iterated to a tolerance: the answer is
    exact up to rounding. O(N) time and memory, no Python loop over features; with one
    kurtosis for all features the breakpoints are never materialised over all of them,
    and the whole solve costs a few passes over the importances (about 1.6 times a
    ``np.sort`` of them at :math:`N = 10^6`).

    *Other families.* :math:`\lambda` is bracketed in :math:`[0, \max_i m_i(0)]`, where
    the response sum is non-increasing, and located by Brent's method
    (:func:`scipy.optimize.brentq`: bracketing, hence safe on the steps of linear curves)
    to a few ulps; the bracket is then shrunk to adjacent floats by bisecting their bit
    patterns. Features whose response differs between the two ends (ties of linear curves)
    share the rest of the budget in index order. Each step costs one call of
    ``capacity_at``: O(N) for a closed form, O(60 N) for the default bisection; some 15 to
    100 steps.

    References
    ----------
    A. Scherlis, K. Sachan, A. S. Jermyn, J. Benton, B. Shlegeris, "Polysemanticity and
    Capacity in Neural Networks", arXiv:2210.01892 (2022).

    Examples
    --------
    The worked case of theory §3: two features of importances 2 and 1 on one neuron.

    >>> from capopt.curves import quadratic
    >>> solution = waterfill(quadratic([2.0, 1.0], 7.0), 1.0)
    >>> solution.capacities.round(12)
    array([0.83333333, 0.16666667])

    The generic minimiser agrees:

    >>> from scipy.optimize import minimize
    >>> curves = quadratic([2.0, 1.0], 7.0)
    >>> reference = minimize(lambda C: curves.total_loss(C), [0.5, 0.5], bounds=[(0, 1)] * 2,
    ...                      constraints={"type": "ineq", "fun": lambda C: 1 - C.sum()})
    >>> bool(abs(reference.fun - curves.total_loss(solution.capacities)) < 1e-8)
    True
    """
    d = float(budget)
    n = curves.n_features
    if d == 0.0:
        # Every feature sits at 0, which KKT allows from lam = max_i m_i(0) on.
        return Solution(np.zeros(n), float(np.max(curves.marginal(np.zeros(n)), initial=0.0)))
    if isinstance(curves, QuadraticCurves):
        return _quadratic(curves, d)
    return _by_root_finding(curves, d)


def _fill_in_order(room: np.ndarray, amount: float) -> np.ndarray:
    """Share ``amount`` among features in index order, each taking up to its ``room``."""
    before = np.cumsum(room) - room
    return np.clip(amount - before, 0.0, room)


# Quadratic model: exact selection on the level s --------------------------------------------
#
# A problem is the tuple (alpha, beta, a, b) over its features, C_i(t) = clip(alpha_i t -
# beta_i, 0, 1) with breakpoints a_i < b_i (a_i = b_i for a linear step) in a level t
# proportional to s. When every feature is convex with one shared kurtosis, t = s (K - 1) /
# (K - 3), alpha = v itself, beta is one float and a, b are None: they are implied,
# a = beta / alpha and b = (1 + beta) / alpha, and never materialised over all features.


def _quadratic(curves: QuadraticCurves, d: float) -> Solution:
    """Exact water-filling for the quadratic model (see :func:`waterfill`, Notes)."""
    v, K = curves.importance, curves.kurtosis
    problem, unit, jumps, n_useful = _segments(v, K)
    if n_useful <= d:
        # Room for every feature that can use capacity: lam = 0 is KKT-valid.
        return Solution(((v > 0) & (K != 1)).astype(np.float64), 0.0)
    t, rounds = _level(problem, d, jumps)
    alpha, beta, _, b = problem
    C = alpha * t
    C -= beta
    np.clip(C, 0.0, 1.0, out=C)
    if jumps.size:
        steps = b[jumps]
        C[jumps] = steps < t
        # Linear features whose step sits exactly at t share what is left, in index order.
        tied = jumps[steps == t]
        if tied.size:
            C[tied] = _fill_in_order(np.ones(tied.size), d - C.sum())
    s = t / unit
    return Solution(C, float(2.0 / (s * s)), iterations=rounds)


def _segments(v: np.ndarray, K: np.ndarray):
    r"""The problem tuple of every feature's response (see the comment above).

    Returns
    -------
    problem : tuple (alpha, beta, a, b)
        :math:`C_i = \alpha_i t - \beta_i` between the breakpoints: the coefficients of
        :func:`capopt._formulas.quadratic_level_capacity`, and the ignore and full levels
        :func:`~capopt._formulas.quadratic_ignore_level`,
        :func:`~capopt._formulas.quadratic_full_level`. A linear feature has
        :math:`\alpha = \beta = 0` and :math:`a = b = 1/v` (its step); a flat one
        (:math:`v \le 0` or :math:`K = 1`) has :math:`\alpha = \beta = 0` and
        :math:`a = b = \infty`, so it never counts.
    unit : float
        :math:`t = \text{unit} \cdot s`.
    jumps : ndarray of int
        Indices of the linear features, in increasing order.
    n_useful : int
        Number of features that are not flat.
    """
    none = np.empty(0, np.intp)
    k = K[0]
    if k > 3 and np.all(v > 0) and np.all(K == k):
        unit = (k - 1.0) / (k - 3.0)
        return (v, 2.0 / (k - 3.0), None, None), unit, none, v.size
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = 2.0 / (K - 3.0)
        alpha = v * (K - 1.0) / (K - 3.0)
        b = 1.0 / v
        a = b * (2.0 / (K - 1.0))
    flat = np.flatnonzero((v <= 0) | (K == 1))
    jumps = np.flatnonzero((K == 3) & (v > 0))
    for idx in (flat, jumps):
        alpha[idx] = 0.0
        beta[idx] = 0.0
    a[flat] = b[flat] = np.inf
    a[jumps] = b[jumps]
    return (alpha, beta, a, b), 1.0, jumps, v.size - flat.size


def _column(x):
    """``x`` (a scalar or one value per feature) shaped to broadcast against (features, pivots)."""
    return np.reshape(x, (-1, 1))


def _total_capacity(alpha, beta, a, b, t) -> np.ndarray:
    """S at each level in ``t`` over the given features (materialised breakpoints)."""
    t = np.atleast_1d(t)
    C = np.multiply.outer(alpha, t)
    C -= _column(beta)
    np.clip(C, 0.0, 1.0, out=C)
    # Exact at the breakpoints themselves, where the affine formula is only close to 0 or 1;
    # a linear step counts 0 at its own level (the smallest minimiser).
    C[_column(b) < t] = 1.0
    C[_column(a) >= t] = 0.0
    return C.sum(axis=0)


def _fold(alpha, beta, a, b, lo: float, hi: float):
    """Split features by the open bracket (lo, hi) of levels.

    Returns the number saturated throughout (C = 1), the summed slope and intercept of
    those affine throughout, and the indices of the rest that still have a breakpoint
    strictly inside (those at 0 throughout are dropped).
    """
    if a is None:
        # Implied breakpoints fall as alpha grows: compare alpha with the bracket's images
        # instead of materialising a and b over all features.
        with np.errstate(divide="ignore"):
            lo_full, lo_zero, hi_full, hi_zero = np.divide(
                [1.0 + beta, beta, 1.0 + beta, beta], [lo, lo, hi, hi]
            )
        full = alpha >= lo_full
        affine = (alpha >= lo_zero) & (alpha <= hi_full)
        live = alpha > hi_zero
    else:
        full = b <= lo
        affine = (a <= lo) & (b >= hi)
        live = a < hi
    live &= ~(full | affine)
    # einsum, not dot: a masked sum needs no BLAS, whose threads only add start-up cost.
    slope = float(np.einsum("i,i->", alpha, affine))
    intercept = (
        float(np.einsum("i,i->", beta, affine)) if np.ndim(beta) else beta * np.count_nonzero(affine)
    )
    return np.count_nonzero(full), slope, intercept, np.flatnonzero(live)


def _take(problem, idx):
    """The sub-problem of features ``idx``, with its breakpoints materialised."""
    alpha, beta, a, b = problem
    alpha = alpha[idx]
    beta = beta[idx] if np.ndim(beta) else beta
    if a is None:
        return alpha, beta, beta / alpha, (1.0 + beta) / alpha
    return alpha, beta, a[idx], b[idx]


def _level(problem, d: float, jumps: np.ndarray):
    """Largest level t with S(t) <= d (so the smallest lam), and the rounds it took.

    Needs 0 < d < (number of useful features), so that S(0) = 0 <= d < S(inf).
    """
    if problem[0].size < SAMPLE_FROM:
        n_full, slope, intercept, live = _fold(*problem, 0.0, np.inf)
        return _select(_take(problem, live), d, 0.0, np.inf, n_full, slope, intercept)
    p, q = _sampled_bracket(problem, d)
    n_full, slope, intercept, live = _fold(*problem, p, q)
    inside = _take(problem, live)
    # S at both ends from the fold; at its own level a linear step counts 0, though the
    # fold counted it as saturated. S(0) = 0 and S(inf) = N_useful > d need no evaluation.
    s_p = 0.0
    if p > 0:
        at_p = np.count_nonzero(problem[3][jumps] == p) if jumps.size else 0
        s_p = n_full - at_p + slope * p - intercept + _total_capacity(*inside, p)[0]
    s_q = np.inf
    if q < np.inf:
        s_q = n_full + slope * q - intercept + _total_capacity(*inside, q)[0]
    lo, hi = p, q
    if not s_p <= d < s_q:
        # The sample misled (rare): start again from the side that holds the solution.
        lo, hi = (0.0, p) if s_p > d else (q, np.inf)
        n_full, slope, intercept, live = _fold(*problem, lo, hi)
        inside = _take(problem, live)
    t, rounds = _select(inside, d, lo, hi, n_full, slope, intercept)
    return t, rounds + 1


def _sampled_bracket(problem, d: float):
    """Levels (p, q) that bracket the solution with high probability, from a sample.

    The sampled total capacity estimates S(t) with a standard deviation of at most
    sqrt(m)/2 in sample units (each response lies in [0, 1]); the bracket is the sample's
    own solution for the budget moved down and up by :data:`SAMPLE_MARGIN` of them.
    """
    n = problem[0].size
    m = int(n ** (2.0 / 3.0))
    sample = _take(problem, np.random.default_rng(SAMPLE_SEED).integers(0, n, m))
    n_full, slope, intercept, live = _fold(*sample, 0.0, np.inf)
    start = (_take(sample, live), 0.0, np.inf, n_full, slope, intercept)
    margin = SAMPLE_MARGIN * 0.5 * np.sqrt(m)
    target = d * m / n
    p = _select(start[0], target - margin, *start[1:])[0] if target > margin else 0.0
    useful = live.size + n_full
    q = _select(start[0], target + margin, *start[1:])[0] if target + margin < useful else np.inf
    return p, q


def _select(problem, d: float, lo: float, hi: float, n_full: int, slope: float, intercept: float):
    """Shrink the bracket (lo, hi), S(lo) <= d < S(hi), by order statistics; solve the segment.

    ``problem`` holds the features with a breakpoint inside; the others are summarised by
    ``n_full`` saturated features and the ``slope`` and ``intercept`` of the affine ones.
    A round evaluates S at the median of the breakpoints inside, or, once few features are
    left, at as many evenly ranked breakpoints as :data:`ROUND_WORK` allows (all of them at
    the end), which saves rounds without changing the O(N) total.
    """
    rounds = 0
    while problem[0].size:
        breaks = np.concatenate(problem[2:])
        breaks = breaks[(breaks > lo) & (breaks < hi)]
        m = breaks.size
        count = min(m, max(1, ROUND_WORK // problem[0].size))
        ranks = np.arange(1, count + 1) * m // (count + 1) if count < m else np.arange(m)
        pivots = np.partition(breaks, ranks)[ranks]
        below = n_full + slope * pivots - intercept + _total_capacity(*problem, pivots) <= d
        # S is non-decreasing: the pivots with S <= d come first.
        j = count if below.all() else int(np.argmin(below))
        lo = float(pivots[j - 1]) if j else lo
        hi = float(pivots[j]) if j < count else hi
        more_full, more_slope, more_intercept, live = _fold(*problem, lo, hi)
        n_full += more_full
        slope += more_slope
        intercept += more_intercept
        problem = _take(problem, live)
        rounds += 1
    # No breakpoint inside: S(t) = n_full + slope t - intercept on (lo, hi).
    if slope > 0:
        return min(max((d - n_full + intercept) / slope, lo), hi), rounds
    # Constant on the bracket: at d or below, the level can rise to hi (smaller lam);
    # above d, the budget is used up by a step at lo.
    return (hi if n_full <= d else lo), rounds


# Any convex/linear family: safeguarded root finding on lam --------------------------------


def _by_root_finding(curves: LossCurves, d: float) -> Solution:
    """Water-filling by bracketing lam to adjacent floats (see :func:`waterfill`, Notes)."""
    n = curves.n_features
    if float(np.sum(curves.capacity_at(0.0))) <= d:
        return Solution(curves.capacity_at(0.0), 0.0)
    top = float(np.max(curves.marginal(np.zeros(n))))

    def excess(lam):
        return float(np.sum(curves.capacity_at(lam))) - d

    lo, hi, steps = _adjacent_bracket(excess, 0.0, top)
    lower = curves.capacity_at(hi)
    # Between the adjacent floats lo < hi only steps (linear ties) move by more than
    # rounding; the features that move share the rest of the budget in index order.
    room = np.maximum(curves.capacity_at(lo) - lower, 0.0)
    C = lower + _fill_in_order(room, d - float(np.sum(lower)))
    return Solution(C, hi, iterations=steps)


def _float_midpoint(lo: float, hi: float) -> float:
    """Midpoint of two non-negative floats in their bit patterns (halves the floats between)."""
    i = int(np.float64(lo).view(np.int64))
    j = int(np.float64(hi).view(np.int64))
    return float(np.int64((i + j) // 2).view(np.float64))


def _adjacent_bracket(excess, lo: float, hi: float):
    """Adjacent floats lo < hi with excess(lo) > 0 >= excess(hi), for a non-increasing excess.

    Brent's method (:func:`scipy.optimize.brentq`, bracketing, so safe on the steps of
    linear curves) locates the sign change to a few ulps; the bracket is then widened
    around it by doubling steps until its ends have the right signs, and bisected on the
    floats' bit patterns down to adjacent floats.
    """
    root, info = brentq(excess, lo, hi, xtol=_TINY, rtol=4 * _EPS, full_output=True, disp=False)
    steps = info.function_calls + 1
    step = max(abs(root) * _EPS, _TINY)
    a = b = root
    if excess(root) > 0:
        while True:
            b = min(b + step, hi)
            steps, step = steps + 1, 2 * step
            if b == hi or excess(b) <= 0:
                break
    else:
        while True:
            a = max(a - step, lo)
            steps, step = steps + 1, 2 * step
            if a == lo or excess(a) > 0:
                break
    while np.nextafter(a, np.inf) < b:
        mid = _float_midpoint(a, b)
        steps += 1
        if excess(mid) > 0:
            a = mid
        else:
            b = mid
    return a, b, steps
