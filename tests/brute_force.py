r"""Brute-force optima of small capacity-allocation problems, independent of capopt.

The test suite uses this module to check that no allocation capopt marks OPTIMAL is beaten.
It imports nothing from capopt and shares none of its formulas' code: it works from the
definitions of SPEC §2 and §3 alone, so a mistake in capopt cannot be copied into it.

The problem, for N features with loss curves :math:`\ell_i` on [0, 1] and budget d >= 0:

.. math::

    \min_{C} \sum_i \ell_i(C_i) \quad \text{subject to} \quad
    0 \le C_i \le 1, \qquad \sum_i C_i \le d.

Three families of curves are supported:

- the quadratic model (SPEC §3), importance :math:`v_i` and kurtosis :math:`K_i \ge 1`,

  .. math::

      \ell_i(C) = \frac{2 (K_i - 1) v_i^2 (1 - C)}{2 + (K_i - 3) C},

  convex for K > 3, linear at K = 3, concave for K < 3; a feature with :math:`v_i \le 0`
  or :math:`K_i = 1` is *flat*: its loss :math:`(K_i - 1) v_i^2` does not depend on C;
- the linear autoencoder, :math:`\ell_i(C) = I_i (1 - C)` with :math:`I_i \ge 0`;
- tabulated curves: linear interpolation of ``values[i, k]`` :math:`= \ell_i(x_k)` on a grid
  :math:`0 = x_0 < \dots < x_{M-1} = 1` shared by all features, of any shape.

Exactness
---------
Nothing is sampled and nothing is computed in floating point. Every input float is converted
exactly to a :class:`fractions.Fraction`; candidates, their feasibility and their losses are
exact rationals (every quantity below is a rational function of the inputs). Only the returned
numbers are rounded, once each, to ``DIGITS`` significant digits as :class:`mpmath.mpf`; this
holds for importances anywhere in the float64 range and kurtosis within one ulp of 1 or 3. Each
optimum is the least loss over a finite set of exactly feasible candidates that provably
contains a global minimiser. Ties are broken towards the smaller total capacity, then towards
the first candidate enumerated.

*Quadratic model.* The feasible set is compact and the objective continuous, so a global
minimiser exists. A flat feature's loss does not depend on its capacity, so moving it to 0
keeps a minimiser a minimiser: flat features are fixed at 0. Every other ("useful") feature
has :math:`v_i > 0`, :math:`K_i > 1`, a denominator :math:`2 (1 - C) + (K_i - 1) C > 0` on an
open interval containing [0, 1], and a strictly positive marginal value

.. math::

    m_i(C) = -\ell_i'(C) = \frac{2 (K_i - 1)^2 v_i^2}{(2 + (K_i - 3) C)^2}.

The constraints are linear, so KKT holds at every local minimiser: there is :math:`\lambda \ge 0`
with :math:`m_i(C_i) = \lambda` for every free feature (:math:`0 < C_i < 1`) and
:math:`\lambda (d - \sum_i C_i) = 0`. Enumerate the :math:`3^n` patterns that put each useful
feature at 0, at 1 or free (O: the set at 1, F: the free set, r = d - |O|):

- F empty: the candidate is the 0/1 vector, feasible iff |O| <= d.
- F non-empty: :math:`\lambda = m_i(C_i) > 0`, so the budget binds: :math:`\sum_F C_i = r`.
  Write :math:`\mu = \sqrt{\lambda / 2}`; :math:`m_i(C) = \lambda` reads
  :math:`(K_i - 1) v_i = \mu (2 + (K_i - 3) C)`.

  - A linear free feature (K = 3) has constant marginal :math:`2 v_i^2`, so it fixes
    :math:`\mu = v_i`. Two linear free features then have equal :math:`v`, hence equal
    constant slopes: moving capacity between them changes no loss, so it can be moved until
    one reaches 0 or 1 -- there is a global minimiser with at most one linear free feature,
    and patterns with two or more are skipped. With one, j: :math:`\mu = v_j`, each curved
    free feature's capacity follows from :math:`\mu` (below) and :math:`C_j` takes the rest
    of r.
  - Otherwise every free feature is curved (K != 3) and
    :math:`C_i(\mu) = ((K_i - 1) v_i / \mu - 2) / (K_i - 3) = a_i / \mu + b_i`, so the budget
    equation is :math:`A / \mu + B = r` with :math:`A = \sum_F a_i`, :math:`B = \sum_F b_i`.
    Its left side is monotone in :math:`\mu` whatever the mix of convex and concave
    features, so for :math:`A \ne 0` the only root is :math:`\mu = A / (r - B)` (none if
    :math:`r = B`). For :math:`A = 0 \ne B - r` there is no root; for :math:`A = 0 = B - r`
    every :math:`\mu` is one, and on the interval of :math:`\mu` where all
    :math:`C_i(\mu) \in [0, 1]` the total loss has derivative
    :math:`\sum_F \ell_i'(C_i) C_i'(\mu) = -2 \mu^2 \sum_F C_i'(\mu) = 0`. A global
    minimiser in such a continuum can thus slide, at constant loss, to the interval's end,
    where some free feature reaches 0 or 1: a global minimiser with fewer free features.
    Repeating ends with a pattern that has :math:`A \ne 0` (one free feature has
    :math:`A = a_i \ne 0`), so continuum patterns are skipped.

  A candidate whose capacities fall outside [0, 1] is discarded. Some global minimiser has a
  pattern that none of the reductions above skips, and for that pattern the KKT equations
  determine every capacity, so it is the enumerated candidate: the least candidate loss is
  the optimum. The pure vertices (all at 0 or 1 but one feature taking the remaining budget)
  are the patterns with one free feature.

*Tabulated curves.* Take a global minimiser :math:`C^*` and, for each feature, a grid piece
:math:`[x_{k_i}, x_{k_i + 1}] \ni C_i^*`. On the polytope
:math:`P = \prod_i [x_{k_i}, x_{k_i + 1}] \cap \{\sum_i C_i \le d\}` the objective is linear,
so its minimum over P -- which is the global minimum, as :math:`C^* \in P` -- is attained at a
vertex of P. A vertex has N linearly independent active constraints of which at most one is
the budget, so every coordinate but at most one is at a knot, and if one, j, is not, the
budget binds: :math:`C_j = d - \sum_{i \ne j} C_i`. Enumerating every knot combination with
sum <= d, and for each j every knot combination of the other features with
:math:`C_j = d - \sum_{i \ne j} C_i \in [0, 1]`, therefore reaches the optimum:
:math:`M^N + N M^{N-1}` candidates. Flat curves (all values equal) are fixed at 0 first, as
above. The linear autoencoder is the table on the grid (0, 1) with values :math:`(I_i, 0)`.

Glossary: ``v`` importance, ``K`` kurtosis (plain fourth moment, >= 1), ``I`` importance of the
linear autoencoder, ``C`` capacity, ``d`` budget, ``mu`` the level :math:`\sqrt{\lambda / 2}`,
``lam`` the KKT multiplier, ``r`` the budget left to the free features.
"""

