r"""The water-filling algebra of the quadratic model, as its numba kernels evaluate it.

Water-filling (``capopt/_kernels/``) sums the responses of many curves at one level
:math:`\mu` and finds the level at which they fill the budget. A convex curve's response
(:mod:`derivations.quadratic`) is affine in the inverse level :math:`u = 1/\mu`:

.. math::

    C(\mu) = \frac{p / \mu - 2}{\epsilon} = s\,u - e, \qquad
    p = (K - 1) v,\quad \epsilon = K - 3,\quad s = p / \epsilon,\quad e = 2 / \epsilon,

so curves affine at the level sought add up to :math:`P u - E` with :math:`P = \sum s`,
:math:`E = \sum e`. Steps, each asserted when :func:`formulas` runs:

1. The level's numerator :math:`p`, twice the ignore level, and the response's slope
   :math:`s` and offset :math:`e` in :math:`u`.
2. For n curves of one kurtosis whose importances sum to W,
   :math:`\sum C = e\,(z(W)/\mu - n)` with :math:`z` the ignore level: the total the
   sweeps' walk down sorted breakpoints evaluates.
3. Folded sums: :math:`A = \sum v`, :math:`B = \sum (v - r) e`, :math:`E = \sum e` about a
   reference level r give, at any level :math:`\mu`,
   :math:`\sum (p - 2\mu) / \epsilon = A + B - (\mu - r) E`: :math:`\mu` times the total
   response at :math:`\mu`, :math:`P` at :math:`\mu = 0`, and Q below at the bracket's lower
   end :math:`\mu = lo`. Moving the reference subtracts :math:`(r' - r) E` from B.
4. An affine set sharing R: :math:`\sum C = R` at :math:`u^* = (R + E) / P`, the level
   :math:`\mu^* = P / (R + E)`, and each capacity
   :math:`C_i = (p_i R + D_i E - 2 Q) / (\epsilon_i P)` with the numerator gaps
   :math:`D_k = p_k - p_{ref}` to any reference numerator and :math:`Q = \sum D_k / \epsilon_k`
   (checked for three curves of distinct kurtoses and a symbolic reference). The lower end
   lo of the bracket is the reference :math:`p_{ref} = 2\,lo`, the numerator of a linear
   curve (K = 3) of importance lo.

Why these forms. Near :math:`K = 3` the terms :math:`s` and :math:`e` are huge and cancel in
:math:`C = s u - e`, which evaluated at a rounded :math:`\mu^*` is off by
:math:`\epsilon_{mach} / \epsilon`. The folded sums keep every term bounded by its own v (a
curve affine across the bracket has :math:`|\mu - r| \le z - v = \epsilon v / 2`, so
:math:`|(v - r) e| \le v`), and the gap is formed as
:math:`D = 2 (v - v_{ref}) + (\epsilon v - \epsilon_{ref} v_{ref})`: :math:`v - v_{ref}` is
exact when the two lie within a factor 2 (Sterbenz), and what remains is the rounding of the
small products :math:`\epsilon v`, never of a difference of two large numerators, so the
capacities sum to R by construction. Every function is emitted in exactly the order of
floating-point operations the kernels have always performed (commuting the two operands of
one addition or product at most), so that moving the kernels onto these generated forms
changed no result: :math:`p` as :math:`2 v + (K - 3) v`, from the gap's own products (it
differs from one rounding of :math:`(K - 1) v` by an ulp at most), the walk's total through
the offset :math:`e` and :math:`z(W)` computed once each, and the end of a concave
feature's window, the level at the capacity the budget allows it, numerator first:
:math:`((K - 1) v) / (2 (1 - C) + (K - 1) C)`. The window's end decides which of two equally
good stationary points the window keeps, so its rounding shows in the answers.

Symbols: ``C`` capacity, ``v``, ``K`` importance and kurtosis, ``v_ref``, ``K_ref`` those of a reference
(``K_ref = 3`` for a level), ``mu`` level, ``W`` a sum of importances, ``n`` a number of
curves, ``A``, ``B``, ``E`` folded sums about the reference level ``ref``, ``R`` the budget
an affine set shares, ``P`` its :math:`\sum s`, ``Q`` its :math:`\sum D / \epsilon`,
``num`` a numerator p, ``gap`` a numerator gap D; in the emitted steps ``w`` the offset and
``g`` an ignore level.
"""

from __future__ import annotations

import functools

import sympy

from . import Formula, quadratic, unevaluated

__all__ = ["formulas"]

C, v, K, mu = quadratic.C, quadratic.v, quadratic.K, quadratic.mu
v_ref = sympy.Symbol("v_ref", positive=True)
K_ref = sympy.Symbol("K_ref", positive=True)
W = sympy.Symbol("W", positive=True)
n = sympy.Symbol("n", positive=True)
u = sympy.Symbol("u", positive=True)
A, B, E, P, Q, R, ref = sympy.symbols("A B E P Q R ref", real=True)
num, gap = sympy.symbols("num gap", real=True)
w, g = quadratic.w, quadratic.g

