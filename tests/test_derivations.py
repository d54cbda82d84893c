"""The sympy derivations and the module they generate, ``capopt/_formulas.py``.

Checks that the committed module is fresh, that every generated function equals its sympy
expression at 50 digits, that derivatives and inverses agree numerically, and that the
functions broadcast and compile under numba.
"""

import functools
import inspect
import itertools
import math
import subprocess
import sys

import mpmath
import numba
import numpy as np
import pytest
import sympy
from hypothesis import given, strategies as st
from scipy.special import ndtr

from capopt import _formulas
from derivations import activations, codegen, kurtosis, linear_autoencoder, quadratic, tms, waterfilling
from derivations.moments import expectation, unit_variance_moments

FORMULAS = {
    **quadratic.formulas(),
    **waterfilling.formulas(),
    **linear_autoencoder.formulas(),
    **kurtosis.formulas(),
    **activations.formulas(),
    **tms.formulas(),
}

EPS = np.finfo(np.float64).eps

#: Generated formulas are a handful of correctly rounded operations on exact float inputs,
#: conditioned by at most ~1e2 on the domains below: a few 1e-14 at worst.
RTOL_VS_SYMPY = 1e-12
#: On the domains below (arguments within [1e-3, 1e2]) no formula takes a value this small
#: unless it is exactly 0, which the 50-digit evaluation of an unsimplified expression leaves
#: as a residue of ~1e-50 (e.g. d m / d K at C = 1, where m(1) = 2 v^2 does not depend on K).
ZERO_RESIDUE = 1e-30

#: Capacities are absolute quantities in [0, 1]. The inverse divides by K - 3, which
#: amplifies rounding by (2 + (K - 3) C) / |K - 3| <= 8 for |K - 3| >= 1/4: ~1e-14 in all.
ATOL_CAPACITY = 1e-12

# Scalar domains of the formulas' arguments.
# Tiny capacities would make results subnormal, which carry fewer digits than RTOL needs.
capacities = st.one_of(st.just(0.0), st.floats(1e-100, 1.0))
importances = st.floats(1e-2, 1e2)
# K = 1 means x^2 = 1 surely and makes l(1) = 0/0; from K = 1.01 the loss's denominator
# 2 + (K - 3) C stays >= 0.01.
kurtoses = st.floats(1.01, 50.0)
# The inverse of the marginal is undefined at K = 3, where the marginal is constant.
kurtoses_off_three = kurtoses.filter(lambda K: abs(K - 3.0) >= 0.25)

DEFAULT_DOMAINS = {
    "C": capacities,
    "v": importances,
    "K": kurtoses,
    "a": st.floats(0.0, 1e2),
    "b": importances,
    "I": importances,
    "p": st.floats(1e-3, 1.0),
    "K_z": st.floats(1.0, 10.0),
    "S": st.floats(0.0, 1e2),
    "G_ij": st.floats(-1e2, 1e2),
    "bias": st.floats(-1e2, 1e2),
    "b_opt": st.floats(-1e2, 1e2),
    "z": st.floats(-8.0, 8.0),
    "cdf": st.floats(1e-3, 1.0),
}


@functools.cache
def _mp_function(name):
    formula = FORMULAS[name]
    return sympy.lambdify(formula.args, formula.expr, modules="mpmath")


def high_precision(name, *args):
    """The sympy expression of ``name`` evaluated with mpmath at 50 digits."""
    with mpmath.workdps(50):
        return _mp_function(name)(*map(mpmath.mpf, args))


@st.composite
def away_from_ends(draw):
    """(C, v, K) with C >= 0.1 and |K - 3| >= 1/4, where the inverses are well conditioned."""
    return draw(st.floats(0.1, 1.0)), draw(importances), draw(kurtoses_off_three)


def _level_on_curve(point):
    C, v, K = point
    return float(high_precision("quadratic_level", C, v, K)), v, K


@st.composite
def gap_above_reference(draw):
    """(v, K, v_ref, K_ref) as the kernels' assembly meets them: v_ref <= v <= 2 v_ref and
    K_ref = 3 (a level) or 3 < K_ref <= K (an affine curve), so no term of D cancels."""
    v_ref = draw(importances)
    K = draw(st.floats(3.0, 50.0))
    K_ref = draw(st.one_of(st.just(3.0), st.floats(3.0, K)))
    return v_ref * draw(st.floats(1.0, 2.0)), K, v_ref, K_ref


