r"""Loss-vs-capacity curve of the quadratic model (Scherlis et al. 2022, theory §3).

Model: target :math:`y = \sum_i v_i x_i^2`, prediction :math:`\hat y = x^\top G x + b` with
:math:`G = W^\top W`, loss :math:`L = \mathbb{E}[(y - \hat y)^2]`. The inputs are independent
with :math:`\mathbb{E}x_i = 0`, :math:`\mathbb{E}x_i^2 = 1`, a symbolic third moment and
:math:`\mathbb{E}x_i^4 = K_i`.

Steps, each asserted when :func:`formulas` runs:

1. :math:`L` by the moment operator; the third moments drop out.
2. The optimal bias :math:`b^* = \sum_i (v_i - g_{ii})` separates the loss,
   :math:`L = \sum_i (K_i - 1)(v_i - g_{ii})^2 + 2 \sum_{i \ne j} g_{ij}^2` (ordered pairs),
   for :math:`N = 2, 3, 4`.
3. Per feature, with :math:`a = g_{ii}` and :math:`S = \sum_{j \ne i} g_{ij}^2`,
   :math:`\ell = (K - 1)(v - a)^2 + 2S`; capacity eliminates :math:`S = a^2 (1/C - 1)`.
4. Minimising over :math:`a` gives :math:`a^*(C)` and :math:`\ell(C)`.
5. The marginal :math:`m = -\ell'`, the curvature :math:`\ell''`, the inverse of the marginal,
   the same inverse in the level :math:`s = \sqrt{2/\lambda}`, and the thresholds.
6. Two features on one neuron: the closed-form split and its polysemantic boundary.

Symbols: ``C`` capacity, ``v`` importance, ``K`` fourth moment (:math:`K > 1`), ``a`` squared
norm :math:`G_{ii}`, ``lam`` multiplier :math:`\lambda`, ``s`` level.
"""

from __future__ import annotations

import functools

import sympy

from . import Formula, interference_at_capacity, minimise_over_norm, tidy
from .moments import expectation, unit_variance_moments

__all__ = ["separated_loss", "formulas"]

C = sympy.Symbol("C", positive=True)
v = sympy.Symbol("v", positive=True)
K = sympy.Symbol("K", positive=True)
a = sympy.Symbol("a", real=True)
lam = sympy.Symbol("lam", positive=True)
s = sympy.Symbol("s", positive=True)
# K - 1 as a positive symbol: substituting K = 1 + kappa lets sympy decide signs that hold for
# every K > 1, which is how the branch of the inverse is chosen.
kappa = sympy.Symbol("kappa", positive=True)
# Importances of the two features on one neuron, a >= b.
imp_a, imp_b = sympy.symbols("a b", positive=True)

#: Sizes at which the separated form of the N-feature loss is checked.
CHECKED_SIZES = (2, 3, 4)


def _expected_loss(n):
    """E[(y - yhat)^2] of the n-feature model, as a function of the bias, and its symbols."""
    x = sympy.symbols(f"x0:{n}", real=True)
    vs = sympy.symbols(f"v0:{n}", real=True)
    Ks = sympy.symbols(f"K0:{n}", positive=True)
    third = sympy.symbols(f"M0:{n}", real=True)
    G = sympy.Matrix(n, n, lambda i, j: sympy.Symbol(f"g{min(i, j)}{max(i, j)}", real=True))
    b = sympy.Symbol("b", real=True)
    X = sympy.Matrix(x)
    y = sum(vi * xi**2 for vi, xi in zip(vs, x))
    y_hat = (X.T * G * X)[0, 0] + b
    moment = unit_variance_moments(dict(zip(x, third)), dict(zip(x, Ks)))
    loss = expectation((y - y_hat) ** 2, x, moment)
    assert not loss.free_symbols & set(third), "third moments must drop out"
    return loss, b, vs, Ks, G


