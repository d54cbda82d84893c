"""Trainers: analytic gradients, kernels, inputs, batching, checkpoints, and the allocations
that training finds for the linear and ReLU autoencoders."""

import numpy as np
import pytest

import capopt
from capopt._kernels import training as kernels
from capopt.training import (
    Adam,
    SparseInputs,
    TrainingOptions,
    fit,
    linear_autoencoder_loss_and_gradient,
    CheckpointError,
    load_checkpoint,
    quadratic_loss_and_gradient,
    save_checkpoint,
    train_autoencoder,
    train_linear_autoencoder,
    train_quadratic_exact,
    train_quadratic_sampled,
    train_two_layer,
)
from capopt.training.autoencoders import AUTOENCODER_OPTIONS, autoencoder_model
from capopt.training.quadratic import QUADRATIC_SAMPLED_OPTIONS
from capopt.training.sparsity import SWEEP_OPTIONS, sparsity_sweep
from capopt.training.two_layer import TWO_LAYER_OPTIONS
from capopt.training.optim import instance_generators
from capopt.training.two_layer import ACTIVATIONS, two_layer_model

#: Central differences with step FD_STEP have truncation error ~FD_STEP^2 |f'''| / 6 ~ 1e-11
#: and rounding error ~eps |f| / FD_STEP ~ 1e-10 for losses of order 1-100, so analytic and
#: numerical derivatives must agree to FD_RTOL relative to (1 + |gradient|); a wrong factor
#: or a missing term is off by O(1).
FD_STEP = 1e-6
FD_RTOL = 1e-6