@st.composite
def affine_total(draw):
    """(mu, W, n, K) with z(W) / mu >= 2 n: affine curves' total, far from cancelling."""
    W, n, K = draw(importances), float(draw(st.integers(1, 5))), draw(st.floats(3.25, 50.0))
    return (K - 1) * W / (4 * n) * draw(st.floats(1e-3, 1.0)), W, n, K


@st.composite
def folded_sums(draw):
    """(mu, A, B, E, ref) with mu <= ref: every term of the folded numerator >= 0."""
    A, B, E, ref = (draw(st.floats(1e-2, 1e2)) for _ in range(4))
    return ref * draw(st.floats(0.0, 1.0)), A, B, E, ref


@st.composite
def two_features(draw):
    """(a, b, K) with a >= b and K >= 3.5, where a (K - 1) - 2 b >= a (K - 3) is far from 0."""
    b = draw(importances)
    return b * draw(st.floats(1.0, 10.0)), b, draw(st.floats(3.5, 50.0))


DOMAINS = {
    name: st.tuples(*(DEFAULT_DOMAINS[str(arg)] for arg in formula.args))
    for name, formula in FORMULAS.items()
    if all(str(arg) in DEFAULT_DOMAINS for arg in formula.args)
}
DOMAINS |= {
    # l(a, C) has a^2 / C: keep C off 0.
    "quadratic_feature_loss": st.tuples(
        DEFAULT_DOMAINS["a"], st.floats(1e-3, 1.0), importances, kurtoses
    ),
    "quadratic_response": away_from_ends().map(_level_on_curve),
    "quadratic_response_loss": away_from_ends().map(_level_on_curve),
    "quadratic_level_multiplier": st.tuples(st.floats(1e-3, 1e3)),
    "quadratic_level_multiplier_slope": st.tuples(st.floats(1e-3, 1e3)),
    "quadratic_multiplier_level": st.tuples(st.floats(1e-3, 1e3)),
    "two_feature_capacity": two_features(),
    # Whether a curve is flat: v of either sign and 0, K at 1 and above.
    "quadratic_flat": st.tuples(st.one_of(st.just(0.0), st.floats(-1e2, 1e2)),
                                st.one_of(st.just(1.0), kurtoses)),
    # The water-filling algebra where the kernels use it (a convex curve's offset and slope
    # divide by K - 3; sums whose terms do not cancel).
    "quadratic_response_offset": st.tuples(kurtoses_off_three),
    "quadratic_response_slope": st.tuples(importances, kurtoses_off_three),
    "quadratic_numerator_gap": gap_above_reference(),
    "quadratic_response_total": affine_total(),
    "quadratic_folded_numerator": folded_sums(),
    "quadratic_shared_level": st.tuples(*[st.floats(1e-3, 1e2)] * 3),
    "quadratic_shared_numerator": st.tuples(*[st.floats(0.0, 1e2)] * 4, st.floats(-1e2, 0.0)),
    # The TMS loss's truncated powers: a > 0 (r/a), the interference r of either sign.
    "tms_active_loss": st.tuples(st.floats(-3.0, 3.0), st.floats(1e-2, 1e2)),
    "tms_active_square_coefficient": st.tuples(st.floats(1e-2, 1e2)),
    "tms_active_cube_coefficient": st.tuples(st.floats(1e-2, 1e2)),
    "tms_ignored_bias": st.tuples(st.floats(1e-3, 1.0)),
    "tms_ignored_loss": st.tuples(st.floats(1e-3, 1.0)),
    # w(C) has 1/C: keep C off 0.
    "quadratic_norm_weight": st.tuples(st.floats(1e-3, 1.0), kurtoses),
    # The partial fraction divides by K - 3.
    "quadratic_dcp_coefficient": st.tuples(importances, kurtoses_off_three),
    # GeLU' = Phi(z) + z phi(z): two non-negative terms for z >= 0; below, the sum has a root
    # (z ~ -0.75) near which no evaluation is accurate relative to the result.
    "gelu_slope": st.floats(0.0, 8.0).map(lambda z: (z, float(ndtr(z)))),
}


def _arguments(name):
    return [str(arg) for arg in FORMULAS[name].args]


# --- (a) freshness of the committed module -------------------------------------------------