def separated_loss(n: int):
    r"""The n-feature loss at the optimal bias, checked against its separated form.

    .. math::

        b^* = \sum_i (v_i - g_{ii}), \qquad
        L(b^*) = \sum_i (K_i - 1)(v_i - g_{ii})^2 + 2 \sum_{i \ne j} g_{ij}^2.

    Parameters
    ----------
    n : int
        Number of features.

    Returns
    -------
    loss : sympy.Expr
        :math:`L(b^*)`.
    vs, Ks : tuple of sympy.Symbol
        Importances and fourth moments.
    G : sympy.Matrix
        Symmetric Gram matrix of symbols ``g_ij``.
    """
    loss, b, vs, Ks, G = _expected_loss(n)
    (b_star,) = sympy.solve(sympy.diff(loss, b), b)
    assert sympy.expand(b_star - sum(vs[i] - G[i, i] for i in range(n))) == 0
    assert sympy.diff(loss, b, 2) == 2, "L is a convex parabola in b"
    at_best_bias = sympy.expand(loss.subs(b, b_star))
    stated = sum((Ks[i] - 1) * (vs[i] - G[i, i]) ** 2 for i in range(n)) + 2 * sum(
        G[i, j] ** 2 for i in range(n) for j in range(n) if i != j
    )
    assert sympy.expand(at_best_bias - stated) == 0
    return at_best_bias, vs, Ks, G


def _feature_loss_in_interference():
    """Per-feature loss (K-1)(v-a)^2 + 2 S, checked to sum to the separated loss."""
    S = sympy.Symbol("S", nonnegative=True)
    per_feature = (K - 1) * (v - a) ** 2 + 2 * S
    for n in CHECKED_SIZES:
        loss, vs, Ks, G = separated_loss(n)
        total = sum(
            per_feature.subs(
                {a: G[i, i], v: vs[i], K: Ks[i], S: sum(G[i, j] ** 2 for j in range(n) if j != i)}
            )
            for i in range(n)
        )
        assert sympy.expand(total - loss) == 0
    return per_feature, S


def _two_feature_split(level):
    """Capacity of the larger of two features sharing a budget of 1, and its boundary K."""
    # On the branch, m = 2 / level^2 with level > 0, so equal multipliers <=> equal levels,
    # and the equation becomes linear in C.
    (C_a,) = sympy.solve(sympy.Eq(level.subs(v, imp_a), level.subs({v: imp_b, C: 1 - C})), C)
    assert sympy.simplify(C_a - (imp_a * (K - 1) - 2 * imp_b) / ((K - 3) * (imp_a + imp_b))) == 0
    (boundary,) = sympy.solve(sympy.Eq(C_a, 1), K)
    assert sympy.simplify(boundary - (1 + 2 * imp_a / imp_b)) == 0
    return C_a, sympy.expand(boundary)


