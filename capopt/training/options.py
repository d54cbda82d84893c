r"""The Adam recipe of a sampled training run, as one frozen value (:class:`TrainingOptions`).

Every sampled trainer (:func:`~capopt.training.train_autoencoder`,
:func:`~capopt.training.train_two_layer`, :func:`~capopt.training.train_quadratic_sampled`),
:func:`~capopt.training.sparsity_sweep` and :func:`~capopt.training.fit` take
``options: TrainingOptions`` plus keyword overrides of its fields; each trainer's own
recipe is a named constant next to it (e.g.
:data:`capopt.training.autoencoders.AUTOENCODER_OPTIONS`). The merge of a recipe with
overrides is :meth:`TrainingOptions.with_overrides`, and
:func:`capopt._validation.check_keywords` is how an unknown option is reported, with the
closest valid name.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from .._validation import check_choice, check_count, check_keywords
from .._typing import DTypeLike, Seed
from .initialisers import INITS
from .inputs import check_dtype

__all__ = ["FIELDS", "SCHEDULES", "TrainingOptions"]

#: Learning-rate multipliers as a function of the fraction of training done.
SCHEDULES = {
    "constant": lambda frac: 1.0,
    "linear": lambda frac: 1.0 - frac,
    "cosine": lambda frac: 0.5 * (1.0 + math.cos(math.pi * frac)),
}


def _check_positive(value: Any, name: str, alternative: str = "") -> None:
    """Check ``value`` is a finite real number > 0 (kept as given: it is fingerprinted)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    if not (math.isfinite(value) and float(value) > 0):
        raise ValueError(f"{name} must be finite and > 0{alternative}, got {value!r}")


def _check_seed(seed: Seed) -> int | tuple[int, ...] | None:
    """An int, None, or a sequence of ints (one per instance), as a tuple."""
    if seed is None:
        return None
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)):
        return int(seed)
    values = tuple(seed) if isinstance(seed, Sequence) and not isinstance(seed, str) else None
    if values is None or not all(isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_))
                                 for s in values):
        raise TypeError(f"seed must be an int, a sequence of ints (one per instance) or None, "
                        f"got {type(seed).__name__}: {seed!r}")
    return tuple(int(s) for s in values)


@dataclass(frozen=True)
class TrainingOptions:
    r"""How a sampled model is trained: Adam on minibatches, one value for every trainer.

    The defaults are the reference recipe of the Toy Models of Superposition notebook
    (Adam at a constant learning rate 1e-3, batch 1024, 10 000 steps); each trainer's own
    recipe is a constant built from them (:data:`~capopt.training.autoencoders.AUTOENCODER_OPTIONS`,
    :data:`~capopt.training.two_layer.TWO_LAYER_OPTIONS`,
    :data:`~capopt.training.quadratic.QUADRATIC_SAMPLED_OPTIONS`,
    :data:`~capopt.training.sparsity.SWEEP_OPTIONS`).

    Attributes
    ----------
    steps : int
        Adam steps (a cap when ``tol`` is given).
    batch_size : int
        Examples per instance per step.
    lr : float
        Peak learning rate :math:`\eta > 0`.
    schedule : {"constant", "linear", "cosine"}
        Multiplier of ``lr`` as training progresses (:data:`SCHEDULES`).
    seed : int, tuple of int or None
        An int seeds every instance (``SeedSequence(seed).spawn``), one int per instance
        seeds each on its own, None draws fresh entropy
        (:func:`capopt.training.optim.instance_generators`).
    dtype : numpy.dtype
        Precision of the inputs, weights and Adam state: float64 or float32 (what Toy Models
        of Superposition trained in; half the memory traffic).
    init : str or None
        Initial W, a key of :data:`capopt.training.INITS`; None for the model's own
        (``"tms"`` for the autoencoders, ``"glorot"`` for the two-layer models).
    tol : float or None
        Convergence criterion of :func:`capopt.training.fit`: None trains all ``steps``;
        otherwise training stops once every instance's windowed loss has settled
        (:func:`capopt.training.optim.has_converged`).
    window : int
        Loss records per averaging window of the criterion.

    Raises
    ------
    TypeError, ValueError
        On construction, for a field of the wrong kind or value; the message names it.

    Examples
    --------
    >>> options = TrainingOptions(steps=500, lr=1e-2)
    >>> options.with_overrides(schedule="cosine").schedule
    'cosine'
    >>> options.with_overrides(setps=10)
    Traceback (most recent call last):
    ...
    TypeError: TrainingOptions.with_overrides got an unknown option 'setps' (did you mean 'steps'?); it accepts steps, batch_size, lr, schedule, seed, dtype, init, tol, window
    """

    steps: int = 10_000
    batch_size: int = 1024
    lr: float = 1e-3
    schedule: str = "constant"
    seed: Seed = None
    dtype: DTypeLike = np.float64
    init: str | None = None
    tol: float | None = None
    window: int = 10

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the checked values replace the given ones
        set_(self, "steps", check_count(self.steps, "steps"))
        set_(self, "batch_size", check_count(self.batch_size, "batch_size"))
        _check_positive(self.lr, "lr")
        check_choice(self.schedule, "schedule", sorted(SCHEDULES))
        set_(self, "seed", _check_seed(self.seed))
        set_(self, "dtype", check_dtype(self.dtype))
        if self.init is not None:
            check_choice(self.init, "init", sorted(INITS))
        if self.tol is not None:
            _check_positive(self.tol, "tol", " (or None for a fixed step count)")
        set_(self, "window", check_count(self.window, "window"))

    def with_overrides(self, **overrides: Any) -> TrainingOptions:
        """These options with the fields named in ``overrides`` replaced (and checked).

        Raises
        ------
        TypeError
            For a name that is not a field, with the closest field (:func:`check_keywords`).
        """
        check_keywords(overrides, FIELDS, "TrainingOptions.with_overrides")
        return replace(self, **overrides) if overrides else self


#: The fields of :class:`TrainingOptions`, in order: the keyword overrides every trainer takes.
FIELDS = tuple(f.name for f in fields(TrainingOptions))
