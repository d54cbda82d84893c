"""Phase diagrams (issue 6): boundaries against the closed forms, figures and the CLI pieces.

Reference values: the boundary K* = 1 + 2a/b and the split C_a = ((K-1)a - 2b)/((K-3)(a+b))
of theory §3 (derived in ``derivations/``, evaluated with :mod:`capopt._formulas`); the
phase diagrams themselves come from the sweep kernels, an independent route.
"""

import argparse

import numpy as np
import pytest
from hypothesis import given, strategies as st

from capopt import _formulas as F
from capopt.plotting import plot_polysemantic_phase, plot_two_feature_phase
from capopt.sweeps import load_sweep, polysemantic_phase, sweep, two_feature_phase
from capopt.cli import _configure_sweep as configure_parser, _run_sweep as run

#: Exact solves against the closed form: rounding only.
EXACT = 1e-12
#: Grid points closer than this (relatively) to a boundary are not classified: there the
#: smaller capacity is ~ (K - K*) and falls inside the regime tolerance.
NEAR = 1e-6

RATIOS = np.linspace(1.0, 6.0, 26)
KURTOSES = np.linspace(1.0, 20.0, 77)


@pytest.fixture(scope="module")
def two_feature():
    return two_feature_phase(RATIOS, KURTOSES)


def test_two_features_polysemantic_iff_kurtosis_above_one_plus_twice_ratio(two_feature):
    K, boundary = two_feature.kurtosis, two_feature.boundary
    np.testing.assert_allclose(boundary, 1 + 2 * RATIOS, rtol=EXACT)
    clear = np.abs(K - boundary) > NEAR * boundary
    polysemantic = two_feature.polysemantic == 2
    assert bool(((polysemantic == (K > boundary)) | ~clear).all())
    assert int(clear.sum()) > 0.9 * clear.size


def test_two_feature_split_matches_closed_form(two_feature):
    a, K = two_feature.importance_ratio, two_feature.kurtosis
    expected = np.clip(F.two_feature_capacity(a, 1.0, K.where(K != 3)), 0.0, 1.0)
    convex = K > 3
    np.testing.assert_allclose(two_feature.capacity_larger.where(convex), expected.where(convex),
                               rtol=0, atol=EXACT)
    C_a = two_feature.capacity_larger.transpose("importance_ratio", "kurtosis").values
    C_b = two_feature.capacity_smaller.transpose("importance_ratio", "kurtosis").values
    live = KURTOSES > 1  # K = 1: x^2 = 1 is absorbed by the bias, nothing is represented
    np.testing.assert_allclose(C_a[:, live] + C_b[:, live], 1.0, atol=EXACT)
    assert np.all(C_a[:, ~live] == 0) and np.all(C_b[:, ~live] == 0)
    # Increasing or constant returns (1 < K <= 3): the more important feature owns the
    # neuron (at a/b = 1 the lower index, by the tie rule).
    assert np.all(C_a[:, live & (KURTOSES <= 3)] == 1.0)


def test_two_feature_worked_case():
    ds = two_feature_phase(2.0, 7.0)  # theory §3: C = (5/6, 1/6), loss 5.25 for v = (2, 1)
    assert float(ds.capacity_larger) == pytest.approx(5 / 6, abs=EXACT)
    # The sweep solves importances (1, b/a): the loss scales with v^2, so 5.25 / 4.
    assert float(ds.loss) == pytest.approx(5.25 / 4, rel=EXACT)


def test_two_feature_phase_rejects_ratio_below_one():
    with pytest.raises(ValueError, match="importance_ratio must be >= 1"):
        two_feature_phase([0.5, 2.0], 5.0)


@given(st.integers(2, 40), st.data())
def test_some_feature_polysemantic_iff_density_below_boundary(n, data):
    # At a whole budget d < N: d monosemantic features iff the d-th saturates before the
    # (d+1)-th starts, the two-feature condition with a/b = 1/r (phase module docstring).
    d = data.draw(st.integers(1, n - 1))
    r = data.draw(st.floats(0.3, 1.0))
    base = data.draw(st.sampled_from(["gaussian", "uniform", "rademacher"]))
    p_star = F.BASE_FOURTH_MOMENT[base] / (1 + 2 / r)
    density = np.array([p for p in np.geomspace(0.01, 1.0, 15) if abs(p - p_star) > NEAR * p_star])
    ds = polysemantic_phase(density, [r], n_features=n, budget=d, base=base)
    assert ds.boundary_density.item() == pytest.approx(p_star, rel=EXACT)
    np.testing.assert_array_equal((ds.polysemantic > 0).values[0], density < p_star)