@functools.cache
def formulas() -> dict[str, Formula]:
    """Derive the quadratic model's closed forms, asserting each step.

    Returns
    -------
    dict of str to Formula
        Generated-function name -> formula, in the order they are emitted.
    """
    per_feature, S = _feature_loss_in_interference()
    loss_a_C = per_feature.subs(S, interference_at_capacity(a, C))
    a_star = tidy(minimise_over_norm(loss_a_C, a, C, {K: 1 + kappa}), C)
    assert sympy.simplify(a_star - (K - 1) * v * C / (2 + (K - 3) * C)) == 0

    loss = tidy(loss_a_C.subs(a, a_star), C)
    assert sympy.simplify(loss - 2 * (K - 1) * v**2 * (1 - C) / (2 + (K - 3) * C)) == 0
    marginal = tidy(-sympy.diff(loss, C), C)
    assert sympy.simplify(marginal - 2 * (K - 1) ** 2 * v**2 / (2 + (K - 3) * C) ** 2) == 0
    curvature = tidy(sympy.diff(loss, C, 2), C)

    # m(C) = lam has two roots; the one with 2 + (K - 3) C > 0 keeps the loss's denominator
    # positive, i.e. lies on the curve's own branch for every K > 1.
    roots = sympy.solve(sympy.Eq(marginal.subs(K, 1 + kappa), lam), C)
    (inverse,) = [r for r in roots if sympy.simplify(2 + (kappa - 2) * r).is_positive]
    inverse = inverse.subs(kappa, K - 1)
    level_capacity = tidy(inverse.subs(lam, 2 / s**2), s)
    assert sympy.simplify(level_capacity - ((K - 1) * v * s - 2) / (K - 3)) == 0
    (level,) = sympy.solve(sympy.Eq(level_capacity, C), s)
    assert sympy.simplify(marginal - 2 / level**2) == 0

    ignore_multiplier = sympy.factor(marginal.subs(C, 0))
    full_multiplier = sympy.factor(marginal.subs(C, 1))
    (ignore_level,) = sympy.solve(level_capacity, s)
    (full_level,) = sympy.solve(level_capacity - 1, s)
    for multiplier, at_level in ((ignore_multiplier, ignore_level), (full_multiplier, full_level)):
        assert sympy.simplify((sympy.sqrt(2 / multiplier) - at_level).subs(K, 1 + kappa)) == 0

    C_a, boundary = _two_feature_split(level)
    worked = {imp_a: 2, imp_b: 1, K: 7}
    C_worked = C_a.subs(worked)
    loss_worked = loss.subs({v: 2, C: C_worked, K: 7}) + loss.subs({v: 1, C: 1 - C_worked, K: 7})
    assert (C_worked, 1 - C_worked, loss_worked) == (
        sympy.Rational(5, 6),
        sympy.Rational(1, 6),
        sympy.Rational(21, 4),
    )

    return {
        "quadratic_loss": Formula(
            (C, v, K),
            loss,
            "Loss of a feature at capacity C, with its norm and the bias optimised.",
            "l(C) = 2 (K - 1) v^2 (1 - C) / (2 + (K - 3) C)",
        ),
        "quadratic_marginal": Formula(
            (C, v, K),
            marginal,
            "Marginal value of capacity, m(C) = -dl/dC.",
            "m(C) = 2 (K - 1)^2 v^2 / (2 + (K - 3) C)^2",
        ),
        "quadratic_curvature": Formula(
            (C, v, K),
            curvature,
            "Curvature d2l/dC2 of the loss curve.",
            "l''(C) = 4 (K - 1)^2 (K - 3) v^2 / (2 + (K - 3) C)^3; > 0 (diminishing returns) "
            "iff K > 3.",
        ),
        "quadratic_optimal_norm": Formula(
            (C, v, K),
            a_star,
            "Optimal squared embedding norm a = G_ii of a feature at capacity C.",
            "a*(C) = (K - 1) v C / (2 + (K - 3) C)",
        ),
        "quadratic_feature_loss": Formula(
            (a, C, v, K),
            loss_a_C,
            "Loss of a feature with squared norm a = G_ii and capacity C, a not optimised.",
            "l(a, C) = (K - 1) (v - a)^2 + 2 a^2 (1/C - 1)",
        ),
        "quadratic_marginal_inverse": Formula(
            (lam, v, K),
            inverse,
            "Capacity at which the marginal equals lam.",
            "C(lam) = ((K - 1) v sqrt(2 / lam) - 2) / (K - 3), the root with 2 + (K - 3) C > 0; "
            "unclipped, undefined at K = 3 (constant marginal).",
        ),
        "quadratic_level_capacity": Formula(
            (s, v, K),
            level_capacity,
            "Capacity at level s = sqrt(2 / lam): the inverse marginal, affine in s.",
            "C(s) = ((K - 1) v s - 2) / (K - 3); unclipped, undefined at K = 3.",
        ),
        "quadratic_ignore_multiplier": Formula(
            (v, K),
            ignore_multiplier,
            "Marginal at C = 0, the multiplier above which a feature is ignored.",
            "m(0) = (K - 1)^2 v^2 / 2; KKT: C = 0 needs lam >= m(0), sufficient when K > 3.",
        ),
        "quadratic_full_multiplier": Formula(
            (v, K),
            full_multiplier,
            "Marginal at C = 1, the multiplier below which a feature is monosemantic.",
            "m(1) = 2 v^2; KKT: C = 1 needs lam <= m(1), sufficient when K > 3.",
        ),
        "quadratic_ignore_level": Formula(
            (v, K),
            ignore_level,
            "Level s = sqrt(2 / lam) at which the capacity reaches 0.",
            "s(C = 0) = 2 / ((K - 1) v)",
        ),
        "quadratic_full_level": Formula(
            (v, K),
            full_level,
            "Level s = sqrt(2 / lam) at which the capacity reaches 1.",
            "s(C = 1) = 1 / v",
        ),
        "two_feature_capacity": Formula(
            (imp_a, imp_b, K),
            tidy(C_a, imp_a),
            "Capacity of the larger of two features (a >= b) sharing one neuron.",
            "C_a = (a (K - 1) - 2 b) / ((K - 3) (a + b)), C_b = 1 - C_a, from m_a(C_a) = "
            "m_b(1 - C_a); unclipped: for K > 3 the optimum is C_a clipped to [0, 1].",
        ),
        "two_feature_polysemantic_kurtosis": Formula(
            (imp_a, imp_b),
            boundary,
            "Fourth moment above which two features on one neuron are polysemantic.",
            "K = 1 + 2 a / b (a >= b), where two_feature_capacity reaches 1.",
        ),
    }