def test_check_passes_on_committed_module(capsys):
    assert codegen.main(["--check"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "up to date" in out


def test_check_fails_with_diff_when_module_is_altered(tmp_path, monkeypatch, capsys):
    altered = tmp_path / "_formulas.py"
    text = codegen.TARGET.read_text(encoding="utf-8")
    assert "return v*(2*v) + 0*K" in text, "the line this test alters is gone"
    altered.write_text(text.replace("return v*(2*v) + 0*K", "return v*(3*v) + 0*K"), "utf-8")
    monkeypatch.setattr(codegen, "TARGET", altered)
    assert codegen.main(["--check"]) == 1
    diff = capsys.readouterr().out
    assert "-    return v*(3*v) + 0*K" in diff and "+    return v*(2*v) + 0*K" in diff


def test_regeneration_replaces_module_with_rendered_text(tmp_path, monkeypatch):
    target = tmp_path / "_formulas.py"
    target.write_text("stale\n", encoding="utf-8")
    monkeypatch.setattr(codegen, "TARGET", target)
    assert codegen.main([]) == 0
    assert target.read_text(encoding="utf-8") == codegen.render()
    assert [p.name for p in tmp_path.iterdir()] == ["_formulas.py"], "temporary file left behind"


def test_generated_module_imports_without_sympy():
    code = "import sys, capopt._formulas; print('sympy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_every_generated_function_has_a_derivation():
    assert set(_formulas.__all__) == set(FORMULAS) | {"BASE_FOURTH_MOMENT"}
    for name in FORMULAS:
        assert _arguments(name) == list(inspect.signature(getattr(_formulas, name)).parameters)


# --- (b) generated code against the sympy expressions ---------------------------------------


@pytest.mark.parametrize("name", sorted(FORMULAS))
@given(data=st.data())
def test_generated_function_equals_sympy_expression_at_50_digits(name, data):
    args = data.draw(DOMAINS[name], label="args")
    got = getattr(_formulas, name)(*args)
    want = float(high_precision(name, *args))
    assert got == pytest.approx(want, rel=RTOL_VS_SYMPY, abs=ZERO_RESIDUE)


def test_base_fourth_moments_are_the_derived_values():
    assert _formulas.BASE_FOURTH_MOMENT == {"gaussian": 3.0, "rademacher": 1.0, "uniform": 1.8}
    derived = kurtosis.base_fourth_moments()
    assert {name: float(value) for name, value in derived.items()} == _formulas.BASE_FOURTH_MOMENT


# --- the derivation's steps, checked independently -------------------------------------------


def test_expectation_factorises_over_independent_inputs():
    x, y, K = sympy.symbols("x y K")
    rule = unit_variance_moments({}, {x: K, y: 3})
    assert expectation((x**2 + y) ** 2, [x, y], rule) == K + 1
    assert expectation(x * y + 2, [x, y], rule) == 2
    with pytest.raises(ValueError, match="not given"):
        expectation(x**3, [x], rule)


def _two_point(pi):
    """Values and probabilities of a skewed two-point law with mean 0 and variance 1."""
    values = np.array([math.sqrt((1 - pi) / pi), -math.sqrt(pi / (1 - pi))])
    return values, np.array([pi, 1 - pi])


@given(
    W=st.lists(st.floats(-2.0, 2.0), min_size=6, max_size=6).map(lambda w: np.reshape(w, (2, 3))),
    v=st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3).map(np.array),
    pis=st.lists(st.floats(0.05, 0.95), min_size=3, max_size=3),
)
def test_quadratic_loss_at_best_bias_separates_by_exact_enumeration(W, v, pis):
    # Skewed inputs have third moments, which the separated form claims drop out.
    laws = [_two_point(pi) for pi in pis]
    K = np.array([np.sum(p * x**4) for x, p in laws])
    G = W.T @ W
    points = np.array(list(itertools.product(*(x for x, _ in laws))))
    weights = np.prod(np.array(list(itertools.product(*(p for _, p in laws)))), axis=1)
    error = points**2 @ v - np.einsum("si,ij,sj->s", points, G, points)
    bias = weights @ error  # the best constant is the mean error
    enumerated = weights @ (error - bias) ** 2
    separated = np.sum((K - 1) * (v - np.diag(G)) ** 2) + 2 * np.sum((G - np.diag(np.diag(G))) ** 2)
    assert bias == pytest.approx(np.sum(v - np.diag(G)), rel=1e-12, abs=1e-12)
    assert enumerated == pytest.approx(separated, rel=1e-10, abs=1e-10)


@given(C=st.floats(1e-3, 1.0), v=importances, K=kurtoses, a=st.floats(0.0, 1e2))
def test_optimal_norm_minimises_feature_loss(C, v, K, a):
    a_star = _formulas.quadratic_optimal_norm(C, v, K)
    best = _formulas.quadratic_feature_loss(a_star, C, v, K)
    assert best == pytest.approx(_formulas.quadratic_loss(C, v, K), rel=1e-12, abs=1e-12 * v**2)
    assert _formulas.quadratic_feature_loss(a, C, v, K) >= best * (1 - 1e-12)


# --- (c) derivatives against central differences ----------------------------------------------

#: Step of the central differences: a power of two, so that C +- h is exact for C on the
#: grid of multiples of h below, and close to the optimal eps^(1/3) ~ 6e-6.
STEP = 2.0**-17

#: Relative error of one evaluation of a generated formula: ~8 correctly rounded operations
#: (eps/2 each) amplified at most 4x by the denominator 2 + (K - 3) C >= 1/2 for K >= 1.5.
EVALUATION_RTOL = 16 * EPS

grid_capacities = st.integers(1, 2**17 - 1).map(lambda k: k * STEP)
# K >= 1.5 keeps the denominator >= 1/2 over the whole grid, so EVALUATION_RTOL holds.
moderate_kurtoses = st.floats(1.5, 50.0)


@functools.cache
def _derivative(order):
    """d^order l / dC^order of the quadratic loss as a numpy function of (C, v, K)."""
    formula = FORMULAS["quadratic_loss"]
    return sympy.lambdify(formula.args, sympy.diff(formula.expr, formula.args[0], order), "numpy")


def central_difference_error_bound(f, third_derivative, C, h):
    """Bound on |(f(C + h) - f(C - h)) / 2h - f'(C)|.

    Truncation: the symmetric difference is f' + h^2/12 (f'''(xi1) + f'''(xi2)), at most
    h^2/6 max|f'''| on [C - h, C + h]; every derivative here is const / (2 + (K - 3) C)^n,
    monotone in C, so the maximum is at an end. Rounding: each value is off by
    EVALUATION_RTOL |f|, so the difference quotient by 2 EVALUATION_RTOL max|f| / 2h.
    """
    ends = np.array([C - h, C + h])
    truncation = h**2 / 6 * np.max(np.abs(third_derivative(ends)))
    rounding = EVALUATION_RTOL * np.max(np.abs(f(np.array([C - h, C, C + h])))) / h
    return truncation + rounding


def _central_difference(f, C, h=STEP):
    return (f(C + h) - f(C - h)) / (2 * h)


@given(C=grid_capacities, v=importances, K=moderate_kurtoses)
def test_marginal_is_minus_derivative_of_loss(C, v, K):
    def loss(c):
        return _formulas.quadratic_loss(c, v, K)

    marginal = _formulas.quadratic_marginal(C, v, K)
    bound = central_difference_error_bound(loss, lambda c: _derivative(3)(c, v, K), C, STEP)
    assert abs(-_central_difference(loss, C) - marginal) <= bound + EVALUATION_RTOL * marginal


@given(C=grid_capacities, v=importances, K=moderate_kurtoses)
def test_curvature_is_minus_derivative_of_marginal(C, v, K):
    def marginal(c):
        return _formulas.quadratic_marginal(c, v, K)

    curvature = _formulas.quadratic_curvature(C, v, K)
    # The marginal's third derivative is -l''''.
    bound = central_difference_error_bound(marginal, lambda c: _derivative(4)(c, v, K), C, STEP)
    error = abs(-_central_difference(marginal, C) - curvature)
    assert error <= bound + EVALUATION_RTOL * abs(curvature)


# --- (d) the level and its inverse -----------------------------------------------------------


@given(C=capacities, v=importances, K=kurtoses)
def test_marginal_is_twice_the_square_of_the_level(C, v, K):
    level = _formulas.quadratic_level(C, v, K)
    lam = _formulas.quadratic_level_multiplier(level)
    assert lam == pytest.approx(_formulas.quadratic_marginal(C, v, K), rel=1e-14)
    assert _formulas.quadratic_multiplier_level(lam) == pytest.approx(level, rel=1e-14)


@given(C=capacities, v=importances, K=kurtoses_off_three)
def test_response_inverts_the_level(C, v, K):
    level = _formulas.quadratic_level(C, v, K)
    assert _formulas.quadratic_response(level, v, K) == pytest.approx(C, abs=ATOL_CAPACITY)


@given(point=away_from_ends())
def test_response_loss_is_the_loss_at_the_response(point):
    C, v, K = point
    level = _formulas.quadratic_level(C, v, K)
    expected = _formulas.quadratic_loss(C, v, K)
    got = _formulas.quadratic_response_loss(level, v, K)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12 * v**2)


