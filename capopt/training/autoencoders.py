r"""Autoencoders :math:`\hat x = \sigma(W^\top W x + b)` with importance-weighted MSE.

* linear (:math:`\sigma` = identity, no bias): closed-form curves
  :math:`\ell_i(C) = I_i (1 - C)` (theory §3), trained on the exact loss of
  :func:`capopt.models.linear_autoencoder_model_loss` with multi-start L-BFGS;
* ReLU, the Toy Models of Superposition model, and its GeLU variant (theory §4): no closed
  form, trained with Adam on sparse inputs :math:`x_i = B_i U_i`,
  :math:`U \sim \mathrm{Uniform}[0, 1]`, :math:`B \sim \mathrm{Bernoulli}(1 - S)`.

Glossary: ``W`` (R, d, N) embeddings of R instances (features last), ``d`` the budget
(hidden width), ``b`` (R, N) output bias, ``I`` importance, ``S`` sparsity, ``p = 1 - S`` density.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._validation import check_choice, check_count, check_model
from ..models import linear_autoencoder_model_loss_and_gradient
from .inputs import BASES, FixedSample, SparseInputs
from .optim import fit, fit_exact, training_options
from .options import TrainingOptions
from .results import ExactFit, SampledFit
from .._kernels.training import ACTIVATION_CODES, autoencoder_residual
from .initialisers import INITS, initial_embedding
from .two_layer import check_activation, instance_grid
from .._typing import ArrayLike, DTypeLike, Seed

if TYPE_CHECKING:
    from ..curves import LinearAutoencoderCurves

__all__ = [
    "AUTOENCODER_ACTIVATIONS",
    "AUTOENCODER_OPTIONS",
    "LINEAR_AUTOENCODER_SAMPLED_OPTIONS",
    "AutoencoderModel",
    "linear_autoencoder_loss_and_gradient",
    "train_linear_autoencoder",
    "train_linear_autoencoder_sampled",
    "train_autoencoder",
]

#: Output nonlinearities of the autoencoders.
AUTOENCODER_ACTIVATIONS = tuple(ACTIVATION_CODES)


#: The exact loss the trainer minimises, with its gradient: defined with the model.
linear_autoencoder_loss_and_gradient = linear_autoencoder_model_loss_and_gradient


def train_linear_autoencoder(
    curves: LinearAutoencoderCurves,
    budget: int,
    *,
    starts: int = 4,
    seed: Seed = None,
    gtol: float = 1e-11,
    maxiter: int = 20_000,
) -> ExactFit:
    r"""Train the linear autoencoder :math:`\hat x = W^\top W x` on its exact loss.

    Minimises, over embeddings W of shape (d, N), the loss on unit-variance inputs

    .. math::

        L(W) = \sum_i I_i \Big[(1 - G_{ii})^2 + \sum_{j \ne i} G_{ij}^2\Big],
        \qquad G = W^\top W

    (:func:`capopt.models.linear_autoencoder_model_loss_and_gradient`).

    Parameters
    ----------
    curves : LinearAutoencoderCurves
        The importances :math:`I_i \ge 0`, from :func:`capopt.linear_autoencoder`.
    budget : int
        Embedding dimension d, the number of neurons.
    starts, seed, gtol, maxiter
        See :func:`capopt.training.fit_exact` (starts have :math:`\sigma^2 = 1/d`, so that
        :math:`\|W_i\|^2 \approx 1`, the norm of a kept feature).

    Returns
    -------
    ExactFit

    Raises
    ------
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.LinearAutoencoderCurves` or ``budget``
        is not an integer.
    ValueError
        If ``budget`` is below 1.

    Examples
    --------
    Constant returns: the d most important features are kept whole (PCA-like).

    >>> from capopt import linear_autoencoder
    >>> fit = train_linear_autoencoder(linear_autoencoder([3.0, 1.0, 2.0]), 2, seed=0)
    >>> fit.capacities.round(6)
    array([1., 0., 1.])
    """
    check_model(curves, "curves", "linear autoencoder",
                "LinearAutoencoderCurves (capopt.linear_autoencoder(importance))")
    budget = check_count(budget, "budget")
    I = curves.importance
    return fit_exact(lambda W: linear_autoencoder_model_loss_and_gradient(W, I),
                     (budget, I.size), starts=starts, seed=seed,
                     init_scale=1.0 / np.sqrt(budget), gtol=gtol, maxiter=maxiter)


class AutoencoderModel:
    r"""R instances of :math:`\hat x = \sigma(W^\top W x + b)`, loss :math:`\sum_i I_i (x_i - \hat x_i)^2`.

    The minibatch loss of instance r is the batch mean of the importance-weighted squared
    error, summed over features (Toy Models of Superposition also divides by N; Adam is
    invariant to that constant factor up to its :math:`\epsilon`).

    Parameters
    ----------
    importance : ndarray, shape (R, N)
    budget : int
        Hidden width d (checked by the caller).
    activation : {"linear", "relu", "gelu"}
    inputs : SparseInputs or FixedSample
    init : str, optional
        Initial W, a key of :data:`capopt.training.INITS`; by default
        :attr:`default_init`, ``"tms"``, the reference recipe's.
    """

    #: The initialiser of the Toy Models of Superposition notebook.
    default_init: ClassVar[str] = "tms"

    def __init__(self, importance: np.ndarray, budget: int, activation: str,
                 inputs: SparseInputs | FixedSample, init: str | None = None) -> None:
        self.init_name = check_choice(self.default_init if init is None else init, "init",
                                      sorted(INITS))
        self.inputs = inputs
        self.I = importance.astype(inputs.dtype)
        self.n_instances, self.n_features = importance.shape
        self.budget = budget
        self.activation = check_activation(activation, AUTOENCODER_ACTIVATIONS)

    def init(self, rngs: Sequence[np.random.Generator]) -> dict:
        dtype = self.inputs.dtype
        return {"W": initial_embedding(self.init_name, rngs, self.budget, self.n_features).astype(dtype),
                "b": np.zeros((self.n_instances, self.n_features), dtype=dtype)}

    def loss_and_grad(
        self,
        params: dict[str, np.ndarray],
        x: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        r"""Minibatch loss (R,) and its gradient.

        With :math:`h = W x`, :math:`z = W^\top h + b`, :math:`\delta = \frac2B I \odot
        (\sigma(z) - x) \odot \sigma'(z)`: :math:`\partial_W = h \delta^\top + (W \delta) x^\top`
        (summed over the batch), :math:`\partial_b = \sum \delta`. The element-wise part is
        one fused pass (:func:`capopt._kernels.training.autoencoder_residual`).
        """
        W, b = params["W"], params["b"]
        B = x.shape[1]
        WT = np.swapaxes(W, -1, -2)
        h = x @ WT                                     # (R, B, d)
        delta = h @ W                                  # (R, B, N), bias added in the kernel
        loss = np.empty(self.n_instances)
        autoencoder_residual(delta, b, x, self.I, ACTIVATION_CODES[self.activation], 2.0 / B, loss)
        grad_W = np.swapaxes(h, -1, -2) @ delta + np.swapaxes(delta @ WT, -1, -2) @ x
        return loss / B, {"W": grad_W, "b": np.sum(delta, axis=1)}

    def describe(self) -> dict:
        # "d" is the key checkpoints were fingerprinted with; renaming it would orphan them.
        return {"architecture": "autoencoder", "activation": self.activation, "d": self.budget,
                "importance": self.I.tolist(), "inputs": self.inputs.describe(),
                "init": self.init_name}


def autoencoder_model(importance: ArrayLike, budget: int, *, activation: str = "relu",
                      density: ArrayLike = 1.0, base: str = "tms", n_instances: int | None = None,
                      dtype: DTypeLike = np.float64, init: str | None = None) -> AutoencoderModel:
    """Build a batched :class:`AutoencoderModel` from user-facing arrays and a checked
    ``budget`` (``init`` None: the model's own)."""
    I, p = instance_grid(importance, density, n_instances)
    if np.any(I < 0):
        raise ValueError(f"importance must be >= 0, got min {I.min():g}")
    if base not in BASES:
        raise ValueError(f"base must be one of {list(BASES)}, got {base!r}")
    return AutoencoderModel(I, budget, activation, SparseInputs(p, base, dtype=dtype), init)


#: :func:`train_autoencoder`'s recipe, the Toy Models of Superposition notebook's: Adam at
#: a constant learning rate 1e-3, batch 1024, 10 000 steps, from the notebook's init.
AUTOENCODER_OPTIONS = TrainingOptions(init=AutoencoderModel.default_init)

#: :func:`train_linear_autoencoder_sampled`'s recipe, that of :func:`capopt.crosscheck`'s
#: sampled route: 5000 steps at lr 1e-2 with a cosine schedule.
LINEAR_AUTOENCODER_SAMPLED_OPTIONS = AUTOENCODER_OPTIONS.with_overrides(steps=5000, lr=1e-2,
                                                                        schedule="cosine")


def train_autoencoder(
    importance: ArrayLike,
    budget: int,
    *,
    activation: str = "relu",
    density: ArrayLike = 1.0,
    base: str = "tms",
    n_instances: int | None = None,
    options: TrainingOptions | None = None,
    **keywords: Any,
) -> SampledFit:
    r"""Train autoencoders :math:`\hat x = \sigma(W^\top W x + b)` with Adam, many instances at once.

    The defaults are the reference recipe of the Toy Models of Superposition notebook
    (:data:`AUTOENCODER_OPTIONS`): ReLU output, inputs :math:`x_i = B_i U_i` with
    :math:`U_i \sim \mathrm{Uniform}[0, 1]`, Adam with learning rate 1e-3 at a constant
    rate, batch 1024, 10 000 steps, zero bias and W drawn as ``xavier_normal_`` draws the
    notebook's batched (instances, features, hidden) tensor,
    :math:`\sigma = \sqrt{2 / (d (N + R))}` for R instances trained together
    (``init="tms"``, :mod:`capopt.training.initialisers`; ``init="glorot"`` draws each
    instance's own (d, N) Glorot-normal matrix).

    Parameters
    ----------
    importance : array_like, shape (N,) or (R, N)
        :math:`I_i \ge 0` (e.g. ``0.9 ** np.arange(N)``).
    budget : int
        Hidden dimension d.
    activation : {"relu", "gelu", "linear"}
    density : float or array_like, shape (R,) or (R, N)
        :math:`1 - S`; a 1-d array trains one instance per density (a sparsity sweep).
    base : str
        Input distribution (:data:`capopt.training.inputs.BASES`); ``"tms"`` by default.
    n_instances : int, optional
        Number of instances (default from the shapes of ``importance`` and ``density``).
    options : TrainingOptions, optional
        The recipe: steps, batch size, learning rate and schedule, seed, precision
        (float32, what Toy Models of Superposition trained in, halves the memory traffic
        of large sweeps), initialiser, convergence criterion. :data:`AUTOENCODER_OPTIONS`
        by default.
    **keywords
        Fields of ``options`` to replace (``steps=500``, ``seed=0``, ``dtype=np.float32``,
        ...) and :func:`capopt.training.fit`'s run arguments (``checkpoint``,
        ``progress``, ...).

    Returns
    -------
    SampledFit
        Embeddings (R, d, N) and biases (R, N).

    Raises
    ------
    TypeError
        For a keyword that is neither a field of :class:`TrainingOptions` nor a run
        argument of :func:`~capopt.training.fit`; the message names the closest.

    Examples
    --------
    >>> import numpy as np
    >>> fit = train_autoencoder(0.9 ** np.arange(5), 2, density=[1.0, 0.1], steps=100, seed=0)
    >>> fit.weights.shape, fit.bias.shape
    ((2, 2, 5), (2, 5))
    """
    options, run = training_options("train_autoencoder", AUTOENCODER_OPTIONS, options, keywords)
    model = autoencoder_model(importance, check_count(budget, "budget"), activation=activation,
                              density=density, base=base, n_instances=n_instances,
                              dtype=options.dtype, init=options.init)
    return fit(model, options, **run)


def train_linear_autoencoder_sampled(
    curves: LinearAutoencoderCurves,
    budget: int,
    *,
    n_seeds: int = 1,
    options: TrainingOptions | None = None,
    **keywords: Any,
) -> SampledFit:
    r"""Train the linear autoencoder :math:`\hat x = W^\top W x` with Adam on sampled inputs.

    The inputs are unit-variance Gaussians, the distribution the closed-form loss of
    :func:`train_linear_autoencoder` assumes; ``n_seeds`` instances are trained together.

    Parameters
    ----------
    curves : LinearAutoencoderCurves
        The importances :math:`I_i \ge 0`, from :func:`capopt.linear_autoencoder`.
    budget : int
        Embedding dimension d.
    n_seeds : int
        Independent instances trained together.
    options : TrainingOptions, optional
        :data:`LINEAR_AUTOENCODER_SAMPLED_OPTIONS` by default.
    **keywords
        As :func:`train_autoencoder`'s.

    Returns
    -------
    SampledFit
        Embeddings of shape (n_seeds, d, N).

    Examples
    --------
    >>> from capopt import linear_autoencoder
    >>> fit = train_linear_autoencoder_sampled(linear_autoencoder([2.0, 1.0]), 1, steps=50, seed=0)
    >>> fit.weights.shape
    (1, 1, 2)
    """
    check_model(curves, "curves", "linear autoencoder",
                "LinearAutoencoderCurves (capopt.linear_autoencoder(importance))")
    options, run = training_options("train_linear_autoencoder_sampled",
                                    LINEAR_AUTOENCODER_SAMPLED_OPTIONS, options, keywords)
    return train_autoencoder(curves.importance, budget, activation="linear", base="gaussian",
                             n_instances=check_count(n_seeds, "n_seeds"), options=options, **run)
