r"""Training the quadratic model :math:`\hat y = x^\top W^\top W x + b` (theory §3).

Two routes to a trained embedding, both independent of the allocation solvers:

* exact: L-BFGS on the closed-form expected loss :math:`L(W)` (bias at its optimum) with its
  analytic gradient, :func:`capopt.models.quadratic_model_loss_and_gradient`, from several
  random starts;
* sampled: Adam on minibatches drawn from inputs of the requested kurtosis, through the
  two-layer model with :math:`\phi(h) = h^2` (:mod:`capopt.training.two_layer`).

Glossary: ``W`` (d, N) embedding, ``d`` the budget (a number of neurons), ``v`` importance,
``K`` fourth moment of each input, ``G = W^T W``, ``a_i = G_ii``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _formulas as F
from .._validation import check_count, check_model
from ..models import quadratic_model_loss_and_gradient
from .optim import fit, fit_exact, training_options
from .options import TrainingOptions
from .results import ExactFit, SampledFit
from .two_layer import TwoLayerModel, sampled_inputs
from .._typing import DTypeLike, Seed

if TYPE_CHECKING:
    from ..curves import QuadraticCurves

__all__ = ["QUADRATIC_SAMPLED_OPTIONS", "quadratic_loss_and_gradient", "train_quadratic_exact",
           "train_quadratic_sampled"]


def _check_problem(curves: QuadraticCurves, budget: int) -> tuple[QuadraticCurves, int]:
    """The trainers' arguments, checked once: the family and the budget as a neuron count."""
    check_model(curves, "curves", "quadratic", "QuadraticCurves (capopt.quadratic(importance, kurtosis))")
    return curves, check_count(budget, "budget")


#: The exact loss the trainer minimises, with its gradient: defined with the model.
quadratic_loss_and_gradient = quadratic_model_loss_and_gradient


def train_quadratic_exact(
    curves: QuadraticCurves,
    budget: int,
    *,
    starts: int = 8,
    seed: Seed = None,
    gtol: float = 1e-11,
    maxiter: int = 20_000,
) -> ExactFit:
    r"""Train the quadratic model on its exact expected loss with multi-start L-BFGS.

    Minimises, over embeddings W of shape (d, N),

    .. math::

        L(W) = \sum_i (K_i - 1)(v_i - G_{ii})^2 + 2 \sum_{i \ne j} G_{ij}^2,
        \qquad G = W^\top W,

    the expected loss with the bias at its optimum
    (:func:`capopt.models.quadratic_model_loss_and_gradient`).

    Parameters
    ----------
    curves : QuadraticCurves
        The problem's importances :math:`v_i` and kurtoses :math:`K_i`, from
        :func:`capopt.quadratic`.
    budget : int
        Embedding dimension d, the number of neurons.
    starts, seed, gtol, maxiter
        See :func:`capopt.training.fit_exact`. The starts are Gaussian with
        :math:`\sigma^2 = \overline{|v|}/d`, so that :math:`\|W_i\|^2` starts near the
        importances.

    Returns
    -------
    ExactFit
        The lowest-loss embedding, shape (d, N), and every start's final loss.

    Raises
    ------
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.QuadraticCurves` or ``budget`` is not an
        integer.
    ValueError
        If ``budget`` is below 1.

    Notes
    -----
    Each iteration costs :math:`O(d N^2)`. The loss is invariant under
    :math:`W \to Q W` for orthogonal Q, so trained weights are compared with a prediction
    through their capacities, never entry by entry.

    Examples
    --------
    >>> from capopt import quadratic
    >>> fit = train_quadratic_exact(quadratic([2.0, 1.0], 7.0), 1, starts=2, seed=0)
    >>> fit.capacities.round(6)
    array([0.833333, 0.166667])
    """
    curves, budget = _check_problem(curves, budget)
    v, K = curves.importance, curves.kurtosis
    scale = np.sqrt(max(float(np.mean(np.abs(v))), np.finfo(float).tiny) / budget)
    return fit_exact(lambda W: quadratic_model_loss_and_gradient(W, v, K), (budget, v.size),
                     starts=starts, seed=seed, init_scale=scale, gtol=gtol, maxiter=maxiter)


