"""What the report's figures show, read back from the matplotlib objects they return:
legible labels, colour scales that say what they encode, signed quantities kept signed."""

from types import SimpleNamespace

import numpy as np
import pytest

import capopt
from capopt.plotting import plot_polysemantic_phase
from capopt.report.drawing import ARCHITECTURE_LABELS, SMALL_FONT
from capopt.report.figures.budget import plot_budget_response
from capopt.report.figures.crosscheck import plot_crosscheck
from capopt.report.figures.gram_blocks import GRAM_TICK_LABELS, plot_gram_blocks
from capopt.report.figures.sparsity_sweep import plot_polysemantic_vs_sparsity
from capopt.training import ARCHITECTURES

#: Smallest tick-label size, in points, that stays legible once the report scales a figure
#: to its 1100 px column.
LEGIBLE_POINTS = 8.0


def _gram(N, seed=0):
    W = np.random.default_rng(seed).normal(size=(5, N))
    return (f"N = {N}", W, capopt.blocks(W))


def test_gram_figure_labels_every_feature_legibly():
    fig = plot_gram_blocks([_gram(20), _gram(60, seed=1)])
    small, large = fig.axes[:2]
    for axis in (small.xaxis, small.yaxis):
        labels = [t.get_text() for t in axis.get_ticklabels()]
        assert len(labels) == 20 and len(set(labels)) == 20  # every feature, not every second
    for ax in (small, large):
        for tick in ax.get_xticklabels() + ax.get_yticklabels():
            assert tick.get_fontsize() >= LEGIBLE_POINTS
    assert len(large.get_yticklabels()) <= GRAM_TICK_LABELS
    assert SMALL_FONT >= LEGIBLE_POINTS


def test_budget_figure_has_a_colourbar_for_the_importance_rank():
    d = np.linspace(0.0, 4.0, 9)
    C = np.clip(d[:, None] - np.arange(4)[None, :], 0.0, 1.0)
    lam = np.maximum(4.0 - d, 0.0)
    fig = plot_budget_response(d, [("concave", C, lam, np.full(d.size, np.nan))])
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any(label.startswith("importance rank i") for label in labels), labels


def test_crosscheck_figure_keeps_the_sign_of_the_loss_gap():
    def report(gap):
        return SimpleNamespace(predicted_capacities=np.array([0.5, 0.5]),
                               trained_capacities=np.array([0.5, 0.5]), max_abs_dC=1e-9,
                               loss_gap=gap, predicted=SimpleNamespace(loss=2.0))
    gaps = [-3e-13, 0.0, 5e-10]
    fig = plot_crosscheck([report(g) for g in gaps], ["below", "equal", "above"])
    right = fig.axes[2]
    widths = [p.get_width() for p in right.patches if p.get_height() == pytest.approx(0.5)]
    assert widths == pytest.approx(gaps)
    assert right.get_xscale() == "symlog" and right.get_xlim()[0] < gaps[0]


def test_phase_diagram_scale_has_no_end_like_none_or_the_background():
    ds = capopt.sweep(n_features=8, budget=3, importance_decay=[0.7, 0.9], density=[0.05, 0.2, 1.0])
    mesh = plot_polysemantic_phase(ds).axes[0].collections[0]
    cmap = mesh.get_cmap()
    none = np.array(cmap.get_under()[:3])
    for end in (cmap(0.0)[:3], cmap(1.0)[:3]):
        for lookalike in (none, np.ones(3)):  # the grey of "none", the white background
            assert np.linalg.norm(np.array(end) - lookalike) > 0.3, (end, lookalike)


def test_every_trained_architecture_has_a_legend_name_that_states_its_model():
    assert set(ARCHITECTURE_LABELS) == set(ARCHITECTURES)
    for name, label in ARCHITECTURE_LABELS.items():
        assert name not in label.split() and ("autoencoder" in label or "two-layer" in label)
    densities = np.array([1.0, 0.1])
    sweeps = {name: SimpleNamespace(densities=densities, polysemantic_fraction=np.array([[0.0], [0.5]]),
                                    importance=np.ones(4), budget=2, fit=SimpleNamespace(steps=10))
              for name in ("tms-relu", "abs")}
    legend = plot_polysemantic_vs_sparsity(sweeps).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [ARCHITECTURE_LABELS["tms-relu"],
                                                          ARCHITECTURE_LABELS["abs"]]