@given(v=importances, K=kurtoses_off_three)
def test_thresholds_are_the_levels_and_marginals_at_zero_and_full_capacity(v, K):
    f = _formulas
    for C, multiplier, level in (
        (0.0, f.quadratic_ignore_multiplier(v, K), f.quadratic_ignore_level(v, K)),
        (1.0, f.quadratic_full_multiplier(v, K), f.quadratic_full_level(v, K)),
    ):
        assert multiplier == pytest.approx(f.quadratic_marginal(C, v, K), rel=1e-14)
        assert level == pytest.approx(f.quadratic_level(C, v, K), rel=1e-14)
        assert f.quadratic_response(level, v, K) == pytest.approx(C, abs=ATOL_CAPACITY)


@given(C=capacities, v=importances, K=kurtoses)
def test_benefit_and_gain_are_loss_differences(C, v, K):
    f = _formulas
    loss0 = f.quadratic_loss(0.0, v, K)
    difference = loss0 - f.quadratic_loss(C, v, K)
    assert f.quadratic_benefit(C, v, K) == pytest.approx(difference, rel=1e-12, abs=1e-12 * loss0)
    assert f.quadratic_gain(v, K) == pytest.approx(loss0, rel=1e-14)


# --- (d') accuracy where the textbook forms cancel or overflow -----------------------------

