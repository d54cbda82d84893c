"""Sensitivities inside sweeps against central finite differences of re-solved sweeps.

Reference route: the sweep solved again (without sensitivities) at each parameter moved up and
down by a relative step, differenced centrally. It shares the solver with the sweep, not the
differentiation under test. Grid points are kept only where no step crosses a change of
regime, judged from the re-solves themselves.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from capopt.sweeps import load_sweep, save_sweep, sweep

#: Relative step of the central differences, and the agreement asked of them (relative to
#: max(1, |derivative|)): the solves are exact to ~1e-15, so ~1e-15 / STEP plus STEP^2.
STEP = 1e-6
FD = 1e-6


def point(**params):
    return sweep(**params)


def central(param, params):
    """Capacities, counts at x(1 +- STEP) for the named parameter."""
    x = float(params[param])
    h = STEP * max(1.0, abs(x))
    up = sweep(**(params | {param: x + h}))
    down = sweep(**(params | {param: x - h}))
    same = all(int(up[k]) == int(down[k]) for k in ("monosemantic", "polysemantic", "ignored"))
    return (up.capacity.values - down.capacity.values) / (2 * h), (up.multiplier - down.multiplier).item() / (2 * h), same


def assert_close(analytic, numeric, what):
    analytic, numeric = np.atleast_1d(analytic), np.atleast_1d(numeric)
    ok = np.isnan(analytic) == np.isnan(numeric)
    both = ~np.isnan(analytic)
    ok[both] = np.abs(analytic[both] - numeric[both]) <= FD * np.maximum(1.0, np.abs(analytic[both]))
    assert ok.all(), f"{what}: {analytic} vs {numeric}"


@settings(max_examples=40)  # each example runs ten sweeps
@given(n=st.integers(2, 12), budget=st.floats(0.3, 6.0), decay=st.floats(0.3, 0.99),
       density=st.floats(0.02, 0.9))
def test_sweep_derivatives_match_finite_differences(n, budget, decay, density):
    assume(budget < n)
    params = dict(n_features=n, budget=budget, importance_decay=decay, density=density)
    ds = sweep(**params, sensitivities=True)
    checks = {"budget": "capacity_d_budget", "importance_decay": "capacity_d_decay",
              "density": "capacity_d_density"}
    for param, name in checks.items():
        numeric, dlam, same = central(param, params)
        assume(same)
        assert_close(ds[name].values, numeric, name)
        if param == "budget":
            assert_close(ds.multiplier_d_budget.item(), dlam, "multiplier_d_budget")
    # The kurtosis derivative through a kurtosis sweep at the same K.
    K = float(ds.kurtosis)
    kparams = dict(n_features=n, budget=budget, importance_decay=decay, kurtosis=K)
    numeric, _, same = central("kurtosis", kparams)
    assume(same)
    assert_close(sweep(**kparams, sensitivities=True).capacity_d_kurtosis.values, numeric, "capacity_d_kurtosis")


def test_sweep_sensitivities_agree_with_the_single_problem_analysis():
    import capopt

    ds = sweep(n_features=10, budget=[2.5, 4.2], importance_decay=[0.7, 0.9], kurtosis=[2.0, 8.0],
               sensitivities=True)
    for b in ds.budget.values:
        for r in ds.importance_decay.values:
            for K in ds.kurtosis.values:
                at = dict(budget=b, importance_decay=r, kurtosis=K)
                s = capopt.sensitivity(capopt.quadratic(r ** np.arange(10), K), b)
                np.testing.assert_allclose(ds.capacity_d_budget.sel(at).values, s.capacity_d_budget,
                                           rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(ds.capacity_d_kurtosis.sel(at).values,
                                           s.capacity_d_kurtosis @ np.ones(10), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("budget", [1.7, 3.3, 5.5])
def test_budget_margin_is_where_a_regime_changes(budget):
    # With one kurtosis the capacities are affine in d within a regime: the first-order
    # margin is the exact distance to the next change of regime.
    params = dict(n_features=12, importance_decay=0.8, kurtosis=6.0)
    ds = sweep(budget=[budget], **params, sensitivities=True)   # d swept: its margin alone
    margin = float(ds.regime_margin.item())
    assert 0 < margin < 1

    def counts(b):
        at = sweep(budget=b, **params)
        return tuple(int(at[k]) for k in ("monosemantic", "polysemantic", "ignored"))

    here = counts(budget)
    inside = [counts(budget * (1 + s * margin * (1 - 1e-6))) for s in (1, -1)]
    beyond = [counts(budget * (1 + s * margin * (1 + 1e-3))) for s in (1, -1)]
    assert all(c == here for c in inside)
    assert any(c != here for c in beyond)


def test_ties_and_vertices_have_no_budget_derivative():
    ds = sweep(n_features=6, budget=[2.0, 2.5], importance_decay=[0.8, 1.0], kurtosis=2.0, sensitivities=True)
    # whole budget: a vertex, no derivative in d; r = 1: equal concave features tie
    assert np.isnan(ds.capacity_d_budget.sel(budget=2.0, importance_decay=0.8)).all()
    assert np.isnan(ds.capacity_d_budget.sel(importance_decay=1.0)).all()
    fraction = ds.capacity_d_budget.sel(budget=2.5, importance_decay=0.8).values
    assert fraction.tolist() == [0, 0, 1, 0, 0, 0]
    assert (ds.regime_margin.sel(importance_decay=1.0) == 0).all()


def test_sensitivities_are_saved_and_resumed(tmp_path):
    params = dict(n_features=[4, 6], budget=[1.5, 2.5], importance_decay=0.9, density=[0.05, 0.3],
                  chunk_size=3, sensitivities=True)
    full = sweep(**params)
    for name in ("capacity_d_budget", "capacity_d_density", "regime_margin"):
        assert full[name].attrs["units"] and full[name].attrs["description"]
    sweep(**params, checkpoint=tmp_path / "ck")
    resumed = sweep(**params, checkpoint=tmp_path / "ck")
    import xarray

    xarray.testing.assert_identical(resumed, full)
    save_sweep(full, tmp_path / "s.nc")
    xarray.testing.assert_identical(load_sweep(tmp_path / "s.nc"), full)
    with pytest.raises(ValueError, match="different sweep"):
        sweep(**(params | {"sensitivities": False}), checkpoint=tmp_path / "ck")