def central_differences(f, x, h=FD_STEP):
    """Gradient of scalar f at array x by central differences, one coordinate at a time."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


def assert_gradient_matches(analytic, numerical):
    np.testing.assert_array_less(np.abs(analytic - numerical), FD_RTOL * (1 + np.abs(analytic)))


# ---------------------------------------------------------------- gradients
def test_quadratic_exact_gradient_matches_central_differences():
    rng = np.random.default_rng(0)
    W, v, K = rng.normal(size=(3, 5)), rng.uniform(-0.2, 1.0, 5), rng.uniform(1.2, 9.0, 5)
    loss, grad = quadratic_loss_and_gradient(W, v, K)
    assert loss == pytest.approx(float(capopt.quadratic_model_loss(W, v, K)), rel=1e-15)
    numerical = central_differences(lambda X: quadratic_loss_and_gradient(X, v, K)[0], W)
    assert_gradient_matches(grad, numerical)


def test_linear_autoencoder_exact_gradient_matches_central_differences():
    rng = np.random.default_rng(1)
    W, I = rng.normal(size=(2, 6)), rng.uniform(0.1, 2.0, 6)
    loss, grad = linear_autoencoder_loss_and_gradient(W, I)
    assert loss == pytest.approx(float(capopt.linear_autoencoder_model_loss(W, I)), rel=1e-15)
    numerical = central_differences(lambda X: linear_autoencoder_loss_and_gradient(X, I)[0], W)
    assert_gradient_matches(grad, numerical)


SAMPLED_MODELS = ([("two-layer", a) for a in ACTIVATIONS]
                  + [("autoencoder", a) for a in ("linear", "relu", "gelu")])


def sampled_model(kind, activation):
    """Two instances; dense inputs, so that no pre-activation is pinned at a kink by x = 0."""
    if kind == "two-layer":
        return two_layer_model(np.array([1.0, 0.7, 0.5, 0.3]), 3, activation, [1.0, 1.0], "uniform", None)
    return autoencoder_model(0.9 ** np.arange(5), 2, activation=activation, density=[1.0, 1.0])


@pytest.mark.parametrize("kind, activation", SAMPLED_MODELS)
def test_minibatch_gradient_matches_central_differences(kind, activation):
    """On a fixed batch the minibatch loss is a deterministic function of the parameters."""
    model = sampled_model(kind, activation)
    rngs = instance_generators(0, model.n_instances)
    params = model.init(rngs)
    params = {k: p + 0.3 * np.random.default_rng(1).normal(size=p.shape) for k, p in params.items()}
    x = model.inputs.sample(rngs, 64)
    # relu and abs have kinks at 0: a perturbation of FD_STEP moves a pre-activation by at
    # most FD_STEP * max|x| < 1e-5, so none may sit that close to 0 (they do not, here).
    W, b = params["W"], params["b"]
    pre = x @ np.swapaxes(W, -1, -2)
    if kind == "autoencoder":
        pre = pre @ W + b[:, None, :]
    assert np.min(np.abs(pre)) > 1e-4

    _, grads = model.loss_and_grad(params, x)
    for key in params:
        def total(value, key=key):
            return float(np.sum(model.loss_and_grad({**params, key: value}, x)[0]))

        assert_gradient_matches(grads[key], central_differences(total, params[key]))


def test_two_layer_square_model_is_the_quadratic_model():
    """phi(h) = h^2 gives yhat = x^T W^T W x + b: same minibatch loss as the explicit form."""
    model = two_layer_model(np.array([1.0, 0.5, 0.2]), 2, "square", 0.4, "gaussian", 1)
    rngs = instance_generators(3, 1)
    params = model.init(rngs)
    x = model.inputs.sample(rngs, 256)[0]
    W, b = params["W"][0], params["b"][0]
    explicit = np.mean((np.einsum("bi,ij,bj->b", x, W.T @ W, x) + b - (x * x) @ model.v[0]) ** 2)
    assert model.loss_and_grad(params, x[None])[0][0] == pytest.approx(explicit, rel=1e-12)


# ---------------------------------------------------------------- kernels and inputs
@pytest.mark.parametrize("activation", ["linear", "relu", "gelu"])
def test_autoencoder_kernel_matches_numpy_formula(activation):
    rng = np.random.default_rng(2)
    z, x = rng.normal(size=(2, 16, 5)), rng.uniform(size=(2, 16, 5))
    b, I = rng.normal(size=(2, 5)), rng.uniform(size=(2, 5))
    sigma, dsigma = ACTIVATIONS[activation]
    pre = z + b[:, None, :]
    err = sigma(pre) - x
    delta, loss = z.copy(), np.empty(2)
    kernels.autoencoder_residual(delta, b, x, I, kernels.ACTIVATION_CODES[activation], 0.5, loss)
    np.testing.assert_allclose(delta, 0.5 * I[:, None, :] * err * dsigma(pre), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss, np.sum(I[:, None, :] * err**2, axis=(1, 2)), rtol=1e-13)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_two_layer_kernel_matches_numpy_formula(activation):
    """The fused pass against the numpy formula of the two-layer gradient (r = yhat - y)."""
    rng = np.random.default_rng(3)
    h, x = rng.normal(size=(2, 16, 3)), rng.normal(size=(2, 16, 5))
    b, v = rng.normal(size=2), rng.uniform(size=(2, 5))
    phi, dphi = ACTIVATIONS[activation]
    r = np.sum(phi(h), axis=-1) + b[:, None] - np.einsum("rki,ri->rk", x * x, v)
    dh, loss, residual_sum = h.copy(), np.empty(2), np.empty(2)
    kernels.two_layer_residual(dh, x, v, b, kernels.NEURON_CODES[activation], 0.5, loss, residual_sum)
    np.testing.assert_allclose(dh, 0.5 * r[..., None] * dphi(h), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss, np.sum(r**2, axis=1), rtol=1e-13)
    np.testing.assert_allclose(residual_sum, np.sum(r, axis=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("base", ["gaussian", "rademacher", "uniform", "tms"])
def test_sparse_inputs_have_the_requested_moments(base):
    """Unit-variance bases: E x = 0, E x^2 = 1, E x^4 = K_z / p; TMS: E x = p/2, E x^2 = p/3.

    Tolerance: 5 standard errors of each sample moment (CLT; x is bounded or Gaussian, so
    all moments are finite). The seed is fixed, so the test is deterministic.
    """
    p = np.array([[1.0, 0.3, 0.05]])
    inputs = SparseInputs(p, base)
    x = inputs.sample(instance_generators(4, 1), 400_000)[0]
    if base == "tms":
        expected = {1: p[0] / 2, 2: p[0] / 3}
    else:
        expected = {1: np.zeros(3), 2: np.ones(3), 4: inputs.kurtosis[0]}
    for k, value in expected.items():
        moment = x**k
        se = moment.std(axis=0) / np.sqrt(x.shape[0])
        np.testing.assert_array_less(np.abs(moment.mean(axis=0) - value), 5 * se + 1e-12)
    assert np.mean(x != 0, axis=0) == pytest.approx(p[0], abs=5e-3)


def test_sparse_inputs_reject_bad_arguments():
    with pytest.raises(ValueError, match="density must lie in"):
        SparseInputs([[0.0, 0.5]], "tms")
    with pytest.raises(ValueError, match="base must be one of"):
        SparseInputs([[0.5]], "cauchy")
    with pytest.raises(ValueError, match="not unit-variance"):
        SparseInputs([[0.5]], "tms").kurtosis


# ---------------------------------------------------------------- optimiser and batching
def test_adam_follows_the_reference_update_rule():
    """Three steps on fixed gradients against the published formulas, written out by hand."""
    params = {"w": np.array([0.5, -1.0])}
    grads = [np.array([1.0, 2.0]), np.array([-0.5, 1.0]), np.array([0.25, -3.0])]
    adam = Adam(params, lr=0.1)
    w, m, v = np.array([0.5, -1.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(grads, start=1):
        adam.step({"w": g})
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(params["w"], w, rtol=1e-14)


def test_batched_instances_train_exactly_as_if_alone():
    """Instance r of a batched run with seeds [s_0, ...] equals a run of instance r alone.

    With a per-instance initialisation: the reference ("tms") one scales with the number of
    instances trained together, as the notebook's batched draw does."""
    common = dict(steps=40, batch_size=32, lr=1e-2, init="glorot")
    together = train_autoencoder(0.9 ** np.arange(5), 2, density=[1.0, 0.3, 0.1], seed=[11, 12, 13], **common)
    alone = train_autoencoder(0.9 ** np.arange(5), 2, density=[0.3], seed=[12], **common)
    np.testing.assert_allclose(together.weights[1], alone.weights[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(together.loss_history[:, 1], alone.loss_history[:, 0], rtol=1e-12)


def test_float32_training_keeps_its_precision():
    fit32 = train_autoencoder(np.ones(4), 2, density=0.5, steps=5, seed=0, dtype=np.float32)
    assert fit32.weights.dtype == np.float32 and fit32.bias.dtype == np.float32


# ---------------------------------------------------------------- checkpoints
def small_model():
    return autoencoder_model(0.9 ** np.arange(4), 2, density=[1.0, 0.2])


RUN = dict(steps=23, batch_size=16, lr=1e-2, seed=7, record_every=4)


def test_resumed_run_matches_an_uninterrupted_one(tmp_path, monkeypatch):
    """A crash after step 13 resumes from the step-10 checkpoint and ends bit-identical."""
    reference = fit(small_model(), **RUN)

    path = tmp_path / "run.npz"
    model = small_model()
    calls = {"n": 0}
    original = model.loss_and_grad

    def crashing(params, x):
        calls["n"] += 1
        if calls["n"] > 13:
            raise KeyboardInterrupt
        return original(params, x)

    monkeypatch.setattr(model, "loss_and_grad", crashing)
    with pytest.raises(KeyboardInterrupt):
        fit(model, checkpoint=path, checkpoint_every=5, **RUN)
    assert load_checkpoint(path)[1]["step"] == 10

    resumed = fit(small_model(), checkpoint=path, checkpoint_every=5, **RUN)
    assert resumed.resumed_from == 10
    np.testing.assert_array_equal(resumed.weights, reference.weights)
    np.testing.assert_array_equal(resumed.bias, reference.bias)
    np.testing.assert_array_equal(resumed.loss_history, reference.loss_history)
    np.testing.assert_array_equal(resumed.record_steps, reference.record_steps)


def test_finished_checkpoint_returns_the_run_without_training(tmp_path):
    path = tmp_path / "run.npz"
    first = fit(small_model(), checkpoint=path, **RUN)
    again = fit(small_model(), checkpoint=path, **RUN)
    assert again.resumed_from == RUN["steps"]
    np.testing.assert_array_equal(again.weights, first.weights)


def test_checkpoint_of_another_configuration_is_rejected(tmp_path):
    path = tmp_path / "run.npz"
    fit(small_model(), checkpoint=path, **RUN)
    with pytest.raises(CheckpointError, match="different training configuration"):
        fit(small_model(), checkpoint=path, **{**RUN, "lr": 2e-2})


@pytest.mark.parametrize("damage", ["truncated", "not an npz"])
def test_unreadable_checkpoint_is_named_not_resumed(tmp_path, damage):
    path = tmp_path / "run.npz"
    fit(small_model(), checkpoint=path, **RUN)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"run\.npz.*cannot be read"):
        fit(small_model(), checkpoint=path, **RUN)


def test_checkpoint_needs_an_explicit_seed(tmp_path):
    with pytest.raises(ValueError, match="explicit seed"):
        fit(small_model(), checkpoint=tmp_path / "run.npz", **{**RUN, "seed": None})


def test_failed_checkpoint_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "state.npz"
    save_checkpoint(path, {"W": np.zeros(2)}, {"step": 1})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"W": np.ones(2)}, {"step": 2})
    arrays, meta = load_checkpoint(path)
    assert meta["step"] == 1 and not arrays["W"].any()
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]


