"""Gradient-trained models, used only to cross-check the allocation solvers (theory §3-§4).

Nothing here runs inside a solver: these trainers produce embeddings whose measured
capacities are compared with what :func:`capopt.solve` predicts (:func:`crosscheck`), or
tabulated against sparsity for architectures without closed-form curves
(:func:`sparsity_sweep`). The problems cross-checked by default, :data:`STANDARD_PROBLEMS`,
are :mod:`capopt.catalogue`'s. Every Adam-trained run takes its recipe as one
:class:`TrainingOptions` (or keyword overrides of its fields).
"""

from .autoencoders import (
    AutoencoderModel,
    linear_autoencoder_loss_and_gradient,
    train_autoencoder,
    train_linear_autoencoder,
    train_linear_autoencoder_sampled,
)
from ..catalogue import STANDARD_PROBLEMS, TMS_EXPERIMENTS, Problem, TmsExperiment
from .crosscheck import CrosscheckReport, crosscheck, crosscheck_table
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .initialisers import INITS
from .inputs import FixedSample, SparseInputs
from .optim import Adam, fit, fit_exact
from .options import SCHEDULES, TrainingOptions
from .quadratic import quadratic_loss_and_gradient, train_quadratic_exact, train_quadratic_sampled
from .results import ExactFit, SampledFit
from .sparsity import (ARCHITECTURES, PUBLISHED_DIMENSIONALITIES, SparsitySweep, sparsity_sweep,
                       tms_experiment)
from .two_layer import ACTIVATIONS, TwoLayerModel, train_two_layer

__all__ = [
    "ARCHITECTURES",
    "CrosscheckReport",
    "PUBLISHED_DIMENSIONALITIES",
    "Problem",
    "STANDARD_PROBLEMS",
    "SparsitySweep",
    "TMS_EXPERIMENTS",
    "TmsExperiment",
    "tms_experiment",
    "crosscheck",
    "crosscheck_table",
    "sparsity_sweep",
    "ACTIVATIONS",
    "Adam",
    "AutoencoderModel",
    "ExactFit",
    "FixedSample",
    "INITS",
    "SCHEDULES",
    "SampledFit",
    "SparseInputs",
    "TrainingOptions",
    "TwoLayerModel",
    "fit",
    "fit_exact",
    "linear_autoencoder_loss_and_gradient",
    "load_checkpoint",
    "CheckpointError",
    "quadratic_loss_and_gradient",
    "save_checkpoint",
    "train_autoencoder",
    "train_linear_autoencoder",
    "train_linear_autoencoder_sampled",
    "train_quadratic_exact",
    "train_quadratic_sampled",
    "train_two_layer",
]