from __future__ import annotations

import itertools
import numbers
from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np
from mpmath.libmp import from_rational, round_nearest, to_rational

#: Significant decimal digits of every returned :class:`mpmath.mpf` (each is the exact
#: rational answer rounded once to this precision).
DIGITS = 60
#: The largest N the optimum functions accept: the quadratic enumeration visits 3^N patterns.
MAX_FEATURES = 6
#: The most knot combinations M^N a table brute force may enumerate (N = 4 with M = 8).
MAX_KNOT_COMBINATIONS = 8**4


@dataclass(frozen=True)
class Optimum:
    """A global optimum of a small allocation problem.

    Attributes
    ----------
    loss : mpmath.mpf
        The optimal total loss, the exact value rounded to ``DIGITS`` digits.
    capacities : tuple of mpmath.mpf
        One optimal allocation (length N), each entry the exact value rounded to ``DIGITS``
        digits. Flat features are at 0.
    """

    loss: mpmath.mpf
    capacities: tuple[mpmath.mpf, ...]

    def __repr__(self):
        capacities = ", ".join(mpmath.nstr(c, 10) for c in self.capacities)
        return f"Optimum(loss={mpmath.nstr(self.loss, 10)}, capacities=({capacities}))"


def quadratic_loss(v, K, C):
    r"""The exact total loss of an allocation in the quadratic model.

    .. math::

        L(C) = \sum_i \ell_i(C_i), \qquad
        \ell_i(C) = \frac{2 (K_i - 1) v_i^2 (1 - C)}{2 + (K_i - 3) C}
        \quad (v_i > 0,\ K_i > 1), \qquad \ell_i(C) = (K_i - 1) v_i^2 \text{ otherwise}.

    Parameters
    ----------
    v : sequence of real, shape (N,)
        Importances, finite; :math:`v_i \le 0` makes feature i flat.
    K : real or sequence of real, shape (N,)
        Kurtosis, finite and >= 1; a scalar applies to every feature.
    C : sequence of real, shape (N,)
        Capacities in [0, 1] (floats, ints, Fractions or mpf, each converted exactly). The
        budget is not checked: see :func:`feasibility_violation`.

    Returns
    -------
    mpmath.mpf
        The exact loss rounded to ``DIGITS`` digits.
    """
    v, K = _quadratic_inputs(v, K)
    C = _capacities(C, len(v))
    return _to_mpf(sum(_quadratic_curve(*args) for args in zip(v, K, C)))