@pytest.mark.parametrize("bad, error, match", [
    ({"steps": 0}, ValueError, "steps must be >= 1, got 0"),
    ({"batch_size": 1.5}, TypeError, "batch_size must be an integer, got float"),
    ({"schedule": "step"}, ValueError, "schedule must be one of"),
    ({"lr": -1.0}, ValueError, "lr must be finite and > 0"),
])
def test_fit_rejects_bad_options(bad, error, match):
    with pytest.raises(error, match=match):
        fit(small_model(), **{**RUN, **bad})


# ---------------------------------------------------------------- training options
def test_each_trainer_keeps_its_own_recipe():
    """The defaults the trainers had as keyword defaults, now one constant each."""
    tms = dict(steps=10_000, batch_size=1024, lr=1e-3, schedule="constant", dtype=np.float64,
               tol=None, window=10)
    assert AUTOENCODER_OPTIONS == TrainingOptions(**tms, init="tms", seed=None)
    assert TWO_LAYER_OPTIONS == TrainingOptions(**tms, init="glorot", seed=None)
    assert SWEEP_OPTIONS == TrainingOptions(**tms, init=None, seed=0)
    assert QUADRATIC_SAMPLED_OPTIONS == TrainingOptions(
        **{**tms, "steps": 5000, "lr": 1e-2, "schedule": "cosine"}, init="glorot", seed=None)


