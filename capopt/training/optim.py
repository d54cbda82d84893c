r"""Optimisers: Adam on many model instances at once, and multi-start L-BFGS on exact losses.

Glossary: ``R`` instances trained together (sparsities x seeds), ``params`` a dict of arrays
whose leading axis is the instance axis, ``x`` a batch of inputs of shape (R, B, N).

A *batched model* is any object with

* ``n_instances`` and ``inputs`` (a :class:`~capopt.training.inputs.SparseInputs` or
  :class:`~capopt.training.inputs.FixedSample`),
* ``init(rngs) -> params`` with keys ``"W"`` (R, d, N) and ``"b"``,
* ``loss_and_grad(params, x) -> (loss, grads)`` with ``loss`` of shape (R,), the minibatch
  mean of instance r's loss, and ``grads`` its analytic gradient (same keys as ``params``),
* ``describe() -> dict``, a JSON-able configuration.

Because each instance's loss depends only on its own parameters, Adam's per-coordinate
update trains the instances independently: the batch is a vectorisation, not a coupling.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize

from .checkpoint import CheckpointError, fingerprint, load_checkpoint, progress_bar, save_checkpoint
from .._validation import check_keywords
from .options import FIELDS, SCHEDULES, TrainingOptions
from .results import ExactFit, SampledFit
from .._validation import check_count, check_instance
from .._typing import PathLike, Seed

__all__ = ["Adam", "instance_generators", "fit", "fit_exact", "has_converged", "RUN_ARGUMENTS",
           "training_options", "trainer_keywords"]

class BatchedModel(Protocol):
    """The interface of a batched model (module docstring), for the type checker."""

    n_instances: int
    inputs: Any  # SparseInputs or FixedSample

    def init(self, rngs: Sequence[np.random.Generator]) -> dict[str, np.ndarray]: ...

    def loss_and_grad(
        self, params: dict[str, np.ndarray], x: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...

    def describe(self) -> dict: ...


class Adam:
    r"""Adam (Kingma & Ba 2015) updating a dict of arrays in place.

    .. math::

        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        \theta \leftarrow \theta - \eta\,\frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon},

    the update of ``torch.optim.Adam`` with its defaults.

    Parameters
    ----------
    params : dict of str to ndarray
        Arrays updated in place by :meth:`step`.
    lr, beta1, beta2, eps : float

    Examples
    --------
    The first step moves every coordinate by ``lr`` against the sign of its gradient:

    >>> import numpy as np
    >>> p = {"w": np.array([1.0, -2.0])}
    >>> Adam(p, lr=0.1).step({"w": np.array([3.0, -0.5])})
    >>> p["w"].round(6)
    array([ 0.9, -1.9])
    """

    def __init__(self, params: dict, *, lr: float = 1e-3, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8):
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, grads: dict, lr: float | None = None) -> None:
        """Apply one update with gradients ``grads`` (learning rate ``lr`` if given)."""
        self.t += 1
        lr = self.lr if lr is None else lr
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for k, g in grads.items():
            m, v = self.m[k], self.v[k]
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            self.params[k] -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def state(self) -> dict[str, np.ndarray]:
        """Moment estimates and step count, as arrays for a checkpoint."""
        out = {f"adam_m/{k}": m for k, m in self.m.items()}
        out.update({f"adam_v/{k}": v for k, v in self.v.items()})
        out["adam_t"] = np.array(self.t)
        return out

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned."""
        for k in self.m:
            self.m[k][...] = state[f"adam_m/{k}"]
            self.v[k][...] = state[f"adam_v/{k}"]
        self.t = int(state["adam_t"])


def instance_generators(seed: Seed, n_instances: int) -> list[np.random.Generator]:
    """One independent generator per instance.

    An int (or None) seeds ``SeedSequence(seed).spawn(n_instances)``: child r is the same
    whatever ``n_instances`` is. A sequence of ``n_instances`` ints seeds instance r with
    ``seed[r]``, so any instance of a batched run can be re-trained on its own.
    """
    if seed is None or isinstance(seed, (int, np.integer)):
        return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_instances)]
    seeds = list(seed)
    if len(seeds) != n_instances:
        raise ValueError(f"seed must be an int or {n_instances} ints (one per instance), got {len(seeds)}")
    return [np.random.default_rng(int(s)) for s in seeds]


