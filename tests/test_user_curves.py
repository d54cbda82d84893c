"""User-supplied loss curves: callables and tables, their derivatives, shapes and checks.

Reference values come from the quadratic model's derived formulas (capopt._formulas,
regenerated from sympy in derivations/), which the user curves here re-express as
plain functions or tables.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import capopt
from capopt import _formulas as F
from capopt.curves import LossCurves, Shape
from capopt.solvers import solve
from capopt.user_curves import (
    TabulatedCurves,
    from_functions,
    from_table,
    shapes_from_slopes,
)

EPS = np.finfo(np.float64).eps

#: Bound on the first-derivative stencil's error (FunctionCurves docstring): truncation
#: h^2/3 max|l'''| plus rounding 4 eps max|l| / h; the rounding term is doubled because
#: each evaluation of the loss formula itself carries up to ~2 ulps.
FD_STEP = 2.0**-17
#: Same for the second-derivative stencil: 11/12 h^2 max|l''''| + 12 eps max|l| / h^2, doubled.
FD2_STEP = 2.0**-13


def quadratic_function(v, K):
    return lambda C: F.quadratic_loss(C, v, K)


def quadratic_marginal(v, K):
    return lambda C: F.quadratic_marginal(C, v, K)


def quadratic_derivatives(v, K):
    """max over [0, 1] of |l|, |l'''| and |l''''| of the quadratic curve, in closed form.

    l''' = -12 (K-1)^2 (K-3)^2 v^2 / q^4 and l'''' = 48 (K-1)^2 (K-3)^3 v^2 / q^5 with
    q = 2 + (K-3) C, extreme where q is smallest (an end point); |l| peaks at C = 0.
    """
    q = min(2.0, 2.0 + (K - 3.0))
    return (
        (K - 1) * v**2,
        12 * (K - 1) ** 2 * (K - 3) ** 2 * v**2 / q**4,
        48 * (K - 1) ** 2 * abs(K - 3) ** 3 * v**2 / q**5,
    )


# --------------------------------------------------------------------------------------
# Tables


@pytest.mark.parametrize("M", [2, 5, 33])
def test_table_reproduces_the_curve_at_its_grid_points(M):
    grid = np.linspace(0.0, 1.0, M)
    v, K = np.array([1.5, 0.7, 2.0]), np.array([2.0, 3.0, 7.0])
    values = F.quadratic_loss(grid[None, :], v[:, None], K[:, None])
    curves = from_table(grid, values)
    at_grid = curves.loss(np.broadcast_to(grid[:, None], (M, 3))).T
    np.testing.assert_array_equal(at_grid, values)


def test_table_interpolates_linearly_between_grid_points():
    grid = np.array([0.0, 0.25, 1.0])
    curves = from_table(grid, [[4.0, 2.0, 0.5]])
    at = np.array([[0.125], [0.625]])
    np.testing.assert_allclose(curves.loss(at)[:, 0], [3.0, 1.25], rtol=1e-15)


@pytest.mark.parametrize(
    "K, shape", [(2.0, Shape.CONCAVE), (3.0, Shape.LINEAR), (7.0, Shape.CONVEX)]
)
@pytest.mark.parametrize("M", [3, 11, 201])
def test_table_detects_the_shape_of_a_quadratic_curve(K, shape, M):
    grid = np.linspace(0.0, 1.0, M)
    curves = from_table(grid, F.quadratic_loss(grid, 1.3, K)[None, :])
    assert curves.shapes == (shape,)


def test_table_marginal_takes_the_right_piece_at_a_knot_and_the_last_at_one():
    curves = from_table([0.0, 0.5, 1.0], [[3.0, 1.0, 0.5]])
    C = np.array([0.0, 0.25, 0.5, 0.75, 1.0])[:, None]
    np.testing.assert_array_equal(curves.marginal(C)[:, 0], [4.0, 4.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(curves.curvature(C)[:, 0], 0.0)


@given(st.floats(0.0, 5.0))
def test_table_capacity_at_matches_bisection_on_its_marginal(lam):
    # Independent route: the base-class bisection on the marginal (LossCurves.capacity_at).
    grid = np.linspace(0.0, 1.0, 9)
    curves = from_table(grid, F.quadratic_loss(grid[None, :], np.array([[1.0], [0.6]]), 9.0))
    assert curves.shape is Shape.CONVEX
    exact = curves.capacity_at(lam)
    bisected = LossCurves.capacity_at(curves, lam)
    np.testing.assert_allclose(exact, bisected, atol=1e-15)
    assert np.all(np.isin(exact, grid))


def test_noisy_table_is_irregular_until_the_tolerance_admits_the_noise():
    # A straight line (the quadratic curve at K = 3, slope -2) measured with noise 1e-6.
    grid = np.linspace(0.0, 1.0, 21)
    noise = 1e-6 * np.random.default_rng(0).standard_normal(21)
    values = (F.quadratic_loss(grid, 1.0, 3.0) + noise)[None, :]
    assert from_table(grid, values).shapes == (Shape.IRREGULAR,)
    # The noise changes slopes by at most ~4e-6 / 0.05 = 8e-5, i.e. 4e-5 of the slope 2.
    assert from_table(grid, values, shape_rtol=1e-4).shapes == (Shape.LINEAR,)


def test_table_inputs_are_copied_and_read_only():
    grid = np.linspace(0.0, 1.0, 4)
    values = np.array([[3.0, 2.0, 1.0, 0.0]])
    curves = from_table(grid, values)
    values[0, 0] = 100.0
    assert curves.loss([0.0])[0] == 3.0
    assert not curves.values.flags.writeable and not curves.grid.flags.writeable


def test_solvers_accept_tables():
    # A concave and a convex table against the grid DP on the table's own knots. With the
    # budget a multiple of the knot spacing the DP is exact here: a piecewise-linear
    # problem attains its optimum at a vertex, where every capacity but one sits on a knot
    # and the budget puts the last one on a knot too. (Its certificate still reports the
    # generic grid bound, hence throw=False.)
    grid = np.linspace(0.0, 1.0, 5)
    values = np.stack([F.quadratic_loss(grid, 1.0, 2.0), F.quadratic_loss(grid, 1.2, 9.0)])
    curves = from_table(grid, values)
    assert curves.shape is Shape.MIXED
    best = solve(curves, 1.25)
    reference = solve(curves, 1.25, method="dp", resolution=4, throw=False)
    assert best.method == "global"
    assert best.loss == pytest.approx(reference.loss, rel=1e-12)


# --------------------------------------------------------------------------------------
# Callables


@pytest.mark.parametrize("K", [1.5, 2.0, 3.0, 7.0, 20.0])
def test_finite_difference_marginal_matches_the_analytic_marginal_within_its_bound(K):
    v = 1.3
    curves = from_functions([quadratic_function(v, K)])
    # Both ends, the switch between one-sided and central stencils, and a uniform sweep.
    ends = [0.0, 1e-7, FD_STEP, 0.5, 1 - FD_STEP, 1 - 1e-7, 1.0]
    C = np.concatenate([ends, np.linspace(0, 1, 101)])
    l_max, l3_max, _ = quadratic_derivatives(v, K)
    bound = FD_STEP**2 / 3 * l3_max + 2 * 4 * EPS * l_max / FD_STEP
    error = np.abs(curves.marginal(C[:, None])[:, 0] - F.quadratic_marginal(C, v, K))
    assert error.max() <= bound


@pytest.mark.parametrize("K", [1.5, 2.0, 7.0, 20.0])
def test_finite_difference_curvature_matches_the_analytic_curvature_within_its_bound(K):
    v = 0.8
    curves = from_functions([quadratic_function(v, K)])
    C = np.linspace(0.0, 1.0, 57)
    l_max, _, l4_max = quadratic_derivatives(v, K)
    bound = 11 / 12 * FD2_STEP**2 * l4_max + 2 * 12 * EPS * l_max / FD2_STEP**2
    error = np.abs(curves.curvature(C[:, None])[:, 0] - F.quadratic_curvature(C, v, K))
    assert error.max() <= bound


def test_curvature_from_supplied_marginals_uses_the_first_derivative_stencil():
    v, K = 0.8, 7.0
    curves = from_functions([quadratic_function(v, K)], [quadratic_marginal(v, K)])
    C = np.linspace(0.0, 1.0, 21)[:, None]
    # m is the derivative here, so the first-derivative bound applies with m, m'' in
    # place of l, l''' (m'' = -l''''); max|m| = m at the steeper end.
    _, _, l4_max = quadratic_derivatives(v, K)
    m_max = F.quadratic_marginal(0.0, v, K)
    bound = FD_STEP**2 / 3 * l4_max + 2 * 4 * EPS * m_max / FD_STEP
    assert np.abs(curves.curvature(C) - F.quadratic_curvature(C, v, K)).max() <= bound


def test_functions_with_and_without_marginals_agree_with_the_quadratic_family():
    v, K = np.array([1.0, 0.5, 2.0]), np.array([2.0, 3.0, 9.0])
    reference = capopt.quadratic(v, K)
    losses = [quadratic_function(a, b) for a, b in zip(v, K)]
    plain = from_functions(losses)
    given_m = from_functions(losses, [quadratic_marginal(a, b) for a, b in zip(v, K)])
    C = np.random.default_rng(1).uniform(size=(6, 3))
    for curves in (plain, given_m):
        assert curves.shapes == reference.shapes
        np.testing.assert_array_equal(curves.loss(C), reference.loss(C))
    np.testing.assert_array_equal(given_m.marginal(C), reference.marginal(C))
    np.testing.assert_allclose(plain.marginal(C), reference.marginal(C), rtol=1e-8)


def test_finite_differences_never_evaluate_outside_the_unit_interval():
    def guarded(C):
        C = np.asarray(C)
        return np.where((C < 0) | (C > 1), np.nan, (1 - C) ** 3)

    curves = from_functions([guarded])
    C = np.array([0.0, 1e-9, 0.5, 1 - 1e-9, 1.0])[:, None]
    assert np.all(np.isfinite(curves.marginal(C)))
    assert np.all(np.isfinite(curves.curvature(C)))


def test_scalar_functions_run_with_vectorized_false():
    curves = from_functions([lambda C: math.exp(-3 * C), lambda C: 1 - C], vectorized=False)
    assert curves.shapes == (Shape.CONVEX, Shape.LINEAR)
    np.testing.assert_allclose(curves.loss([0.5, 0.5]), [math.exp(-1.5), 0.5], rtol=1e-15)
    np.testing.assert_allclose(curves.marginal([0.5, 0.5]), [3 * math.exp(-1.5), 1.0], rtol=1e-9)


def test_functions_evaluate_over_leading_axes():
    curves = from_functions([quadratic_function(1.0, 7.0), quadratic_function(2.0, 2.0)])
    C = np.random.default_rng(2).uniform(size=(4, 5, 2))
    for method in (curves.loss, curves.marginal, curves.curvature):
        out = method(C)
        assert out.shape == C.shape
        np.testing.assert_array_equal(out[1, 3], method(C[1, 3]))


def test_wiggly_function_is_irregular_and_auto_solves_it_by_dynamic_programming():
    curves = from_functions([lambda C: 1 - C + 0.1 * np.sin(12 * C), lambda C: (1 - C) ** 2])
    assert curves.shapes == (Shape.IRREGULAR, Shape.CONVEX)
    # Grid bound h * sum_i max|l_i'| = (2.2 + 2) / 500 < 1e-2, the dp method's tolerance;
    # proven only with the shapes and the Lipschitz constant stated.
    result = solve(curves, 1.0, resolution=500, throw=False)
    assert (result.method, result.status.name) == ("dp", "UNPROVEN")
    stated = from_functions(curves.losses, shapes=curves.shapes)
    result = solve(stated, 1.0, resolution=500, lipschitz=[2.2, 2.0])
    assert (result.method, result.status.name) == ("dp", "OPTIMAL")


def test_supplied_shapes_override_detection():
    losses = [lambda C: 1 - C, lambda C: (1 - C) ** 2]
    curves = from_functions(losses, shapes=["linear", Shape.CONVEX])
    assert curves.shapes == (Shape.LINEAR, Shape.CONVEX)


@pytest.mark.parametrize(
    "slopes, expected",
    [
        ([-2.0, -1.0, 0.0], Shape.CONVEX),
        ([-1.0, -1.0, -1.0], Shape.LINEAR),
        ([0.0, -1.0, -2.0], Shape.CONCAVE),
        ([0.0, 1.0, 0.0], Shape.IRREGULAR),
        ([-1.0, -1.0 + 1e-12, -1.0], Shape.LINEAR),  # wiggle below rtol * max|slope| = 1e-9
        ([0.0, 0.0], Shape.LINEAR),
    ],
)
def test_shape_from_slopes(slopes, expected):
    assert shapes_from_slopes([slopes]) == (expected,)


@settings(max_examples=30)
@given(st.floats(1.05, 40.0).filter(lambda K: abs(K - 3) > 1e-3), st.floats(0.1, 5.0))
def test_detected_shape_of_a_sampled_quadratic_follows_its_kurtosis(K, v):
    # |K - 3| > 1e-3 keeps the slope changes (~|K - 3| h / 2 relative) above shape_rtol.
    expected = Shape.CONVEX if K > 3 else Shape.CONCAVE
    assert from_functions([quadratic_function(v, K)]).shapes == (expected,)


# --------------------------------------------------------------------------------------
# Bad inputs: each error names the argument and what was wrong


def _ok(C):
    return 1 - C


BAD_FUNCTIONS = [
    (dict(losses=_ok), TypeError, r"losses must be a sequence of callables.*losses=\[f\]"),
    (dict(losses=[]), ValueError, r"losses must hold at least one callable"),
    (dict(losses=[_ok, 3.0]), TypeError, r"losses\[1\] must be callable, got float"),
    (
        dict(losses=[_ok], marginals=[_ok, _ok]),
        ValueError,
        r"marginals must hold one callable per loss \(1\), got 2",
    ),
    (
        dict(losses=[lambda C: np.where(C > 0, 1 - C, np.nan)]),
        ValueError,
        r"losses\[0\] must be finite on \[0, 1\], got nan at C=0",
    ),
    (
        dict(losses=[lambda C: np.ones(3)]),
        ValueError,
        r"losses\[0\] returned shape \(3,\).*vectorized=False",
    ),
    (
        dict(losses=[lambda C: math.exp(C)]),
        TypeError,
        r"losses\[0\] failed on an array.*vectorized=False",
    ),
    (
        dict(losses=[_ok], marginals=[lambda C: -np.ones_like(C)]),
        ValueError,
        r"marginals\[0\] does not match the slope of losses\[0\].*-dl/dC",
    ),
    (dict(losses=[_ok], shapes=["wavy"]), ValueError, r"shapes\[0\] must be one of"),
    (dict(losses=[_ok], shapes=["mixed"]), ValueError, r"shapes\[0\] must be one of"),
    (dict(losses=[_ok], shapes="convex"), ValueError, r"shapes must be a sequence of 1 shapes"),
    (
        dict(losses=[_ok], shape_rtol=-1.0),
        ValueError,
        r"shape_rtol must be finite and >= 0, got -1.0",
    ),
    (dict(losses=[_ok], shape_rtol="tight"), TypeError, r"shape_rtol must be a real number"),
    (dict(losses=[_ok], n_samples=2), ValueError, r"n_samples must be an integer >= 3, got 2"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_FUNCTIONS)
def test_from_functions_rejects_bad_input_with_a_clear_message(kwargs, error, message):
    with pytest.raises(error, match=message):
        from_functions(**kwargs)


GRID = [0.0, 0.5, 1.0]
BAD_TABLES = [
    (
        dict(grid=[[0.0, 1.0]], values=[[1.0, 0.0]]),
        ValueError,
        r"grid must be a 1-d array of at least 2",
    ),
    (dict(grid=[0.0], values=[[1.0]]), ValueError, r"grid must be a 1-d array of at least 2"),
    (
        dict(grid=[0.1, 0.5, 1.0], values=[[1, 1, 1]]),
        ValueError,
        r"grid must start at 0 and end at 1, got grid\[0\]=0.1",
    ),
    (dict(grid=[0.0, 0.5, 0.9], values=[[1, 1, 1]]), ValueError, r"grid\[-1\]=0.9"),
    (
        dict(grid=[0.0, 0.6, 0.4, 1.0], values=[[1, 1, 1, 1]]),
        ValueError,
        r"grid must be strictly increasing, got grid\[1\]=0.6 >= grid\[2\]=0.4",
    ),
    (dict(grid=[0.0, 0.0, 1.0], values=[[1, 1, 1]]), ValueError, r"strictly increasing"),
    (dict(grid=[0.0, np.nan, 1.0], values=[[1, 1, 1]]), ValueError, r"grid must be finite"),
    (
        dict(grid=GRID, values=[1.0, 0.5, 0.0]),
        ValueError,
        r"values must have shape \(N, 3\).*values\[None, :\]",
    ),
    (
        dict(grid=GRID, values=[[1.0, 0.0]]),
        ValueError,
        r"values must have shape \(N, 3\).*got shape \(1, 2\)",
    ),
    (dict(grid=GRID, values=np.zeros((0, 3))), ValueError, r"values must have shape \(N, 3\)"),
    (
        dict(grid=GRID, values=[[1.0, np.inf, 0.0]]),
        ValueError,
        r"values must be finite, got inf at index \(0, 1\)",
    ),
    (dict(grid=GRID, values=[["a", "b", "c"]]), TypeError, r"values must be numeric"),
    (
        dict(grid=GRID, values=[[1.7e308, -1.7e308, 1.7e308]]),
        ValueError,
        r"values must change by a finite slope.*values\[0, 0\]=1.7e\+308",
    ),
    (
        dict(grid=GRID, values=[[1, 0.5, 0]], shape_rtol=np.nan),
        ValueError,
        r"shape_rtol must be finite",
    ),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_TABLES)
def test_from_table_rejects_bad_input_with_a_clear_message(kwargs, error, message):
    with pytest.raises(error, match=message):
        from_table(**kwargs)


def test_reprs_are_short():
    table = "TabulatedCurves(n_features=1, grid_points=3, shape=linear)"
    functions = "FunctionCurves(n_features=1, shape=linear, finite-difference marginals)"
    assert repr(from_table(GRID, [[1, 0.5, 0]])) == table
    assert repr(from_functions([_ok])) == functions
    assert isinstance(from_table(GRID, [[1, 0.5, 0]]), TabulatedCurves)