#: Curves of distinct kurtoses with which the shared-budget algebra is checked.
CHECKED_CURVES = 3


def _vanishes(expr: sympy.Expr) -> bool:
    """Whether a rational expression is identically 0 (its numerator expands to 0)."""
    return sympy.expand(sympy.numer(sympy.together(expr))) == 0


def _response_in_inverse_level(response):
    """Slope s and offset e of the response C = s u - e in u = 1/mu, asserted affine."""
    in_u = sympy.Poly(sympy.together(response.subs(mu, 1 / u)).expand(), u)
    assert in_u.degree() == 1
    slope, intercept = in_u.all_coeffs()
    assert _vanishes(slope - (K - 1) * v / (K - 3)) and _vanishes(intercept + 2 / (K - 3))
    return sympy.factor(slope), sympy.factor(-intercept)


def _curves(count):
    """Importances and kurtoses of ``count`` curves, as symbols."""
    return sympy.symbols(f"v0:{count}", positive=True), sympy.symbols(f"K0:{count}", positive=True)


def _check_one_kurtosis_total(response, offset, ignore_level):
    """Sum C = e (z(W) / mu - n) for n curves of one kurtosis, W their summed importance."""
    vs, _ = _curves(CHECKED_CURVES)
    total = sum(response.subs(v, vk) for vk in vs)
    walk = offset * (ignore_level.subs(v, sum(vs)) / mu - CHECKED_CURVES)
    assert _vanishes(total - walk)
    return offset * (ignore_level.subs(v, W) / mu - n)


def _check_folded_sums(response, numerator, offset):
    """Sum (p - 2 mu) / eps = A + B - (mu - ref) E over folded curves, at every level."""
    per_curve = (numerator - 2 * mu) / (K - 3)
    folded = v + (v - ref) * offset - (mu - ref) * offset
    assert _vanishes(per_curve - folded)
    assert _vanishes(per_curve / mu - response), "mu times the response"
    assert _vanishes(per_curve.subs(mu, 0) - numerator / (K - 3)), "the slope, summed to P"
    # Moving the reference from ref to ref' changes B by -(ref' - ref) E, and nothing else.
    moved = sympy.Symbol("moved", real=True)
    assert _vanishes((v - moved) * offset - ((v - ref) * offset - (moved - ref) * offset))
    return A + B - (mu - ref) * E


def _check_shared_budget(response, numerator, slope, offset):
    """The level and the capacities of affine curves sharing R, for any reference."""
    vs, Ks = _curves(CHECKED_CURVES)
    curves = [{v: vk, K: Kk} for vk, Kk in zip(vs, Ks)]
    in_u = [response.subs(mu, 1 / u).subs(c) for c in curves]
    (u_star,) = sympy.solve(sympy.Eq(sum(in_u), R), u)
    P_sum = sum(slope.subs(c) for c in curves)
    E_sum = sum(offset.subs(c) for c in curves)
    assert _vanishes(u_star - (R + E_sum) / P_sum)
    reference = numerator.subs({v: v_ref, K: K_ref})
    gaps = [numerator.subs(c) - reference for c in curves]
    Q_sum = sum(D / (Kk - 3) for D, Kk in zip(gaps, Ks))
    for c, D, C_i in zip(curves, gaps, in_u):
        shared = (numerator.subs(c) * R + D * E_sum - 2 * Q_sum) / ((c[K] - 3) * P_sum)
        assert _vanishes(C_i.subs(u, u_star) - shared)
    lo = sympy.Symbol("lo", positive=True)
    assert sympy.expand(numerator.subs({v: lo, K: 3}) - 2 * lo) == 0, "a level as reference"
    return P / (R + E), num * R + gap * E - 2 * Q


