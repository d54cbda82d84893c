r"""Loss-vs-capacity curve of the quadratic model (Scherlis et al. 2022, theory §3).

Model: target :math:`y = \sum_i v_i x_i^2`, prediction :math:`\hat y = x^\top G x + b` with
:math:`G = W^\top W`, loss :math:`L = \mathbb{E}[(y - \hat y)^2]`. The inputs are independent
with :math:`\mathbb{E}x_i = 0`, :math:`\mathbb{E}x_i^2 = 1`, a symbolic third moment and
:math:`\mathbb{E}x_i^4 = K_i`.

Steps, each asserted when :func:`formulas` runs:

1. :math:`L` by the moment operator; the third moments drop out.
2. The optimal bias :math:`b^* = \sum_i (v_i - g_{ii})` separates the loss,
   :math:`L = \sum_i (K_i - 1)(v_i - g_{ii})^2 + 2 \sum_{i \ne j} g_{ij}^2` (ordered pairs),
   for :math:`N = 2, 3, 4`; another bias adds :math:`(b - b^*)^2`.
3. Per feature, with :math:`a = g_{ii}` and :math:`S = \sum_{j \ne i} g_{ij}^2`,
   :math:`\ell = (K - 1)(v - a)^2 + 2S`: the exact loss of an explicit W, whose partials in
   the entries of G are checked against those of :math:`L` (they give the gradient in W).
   Capacity eliminates :math:`S = a^2 (1/C - 1)`.
4. Minimising over :math:`a` gives :math:`a^*(C)` and :math:`\ell(C)`, and
   :math:`\ell(a, C) = \ell(C) + w (a - a^*)^2` the weight :math:`w` of a norm's error.
5. The marginal :math:`m = -\ell'`, the curvature :math:`\ell''`, the benefit
   :math:`\ell(0) - \ell(C)`, the gain :math:`\ell(0) - \ell(1)`, the partials of
   :math:`m` and :math:`\ell` in v and K at fixed C, and the disciplined convex form
   :math:`\ell = \ell_\infty + \beta / (2 + (K - 3) C)`.
6. The level :math:`\mu = \sqrt{\lambda/2}`, in which the marginal is :math:`m = 2\mu^2`,
   each feature's level :math:`\mu(C) = (K - 1) v / (2 + (K - 3) C)`, its inverse (the
   response :math:`C(\mu)` that water-filling sums), the loss at the response, and the
   thresholds :math:`\mu(1) = v`, :math:`\mu(0) = (K - 1) v / 2`, and the flat curves
   (:math:`v \le 0` or :math:`K = 1`), which capacity cannot lower.
7. Two features on one neuron: the closed-form split and its polysemantic boundary.

Every function is emitted in a form that floating point evaluates accurately for
importances anywhere in the float64 range and for K within rounding of 1 or 3 (asserted
equal to the derived expression): the denominator as :math:`2 (1 - C) + (K - 1) C`, a sum of
non-negative terms (the textbook :math:`2 + (K - 3) C` cancels at :math:`K \to 1,\ C \to 1`);
a square :math:`v^2 f` as :math:`v (v f)`, which overflows only when the result does; and the
response through the gap :math:`v - \mu`, exact near the threshold where
:math:`(K - 1) v / \mu - 2` cancels (catastrophically as :math:`K \to 3`).

Symbols: ``C`` capacity, ``v`` importance, ``K`` fourth moment (:math:`K > 1`), ``a`` squared
norm :math:`G_{ii}`, ``S`` interference, ``G_ij`` an off-diagonal entry of G, ``bias`` and
``b_opt`` a bias and the optimal one, ``lam`` multiplier :math:`\lambda`, ``mu`` level
:math:`\sqrt{\lambda/2}`;
in the emitted steps ``D`` the denominator, ``w`` an importance times its factor, ``g`` a gap.
"""

from __future__ import annotations

import functools

import sympy
from sympy.codegen.cfunctions import log2

from . import (
    Formula,
    check_gram_partials,
    gram_partials,
    interference_at_capacity,
    minimise_over_norm,
    tidy,
    unevaluated,
)
from .moments import expectation, unit_variance_moments

__all__ = ["separated_loss", "formulas"]

