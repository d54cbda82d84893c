"""A loss-curve family defined here, in the test file, runs through every consumer.

The family is :math:`\\ell_i(C) = a_i (1 - C)^2` (convex), with one parameter per feature,
the weight :math:`a_i`, and an explicit model whose loss at an embedding W is
:math:`\\sum_i a_i (1 - C_i(W))^2`, :math:`C_i(W)` the capacity of W's column i. Nothing
in ``capopt/`` knows it: ``solve``, ``sensitivity``, ``compare``, ``crosscheck``, the
``cvxpy`` reference and the :mod:`capopt.testing` strategies must pick it up from what it
declares (the checklist of :mod:`capopt.curves`).

Reference routes, independent of capopt's solvers: the optimum in closed form (KKT:
:math:`2 a_i (1 - C_i) = \\lambda` inside, so :math:`C_i = \\mathrm{clip}(1 - \\lambda /
2 a_i, 0, 1)` with the level bisected here), central differences of re-solves for the
derivatives, and the model trained here by scipy's L-BFGS on W.
"""

import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import minimize

import capopt
from capopt.curves import LossCurves, Parameter, Shape
from capopt.models import ExplicitModel
from capopt.testing import check_certificate, problems
from capopt.training import ExactFit

#: Bisection steps of the closed form's multiplier: far below float64 resolution.
BISECTION_STEPS = 200
#: Central differences: truncation ~STEP^2 (the optimum is piecewise smooth in d and a).
STEP = 1e-6
FD = 1e-6


class SquaredGapCurves(LossCurves):
    """l_i(C) = a_i (1 - C)^2, convex, with the weights a_i > 0."""

    def __init__(self, weight):
        self.weight = np.asarray(weight, dtype=np.float64)

    @property
    def n_features(self):
        return self.weight.size

    def loss(self, C):
        return self.weight * (1.0 - np.asarray(C, dtype=np.float64)) ** 2

    def marginal(self, C):
        return 2.0 * self.weight * (1.0 - np.asarray(C, dtype=np.float64))

    def curvature(self, C):
        return np.broadcast_to(2.0 * self.weight, np.broadcast_shapes(np.shape(C), self.weight.shape)).copy()

    @property
    def shapes(self):
        return (Shape.CONVEX,) * self.n_features

    def parameters(self, C):
        C = np.asarray(C, dtype=np.float64)
        return (Parameter.per_feature("weight", 2.0 * (1.0 - C), (1.0 - C) ** 2, self.n_features, 1.0),)

    def model(self):
        return SquaredGapModel(self)

    def cvxpy_objective(self, x):
        import cvxpy as cp

        return cp.sum(cp.multiply(self.weight, cp.square(1 - x)))


class SquaredGapModel(ExplicitModel):
    """Its explicit model: the loss of an embedding is the curves at its capacities."""

    routes = ("exact",)

    def __init__(self, curves):
        self.curves = curves

    def loss(self, W):
        return np.sum(self.curves.loss(capopt.capacity(W)), axis=-1)

    def optimal_embedding(self, result):
        return capopt.realize(result.capacities, int(round(result.budget)), seed=0)

    def train(self, budget, route, options):
        rng = np.random.default_rng(options.get("seed", 0))
        n = self.curves.n_features
        started = time.perf_counter()
        runs = [minimize(lambda w: float(self.loss(w.reshape(budget, n))), rng.normal(size=budget * n),
                         method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-10})
                for _ in range(options.get("starts", 4))]
        best = min(runs, key=lambda r: r.fun)
        return ExactFit(weights=best.x.reshape(budget, n), loss=float(best.fun),
                        start_losses=np.array([r.fun for r in runs]),
                        iterations=np.array([r.nit for r in runs]),
                        seconds=time.perf_counter() - started)