@functools.cache
def formulas() -> dict[str, Formula]:
    """Derive the water-filling algebra from the quadratic model's response, asserting it.

    Returns
    -------
    dict of str to Formula
        Generated-function name -> formula, in the order they are emitted.
    """
    derived = quadratic.formulas()
    response = derived["quadratic_response"].expr
    ignore_level = derived["quadratic_ignore_level"].expr
    slope, offset = _response_in_inverse_level(response)
    numerator = sympy.factor(slope * (K - 3))
    assert sympy.simplify(numerator - 2 * ignore_level) == 0
    one_kurtosis_total = _check_one_kurtosis_total(response, offset, ignore_level)
    folded = _check_folded_sums(response, numerator, offset)
    shared_level, shared_numerator = _check_shared_budget(response, numerator, slope, offset)

    # The kernels' evaluation orders (module docstring): 2 v + (K - 3) v, and so on.
    numerator_form = unevaluated(sympy.Add, unevaluated(sympy.Mul, 2, v), unevaluated(sympy.Mul, K - 3, v))
    gap_form = unevaluated(
        sympy.Add,
        unevaluated(sympy.Mul, 2, unevaluated(sympy.Add, v, -v_ref)),
        unevaluated(sympy.Add, unevaluated(sympy.Mul, K - 3, v), -unevaluated(sympy.Mul, K_ref - 3, v_ref)),
    )
    ignore_step = unevaluated(sympy.Mul, W, unevaluated(sympy.Mul, sympy.Rational(1, 2), K - 1))
    return {
        "quadratic_level_numerator": Formula(
            (v, K),
            numerator,
            "Numerator p of the level mu(C) = p / (2 + (K - 3) C): twice the ignore level.",
            "p = (K - 1) v, evaluated as 2 v + (K - 3) v (the products of quadratic_numerator_gap).",
            (),
            numerator_form,
        ),
        "quadratic_numerator_gap": Formula(
            (v, K, v_ref, K_ref),
            numerator - numerator.subs({v: v_ref, K: K_ref}),
            "Gap D = p - p_ref between two level numerators, without cancellation.",
            "D = (K - 1) v - (K_ref - 1) v_ref, evaluated as 2 (v - v_ref) + ((K - 3) v - "
            "(K_ref - 3) v_ref): v - v_ref is exact within a factor 2; K_ref = 3 makes p_ref = "
            "2 v_ref, a level.",
            (),
            gap_form,
        ),
        "quadratic_response_offset": Formula(
            (K,),
            offset,
            "Offset e of the response C(mu) = s / mu - e of a convex curve, affine in 1 / mu.",
            "e = 2 / (K - 3); a set of curves affine at mu totals P / mu - E, E the sum of e.",
        ),
        "quadratic_response_slope": Formula(
            (v, K),
            slope,
            "Slope s of the response C(mu) = s / mu - e in the inverse level 1 / mu.",
            "s = (K - 1) v / (K - 3), evaluated as (2 v + (K - 3) v) / (K - 3); P is their sum.",
            (),
            unevaluated(sympy.Mul, numerator_form, 1 / (K - 3)),
        ),
        "quadratic_response_total": Formula(
            (mu, W, n, K),
            one_kurtosis_total,
            "Total response at level mu of n affine curves of one kurtosis, of summed importance W.",
            "sum C = (2 / (K - 3)) ((K - 1) W / (2 mu) - n), evaluated with the offset and the "
            "ignore level of W each formed once.",
            ((w, offset), (g, ignore_step)),
            unevaluated(sympy.Mul, w, unevaluated(sympy.Add, unevaluated(sympy.Mul, g, 1 / mu), -n)),
        ),
        "quadratic_folded_numerator": Formula(
            (mu, A, B, E, ref),
            folded,
            "Sum of (p - 2 mu) / (K - 3) over curves folded into A, B, E about the level ref.",
            "A + B - (mu - ref) E with A = sum v, B = sum (v - ref) e, E = sum e: mu times the "
            "total response at mu; P at mu = 0; each term bounded by its own v.",
            (),
            unevaluated(sympy.Add, unevaluated(sympy.Add, A, B),
                        -unevaluated(sympy.Mul, unevaluated(sympy.Add, mu, -ref), E)),
        ),
        "quadratic_window_level": Formula(
            (C, v, K),
            derived["quadratic_level"].expr,
            "Level of a concave feature at capacity C: the end of its window in the mixed kernels.",
            "mu(C) = (K - 1) v / (2 (1 - C) + (K - 1) C), the numerator formed first (quadratic_level "
            "forms v last, for the float range; the kernels work in scaled units).",
            (),
            unevaluated(sympy.Mul, unevaluated(sympy.Mul, K - 1, v), 1 / quadratic.STABLE_DENOMINATOR),
        ),
        "quadratic_shared_level": Formula(
            (R, E, P),
            shared_level,
            "Level at which affine curves with summed slope P and offset E share the budget R.",
            "mu* = P / (R + E), from sum C = P / mu - E = R.",
        ),
        "quadratic_shared_numerator": Formula(
            (num, gap, R, E, Q),
            shared_numerator,
            "Capacity of a curve of an affine set sharing R, times (K - 3) P: no cancellation.",
            "(K - 3) P C = p R + D E - 2 Q, D = p - p_ref the curve's numerator gap and Q = "
            "sum D / (K - 3) over the set, for any reference p_ref.",
            (),
            unevaluated(sympy.Add, unevaluated(sympy.Add, unevaluated(sympy.Mul, num, R),
                                               unevaluated(sympy.Mul, gap, E)),
                        unevaluated(sympy.Mul, -2, Q)),
        ),
    }