def quadratic_optimum(v, K, d):
    r"""The global optimum of the quadratic model by exhaustive KKT enumeration.

    .. math::

        \min_C \sum_i \frac{2 (K_i - 1) v_i^2 (1 - C_i)}{2 + (K_i - 3) C_i}
        \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad \sum_i C_i \le d.

    Parameters
    ----------
    v : sequence of real, shape (N,)
        Importances, finite, 1 <= N <= ``MAX_FEATURES``; :math:`v_i \le 0` makes feature i
        flat (it stays at C = 0).
    K : real or sequence of real, shape (N,)
        Kurtosis, finite and >= 1, any mix of shapes; a scalar applies to every feature.
    d : real
        Budget, finite and >= 0.

    Returns
    -------
    Optimum

    Raises
    ------
    ValueError
        For non-finite or out-of-range values, mismatched shapes, or N > ``MAX_FEATURES``.
    TypeError
        For entries that are not real numbers.

    Notes
    -----
    The candidate set and why it contains a global minimiser are derived in the module
    docstring. Every useful feature is at 0, at 1 or free: :math:`3^n` patterns, each giving
    at most one candidate in :math:`O(n)` exact rational operations.

    Examples
    --------
    The worked case of SPEC §3 (C = (5/6, 1/6), loss 21/4):

    >>> opt = quadratic_optimum([2.0, 1.0], 7.0, 1.0)
    >>> opt
    Optimum(loss=5.25, capacities=(0.8333333333, 0.1666666667))
    >>> opt.loss == mpmath.mpf(21) / 4
    True
    """
    v, K = _quadratic_inputs(v, K)
    _check_size(len(v))
    d = _budget(d)
    useful = [i for i in range(len(v)) if v[i] > 0 and K[i] > 1]
    candidates = (
        _quadratic_candidate(v, K, d, useful, pattern)
        for pattern in itertools.product(("zero", "one", "free"), repeat=len(useful))
    )
    return _best(
        (C, sum(_quadratic_curve(*args) for args in zip(v, K, C)))
        for C in candidates
        if C is not None
    )