#: The stable forms are a handful of correctly rounded operations on sums of non-negative
#: terms or on exact differences: a few ulps whatever the arguments.
STABLE_RTOL = 64 * EPS

#: K a hair from 1 (above) or 3 (both sides): |K - k| from 1e-15 (a few ulps of 3) to 1e-6.
hair_kurtoses = st.tuples(st.sampled_from([1.0, 3.0, -3.0]), st.floats(1e-15, 1e-6)).map(
    lambda pair: 3.0 - pair[1] if pair[0] < 0 else pair[0] + pair[1]
)


@pytest.mark.parametrize(
    "name",
    ["quadratic_loss", "quadratic_marginal", "quadratic_curvature", "quadratic_benefit",
     "quadratic_level", "quadratic_optimal_norm"],
)
@given(C=st.one_of(st.floats(0.0, 1.0), st.floats(1.0 - 1e-9, 1.0)), v=importances, K=hair_kurtoses)
def test_forms_are_accurate_a_hair_from_one_and_three(name, C, v, K):
    got = getattr(_formulas, name)(C, v, K)
    want = float(high_precision(name, C, v, K))
    assert got == pytest.approx(want, rel=STABLE_RTOL, abs=1e-300)


@given(C=st.floats(0.1, 1.0), v=importances, gap=st.floats(1e-15, 1e-3), side=st.sampled_from([-1.0, 1.0]))
def test_response_is_accurate_a_hair_from_three(C, v, gap, side):
    # In the level the response's condition number is 1 / |K - 3|; given the level as a
    # float, the gap form loses nothing more to cancellation.
    K = 3.0 + side * gap
    level = _formulas.quadratic_level(C, v, K)
    with mpmath.workdps(50):
        mu, vv, KK = mpmath.mpf(level), mpmath.mpf(v), mpmath.mpf(K)
        want = float(((KK - 1) * vv / mu - 2) / (KK - 3))
    got = _formulas.quadratic_response(level, v, K)
    assert got == pytest.approx(want, rel=STABLE_RTOL, abs=STABLE_RTOL)


