r"""The explicit models of the built-in families, as the families declare them.

:meth:`capopt.curves.QuadraticCurves.model` is a :class:`QuadraticToyModel`,
:meth:`capopt.curves.LinearAutoencoderCurves.model` a :class:`LinearAutoencoderModel`:
each an :class:`capopt.models.ExplicitModel` that :func:`capopt.compare` scores embeddings
with and :func:`capopt.crosscheck` trains. Their losses are :mod:`capopt.models`'; their
optimal embeddings come from :mod:`capopt.realisation`, their trainers from
:mod:`capopt.training`, both imported on first use: this module sits above them, and the
families reach it only when asked for their model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ._typing import ArrayLike
from .models import ExplicitModel, linear_autoencoder_model_loss, quadratic_model_loss

if TYPE_CHECKING:
    from .curves import LinearAutoencoderCurves, QuadraticCurves
    from .solvers.result import AllocationResult
    from .training.results import ExactFit, SampledFit

__all__ = ["QuadraticToyModel", "LinearAutoencoderModel", "PREDICTION_REALIZE_TOL"]

#: Tolerance for grouping an optimal allocation into the blocks of the embedding that
#: attains it: the certified methods return capacities to ~1e-9 (the global method's own
#: tolerance is 1e-8), and a block's sum accumulates that over its features.
PREDICTION_REALIZE_TOL = 1e-6


@dataclass(frozen=True)
class QuadraticToyModel(ExplicitModel):
    r"""The quadratic model :math:`\hat y = x^\top W^\top W x + b` of a
    :class:`~capopt.curves.QuadraticCurves` family (theory §3)."""

    curves: QuadraticCurves
    name: ClassVar[str] = "quadratic"
    routes: ClassVar[tuple[str, ...]] = ("exact", "sampled")

    def loss(self, W: ArrayLike) -> np.ndarray:
        return quadratic_model_loss(W, self.curves.importance, self.curves.kurtosis)

    def optimal_embedding(self, result: AllocationResult) -> np.ndarray:
        from .realisation import optimal_quadratic_model

        return optimal_quadratic_model(self.curves, result, seed=0, tol=PREDICTION_REALIZE_TOL).W

    def train(self, budget: int, route: str, options: dict[str, Any]) -> ExactFit | SampledFit:
        from .training.quadratic import train_quadratic_exact, train_quadratic_sampled

        train = train_quadratic_exact if route == "exact" else train_quadratic_sampled
        return train(self.curves, budget, **options)


@dataclass(frozen=True)
class LinearAutoencoderModel(ExplicitModel):
    r"""The linear autoencoder :math:`\hat x = W^\top W x` of a
    :class:`~capopt.curves.LinearAutoencoderCurves` family (theory §3)."""

    curves: LinearAutoencoderCurves
    name: ClassVar[str] = "linear autoencoder"
    routes: ClassVar[tuple[str, ...]] = ("exact", "sampled")

    def loss(self, W: ArrayLike) -> np.ndarray:
        return linear_autoencoder_model_loss(W, self.curves.importance)

    def optimal_embedding(self, result: AllocationResult) -> np.ndarray:
        # Blocks of eigenvalue 1 give a_i = C_i, where (1 - a)^2 + a^2 (1/C - 1) = 1 - C is
        # the curve itself: realize's embedding is the optimal autoencoder.
        from .realisation import realize

        dim = int(np.floor(result.budget + PREDICTION_REALIZE_TOL))
        return realize(result.capacities, dim, seed=0, tol=PREDICTION_REALIZE_TOL)

    def train(self, budget: int, route: str, options: dict[str, Any]) -> ExactFit | SampledFit:
        from .training.autoencoders import train_autoencoder, train_linear_autoencoder

        if route == "exact":
            return train_linear_autoencoder(self.curves, budget, **options)
        # Unit-variance Gaussian inputs, the distribution the closed-form loss assumes.
        options = dict(options)
        n_seeds = options.pop("n_seeds", 1)
        return train_autoencoder(self.curves.importance, budget, activation="linear", base="gaussian",
                                 n_instances=n_seeds,
                                 **{"steps": 5000, "lr": 1e-2, "schedule": "cosine", **options})