def table_loss(grid, values, C):
    r"""The exact total loss of an allocation for tabulated piecewise-linear curves.

    .. math::

        L(C) = \sum_i \ell_i(C_i), \qquad
        \ell_i(C) = y_{ik} + (y_{i,k+1} - y_{ik}) \frac{C - x_k}{x_{k+1} - x_k}
        \quad \text{for } x_k \le C \le x_{k+1}.

    Parameters
    ----------
    grid : sequence of real, shape (M,)
        Knots :math:`0 = x_0 < \dots < x_{M-1} = 1`, M >= 2.
    values : array_like of real, shape (N, M)
        ``values[i, k]`` is :math:`\ell_i(x_k)`, finite.
    C : sequence of real, shape (N,)
        Capacities in [0, 1]. The budget is not checked: see :func:`feasibility_violation`.

    Returns
    -------
    mpmath.mpf
        The exact loss rounded to ``DIGITS`` digits.
    """
    x, y = _table_inputs(grid, values)
    C = _capacities(C, len(y))
    return _to_mpf(sum(_interpolate(x, row, c) for row, c in zip(y, C)))


def table_optimum(grid, values, d):
    r"""The global optimum for tabulated piecewise-linear curves by vertex enumeration.

    .. math::

        \min_C \sum_i \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad
        \sum_i C_i \le d,

    with :math:`\ell_i` the linear interpolation of ``values[i]`` on ``grid`` (any shape).

    Parameters
    ----------
    grid : sequence of real, shape (M,)
        Knots :math:`0 = x_0 < \dots < x_{M-1} = 1`, M >= 2.
    values : array_like of real, shape (N, M)
        ``values[i, k]`` is :math:`\ell_i(x_k)`, finite; 1 <= N <= ``MAX_FEATURES`` and
        :math:`M^N \le` ``MAX_KNOT_COMBINATIONS``.
    d : real
        Budget, finite and >= 0.

    Returns
    -------
    Optimum

    Raises
    ------
    ValueError
        For a grid that is not strictly increasing from 0 to 1, non-finite values,
        mismatched shapes, or a problem larger than the limits above.
    TypeError
        For entries that are not real numbers.

    Notes
    -----
    Every feature but at most one sits at a knot, and the one that does not takes exactly the
    budget left (module docstring): :math:`M^N + N M^{N-1}` candidates, each costing
    :math:`O(N \log M)` exact rational operations.

    Examples
    --------
    A narrow dip between knots 0.501 and 0.503 is found exactly:

    >>> table_optimum([0, 0.501, 0.502, 0.503, 1], [[1, 1, 0, 1, 1]], 0.6)
    Optimum(loss=0.0, capacities=(0.502))
    """
    x, y = _table_inputs(grid, values)
    _check_size(len(y))
    if len(x) ** len(y) > MAX_KNOT_COMBINATIONS:
        raise ValueError(
            f"a table brute force enumerates M**N knot combinations, at most "
            f"{MAX_KNOT_COMBINATIONS}; got M = {len(x)}, N = {len(y)}: use fewer knots or features"
        )
    return _best(
        (C, sum(_interpolate(x, row, c) for row, c in zip(y, C)))
        for C in _table_candidates(x, y, _budget(d))
    )


def linear_autoencoder_loss(I, C):
    r"""The exact total loss :math:`\sum_i I_i (1 - C_i)` of the linear autoencoder.

    Parameters
    ----------
    I : sequence of real, shape (N,)
        Importances, finite and >= 0.
    C : sequence of real, shape (N,)
        Capacities in [0, 1]. The budget is not checked: see :func:`feasibility_violation`.

    Returns
    -------
    mpmath.mpf
        The exact loss rounded to ``DIGITS`` digits.
    """
    return table_loss((0, 1), _linear_autoencoder_table(I), C)


def linear_autoencoder_optimum(I, d):
    r"""The global optimum of the linear autoencoder, :math:`\ell_i(C) = I_i (1 - C)`.

    .. math::

        \min_C \sum_i I_i (1 - C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad
        \sum_i C_i \le d.

    Parameters
    ----------
    I : sequence of real, shape (N,)
        Importances, finite and >= 0, 1 <= N <= ``MAX_FEATURES``.
    d : real
        Budget, finite and >= 0.

    Returns
    -------
    Optimum

    Notes
    -----
    Solved as the table on the grid (0, 1) with values :math:`(I_i, 0)` by
    :func:`table_optimum`: :math:`2^N + N 2^{N-1}` candidates.

    Examples
    --------
    >>> linear_autoencoder_optimum([1.0, 3.0, 2.0], 1.5)
    Optimum(loss=2.0, capacities=(0.0, 1.0, 0.5))
    """
    return table_optimum((0, 1), _linear_autoencoder_table(I), d)