C = sympy.Symbol("C", positive=True)
v = sympy.Symbol("v", positive=True)
K = sympy.Symbol("K", positive=True)
a = sympy.Symbol("a", real=True)
lam = sympy.Symbol("lam", positive=True)
mu = sympy.Symbol("mu", positive=True)
# The loss of an explicit W: a feature's interference S = sum_{j != i} G_ij^2, an
# off-diagonal entry G_ij of its row, and a bias and the optimal bias.
S = sympy.Symbol("S", nonnegative=True)
G_ij = sympy.Symbol("G_ij", real=True)
bias, b_opt = sympy.symbols("bias b_opt", real=True)
# Names of the intermediate values in the emitted evaluation steps.
D = sympy.Symbol("D", positive=True)
w = sympy.Symbol("w", real=True)
g = sympy.Symbol("g", real=True)
# K - 1 as a positive symbol: substituting K = 1 + kappa lets sympy decide signs that hold for
# every K > 1, which is how the branch of the inverse is chosen.
kappa = sympy.Symbol("kappa", positive=True)
# Importances of the two features on one neuron, a >= b.
imp_a, imp_b = sympy.symbols("a b", positive=True)

# An importance of either sign, for the flat-curve rule (v < 0 is allowed, and ignored).
v_any = sympy.Symbol("v", real=True)

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
        L(b^*) = \sum_i (K_i - 1)(v_i - g_{ii})^2 + 2 \sum_{i \ne j} g_{ij}^2, \qquad
        L(b) = L(b^*) + (b - b^*)^2.

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
    assert sympy.expand(loss - loss.subs(b, b_star) - (b - b_star) ** 2) == 0
    at_best_bias = sympy.expand(loss.subs(b, b_star))
    stated = sum((Ks[i] - 1) * (vs[i] - G[i, i]) ** 2 for i in range(n)) + 2 * sum(
        G[i, j] ** 2 for i in range(n) for j in range(n) if i != j
    )
    assert sympy.expand(at_best_bias - stated) == 0
    return at_best_bias, vs, Ks, G


def _feature_loss_in_interference():
    """Per-feature loss (K-1)(v-a)^2 + 2 S and its partials in G, checked against the
    separated loss: the terms sum to it, and the partials are its derivatives."""
    per_feature = (K - 1) * (v - a) ** 2 + 2 * S
    d_norm, d_entry = gram_partials(per_feature, a, S, G_ij)
    assert sympy.expand(d_norm + 2 * (K - 1) * (v - a)) == 0 and d_entry == 4 * G_ij
    for n in CHECKED_SIZES:
        loss, vs, Ks, G = separated_loss(n)
        features = [{v: vs[i], K: Ks[i]} for i in range(n)]
        total = sum(
            per_feature.subs(
                {a: G[i, i], **features[i], S: sum(G[i, j] ** 2 for j in range(n) if j != i)}
            )
            for i in range(n)
        )
        assert sympy.expand(total - loss) == 0
        check_gram_partials(loss, G, features, d_norm, d_entry, a, G_ij)
    return per_feature, d_norm, d_entry


def _flat_rule(loss_a_C, marginal):
    r"""The curves capacity cannot lower, :math:`v \le 0` or :math:`K = 1`, asserted.

    A curve is flat when its marginal vanishes on all of [0, 1]: at :math:`v = 0` or
    :math:`K = 1`, and nowhere else with :math:`v > 0`, :math:`K > 1`. :math:`\ell(C)` takes
    the optimal norm :math:`a^* \ge 0`, which a negative importance would make negative; but
    G is PSD, so :math:`a = G_{ii} \ge 0`, and with :math:`v < 0` the loss
    :math:`\ell(a, C)` increases in :math:`a \ge 0`: the norm stays at 0 and the loss is the
    constant :math:`(K - 1) v^2` at every capacity.
    """
    assert marginal.subs(K, 1) == 0 and marginal.subs(v, 0) == 0
    t = sympy.Symbol("t", nonnegative=True)
    assert sympy.simplify(marginal.subs(K, 1 + kappa).subs(C, 1 / (1 + t))).is_positive
    nu, alpha = sympy.symbols("nu alpha", nonnegative=True)
    in_norm = sympy.diff(loss_a_C, a).subs({v: -nu, a: alpha, K: 1 + kappa, C: 1 / (1 + t)})
    assert sympy.simplify(in_norm).is_nonnegative
    assert sympy.simplify(loss_a_C.subs(a, 0) - (K - 1) * v**2) == 0
    return sympy.Or(sympy.Le(v_any, 0), sympy.Eq(K, 1))


