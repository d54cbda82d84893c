r"""Two-layer models :math:`\hat y = \sum_k \phi((W x)_k) + b` learning :math:`y = \sum_i v_i x_i^2`.

Glossary: ``W`` (R, d, N) embedding of R instances (features last), ``d`` the budget (hidden
width), ``b`` (R,) output bias, ``v`` importance, ``phi`` the neuron nonlinearity, ``h = W x`` pre-activations.

With :math:`\phi(h) = h^2` this *is* the quadratic model of theory §3
(:math:`\sum_k (Wx)_k^2 = x^\top W^\top W x`), whose sampled training
:func:`capopt.training.train_quadratic_sampled` runs through this module. The other
nonlinearities have no closed-form loss curves and are measured by training (theory §4).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import ndtr

from .. import _formulas as F
from .._validation import as_float_array, check_choice, check_count
from .._kernels.training import NEURON_CODES, two_layer_residual
from .initialisers import INITS, initial_embedding
from .inputs import FixedSample, SparseInputs
from .optim import fit, training_options
from .options import TrainingOptions
from .results import SampledFit
from .._typing import ArrayLike, DTypeLike

__all__ = ["ACTIVATIONS", "TWO_LAYER_OPTIONS", "TwoLayerModel", "train_two_layer"]


def _gelu(z: np.ndarray) -> np.ndarray:
    return F.gelu(z, ndtr(z))


def _gelu_prime(z: np.ndarray) -> np.ndarray:
    return F.gelu_slope(z, ndtr(z))


#: Nonlinearities as (phi, phi') pairs, derived in ``derivations/activations.py``. GeLU is the
#: exact :math:`z\,\Phi(z)`, not the tanh approximation. The derivative of relu and abs at 0
#: is taken as 0 (a subgradient). Training evaluates the same derived forms in one fused
#: kernel (:func:`capopt._kernels.training.two_layer_residual`, checked against these in the tests).
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "square": (F.square, F.square_slope),
    "relu": (F.relu, F.relu_slope),
    "gelu": (_gelu, _gelu_prime),
    "abs": (F.absolute, F.absolute_slope),
}


def check_activation(name: str, allowed: Collection[str]) -> str:
    if name not in allowed:
        raise ValueError(f"activation must be one of {sorted(allowed)}, got {name!r}")
    return name


def per_instance_features(
    values: ArrayLike,
    name: str,
    R: int,
    N: int,
    *,
    positive: bool,
) -> np.ndarray:
    """Broadcast a scalar, (N,) or (R, N) array to (R, N), checking its values."""
    arr = as_float_array(values, name)
    if arr.shape not in ((), (N,), (R, N)):
        raise ValueError(f"{name} must be a scalar, shape ({N},) or ({R}, {N}), got shape {arr.shape}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got min {arr.min():g}")
    return np.array(np.broadcast_to(arr, (R, N)))


class TwoLayerModel:
    r"""R instances of :math:`\hat y = \sum_k \phi((W x)_k) + b` with target :math:`y = \sum_i v_i x_i^2`.

    Loss of instance r on a batch: :math:`\frac1B \sum_{\text{batch}} (\hat y - y)^2`.

    Parameters
    ----------
    importance : ndarray, shape (R, N)
    budget : int
        Hidden width d (checked by the caller).
    activation : str
        A key of :data:`ACTIVATIONS`.
    inputs : SparseInputs or FixedSample
        Input distribution of every instance.
    init : str, optional
        Initial W, a key of :data:`capopt.training.INITS`; by default
        :attr:`default_init`, ``"glorot"``.
    """

    #: Glorot-normal of each instance's own (d, N) matrix.
    default_init: ClassVar[str] = "glorot"

    def __init__(self, importance: np.ndarray, budget: int, activation: str,
                 inputs: SparseInputs | FixedSample, init: str | None = None) -> None:
        self.init_name = check_choice(self.default_init if init is None else init, "init",
                                      sorted(INITS))
        self.v = importance.astype(inputs.dtype)
        self.n_instances, self.n_features = importance.shape
        self.budget = budget
        self.activation = check_activation(activation, ACTIVATIONS)
        self.inputs = inputs

    def init(self, rngs: Sequence[np.random.Generator]) -> dict:
        dtype = self.inputs.dtype
        return {"W": initial_embedding(self.init_name, rngs, self.budget, self.n_features).astype(dtype),
                "b": np.zeros(self.n_instances, dtype=dtype)}

    def loss_and_grad(
        self,
        params: dict[str, np.ndarray],
        x: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        r"""Minibatch loss (R,) and its gradient.

        With :math:`h = W x`, :math:`r = \hat y - y`:
        :math:`\partial_W = \frac2B \sum r\, \phi'(h)\, x^\top`, :math:`\partial_b = \frac2B \sum r`.
        The element-wise part is one fused pass (:func:`capopt._kernels.training.two_layer_residual`).
        """
        W, b = params["W"], params["b"]
        B = x.shape[1]
        dh = x @ np.swapaxes(W, -1, -2)                    # (R, B, d): h, then dloss/dh
        loss, residual_sum = np.empty(self.n_instances), np.empty(self.n_instances)
        two_layer_residual(dh, x, self.v, b, NEURON_CODES[self.activation], 2.0 / B, loss,
                           residual_sum)
        grads = {"W": np.swapaxes(dh, -1, -2) @ x, "b": (2.0 / B) * residual_sum.astype(b.dtype)}
        return loss / B, grads

    def describe(self) -> dict:
        # "d" is the key checkpoints were fingerprinted with; renaming it would orphan them.
        return {"architecture": "two-layer", "activation": self.activation, "d": self.budget,
                "importance": self.v.tolist(), "inputs": self.inputs.describe(),
                "init": self.init_name}


#: :func:`train_two_layer`'s recipe: Adam at a constant learning rate 1e-3, batch 1024,
#: 10 000 steps (the Toy Models of Superposition settings), from a Glorot-normal W.
TWO_LAYER_OPTIONS = TrainingOptions(init=TwoLayerModel.default_init)


def train_two_layer(
    importance: ArrayLike,
    budget: int,
    *,
    activation: str = "relu",
    density: ArrayLike = 1.0,
    base: str = "uniform",
    n_instances: int | None = None,
    options: TrainingOptions | None = None,
    **keywords: Any,
) -> SampledFit:
    r"""Train two-layer models :math:`\hat y = \sum_k \phi((Wx)_k) + b` on :math:`y = \sum_i v_i x_i^2`.

    Parameters
    ----------
    importance : array_like, shape (N,) or (R, N)
        :math:`v_i`.
    budget : int
        Hidden width d.
    activation : {"square", "relu", "gelu", "abs", "linear"}
    density : float or array_like, shape (R,) or (R, N)
        Probability each input is active; a 1-d array of length R gives one density per
        instance (a sparsity sweep). Inputs are :math:`B z / \sqrt p` with unit variance.
    base : str
        Distribution of an active input (:data:`capopt.training.inputs.BASES`); default
        the centred uniform of theory §3's dense-vs-sparse mechanism (K = 1.8 / p).
    n_instances : int, optional
        Defaults to the length of a 1-d ``density`` or the leading axis of ``importance``.
    options : TrainingOptions, optional
        The recipe (steps, batch size, learning rate, schedule, seed, precision,
        initialiser, convergence criterion); :data:`TWO_LAYER_OPTIONS` by default.
    **keywords
        Fields of ``options`` to replace (``steps=500``, ``lr=1e-2``, ...) and
        :func:`capopt.training.fit`'s run arguments (``checkpoint``, ``progress``, ...).

    Returns
    -------
    SampledFit

    Raises
    ------
    TypeError
        For a keyword that is neither a field of :class:`TrainingOptions` nor a run
        argument of :func:`~capopt.training.fit`; the message names the closest.

    Examples
    --------
    >>> fit = train_two_layer([1.0, 0.5], 2, activation="abs", steps=200, seed=0, lr=1e-2)
    >>> fit.weights.shape
    (1, 2, 2)
    """
    options, run = training_options("train_two_layer", TWO_LAYER_OPTIONS, options, keywords)
    model = two_layer_model(importance, check_count(budget, "budget"), activation, density, base,
                            n_instances, dtype=options.dtype, init=options.init)
    return fit(model, options, **run)


def instance_grid(importance: ArrayLike, density: ArrayLike, n_instances: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Resolve the (R, N) importance and density arrays of a batched run.

    ``importance`` is (N,) or (R, N); ``density`` is a scalar, (R,) (one per instance: a
    sparsity sweep) or (R, N). R comes from ``n_instances``, else from the leading axis of a
    2-d importance or of a non-scalar density, else 1.
    """
    v = as_float_array(importance, "importance")
    p = as_float_array(density, "density")
    if v.ndim not in (1, 2) or v.shape[-1] == 0:
        raise ValueError(f"importance must have shape (N,) or (R, N), got {v.shape}")
    if p.ndim > 2:
        raise ValueError(f"density must be a scalar, shape (R,) or (R, N), got {p.shape}")
    N = v.shape[-1]
    if n_instances is None:
        n_instances = v.shape[0] if v.ndim == 2 else p.shape[0] if p.ndim else 1
    R = int(n_instances)
    if p.ndim == 1:
        if p.shape != (R,):
            raise ValueError(f"a 1-d density gives one value per instance and must have shape "
                             f"({R},), got {p.shape}")
        p = np.broadcast_to(p[:, None], (R, N))
    return (per_instance_features(v, "importance", R, N, positive=False),
            per_instance_features(p, "density", R, N, positive=True))


def sampled_inputs(density: np.ndarray, base: str, dtype: DTypeLike,
                   dataset_size: int | None = None) -> SparseInputs | FixedSample:
    """:class:`SparseInputs` of ``density`` (R, N), or a :class:`FixedSample` of
    ``dataset_size`` examples per instance drawn from them."""
    sparse = SparseInputs(density, base, dtype=dtype)
    return sparse if dataset_size is None else FixedSample(sparse, dataset_size)


def two_layer_model(importance: ArrayLike, budget: int, activation: str, density: ArrayLike,
                    base: str, n_instances: int | None, dataset_size: int | None = None,
                    dtype: DTypeLike = np.float64, init: str | None = None) -> TwoLayerModel:
    """Build a batched :class:`TwoLayerModel` from user-facing arrays and a checked ``budget``
    (on a :class:`FixedSample` of ``dataset_size`` examples per instance if given; ``init``
    None: the model's own)."""
    v, p = instance_grid(importance, density, n_instances)
    return TwoLayerModel(v, budget, activation, sampled_inputs(p, base, dtype, dataset_size), init)