def _seed_json(seed: Seed) -> int | list[int] | None:
    return seed if seed is None or isinstance(seed, (int, np.integer)) else [int(s) for s in seed]


def fit(
    model: BatchedModel,
    options: TrainingOptions | None = None,
    *,
    checkpoint: PathLike | None = None,
    checkpoint_every: int = 1000,
    record_every: int = 100,
    progress: bool = False,
    desc: str | None = None,
    **overrides: Any,
) -> SampledFit:
    r"""Train every instance of a batched model with Adam on sampled minibatches.

    Each step draws a minibatch per instance from ``model.inputs`` (fresh draws, or
    resampled from a fixed training set for a :class:`~capopt.training.FixedSample`) and
    applies one Adam update with learning rate ``lr * SCHEDULES[schedule](step / steps)``.

    Parameters
    ----------
    model : batched model
        See the module docstring.
    options : TrainingOptions, optional
        The recipe; by default ``TrainingOptions()``, the Toy Models of Superposition
        one. ``fit`` reads ``steps``, ``batch_size``, ``lr``, ``schedule``, ``seed``,
        ``tol`` and ``window``; ``dtype`` and ``init`` are the model's, read by the trainer
        that builds it. ``seed`` is required with ``checkpoint``. With ``tol``, ``steps`` is
        a cap, and training stops at the first record where every instance's loss has
        settled (:func:`has_converged`): the mean loss of the last ``window`` entries of
        ``loss_history`` differs from that of the ``window`` before them by less than
        ``tol`` relative, or by less than twice the standard error the minibatch noise
        leaves on that difference. The learning-rate schedule runs over the cap.
    checkpoint : path-like, optional
        ``.npz`` file written atomically every ``checkpoint_every`` steps and at the end. If
        it exists and was written by the same configuration, training resumes from it and
        continues exactly as an uninterrupted run would (parameters, Adam moments and every
        generator's state are restored).
    record_every : int
        Steps per entry of ``loss_history``.
    progress : bool
        Show a tqdm progress bar.
    desc : str, optional
        Label of the progress bar.
    **overrides
        Fields of ``options`` to replace (``steps=500``, ``lr=1e-2``, ...):
        :meth:`TrainingOptions.with_overrides`.

    Returns
    -------
    SampledFit

    Raises
    ------
    TypeError
        For an override that is not a field of :class:`TrainingOptions`, naming the closest.
    ValueError
        On non-positive counts, an unknown schedule or a checkpoint without a seed.
    CheckpointError
        (a ValueError) On a checkpoint that cannot be read or was written by a different
        configuration; the message names the file.
    """
    options, _ = training_options("fit", TrainingOptions(), options, overrides)
    for name, value in (("checkpoint_every", checkpoint_every), ("record_every", record_every)):
        check_count(value, name)
    steps, batch_size, lr, schedule, seed = (options.steps, options.batch_size, options.lr,
                                             options.schedule, options.seed)
    tol, window = options.tol, options.window
    if checkpoint is not None and seed is None:
        raise ValueError(
            "checkpoint needs an explicit seed, so that a resumed run continues the same "
            "random streams; pass seed=<int>"
        )

    R = model.n_instances
    rngs = instance_generators(seed, R)
    params = model.init(rngs)
    model.inputs.prepare(rngs)
    adam = Adam(params, lr=lr)
    scale = SCHEDULES[schedule]
    config = {"model": model.describe(), "steps": steps, "batch_size": batch_size, "lr": lr,
              "schedule": schedule, "seed": _seed_json(seed), "record_every": record_every}
    if tol is not None:
        config.update(tol=tol, window=window)
    key = fingerprint(config)

    start, seconds = 0, 0.0
    history, record_steps = [], []
    window_sum, window_count = np.zeros(R), 0
    if checkpoint is not None and Path(checkpoint).exists():
        arrays, meta = load_checkpoint(checkpoint)
        if meta.get("fingerprint") != key:
            raise CheckpointError(
                f"checkpoint {str(checkpoint)!r} was written by a different training "
                "configuration; delete it or pass another checkpoint path"
            )
        for k in params:
            params[k][...] = arrays[f"param/{k}"]
        adam.load(arrays)
        for rng, state in zip(rngs, meta["rng_states"]):
            rng.bit_generator.state = state
        start, seconds = meta["step"], meta["seconds"]
        history = list(arrays["loss_history"])
        record_steps = list(arrays["record_steps"])
        window_sum, window_count = arrays["window_sum"], meta["window_count"]

    def save(step: int) -> None:
        arrays = {f"param/{k}": p for k, p in params.items()}
        arrays.update(adam.state())
        arrays["loss_history"] = np.array(history).reshape(-1, R)
        arrays["record_steps"] = np.array(record_steps, dtype=np.int64)
        arrays["window_sum"] = window_sum
        meta = {"fingerprint": key, "step": step, "seconds": seconds + time.perf_counter() - t0,
                "rng_states": [rng.bit_generator.state for rng in rngs],
                "window_count": window_count}
        assert checkpoint is not None  # save() runs only with a checkpoint path
        save_checkpoint(checkpoint, arrays, meta)

    t0 = time.perf_counter()
    done = start
    converged = tol is not None and has_converged(history, tol, window)
    with progress_bar(steps, initial=start, enabled=progress, desc=desc) as bar:
        for step in range(start, steps if not converged else start):
            x = model.inputs.sample(rngs, batch_size)
            loss, grads = model.loss_and_grad(params, x)
            adam.step(grads, lr * scale(step / steps))
            window_sum = window_sum + loss
            window_count += 1
            done = step + 1
            if done % record_every == 0 or done == steps:
                history.append(window_sum / window_count)
                record_steps.append(done)
                window_sum, window_count = np.zeros(R), 0
                bar.set_postfix(loss=f"{float(np.mean(history[-1])):.4g}", refresh=False)
                converged = tol is not None and has_converged(history, tol, window)
            if checkpoint is not None and (done % checkpoint_every == 0 or done == steps or converged):
                save(done)
            bar.update(1)
            if converged:
                break
    return SampledFit(
        weights=params["W"].copy(),
        bias=params["b"].copy(),
        loss_history=np.array(history).reshape(-1, R),
        record_steps=np.array(record_steps, dtype=np.int64),
        steps=done,
        seconds=seconds + time.perf_counter() - t0,
        resumed_from=start,
        converged=converged,
    )