def _two_feature_split(level):
    """Capacity of the larger of two features sharing a budget of 1, and its boundary K."""
    # m = 2 level^2 with level > 0, so equal multipliers <=> equal levels, and the equation
    # becomes linear in C.
    (C_a,) = sympy.solve(sympy.Eq(level.subs(v, imp_a), level.subs({v: imp_b, C: 1 - C})), C)
    assert sympy.simplify(C_a - (imp_a * (K - 1) - 2 * imp_b) / ((K - 3) * (imp_a + imp_b))) == 0
    (boundary,) = sympy.solve(sympy.Eq(C_a, 1), K)
    assert sympy.simplify(boundary - (1 + 2 * imp_a / imp_b)) == 0
    return C_a, sympy.expand(boundary)


def _in_level_units(factor):
    """Evaluation steps for ``2 mu^2 * factor``, the level ``mu = v (K - 1) / D`` first.

    A marginal is 2 mu^2: formed from the level, it overflows or underflows only where the
    marginal itself does, for importances and kurtoses alike ((K - 1)^2 alone overflows
    from K ~ 1e154 on). ``factor`` (1 for the marginal) multiplies one of the two levels.
    """
    level_step = unevaluated(sympy.Mul, v, unevaluated(sympy.Mul, K - 1, 1 / D))
    steps = ((D, STABLE_DENOMINATOR), (w, level_step))
    other = w if factor == 1 else unevaluated(sympy.Mul, w, factor)
    return steps, unevaluated(sympy.Mul, unevaluated(sympy.Mul, 2, w), other)


def _in_importance_units(factor, power: int = 2):
    """Evaluation steps for ``v**power * factor``: ``w = v * factor``, then ``v * w``.

    The importance enters last, so a product of two huge or two tiny numbers is formed
    only when the result itself is out of range; ``factor`` uses the denominator ``D``.
    """
    steps = [(D, STABLE_DENOMINATOR)]
    if power == 2:
        steps.append((w, unevaluated(sympy.Mul, v, factor)))
        return tuple(steps), unevaluated(sympy.Mul, v, w)
    return tuple(steps), unevaluated(sympy.Mul, v, factor)


#: The denominator 2 + (K - 3) C as a sum of non-negative terms on C in [0, 1], K >= 1.
STABLE_DENOMINATOR = unevaluated(
    sympy.Add, unevaluated(sympy.Mul, 2, 1 - C), unevaluated(sympy.Mul, K - 1, C)
)