def test_fraction_counts_polysemantic_features():
    ds = polysemantic_phase([0.02, 1.0], [0.8, 1.0], n_features=10, budget=3)
    np.testing.assert_array_equal(ds.polysemantic_fraction, ds.polysemantic / 10)
    # Equal importances and sparse inputs: every feature shares, at C = d/N.
    assert float(ds.polysemantic_fraction.sel(importance_decay=1.0, density=0.02)) == 1.0
    np.testing.assert_allclose(ds.capacity.sel(importance_decay=1.0, density=0.02), 0.3, atol=EXACT)


def test_no_boundary_at_a_fractional_budget():
    ds = polysemantic_phase([0.1, 1.0], [0.9], n_features=8, budget=2.5)
    assert "boundary_density" not in ds
    # A fractional budget always leaves a feature with a fraction of a dimension.
    assert bool((ds.polysemantic >= 1).all())


# Figures --------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_two_feature_figure_is_labelled_and_saved(tmp_path, two_feature):
    fig = plot_two_feature_phase(two_feature, path=tmp_path / "two.png")
    ax = fig.axes[0]
    assert "a/b" in ax.get_xlabel() and "kurtosis" in ax.get_ylabel() and ax.get_title()
    assert (tmp_path / "two.png").read_bytes()[:8] == PNG_SIGNATURE


def test_polysemantic_figure_is_labelled_and_saved(tmp_path):
    ds = polysemantic_phase(np.geomspace(0.01, 1, 9), np.linspace(0.5, 1, 6), n_features=16, budget=4)
    fig = plot_polysemantic_phase(ds, path=tmp_path / "poly.png")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "density" in ax.get_xlabel() and "decay" in ax.get_ylabel()
    assert "N = 16" in ax.get_title() and "d = 4" in ax.get_title()
    assert (tmp_path / "poly.png").read_bytes()[:8] == PNG_SIGNATURE


def test_polysemantic_figure_needs_two_swept_parameters():
    with pytest.raises(ValueError, match="exactly two parameters"):
        plot_polysemantic_phase(sweep(n_features=4, budget=2, kurtosis=[2.0, 5.0]))


# CLI pieces -----------------------------------------------------------------------------


def parse(*argv):
    parser = argparse.ArgumentParser(prog="capopt sweep")
    configure_parser(parser)
    return parser.parse_args(argv)


def test_cli_writes_dataset_and_phase_diagram(tmp_path, capsys):
    out, png = tmp_path / "s.nc", tmp_path / "s.png"
    args = parse("--n-features", "12", "--budget", "3", "--importance-decay", "0.6:1:5",
                 "--density", "log:0.01:1:7", "--output", str(out), "--figure", str(png))
    assert run(args) == 0
    ds = load_sweep(out)
    assert dict(ds.multiplier.sizes) == {"importance_decay": 5, "density": 7}
    np.testing.assert_allclose(ds.density, np.geomspace(0.01, 1, 7))
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert "written to" in capsys.readouterr().out


def test_cli_explains_a_grid_it_cannot_draw(tmp_path, capsys):
    args = parse("--kurtosis", "2", "5", "--importance-decay", "0.9", "--output", str(tmp_path / "s.nc"),
                 "--figure", str(tmp_path / "s.png"))
    # Refused before the sweep runs (main reports it as a usage error, exit status 2).
    with pytest.raises(ValueError, match="cannot be drawn: .* got dimensions \\['kurtosis'\\]; pass --no-figure"):
        run(args)
    assert not (tmp_path / "s.nc").exists()
    args.no_figure = True
    assert run(args) == 0 and (tmp_path / "s.nc").exists()


def test_cli_rejects_malformed_values():
    with pytest.raises(SystemExit):
        parse("--density", "0.1:oops")