#: :func:`fit`'s arguments that belong to one run rather than to its recipe: the trainers
#: take them as keywords next to the overrides of :class:`TrainingOptions` and pass them on.
RUN_ARGUMENTS = tuple(name for name, p in inspect.signature(fit).parameters.items()
                      if p.kind is p.KEYWORD_ONLY)


def training_options(where: str, defaults: TrainingOptions, options: TrainingOptions | None,
                     keywords: dict[str, Any]) -> tuple[TrainingOptions, dict[str, Any]]:
    """The recipe of one run, and the keywords that are :func:`fit`'s run arguments.

    ``options`` (``defaults``, the trainer's own recipe, when None) with the ``keywords``
    that name its fields replaced (:meth:`TrainingOptions.with_overrides`); the keywords in
    :data:`RUN_ARGUMENTS` (``checkpoint``, ``progress``, ...) are returned apart.

    Raises
    ------
    TypeError
        If ``options`` is not a :class:`TrainingOptions`, or a keyword is neither a field nor
        a run argument: the message names ``where`` (the trainer), the closest accepted
        name and all of them.
    """
    check_keywords(keywords, FIELDS + RUN_ARGUMENTS, where)
    recipe = defaults if options is None else check_instance(
        options, "options", TrainingOptions, "TrainingOptions (capopt.training.TrainingOptions(...))")
    run = {name: value for name, value in keywords.items() if name in RUN_ARGUMENTS}
    return recipe.with_overrides(**{k: v for k, v in keywords.items() if k not in run}), run


def trainer_keywords(trainer: Callable[..., Any]) -> tuple[str, ...]:
    """The keyword arguments ``trainer`` accepts: its keyword-only parameters, plus the
    fields of :class:`TrainingOptions` and :data:`RUN_ARGUMENTS` for a trainer that takes
    ``options`` (whose other keywords go through :func:`training_options`)."""
    names = tuple(name for name, p in inspect.signature(trainer).parameters.items()
                  if p.kind is p.KEYWORD_ONLY)
    return names + FIELDS + RUN_ARGUMENTS if "options" in names else names