def test_options_and_keyword_overrides_train_the_same_weights():
    """``options=`` and keywords merge in one place: an override of a field and the same
    field in the options object give bit-identical runs."""
    by_keywords = train_autoencoder(0.9 ** np.arange(4), 2, density=[1.0, 0.2], steps=30,
                                    batch_size=16, seed=3)
    by_options = train_autoencoder(0.9 ** np.arange(4), 2, density=[1.0, 0.2],
                                   options=AUTOENCODER_OPTIONS.with_overrides(steps=30, batch_size=16),
                                   seed=3)
    np.testing.assert_array_equal(by_options.weights, by_keywords.weights)
    np.testing.assert_array_equal(by_options.loss_history, by_keywords.loss_history)


def test_options_object_replaces_the_trainers_whole_recipe():
    """``options`` is a whole recipe: TrainingOptions()' constant rate and 10 000 steps
    (capped here) replace the quadratic route's cosine schedule, and its ``init=None`` is the
    model's own."""
    curves = capopt.quadratic([2.0, 1.0], 7.0)
    given = train_quadratic_sampled(curves, 1, options=TrainingOptions(steps=40, seed=0))
    spelled = train_quadratic_sampled(curves, 1, steps=40, seed=0, lr=1e-3, schedule="constant")
    np.testing.assert_array_equal(given.weights, spelled.weights)


@pytest.mark.parametrize("bad, error, match", [
    ({"init": "kaiming"}, ValueError, r"init must be one of \['glorot', 'tms'\], got 'kaiming'"),
    ({"dtype": np.float16}, ValueError, "dtype must be float32 or float64, got float16"),
    ({"seed": "0"}, TypeError, "seed must be an int, a sequence of ints"),
    ({"seed": 1.5}, TypeError, "seed must be an int, a sequence of ints"),
    ({"lr": "1e-3"}, TypeError, "lr must be a real number, got str"),
    ({"window": 0}, ValueError, "window must be >= 1, got 0"),
    ({"tol": 0.0}, ValueError, r"tol must be finite and > 0 \(or None"),
])
def test_training_options_are_checked_once_on_construction(bad, error, match):
    with pytest.raises(error, match=match):
        TrainingOptions(**bad)
    with pytest.raises(error, match=match):  # an override is checked the same way
        AUTOENCODER_OPTIONS.with_overrides(**bad)


def test_a_sequence_seed_is_kept_as_a_tuple_and_the_options_are_frozen():
    options = TrainingOptions(seed=[1, 2])
    assert options.seed == (1, 2) and hash(options) == hash(TrainingOptions(seed=(1, 2)))
    with pytest.raises(AttributeError):
        options.lr = 1.0


