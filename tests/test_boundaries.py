"""Traced phase boundaries (issue 14): against closed forms, independent solves and fine grids.

References, none of them the tracer: the two-feature boundary K* = 1 + 2a/b and the
N-feature boundary p*(r) = K_z/(1 + 2/r) (closed forms from ``derivations/``, through
:mod:`capopt._formulas`); elsewhere :func:`capopt.solve` on either side of each traced point
and a fine :func:`capopt.sweeps.sweep` around it, whose regimes must change there.
"""

import numpy as np
import pytest
import xarray as xr

import capopt
from capopt import _formulas as F
from capopt.plotting import plot_polysemantic_phase, plot_two_feature_phase
from capopt.sweeps import phase_boundaries, polysemantic_phase, sweep, two_feature_phase

#: Traced crossings against closed forms: the tracer's 1e-10 plus rounding of the solves.
TRACED = 1e-9
#: Relative offset of the independent solves on either side of a traced point: far beyond
#: its 1e-10, close enough that no other feature changes regime in between.
SIDE = 1e-7
#: Capacities this close to a bound count as at it, for the solves at SIDE: a feature's
#: capacity moves O(SIDE) there.
SIDE_ATOL = 1e-12


def _regime(result, feature):
    return capopt.classify(result.capacities, atol=SIDE_ATOL)[feature].value


def test_two_feature_boundary_is_one_plus_twice_the_ratio():
    ratios = np.linspace(1.05, 6.0, 34)
    bd = phase_boundaries(two_feature_phase(ratios, np.linspace(1.0, 20.0, 41)), along="kurtosis")
    sharing = bd.where(bd.regime_above == "polysemantic", drop=True)
    K_star = F.two_feature_polysemantic_kurtosis(sharing.importance_ratio, 1.0)
    np.testing.assert_allclose(sharing.kurtosis, K_star, rtol=TRACED, atol=0)
    # Each ratio: the larger feature leaves C = 1 and the smaller leaves C = 0 there.
    for feature, below in ((0, "monosemantic"), (1, "ignored")):
        one = sharing.where(sharing.feature == feature, drop=True)
        np.testing.assert_array_equal(np.sort(one.importance_ratio), ratios)
        assert set(one.regime_below.values) == {below}
    assert set(sharing.refined_by.values) == {"kkt-margin"}


@pytest.mark.parametrize("base", ["gaussian", "uniform"])
def test_n_feature_boundary_is_p_star_at_a_whole_budget(base):
    decay = np.linspace(0.55, 0.98, 12)
    ds = polysemantic_phase(np.geomspace(0.02, 1.0, 40), decay, n_features=16, budget=4, base=base)
    bd = phase_boundaries(ds, along="density")
    # Features d - 1 and d start to share where the polysemantic region begins.
    for feature, below in ((3, "monosemantic"), (4, "ignored")):
        first = bd.where((bd.feature == feature) & (bd.regime_above == below), drop=True)
        np.testing.assert_array_equal(first.importance_decay, decay)
        p_star = F.BASE_FOURTH_MOMENT[base] / F.two_feature_polysemantic_kurtosis(1.0, decay)
        np.testing.assert_allclose(first.density, p_star, rtol=TRACED, atol=0)
        assert float(bd.density.max()) == pytest.approx(float(first.density.max()), rel=TRACED)


@pytest.mark.parametrize("along, grid", [
    ("kurtosis", dict(importance_decay=[0.6, 0.85], kurtosis=np.linspace(3.5, 30.0, 23))),
    ("importance_decay", dict(importance_decay=np.linspace(0.3, 0.95, 14), kurtosis=[6.0, 12.0])),
    ("budget", dict(importance_decay=0.8, kurtosis=9.0, budget=np.linspace(0.3, 6.7, 17))),
])
def test_traced_points_separate_the_regimes_of_independent_solves(along, grid):
    grid = {"n_features": 8, "budget": 2.5, **grid}  # a non-whole budget, but along budget
    bd = phase_boundaries(sweep(**grid), along=along)
    assert bd.point.size >= 6 and {"monosemantic", "ignored"} <= set(bd.regime_below.values) | set(bd.regime_above.values)
    for point in range(bd.point.size):
        p = bd.isel(point=point)
        values = {k: float(p[k]) for k in ("budget", "importance_decay", "kurtosis")}
        x, i = values[along], int(p.feature)
        sides = []
        for step in (-SIDE, SIDE):
            at = {**values, along: x * (1 + step)}
            curves = capopt.quadratic(at["importance_decay"] ** np.arange(8), at["kurtosis"])
            sides.append(_regime(capopt.solve(curves, at["budget"]), i))
        assert sides == [str(p.regime_below.values), str(p.regime_above.values)], (along, point)
        # A fine grid around the point changes regime between its neighbours of x (to the
        # tracer's accuracy).
        fine = np.linspace(x * (1 - 1e-6), x * (1 + 1e-6), 21)
        near = sweep(**{**values, "n_features": 8, along: fine}, regime_atol=0.0)
        C = near.capacity.isel(feature=i).values
        regime = np.where(C == 1, 0, np.where(C == 0, 2, 1))
        changes = np.flatnonzero(regime[1:] != regime[:-1])
        assert changes.size == 1
        assert fine[changes[0]] * (1 - TRACED) <= x <= fine[changes[0] + 1] * (1 + TRACED)