def feasibility_violation(C, d):
    r"""How far an allocation is from the feasible set, exactly.

    .. math::

        \max\Bigl(0,\ \max_i (-C_i),\ \max_i (C_i - 1),\ \sum_i C_i - d\Bigr)

    Parameters
    ----------
    C : sequence of real, shape (N,)
        Capacities, finite.
    d : real
        Budget, finite and >= 0.

    Returns
    -------
    mpmath.mpf
        0 exactly iff C is feasible; otherwise the largest violation, rounded to ``DIGITS``
        digits.

    Examples
    --------
    >>> feasibility_violation([0.5, 0.5], 1)
    mpf('0.0')
    """
    C = [_exact("C", c) for c in _vector("C", C)]
    d = _budget(d)
    return _to_mpf(max([Fraction(0), sum(C) - d] + [-c for c in C] + [c - 1 for c in C]))


def _quadratic_curve(v, K, C):
    """l_i(C) exactly; flat (constant (K - 1) v^2) for v <= 0 or K = 1."""
    if v <= 0 or K == 1:
        return (K - 1) * v * v
    return 2 * (K - 1) * v * v * (1 - C) / (2 + (K - 3) * C)


def _quadratic_candidate(v, K, d, useful, pattern):
    """The candidate of one KKT pattern of the useful features, or None (module docstring)."""
    C = [Fraction(0)] * len(v)
    ones = [i for i, p in zip(useful, pattern) if p == "one"]
    free = [i for i, p in zip(useful, pattern) if p == "free"]
    for i in ones:
        C[i] = Fraction(1)
    if not free:
        return C if len(ones) <= d else None
    r = d - len(ones)
    linear = [i for i in free if K[i] == 3]
    curved = [i for i in free if K[i] != 3]
    if len(linear) > 1:
        return None
    if linear:
        mu = v[linear[0]]
    else:
        A = sum((K[i] - 1) * v[i] / (K[i] - 3) for i in curved)
        B = sum(-2 / (K[i] - 3) for i in curved)
        if A == 0 or r == B:
            return None
        mu = A / (r - B)
        if mu <= 0:
            return None
    for i in curved:
        C[i] = ((K[i] - 1) * v[i] / mu - 2) / (K[i] - 3)
    if linear:
        C[linear[0]] = r - sum(C[i] for i in curved)
    return C if all(0 <= C[i] <= 1 for i in free) else None


def _table_candidates(x, y, d):
    """The knot/vertex candidates of a table problem (module docstring), all feasible."""
    n = len(y)
    active = [i for i in range(n) if len(set(y[i])) > 1]
    for knots in itertools.product(x, repeat=len(active)):
        if sum(knots) <= d:
            yield _scatter(n, active, knots)
    for j in active:
        others = [i for i in active if i != j]
        for knots in itertools.product(x, repeat=len(others)):
            rest = d - sum(knots)
            if 0 <= rest <= 1:
                yield _scatter(n, others + [j], knots + (rest,))


def _scatter(n, indices, entries):
    """A length-n capacity vector with ``entries`` at ``indices`` and 0 elsewhere."""
    C = [Fraction(0)] * n
    for i, c in zip(indices, entries):
        C[i] = c
    return C


def _interpolate(x, row, c):
    """The piecewise-linear curve through (x_k, row_k) at c in [0, 1], exactly."""
    k = min(bisect_right(x, c) - 1, len(x) - 2)
    return row[k] + (row[k + 1] - row[k]) * (c - x[k]) / (x[k + 1] - x[k])