@functools.cache
def formulas() -> dict[str, Formula]:
    """Derive the quadratic model's closed forms, asserting each step.

    Returns
    -------
    dict of str to Formula
        Generated-function name -> formula, in the order they are emitted.
    """
    per_feature, gram_d_norm, gram_d_entry = _feature_loss_in_interference()
    loss_a_C = per_feature.subs(S, interference_at_capacity(a, C))
    a_star = tidy(minimise_over_norm(loss_a_C, a, C, {K: 1 + kappa}), C)
    assert sympy.simplify(a_star - (K - 1) * v * C / (2 + (K - 3) * C)) == 0

    loss = tidy(loss_a_C.subs(a, a_star), C)
    assert sympy.simplify(loss - 2 * (K - 1) * v**2 * (1 - C) / (2 + (K - 3) * C)) == 0
    marginal = tidy(-sympy.diff(loss, C), C)
    assert sympy.simplify(marginal - 2 * (K - 1) ** 2 * v**2 / (2 + (K - 3) * C) ** 2) == 0
    curvature = tidy(sympy.diff(loss, C, 2), C)
    benefit = tidy(loss.subs(C, 0) - loss, C)
    assert sympy.simplify(benefit - (K - 1) ** 2 * v**2 * C / (2 + (K - 3) * C)) == 0
    gain = sympy.factor(benefit.subs(C, 1))
    assert sympy.simplify(gain - (K - 1) * v**2) == 0
    assert sympy.expand(STABLE_DENOMINATOR - (2 + (K - 3) * C)) == 0

    # l(a, C) = l(C) + w (a - a*)^2: w weighs a norm's distance from its optimum.
    norm_weight = sympy.diff(loss_a_C, a, 2) / 2
    assert sympy.simplify(loss_a_C - loss - norm_weight * (a - a_star) ** 2) == 0

    # Partials at fixed C, in the parameters (the sensitivities' right-hand sides).
    marginal_dv, marginal_dK = sympy.diff(marginal, v), sympy.diff(marginal, K)
    loss_dv, loss_dK = sympy.diff(loss, v), sympy.diff(loss, K)
    textbook = 2 + (K - 3) * C
    for derived, stated in (
        (marginal_dv, 4 * (K - 1) ** 2 * v / textbook**2),
        (marginal_dK, 8 * (K - 1) * v**2 * (1 - C) / textbook**3),
        (loss_dv, 4 * (K - 1) * v * (1 - C) / textbook),
        (loss_dK, 4 * v**2 * (1 - C) ** 2 / textbook**2),
    ):
        assert sympy.simplify(derived - stated) == 0

    # The disciplined convex form: l(C) = l_inf + beta / (D0 + D1 C), a positive multiple
    # of the reciprocal of an affine function when beta > 0 (K > 3).
    denominator = sympy.denom(sympy.together(loss))
    intercept, slope = denominator.subs(C, 0), sympy.diff(denominator, C)
    assert (intercept, sympy.expand(denominator - (intercept + slope * C))) == (2, 0)
    dcp_constant = sympy.limit(loss, C, sympy.oo)
    dcp_coefficient = sympy.factor(sympy.simplify((loss - dcp_constant) * denominator))
    assert not dcp_coefficient.has(C)
    assert sympy.simplify(dcp_coefficient - 2 * (K - 1) ** 2 * v**2 / (K - 3)) == 0

    # The level: the root mu > 0 of m = 2 mu^2. C = 1/(1 + t) with t >= 0 spans (0, 1], so
    # positivity in t and kappa = K - 1 > 0 is positivity on the curve's own branch.
    level = tidy((K - 1) * v / (2 + (K - 3) * C), C)
    assert sympy.simplify(2 * level**2 - marginal) == 0
    t = sympy.Symbol("t", nonnegative=True)
    assert sympy.simplify(level.subs(K, 1 + kappa).subs(C, 1 / (1 + t))).is_positive
    (response,) = sympy.solve(sympy.Eq(level, mu), C)
    stable_response = (v + 2 * (v - mu) / (K - 3)) / mu
    assert sympy.simplify(response - stable_response) == 0
    assert sympy.simplify(marginal.subs(C, response) - 2 * mu**2) == 0
    response_loss = sympy.factor(sympy.simplify(loss.subs(C, response)))
    assert sympy.simplify(response_loss - 2 * (K - 1) * v * (mu - v) / (K - 3)) == 0
    full_level = sympy.simplify(level.subs(C, 1))
    ignore_level = sympy.simplify(level.subs(C, 0))
    assert (sympy.simplify(full_level - v), sympy.simplify(ignore_level - (K - 1) * v / 2)) == (0, 0)
    assert sympy.simplify(response.subs(mu, full_level) - 1) == 0
    assert sympy.simplify(response.subs(mu, ignore_level)) == 0
    flat = _flat_rule(loss_a_C, marginal)
    ignore_multiplier = sympy.factor(marginal.subs(C, 0))
    full_multiplier = sympy.factor(marginal.subs(C, 1))
    for multiplier, at_level in ((ignore_multiplier, ignore_level), (full_multiplier, full_level)):
        assert sympy.simplify(multiplier - 2 * at_level**2) == 0

    # A monotone marginal: dm/dC has the sign of 3 - K at every C, so over [0, 1] its extremes
    # are m(0) and m(1), whose log2 (finite where m itself would overflow) bound a curve's
    # scale. Emitted as 2 log2 v + log2 f(K), the importance's part first.
    assert sympy.factor(sympy.diff(marginal, C) + curvature) == 0
    assert sympy.simplify(curvature * textbook**3 / (K - 3)).subs(K, 1 + kappa).is_positive
    log2_ends = {}
    for name, multiplier, factor in (
        ("ignore", ignore_multiplier, unevaluated(sympy.Add, 2 * log2(K - 1), -1)),
        ("full", full_multiplier, sympy.Integer(1)),
    ):
        steps = ((w, factor),) if factor.free_symbols else ()
        result = unevaluated(sympy.Add, 2 * log2(v), w if steps else factor)
        value = result.subs(w, factor)
        logs = (value - sympy.log(multiplier, 2)).rewrite(sympy.log).subs(K, 1 + kappa)
        assert sympy.simplify(sympy.expand_log(logs, force=True)) == 0
        log2_ends[name] = (value, steps, result)

    C_a, boundary = _two_feature_split(level)
    worked = {imp_a: 2, imp_b: 1, K: 7}
    C_worked = C_a.subs(worked)
    loss_worked = loss.subs({v: 2, C: C_worked, K: 7}) + loss.subs({v: 1, C: 1 - C_worked, K: 7})
    assert (C_worked, 1 - C_worked, loss_worked) == (
        sympy.Rational(5, 6),
        sympy.Rational(1, 6),
        sympy.Rational(21, 4),
    )

    def per_importance(expr, factor, power=2):
        # Steps evaluating expr as v**power * factor, factor written over D; checked here.
        value = v**power * factor.subs(D, 2 + (K - 3) * C)
        assert sympy.simplify(value - expr) == 0, (expr, factor)
        return _in_importance_units(factor, power)

    def per_level(expr, factor):
        # Steps evaluating expr as 2 mu^2 * factor, mu the level; checked here.
        value = 2 * level**2 * factor.subs(D, 2 + (K - 3) * C)
        assert sympy.simplify(value - expr) == 0, (expr, factor)
        return _in_level_units(factor)

    def per_level_partial(expr, factor):
        # Steps evaluating expr as 2 mu * factor, mu the level; checked here.
        value = 2 * level * factor.subs(D, 2 + (K - 3) * C)
        assert sympy.simplify(value - expr) == 0, (expr, factor)
        steps, _ = _in_level_units(1)
        return steps, unevaluated(sympy.Mul, unevaluated(sympy.Mul, 2, w), factor)

    return {
        "quadratic_loss": Formula(
            (C, v, K),
            loss,
            "Loss of a feature at capacity C, with its norm and the bias optimised.",
            "l(C) = 2 (K - 1) v^2 (1 - C) / (2 + (K - 3) C)",
            *per_importance(loss, 2 * (K - 1) * (1 - C) / D),
        ),
        "quadratic_marginal": Formula(
            (C, v, K),
            marginal,
            "Marginal value of capacity, m(C) = -dl/dC.",
            "m(C) = 2 (K - 1)^2 v^2 / (2 + (K - 3) C)^2",
            *per_level(marginal, sympy.Integer(1)),
        ),
        "quadratic_curvature": Formula(
            (C, v, K),
            curvature,
            "Curvature d2l/dC2 of the loss curve.",
            "l''(C) = 4 (K - 1)^2 (K - 3) v^2 / (2 + (K - 3) C)^3; > 0 (diminishing returns) "
            "iff K > 3.",
            *per_level(curvature, 2 * (K - 3) / D),
        ),
        "quadratic_benefit": Formula(
            (C, v, K),
            benefit,
            "Loss removed by capacity C: the benefit l(0) - l(C), without cancellation.",
            "l(0) - l(C) = (K - 1)^2 v^2 C / (2 + (K - 3) C)",
            *per_importance(benefit, unevaluated(sympy.Mul, K - 1, (K - 1) * C / D)),
        ),
        "quadratic_gain": Formula(
            (v, K),
            gain,
            "Loss removed by a whole dimension: the gain l(0) - l(1), also the loss l(0).",
            "l(0) - l(1) = (K - 1) v^2",
            (),
            unevaluated(sympy.Mul, v, unevaluated(sympy.Mul, v, K - 1)),
        ),
        "quadratic_optimal_norm": Formula(
            (C, v, K),
            a_star,
            "Optimal squared embedding norm a = G_ii of a feature at capacity C.",
            "a*(C) = (K - 1) v C / (2 + (K - 3) C)",
            *per_importance(a_star, (K - 1) * C / D, power=1),
        ),
        "quadratic_feature_loss": Formula(
            (a, C, v, K),
            loss_a_C,
            "Loss of a feature with squared norm a = G_ii and capacity C, a not optimised.",
            "l(a, C) = (K - 1) (v - a)^2 + 2 a^2 (1/C - 1)",
        ),
        "quadratic_norm_weight": Formula(
            (C, K),
            norm_weight,
            "Weight of a norm's distance from its optimum: l(a, C) = l(C) + w (a - a*(C))^2.",
            "w(C) = (K - 1) + 2 (1/C - 1), half the curvature of l(a, C) in a; evaluated as a "
            "sum of non-negative terms.",
            ((w, K - 1),),
            w + 2 * (1 - C) / C,
        ),
        "quadratic_gram_loss": Formula(
            (a, S, v, K),
            per_feature,
            "Loss of a feature of an explicit W, in its row of G = W^T W; the loss is their sum.",
            "l(a, S) = (K - 1) (v - a)^2 + 2 S, a = G_ii, S = sum_{j != i} G_ij^2 (bias at its "
            "optimum).",
        ),
        "quadratic_gram_loss_d_norm": Formula(
            (a, v, K),
            gram_d_norm,
            "Partial dL/dG_ii of the loss of an explicit W.",
            "dl/da = -2 (K - 1) (v - a)",
        ),
        "quadratic_gram_loss_d_entry": Formula(
            (G_ij, v, K),
            gram_d_entry,
            "Partial dl_i/dG_ij (j != i, entries independent) of the loss of an explicit W.",
            "dl_i/dG_ij = 2 G_ij dl/dS = 4 G_ij; dL/dW = W (P + P^T) for the matrix P of partials.",
        ),
        "quadratic_bias_term": Formula(
            (a, v),
            v - a,
            "Feature's term of the loss-optimal bias of an explicit W.",
            "b* = sum_i (v_i - a_i)",
        ),
        "quadratic_bias_loss": Formula(
            (bias, b_opt),
            (bias - b_opt) ** 2,
            "Loss added by a bias other than the optimal one.",
            "L(b) - L(b*) = (b - b*)^2",
        ),
        "quadratic_marginal_d_importance": Formula(
            (C, v, K),
            marginal_dv,
            "Partial dm/dv of the marginal at fixed C.",
            "dm/dv = 4 (K - 1)^2 v / (2 + (K - 3) C)^2",
            *per_level_partial(marginal_dv, 2 * (K - 1) / D),
        ),
        "quadratic_marginal_d_kurtosis": Formula(
            (C, v, K),
            marginal_dK,
            "Partial dm/dK of the marginal at fixed C.",
            "dm/dK = 8 (K - 1) v^2 (1 - C) / (2 + (K - 3) C)^3",
            *per_level_partial(marginal_dK, 4 * v * (1 - C) / D**2),
        ),
        "quadratic_loss_d_importance": Formula(
            (C, v, K),
            loss_dv,
            "Partial dl/dv of the loss at fixed C.",
            "dl/dv = 4 (K - 1) v (1 - C) / (2 + (K - 3) C)",
            *per_importance(loss_dv, 4 * (K - 1) * (1 - C) / D, power=1),
        ),
        "quadratic_loss_d_kurtosis": Formula(
            (C, v, K),
            loss_dK,
            "Partial dl/dK of the loss at fixed C.",
            "dl/dK = 4 v^2 (1 - C)^2 / (2 + (K - 3) C)^2",
            *per_importance(loss_dK, 4 * (1 - C) ** 2 / D**2),
        ),
        "quadratic_dcp_coefficient": Formula(
            (v, K),
            dcp_coefficient,
            "Coefficient beta of the loss's disciplined convex form.",
            "l(C) = l_inf + beta / (2 + (K - 3) C), beta = 2 (K - 1)^2 v^2 / (K - 3), "
            "l_inf = -2 (K - 1) v^2 / (K - 3): beta inv_pos(affine) is convex for K > 3.",
        ),
        "quadratic_denominator_intercept": Formula(
            (K,),
            intercept,
            "Intercept D0 of the affine denominator D0 + D1 C of the loss curve.",
            "D0 = 2",
        ),
        "quadratic_denominator_slope": Formula(
            (K,),
            slope,
            "Slope D1 of the affine denominator D0 + D1 C of the loss curve.",
            "D1 = K - 3",
        ),
        "quadratic_level": Formula(
            (C, v, K),
            level,
            "Level mu = sqrt(m / 2) of a feature at capacity C; its marginal is 2 mu^2.",
            "mu(C) = (K - 1) v / (2 + (K - 3) C)",
            *per_importance(level, (K - 1) / D, power=1),
        ),
        "quadratic_response": Formula(
            (mu, v, K),
            response,
            "Capacity at which the level is mu: the inverse of quadratic_level, unclipped.",
            "C(mu) = ((K - 1) v / mu - 2) / (K - 3), evaluated as (v + 2 (v - mu) / (K - 3)) / mu; "
            "the response to lam = 2 mu^2 of a convex curve is C(mu) clipped to [0, 1]; "
            "undefined at K = 3 (constant marginal).",
            ((g, unevaluated(sympy.Add, v, -mu)),),
            (v + 2 * g / (K - 3)) / mu,
        ),
        "quadratic_response_loss": Formula(
            (mu, v, K),
            response_loss,
            "Loss at the capacity C(mu) of quadratic_response, affine in the level.",
            "l(C(mu)) = 2 (K - 1) v (mu - v) / (K - 3); undefined at K = 3.",
            ((g, unevaluated(sympy.Add, mu, -v)),),
            2 * (K - 1) * v * g / (K - 3),
        ),
        "quadratic_level_multiplier": Formula(
            (mu,),
            2 * mu**2,
            "Multiplier lam at level mu: the marginal of every feature at that level.",
            "lam = 2 mu^2",
        ),
        "quadratic_level_multiplier_slope": Formula(
            (mu,),
            sympy.diff(2 * mu**2, mu),
            "Slope dlam/dmu of the multiplier in the level (the sweeps' regime margins).",
            "dlam/dmu = 4 mu",
        ),
        "quadratic_multiplier_level": Formula(
            (lam,),
            sympy.sqrt(lam / 2),
            "Level mu at multiplier lam, the inverse of quadratic_level_multiplier.",
            "mu = sqrt(lam / 2)",
            ((w, lam / 2),),
            sympy.sqrt(w),
        ),
        "quadratic_full_level": Formula(
            (v, K),
            full_level,
            "Level at which the capacity reaches 1: below it the feature is monosemantic.",
            "mu(C = 1) = v",
        ),
        "quadratic_ignore_level": Formula(
            (v, K),
            ignore_level,
            "Level at which the capacity reaches 0: for K > 3, above it the feature is ignored.",
            "mu(C = 0) = (K - 1) v / 2, evaluated as v ((K - 1) / 2): one rounding for every v, "
            "subnormal ones included.",
            # (K - 1)/2 is exact for K < 2^53, so the product is the level correctly rounded;
            # halving v first would round a subnormal v. It is also the order the kernels have
            # always used: they take breakpoints from one pass and compare them for equality
            # with the same levels met in another, so every site must round alike.
            (),
            unevaluated(sympy.Mul, v, unevaluated(sympy.Mul, sympy.Rational(1, 2), K - 1)),
        ),
        "quadratic_flat": Formula(
            (v_any, K),
            flat,
            "Whether a feature's curve is flat: capacity removes none of its loss.",
            "flat iff v <= 0 or K = 1: the marginal 2 (K - 1)^2 v^2 / (2 + (K - 3) C)^2 vanishes "
            "identically at v = 0 or K = 1, and for v < 0 the norm a = G_ii >= 0 stays at 0, "
            "leaving the constant loss (K - 1) v^2.",
        ),
        "quadratic_full_multiplier": Formula(
            (v, K),
            full_multiplier,
            "Marginal at C = 1, the multiplier below which a feature is monosemantic.",
            "m(1) = 2 v^2; KKT: C = 1 needs lam <= m(1), sufficient when K > 3.",
            (),
            unevaluated(sympy.Mul, v, unevaluated(sympy.Mul, 2, v)),
        ),
        "quadratic_ignore_multiplier": Formula(
            (v, K),
            ignore_multiplier,
            "Marginal at C = 0, the multiplier above which a feature is ignored.",
            "m(0) = (K - 1)^2 v^2 / 2; KKT: C = 0 needs lam >= m(0), sufficient when K > 3.",
            # 2 mu^2 at the ignore level mu = (K - 1) v / 2 (see _in_level_units).
            ((w, unevaluated(sympy.Mul, v, (K - 1) / 2)),),
            unevaluated(sympy.Mul, unevaluated(sympy.Mul, 2, w), w),
        ),
        "quadratic_log2_ignore_multiplier": Formula(
            (v, K),
            log2_ends["ignore"][0],
            "log2 of the marginal at C = 0, its largest value if K > 3 and smallest if K < 3.",
            "log2 m(0) = 2 log2 v + 2 log2 (K - 1) - 1",
            *log2_ends["ignore"][1:],
        ),
        "quadratic_log2_full_multiplier": Formula(
            (v, K),
            log2_ends["full"][0],
            "log2 of the marginal at C = 1, the other end of its range over [0, 1].",
            "log2 m(1) = 2 log2 v + 1",
            *log2_ends["full"][1:],
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