def quadratic_sampled_model(curves: QuadraticCurves, budget: int, *, base: str = "rademacher",
                            n_seeds: int = 1, dataset_size: int | None = None,
                            dtype: DTypeLike = np.float64, init: str | None = None) -> TwoLayerModel:
    r"""The batched two-layer model with :math:`\phi(h) = h^2` whose inputs have kurtosis ``K``.

    Inputs are :math:`x_i = B_i z_i / \sqrt{p_i}` with :math:`p_i = K_z / K_i`, so that
    :math:`E[x_i^4] = K_i` exactly; ``n_seeds`` identical instances are trained together.
    Arguments as :func:`train_quadratic_sampled` (``dtype`` and ``init`` those of its
    options; ``init`` None: the model's own).
    """
    curves, budget = _check_problem(curves, budget)
    if base not in F.BASE_FOURTH_MOMENT:
        raise ValueError(f"base must be one of {sorted(F.BASE_FOURTH_MOMENT)}, got {base!r}")
    K_z = F.BASE_FOURTH_MOMENT[base]
    v, K = curves.importance, curves.kurtosis
    if np.any(K < K_z):
        raise ValueError(
            f"kurtosis {K.min():g} is below the {base} base's K_z = {K_z:g} (inputs B z / sqrt(p) "
            "have K = K_z / p >= K_z); use base='rademacher', which reaches every K >= 1"
        )
    n_seeds = check_count(n_seeds, "n_seeds")
    shape = (n_seeds, v.size)
    inputs = sampled_inputs(np.broadcast_to(K_z / K, shape), base, dtype, dataset_size)
    return TwoLayerModel(np.broadcast_to(v, shape), budget, "square", inputs, init)


#: :func:`train_quadratic_sampled`'s recipe (the cross-check tables'): 5000 Adam steps at lr
#: 1e-2 with a cosine schedule, batch 1024, from the two-layer model's Glorot-normal W.
QUADRATIC_SAMPLED_OPTIONS = TrainingOptions(steps=5000, lr=1e-2, schedule="cosine",
                                            init=TwoLayerModel.default_init)


def train_quadratic_sampled(
    curves: QuadraticCurves,
    budget: int,
    *,
    base: str = "rademacher",
    n_seeds: int = 1,
    dataset_size: int | None = None,
    options: TrainingOptions | None = None,
    **keywords: Any,
) -> SampledFit:
    r"""Train the quadratic model with Adam on sampled minibatches.

    Parameters
    ----------
    curves : QuadraticCurves
        The problem, from :func:`capopt.quadratic`; its kurtoses :math:`K_i` are the target
        fourth moments: the inputs are gated ``base`` variables with density
        :math:`K_z / K_i` (requires :math:`K_i \ge K_z`).
    budget : int
        Embedding dimension d, the number of neurons.
    base : {"rademacher", "uniform", "gaussian"}
        Distribution of an active input. Only :math:`K_i` enters the expected loss, so the
        base changes the sampling noise, not the optimum.
    n_seeds : int
        Independent instances trained together.
    dataset_size : int, optional
        Train on a fixed sample of this many inputs per instance (minibatches resampled from
        it; ``batch_size == dataset_size`` is full-batch training of the empirical loss).
        By default every step draws fresh inputs.
    options : TrainingOptions, optional
        The recipe; :data:`QUADRATIC_SAMPLED_OPTIONS` by default.
    **keywords
        Fields of ``options`` to replace (``steps=500``, ``seed=0``, ...) and
        :func:`capopt.training.fit`'s run arguments (``checkpoint``, ``progress``, ...).

    Returns
    -------
    SampledFit
        Embeddings of shape (n_seeds, d, N) and scalar biases.

    Raises
    ------
    TypeError
        For a keyword that is neither a field of :class:`TrainingOptions` nor a run
        argument of :func:`~capopt.training.fit`; the message names the closest.

    Examples
    --------
    >>> from capopt import quadratic
    >>> fit = train_quadratic_sampled(quadratic([2.0, 1.0], 7.0), 1, steps=300, seed=0)
    >>> fit.weights.shape
    (1, 1, 2)
    """
    options, run = training_options("train_quadratic_sampled", QUADRATIC_SAMPLED_OPTIONS, options,
                                    keywords)
    model = quadratic_sampled_model(curves, budget, base=base, n_seeds=n_seeds,
                                    dataset_size=dataset_size, dtype=options.dtype,
                                    init=options.init)
    return fit(model, options, **run)
