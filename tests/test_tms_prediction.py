"""The training-free TMS prediction: the allocation over blocks and what it predicts.

Reference routes: the allocation against an exhaustive enumeration of every assignment of
the features to blocks (small N, written here); a prediction's realised embedding scored by
the model's exact loss (:func:`capopt.tms.losses.embedding_loss`, a finite sum independent
of the allocation) and by a Monte Carlo of the model itself; the published TMS intro
setting (5 features in 2 dimensions, importance 0.9^i: the two most important take a
dimension each when dense, all five a pentagon when sparse).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from capopt.cli import main
from capopt.tms.allocation import BlockType, allocate
from capopt.tms.losses import embedding_loss, ignored_loss
from capopt.tms.prediction import predict_tms

#: Monte Carlo draws of the model and the z-score its mean may stray by.
DRAWS = 400_000
Z = 5.0


def brute_force(types, importance, budget, ignored_energy):
    """The least loss over every assignment of features to blocks of the menu (any order,
    not only runs of the sorted features), within the budget."""
    n = importance.size
    best = np.inf

    def place(left: tuple, dims: int, loss: float):
        nonlocal best
        if not left:
            best = min(best, loss)
            return
        first, rest = left[0], left[1:]
        place(rest, dims, loss + ignored_energy * importance[first])
        for t in types:
            if t.dimensions > dims or t.size - 1 > len(rest):
                continue
            for others in itertools.combinations(rest, t.size - 1):
                remaining = tuple(i for i in rest if i not in others)
                members = (first, *others)
                place(remaining, dims - t.dimensions, loss + t.energy * importance[list(members)].sum())

    place(tuple(range(n)), budget, 0.0)
    return best


@settings(max_examples=40)
@given(st.lists(st.floats(0.1, 5.0), min_size=1, max_size=6), st.integers(0, 4),
       st.lists(st.tuples(st.integers(1, 3), st.integers(1, 2), st.floats(0.0, 1.0)),
                min_size=1, max_size=3),
       st.floats(0.2, 1.5))
def test_the_allocation_is_the_least_loss_over_every_assignment(importance, budget, menu, ignored):
    importance = np.sort(np.asarray(importance))[::-1]
    types = [BlockType(f"t{i}", k, m, e) for i, (k, m, e) in enumerate(menu)]
    found = allocate(types, importance, budget, ignored)
    assert found.loss == pytest.approx(brute_force(types, importance, budget, ignored), rel=1e-12, abs=1e-12)
    used = sum(types[t].dimensions for t, _, _ in found.blocks)
    assert used <= budget
    covered = sorted([*found.ignored, *(i for _, start, k in found.blocks for i in range(start, start + k))])
    assert covered == list(range(importance.size))


def test_the_intro_setting_is_dense_monosemantic_and_a_pentagon_when_sparse():
    importance = 0.9 ** np.arange(5)
    dense = predict_tms(importance, 2, 1.0)
    assert dense.capacities.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    sparse = predict_tms(importance, 2, 0.05)
    assert [b.name for b in sparse.blocks] == ["pentagon"]
    np.testing.assert_allclose(sparse.capacities, 0.4)


@pytest.mark.parametrize("density", [0.05, 0.21, 0.5, 1.0])
def test_the_realised_embedding_has_the_predicted_loss(density):
    # Small named blocks: the model's exact loss at (W, b) is the prediction's.
    importance = 0.9 ** np.arange(8)
    prediction = predict_tms(importance, 3, density, large_frames=False)
    W, b = prediction.realize()
    exact = float(np.sum(importance * embedding_loss(W, b, density))) / importance.size
    assert exact == pytest.approx(prediction.loss, rel=1e-9)
    assert W.shape == (3, 8)


def test_the_prediction_is_the_models_own_loss_by_monte_carlo():
    importance = 0.9 ** np.arange(6)
    density = 0.2
    prediction = predict_tms(importance, 2, density, large_frames=False)
    W, b = prediction.realize()
    rng = np.random.default_rng(0)
    x = (rng.random((DRAWS, 6)) < density) * rng.random((DRAWS, 6))
    out = np.maximum(x @ W.T @ W + b, 0.0)
    per_sample = ((x - out) ** 2 * importance).sum(axis=1) / importance.size
    mean, error = per_sample.mean(), per_sample.std() / np.sqrt(DRAWS)
    assert abs(mean - prediction.loss) <= Z * error


def test_every_feature_is_ignored_without_dimensions():
    prediction = predict_tms(np.ones(4), 0, 0.3)
    assert prediction.represented == 0 and prediction.blocks == ()
    assert prediction.loss == pytest.approx(ignored_loss(0.3))


def test_densities_as_an_array_give_one_prediction_each_and_bad_values_are_named():
    several = predict_tms(np.ones(6), 2, [0.1, 1.0], progress=False)
    assert [p.density for p in several] == [0.1, 1.0]
    with pytest.raises(ValueError, match=r"density must lie in \(0, 1\], got 0.0"):
        predict_tms(np.ones(3), 1, [0.5, 0.0])
    with pytest.raises(ValueError, match="importance"):
        predict_tms([], 1, 0.5)


def test_the_cli_prints_one_prediction_per_density(capsys):
    code = main(["predict-tms", "--n-features", "5", "--budget", "2", "--density", "0.05", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("TMS prediction") == 2 and "pentagon" in out