def _best(scored):
    """The (C, loss) pair of least loss, ties to the smaller total capacity, as an Optimum."""
    C, loss = min(scored, key=lambda pair: (pair[1], sum(pair[0])))
    return Optimum(loss=_to_mpf(loss), capacities=tuple(_to_mpf(c) for c in C))


def _to_mpf(q):
    """A Fraction rounded once, to nearest, to ``DIGITS`` digits."""
    with mpmath.workdps(DIGITS):
        return mpmath.mp.make_mpf(
            from_rational(q.numerator, q.denominator, mpmath.mp.prec, round_nearest)
        )


def _exact(name, x):
    """A finite real number (float, int, Fraction, numpy scalar or mpf) as an exact Fraction."""
    if isinstance(x, mpmath.mpf):
        if not mpmath.isfinite(x):
            raise ValueError(f"{name} must be finite, got {x}")
        return Fraction(*to_rational(x._mpf_))
    if isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_)):
        return Fraction(int(x))
    if isinstance(x, (bool, np.bool_)) or not hasattr(x, "as_integer_ratio"):
        raise TypeError(
            f"{name} must hold real numbers (float, int, Fraction, numpy scalar or "
            f"mpmath.mpf), got {type(x).__name__}"
        )
    try:
        return Fraction(*x.as_integer_ratio())
    except (OverflowError, ValueError):
        raise ValueError(f"{name} must be finite, got {x}") from None


def _vector(name, x):
    """The entries of a 1-D sequence, as a list."""
    array = np.asarray(x, dtype=object)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return list(array)


def _check_size(n):
    if not 1 <= n <= MAX_FEATURES:
        raise ValueError(
            f"the brute force takes 1 to {MAX_FEATURES} features, got {n}: it enumerates "
            f"exponentially many candidates"
        )


def _budget(d):
    d = _exact("d", d)
    if d < 0:
        raise ValueError(f"budget d must be finite and >= 0, got {float(d)}")
    return d


def _capacities(C, n):
    C = [_exact("C", c) for c in _vector("C", C)]
    if len(C) != n:
        raise ValueError(f"C must have one capacity per feature ({n}), got {len(C)}")
    if not all(0 <= c <= 1 for c in C):
        raise ValueError(
            f"C must lie in [0, 1], got {[float(c) for c in C]}: the curves are defined "
            f"on [0, 1] only; measure violations with feasibility_violation"
        )
    return C


def _quadratic_inputs(v, K):
    v = [_exact("v", x) for x in _vector("v", v)]
    K_array = np.asarray(K, dtype=object)
    if K_array.ndim == 0:
        K = [_exact("K", K_array.item())] * len(v)
    else:
        K = [_exact("K", x) for x in _vector("K", K)]
    if len(K) != len(v):
        raise ValueError(
            f"K must be a scalar or have one entry per feature ({len(v)}), got {len(K)}"
        )
    if any(k < 1 for k in K):
        raise ValueError(
            f"kurtosis K must be >= 1 (a fourth moment of unit variance), "
            f"got {[float(k) for k in K]}"
        )
    return v, K


def _table_inputs(grid, values):
    x = [_exact("grid", g) for g in _vector("grid", grid)]
    if len(x) < 2 or x[0] != 0 or x[-1] != 1 or any(a >= b for a, b in zip(x, x[1:])):
        raise ValueError(
            f"grid must increase strictly from 0 to 1 with at least 2 knots, "
            f"got {[float(g) for g in x]}"
        )
    array = np.asarray(values, dtype=object)
    if array.ndim != 2 or array.shape[1] != len(x):
        raise ValueError(
            f"values must have shape (N, {len(x)}) (one row per feature, one column per "
            f"knot), got {array.shape}"
        )
    return x, [[_exact("values", y) for y in row] for row in array]


def _linear_autoencoder_table(I):
    I = [_exact("I", x) for x in _vector("I", I)]
    if any(x < 0 for x in I):
        raise ValueError(f"importances I must be >= 0, got {[float(x) for x in I]}")
    return [[x, 0] for x in I]