UNKNOWN_OPTION_CALLS = [
    pytest.param("train_autoencoder", lambda **kw: train_autoencoder(np.ones(3), 1, **kw), id="autoencoder"),
    pytest.param("train_two_layer", lambda **kw: train_two_layer(np.ones(3), 1, **kw), id="two-layer"),
    pytest.param("train_quadratic_sampled",
                 lambda **kw: train_quadratic_sampled(capopt.quadratic([1.0], 5.0), 1, **kw), id="quadratic"),
    pytest.param("sparsity_sweep", lambda **kw: sparsity_sweep("relu", np.ones(3), 1, [1.0], **kw), id="sweep"),
    pytest.param("fit", lambda **kw: fit(small_model(), **kw), id="fit"),
]


@pytest.mark.parametrize("where, call", UNKNOWN_OPTION_CALLS)
def test_an_unknown_option_names_the_trainer_and_the_closest_option(where, call, monkeypatch):
    """Checked before any training: the message names the trainer, suggests the closest
    field (or run argument) and lists every accepted name."""
    def instance_generators(*args):
        pytest.fail("training started before the options were checked")

    monkeypatch.setattr("capopt.training.optim.instance_generators", instance_generators)
    with pytest.raises(TypeError, match=rf"^{where} got an unknown option 'setps' \(did you mean "
                                        r"'steps'\?\); it accepts .*batch_size.*checkpoint"):
        call(setps=5)
    with pytest.raises(TypeError, match=r"unknown option 'progres' \(did you mean 'progress'\?\)"):
        call(progres=True)
    with pytest.raises(TypeError, match=r"unknown option 'warmup'; it accepts"):
        call(warmup=10)


def test_with_overrides_names_the_valid_fields():
    with pytest.raises(TypeError, match=r"unknown option 'learning_rate'; it accepts steps, "
                                        r"batch_size, lr, schedule, seed, dtype, init, tol, window"):
        TrainingOptions().with_overrides(learning_rate=1e-2)


def test_options_must_be_a_training_options():
    with pytest.raises(TypeError, match=r"options must be TrainingOptions .*got dict"):
        train_autoencoder(np.ones(3), 1, options={"steps": 5})


# ---------------------------------------------------------------- what training finds
def test_exact_fit_keeps_the_lowest_of_all_starts():
    result = train_quadratic_exact(capopt.quadratic(0.8 ** np.arange(8), 2.0), 3, starts=6, seed=0)
    assert result.start_losses.shape == (6,) and result.loss == result.start_losses.min()
    assert 1 <= result.n_at_best() <= 6
    exact = capopt.quadratic_model_loss(result.weights, 0.8 ** np.arange(8), 2.0)
    assert result.loss == pytest.approx(float(exact))


def test_linear_autoencoder_exact_training_keeps_the_top_d_features():
    """Constant returns (theory §3): the d most important features get C = 1, the rest 0."""
    importance = np.random.default_rng(5).permutation(np.linspace(0.2, 2.0, 7))
    result = train_linear_autoencoder(capopt.linear_autoencoder(importance), 3, seed=0)
    top = np.argsort(importance)[::-1][:3]
    expected = np.isin(np.arange(7), top).astype(float)
    np.testing.assert_allclose(result.capacities, expected, atol=1e-8)
    np.testing.assert_allclose(capopt.solve(capopt.linear_autoencoder(importance), 3).capacities, expected)


def test_linear_autoencoder_sampled_training_keeps_the_top_d_features():
    """Adam on Gaussian inputs: kept features within 0.02 of 1, dropped ones within 0.02 of 0
    (the trained-weights regime tolerance: Adam leaves O(lr) jitter in the weights)."""
    importance = np.array([0.3, 2.0, 0.6, 1.4, 1.0])
    result = train_autoencoder(importance, 2, activation="linear", base="gaussian", steps=1500,
                               batch_size=256, lr=1e-2, schedule="cosine", seed=0)
    np.testing.assert_allclose(result.capacities[0], [0, 1, 0, 1, 0], atol=0.02)


def test_relu_autoencoder_becomes_polysemantic_as_inputs_get_sparse():
    """Toy Models of Superposition, 5 features in 2 dimensions, importance 0.9^i: dense inputs
    keep the two most important features whole and drop the rest; at density 0.05 every
    feature is stored in superposition (the published pentagon, C = 2/5 each)."""
    result = train_autoencoder(0.9 ** np.arange(5), 2, density=[1.0, 0.05], steps=2500,
                               batch_size=256, lr=1e-2, seed=0)
    dense, sparse = result.capacities
    np.testing.assert_allclose(dense, [1, 1, 0, 0, 0], atol=0.02)
    np.testing.assert_allclose(sparse, np.full(5, 0.4), atol=0.05)