@pytest.mark.parametrize("name", ["quadratic_loss", "quadratic_marginal", "quadratic_benefit"])
@given(C=capacities, exponent=st.integers(-1000, 1000), K=kurtoses)
def test_forms_overflow_only_where_the_value_does(name, C, exponent, K):
    v = 1.25 * 2.0**exponent
    with np.errstate(over="ignore", under="ignore"):
        got = getattr(_formulas, name)(C, v, K)
    want = high_precision(name, C, v, K)
    if want > np.finfo(np.float64).max:
        assert got == np.inf
    elif want >= 1e-300:
        assert got == pytest.approx(float(want), rel=STABLE_RTOL)


# --- (e) two features on one neuron -----------------------------------------------------------


def _two_feature_loss(C_a, a, b, K):
    return _formulas.quadratic_loss(C_a, a, K) + _formulas.quadratic_loss(1 - C_a, b, K)


def test_two_feature_worked_case_splits_five_sixths_one_sixth_with_loss_21_over_4():
    C_a = _formulas.two_feature_capacity(2.0, 1.0, 7.0)
    assert (C_a, 1 - C_a) == pytest.approx((5 / 6, 1 / 6), rel=1e-15)
    assert _two_feature_loss(C_a, 2.0, 1.0, 7.0) == pytest.approx(5.25, rel=1e-15)
    grid = np.linspace(0.0, 1.0, 1001)
    assert np.min(_two_feature_loss(grid, 2.0, 1.0, 7.0)) >= 5.25 - 1e-12


def test_two_feature_at_kurtosis_two_is_monosemantic():
    assert _formulas.two_feature_polysemantic_kurtosis(2.0, 1.0) == 5.0
    grid = np.linspace(0.0, 1.0, 1001)
    losses = _two_feature_loss(grid, 2.0, 1.0, 2.0)
    assert grid[np.argmin(losses)] == 1.0
    assert np.min(losses) == pytest.approx(1.0, rel=1e-15)  # (K - 1) b^2: b ignored


@given(b=importances, ratio=st.floats(1.1, 10.0))
def test_two_feature_capacity_reaches_one_at_polysemantic_kurtosis(b, ratio):
    a = b * ratio
    K = _formulas.two_feature_polysemantic_kurtosis(a, b)
    assert _formulas.two_feature_capacity(a, b, K) == pytest.approx(1.0, abs=ATOL_CAPACITY)


@given(point=two_features())
def test_two_feature_capacity_equalises_marginals(point):
    a, b, K = point
    C_a = _formulas.two_feature_capacity(a, b, K)
    m_a = _formulas.quadratic_marginal(C_a, a, K)
    assert m_a == pytest.approx(_formulas.quadratic_marginal(1 - C_a, b, K), rel=1e-12)


# --- (f) shapes and compilation ---------------------------------------------------------------

#: An interior point of every argument's domain.
SAMPLE = {
    "C": 0.5, "v": 1.5, "K": 5.0, "a": 2.0, "b": 1.0, "lam": 1.0, "mu": 2.0, "I": 2.0, "p": 0.1,
    "K_z": 3.0, "S": 0.5, "G_ij": -0.5, "bias": 0.5, "b_opt": 1.5,
    "z": -0.5, "cdf": 0.3, "v_ref": 1.0, "K_ref": 4.0, "W": 3.0, "n": 2.0, "A": 1.5, "B": 0.5,
    "E": 0.4, "ref": 1.0, "R": 1.5, "P": 6.0, "Q": 0.3, "num": 3.0, "gap": 1.0, "r": -0.3,
}


def _broadcasting_arguments(name):
    """Argument i has length i + 2 on axis i and length 1 elsewhere."""
    names = _arguments(name)
    return [
        np.full([i + 2 if axis == i else 1 for axis in range(len(names))], SAMPLE[arg])
        for i, arg in enumerate(names)
    ]


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_generated_function_returns_broadcast_shape_of_all_arguments(name):
    args = _broadcasting_arguments(name)
    result = getattr(_formulas, name)(*args)
    assert np.shape(result) == np.broadcast_shapes(*(a.shape for a in args))
    assert np.all(np.isfinite(result))


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_generated_function_compiles_under_numba(name):
    args = [np.linspace(0.5, 1.0, 4) * SAMPLE[arg] for arg in _arguments(name)]
    function = getattr(_formulas, name)
    compiled, plain = numba.njit(function)(*args), function(*args)
    if plain.dtype == np.bool_:  # a predicate (quadratic_flat)
        np.testing.assert_array_equal(compiled, plain)
    else:
        np.testing.assert_allclose(compiled, plain, rtol=1e-15)