#: Standard errors of the difference of two window means within which a loss change reads
#: as minibatch noise (about a 5 % chance of a false "settled" per check at a true plateau).
NOISE_Z = 2.0


def has_converged(history: Sequence[np.ndarray], tol: float, window: int) -> bool:
    r"""Whether the windowed loss of every instance has settled (:func:`fit`'s ``tol``).

    ``history`` is a sequence of records, each an array (R,) of mean minibatch losses. With
    :math:`\bar L_\text{old}`, :math:`\bar L_\text{new}` the means of the ``window`` records
    before the last ``window`` and of the last ``window``, and :math:`s_\text{old}`,
    :math:`s_\text{new}` the standard deviations of the records in each, instance r has
    settled when

    .. math::

        |\bar L_\text{old} - \bar L_\text{new}| \le \max\Big(\text{tol}\,\bar L_\text{new},\;
        z \sqrt{(s_\text{old}^2 + s_\text{new}^2) / \text{window}}\Big),
        \qquad z = 2 \ (\text{NOISE\_Z}):

    its loss moved by less than ``tol`` relative, or by less than the minibatch noise can
    resolve (sparse inputs make a minibatch loss noisy: a change of 1e-3 is then below what
    any window of affordable length can detect).

    Examples
    --------
    >>> import numpy as np
    >>> flat = [np.array([1.0])] * 4
    >>> has_converged(flat, 1e-3, 2), has_converged(flat[:3], 1e-3, 2)
    (True, False)
    >>> has_converged([np.array([x]) for x in (4.0, 3.0, 2.0, 1.0)], 1e-3, 2)
    False
    """
    if len(history) < 2 * window:
        return False
    recent = np.asarray(history[-2 * window:])
    old, new = recent[:window], recent[window:]
    change = np.abs(old.mean(axis=0) - new.mean(axis=0))
    noise = NOISE_Z * np.sqrt((old.var(axis=0, ddof=1) + new.var(axis=0, ddof=1)) / window)
    return bool(np.all(change <= np.maximum(tol * np.abs(new.mean(axis=0)), noise)))


def fit_exact(
    loss_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    shape: tuple[int, int],
    *,
    starts: int = 8,
    seed: Seed = None,
    init_scale: float = 1.0,
    gtol: float = 1e-10,
    maxiter: int = 20_000,
) -> ExactFit:
    r"""Minimise an exact expected loss over an embedding with L-BFGS from random starts.

    Parameters
    ----------
    loss_and_grad : callable
        ``f(W) -> (loss, dloss/dW)`` for ``W`` of shape ``shape``.
    shape : tuple (d, N)
    starts : int
        Independent starts :math:`W_0 \sim \mathcal N(0, \sigma^2)`; the lowest loss wins.
        Non-convex models have saddles and spurious local minima (e.g. the quadratic model
        with :math:`K < 3` can leave a more important feature out), hence several starts.
    seed : int, optional
    init_scale : float
        :math:`\sigma`.
    gtol : float
        Stop when the largest gradient component is below ``gtol``. The relative-decrease
        test of L-BFGS-B is off (``ftol = 0``) so that slow runs are not stopped early:
        capacities are read off the weights, which converge like the square root of the loss.
    maxiter : int

    Returns
    -------
    ExactFit
    """
    starts = check_count(starts, "starts")
    rng = np.random.default_rng(seed)

    def flat(w: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = loss_and_grad(w.reshape(shape))
        return float(loss), grad.ravel()

    t0 = time.perf_counter()
    runs = [
        minimize(flat, rng.normal(scale=init_scale, size=shape).ravel(), jac=True,
                 method="L-BFGS-B",
                 options={"gtol": gtol, "ftol": 0.0, "maxiter": maxiter, "maxfun": 2 * maxiter})
        for _ in range(starts)
    ]
    losses = np.array([r.fun for r in runs])
    best = int(np.argmin(losses))
    return ExactFit(
        weights=runs[best].x.reshape(shape),
        loss=float(losses[best]),
        start_losses=losses,
        iterations=np.array([r.nit for r in runs]),
        seconds=time.perf_counter() - t0,
    )