# ---------------------------------------------------------------- initialisation
def torch_xavier_normal_std(shape):
    """std of torch.nn.init.xavier_normal_ on a tensor of ``shape``, from torch's fan rule:
    fan_in = shape[1] * r, fan_out = shape[0] * r, r the product of the axes beyond two."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    return np.sqrt(2.0 / (fan_in + fan_out))


@pytest.mark.parametrize("R, N, d", [(20, 200, 20), (10, 50, 5), (1, 400, 30)])
def test_tms_init_is_xavier_normal_of_the_notebooks_batched_tensor(R, N, d):
    from capopt.training.initialisers import init_std, initial_embedding

    # The notebook's W is (instances, features, hidden); glorot reads one (hidden, features).
    assert init_std("tms", d, N, R) == pytest.approx(torch_xavier_normal_std((R, N, d)), rel=1e-15)
    assert init_std("glorot", d, N, R) == pytest.approx(torch_xavier_normal_std((d, N)), rel=1e-15)
    W = initial_embedding("tms", instance_generators(0, R), d, N)
    assert W.shape == (R, d, N)
    # Sample std of R d N >= 2000 normal draws: relative standard error <= 1.6 %.
    assert W.std() == pytest.approx(torch_xavier_normal_std((R, N, d)), rel=0.08)


def test_tms_init_in_the_200_to_20_setting_is_a_fifth_of_glorot():
    from capopt.training.initialisers import init_std

    assert init_std("tms", 20, 200, 20) == pytest.approx(0.0213, abs=5e-5)
    assert init_std("glorot", 20, 200, 20) == pytest.approx(0.0953, abs=5e-5)


def test_autoencoders_default_to_the_reference_init_and_two_layer_models_to_glorot():
    from capopt.training.initialisers import init_std

    rngs = instance_generators(3, 4)
    W = autoencoder_model(np.ones(50), 5, density=np.ones(4)).init(rngs)["W"]
    glorot = two_layer_model(np.ones(50), 5, "relu", np.ones(4), "uniform", None).init(
        instance_generators(3, 4))["W"]
    # Same generators, same normal draws: the initialisers differ by their scale only.
    np.testing.assert_allclose(W / init_std("tms", 5, 50, 4), glorot / init_std("glorot", 5, 50, 4),
                               rtol=1e-12)


def test_unknown_init_is_rejected_by_name():
    with pytest.raises(ValueError, match="init must be one of"):
        train_autoencoder(np.ones(3), 1, init="kaiming", steps=1)


# ---------------------------------------------------------------- convergence criterion
def test_convergence_criterion_stops_a_settled_run_before_the_cap():
    # The linear autoencoder of constant importance settles in a few hundred steps at lr 1e-2.
    model = autoencoder_model(np.ones(4), 2, activation="linear", density=np.ones(2))
    capped = fit(model, steps=20_000, batch_size=256, lr=1e-2, seed=0, tol=1e-3, window=5)
    assert capped.converged and capped.steps < 20_000
    assert capped.steps == capped.record_steps[-1] and capped.steps % 100 == 0
    fixed = fit(model, steps=300, batch_size=256, lr=1e-2, seed=0)
    assert not fixed.converged and fixed.steps == 300


def test_convergence_criterion_matches_its_definition():
    from capopt.training.optim import NOISE_Z, has_converged

    rng = np.random.default_rng(0)
    for _ in range(200):
        history = list(rng.uniform(0.5, 1.5, size=(8, 2)))
        old, new = np.array(history[:4]), np.array(history[4:])
        change = abs(old.mean(0) - new.mean(0))
        bound = np.maximum(0.05 * new.mean(0),
                           NOISE_Z * np.sqrt((old.var(0, ddof=1) + new.var(0, ddof=1)) / 4))
        assert has_converged(history, 0.05, 4) == bool(np.all(change <= bound))
    assert not has_converged(history[:7], 0.05, 4)


@pytest.mark.parametrize("bad", [0.0, -1e-3, float("nan")])
def test_fit_rejects_a_bad_tolerance(bad):
    model = autoencoder_model(np.ones(3), 1, density=np.ones(1))
    with pytest.raises(ValueError, match="tol must be finite and > 0"):
        fit(model, steps=10, batch_size=8, tol=bad)