def closed_form(weight, d):
    """C_i = clip(1 - lam / (2 a_i), 0, 1) with sum C = d (or lam = 0 if all fit)."""
    weight = np.asarray(weight, dtype=float)
    if d >= weight.size:
        return np.ones(weight.size), 0.0
    lo, hi = 0.0, 2.0 * weight.max()
    for _ in range(BISECTION_STEPS):
        lam = 0.5 * (lo + hi)
        lo, hi = (lam, hi) if np.clip(1 - lam / (2 * weight), 0, 1).sum() > d else (lo, lam)
    return np.clip(1 - hi / (2 * weight), 0, 1), hi


WEIGHT = np.array([3.0, 2.0, 1.0])


def test_solve_and_the_cvxpy_reference_find_the_closed_form():
    curves = SquaredGapCurves(WEIGHT)
    expected, lam = closed_form(WEIGHT, 1.0)
    np.testing.assert_allclose(expected, [0.6, 0.4, 0.0], atol=1e-12)  # worked by hand
    for method in ("auto", "cvxpy"):
        result = capopt.solve(curves, 1.0, method=method)
        np.testing.assert_allclose(result.capacities, expected, atol=1e-7)
        assert result.multiplier == pytest.approx(lam, rel=1e-6)
        check_certificate(curves, result)


def test_sensitivity_differentiates_in_the_familys_own_parameter():
    curves, d = SquaredGapCurves(WEIGHT), 1.0
    s = capopt.sensitivity(curves, d)
    assert s.differentiable and list(s.capacity_d) == ["weight"]

    def optimum(weight, budget):
        return capopt.solve(SquaredGapCurves(weight), budget).capacities

    numeric = (optimum(WEIGHT, d + STEP) - optimum(WEIGHT, d - STEP)) / (2 * STEP)
    np.testing.assert_allclose(s.capacity_d_budget, numeric, atol=FD)
    dense = s.capacity_d["weight"].todense()
    for j in range(WEIGHT.size):
        up, down = WEIGHT.copy(), WEIGHT.copy()
        up[j] += STEP
        down[j] -= STEP
        numeric = (optimum(up, d) - optimum(down, d)) / (2 * STEP)
        np.testing.assert_allclose(dense[:, j], numeric, atol=FD)


def test_compare_scores_an_embedding_with_the_familys_model():
    curves = SquaredGapCurves(WEIGHT)
    optimum = capopt.solve(curves, 1.0)
    best = capopt.compare(optimum.curves.model().optimal_embedding(optimum), curves, 1.0)
    assert best.max_abs_error < 1e-9 and abs(best.loss_gap) < 1e-9
    assert best.predicted_blocks is not None
    # An embedding that drops the second feature: its loss, by the model's definition.
    dropped = capopt.compare([[1.0, 0.0, 0.0]], curves, 1.0)
    assert dropped.loss == pytest.approx(0.0 + 2.0 + 1.0)


def test_crosscheck_trains_the_familys_model_to_the_solvers_allocation():
    report = capopt.crosscheck(SquaredGapCurves(WEIGHT), 1, starts=4)
    assert report.max_abs_dC < 1e-4 and abs(report.loss_gap) < 1e-8
    with pytest.raises(ValueError, match="route"):
        capopt.crosscheck(SquaredGapCurves(WEIGHT), 1, route="sampled")


@settings(max_examples=30)
@given(problems(st.lists(st.floats(0.1, 10.0), min_size=1, max_size=6).map(SquaredGapCurves)))
def test_the_testing_strategies_and_certificate_take_the_family(problem):
    curves, d = problem
    result = capopt.solve(curves, d)
    check_certificate(curves, result)
    np.testing.assert_allclose(result.capacities, closed_form(curves.weight, d)[0], atol=1e-9)


def test_a_subclass_of_a_built_in_family_keeps_its_model():
    # Once refused by crosscheck and given no model loss by compare (dispatch on the type).
    class Tagged(capopt.QuadraticCurves):
        pass

    curves = Tagged(np.array([2.0, 1.0]), 7.0)
    report = capopt.crosscheck(curves, 1, starts=2)
    assert report.max_abs_dC < 1e-6
    assert capopt.compare(np.sqrt([[15 / 8, 3 / 8]]), curves, 1).loss == pytest.approx(5.25)