def test_the_jump_at_kurtosis_three_is_bisected_onto_it():
    # a/b = 1: the vertex (1, 0) below K = 3, the shared (1/2, 1/2) above: C jumps.
    bd = phase_boundaries(two_feature_phase([1.0, 1.5], np.linspace(2.1, 4.1, 6)), along="kurtosis")
    jump = bd.where(bd.importance_ratio == 1.0, drop=True)
    np.testing.assert_allclose(jump.kurtosis, 3.0, rtol=TRACED)
    assert jump.regime_below.values.tolist() == ["monosemantic", "ignored"]
    assert set(jump.regime_above.values) == {"polysemantic"}
    assert set(jump.refined_by.values) == {"regime-bisection"}
    # a/b = 1.5: the cell across K = 3 is cut there, and K* = 4 is a root of the margin.
    smooth = bd.where(bd.importance_ratio == 1.5, drop=True)
    np.testing.assert_allclose(smooth.kurtosis, 4.0, rtol=TRACED)
    assert set(smooth.refined_by.values) == {"kkt-margin"}
    # Equal importances, N features: every feature jumps at K = 3 (p* = K_z / 3 at r = 1).
    bd = phase_boundaries(sweep(n_features=6, budget=2, kurtosis=np.linspace(2.5, 3.7, 7)))
    np.testing.assert_allclose(bd.kurtosis, 3.0, rtol=TRACED)
    assert sorted(bd.feature.values.tolist()) == list(range(6))


def test_boundaries_do_not_move_with_the_regime_tolerance():
    grid = dict(n_features=10, budget=3.3, importance_decay=[0.7, 0.9], density=np.geomspace(0.02, 1, 15))
    loose, tight = (phase_boundaries(sweep(**grid, regime_atol=atol)) for atol in (1e-3, 0.0))
    xr.testing.assert_equal(loose.drop_attrs(), tight.drop_attrs())


def test_crossings_are_counted_per_feature_and_regimes():
    bd = phase_boundaries(sweep(n_features=5, budget=[1.0, 2.0], kurtosis=np.linspace(3.5, 40, 30),
                                importance_decay=0.8))
    keys = list(zip(bd.budget.values, bd.feature.values, bd.regime_below.values, bd.regime_above.values))
    for j, key in enumerate(keys):
        assert int(bd.crossing[j]) == keys[:j].count(key)
    assert bd.attrs["along"] == "kurtosis" and bd.attrs["rtol"] == 1e-10
    assert np.all(bd.bracket_width <= 1e-10 * bd.kurtosis)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(along="n_features"), ValueError, "along must be one of"),
    (dict(along="budget"), ValueError, "along must be one of"),
    (dict(along="kurtosis", rtol=1e-17), ValueError, "rtol must be finite and >= "),
    (dict(along="kurtosis", rtol=1.0), ValueError, r"rtol must be in \["),
])
def test_bad_arguments_are_named(kwargs, error, match):
    ds = sweep(n_features=[3, 4], budget=1.5, kurtosis=[4.0, 5.0])
    with pytest.raises(error, match=match):
        phase_boundaries(ds, **kwargs)


def test_a_dataset_of_another_kind_is_refused():
    with pytest.raises(TypeError, match="ds must be the dataset of capopt.sweeps.sweep"):
        phase_boundaries(xr.Dataset({"x": ("a", [1.0])}))
    with pytest.raises(TypeError, match="ds must be the dataset"):
        phase_boundaries(np.zeros(3))
    with pytest.raises(ValueError, match="along must name the swept parameter"):
        phase_boundaries(sweep(n_features=4, budget=[1.0, 2.0], kurtosis=5.0))


def test_phase_figures_draw_the_traced_boundaries():
    two = two_feature_phase(np.linspace(1, 4, 7), np.linspace(1, 16, 9))
    fig = plot_two_feature_phase(two, boundaries=phase_boundaries(two, along="kurtosis"))
    assert "traced regime boundaries" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    many = polysemantic_phase(np.geomspace(0.05, 1, 9), np.linspace(0.6, 0.95, 5), n_features=8, budget=2)
    bd = phase_boundaries(many)
    fig = plot_polysemantic_phase(many, boundaries=bd)
    traced = [line for line in fig.axes[0].get_lines() if line.get_color() == "white"]
    assert len(traced) == len({(int(f), str(a), str(b), int(c)) for f, a, b, c in zip(
        bd.feature.values, bd.regime_below.values, bd.regime_above.values, bd.crossing.values)})
