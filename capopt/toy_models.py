r"""The explicit models of the built-in families, as the families declare them.

:meth:`capopt.curves.QuadraticCurves.model` is a :class:`QuadraticToyModel`,
:meth:`capopt.curves.LinearAutoencoderCurves.model` a :class:`LinearAutoencoderModel`:
each an :class:`capopt.models.ExplicitModel` that :func:`capopt.compare` scores embeddings
with and :func:`capopt.crosscheck` trains. Their losses are :mod:`capopt.models`'; their
optimal embeddings come from :mod:`capopt.realisation`, their trainers from
:mod:`capopt.training`, both imported on first use: this module sits above them, and the
families reach it only when asked for their model. Each model names its trainer per route
(:meth:`TrainedToyModel.trainer`), and so the options it takes, which
:func:`capopt.crosscheck` checks before any work.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ._typing import ArrayLike
from .models import ExplicitModel, linear_autoencoder_model_loss, quadratic_model_loss

if TYPE_CHECKING:
    from .curves import LinearAutoencoderCurves, QuadraticCurves
    from .solvers.result import AllocationResult
    from .training.results import ExactFit, SampledFit

__all__ = ["QuadraticToyModel", "LinearAutoencoderModel", "TrainedToyModel", "PREDICTION_REALIZE_TOL"]

#: Tolerance for grouping an optimal allocation into the blocks of the embedding that
#: attains it: the certified methods return capacities to ~1e-9 (the global method's own
#: tolerance is 1e-8), and a block's sum accumulates that over its features.
PREDICTION_REALIZE_TOL = 1e-6


class TrainedToyModel(ExplicitModel):
    """An explicit model of a family ``curves`` trained by one of :mod:`capopt.training`'s
    functions per route, each called as ``trainer(curves, budget, **options)``."""

    curves: Any

    @abc.abstractmethod
    def trainer(self, route: str) -> Callable[..., ExactFit | SampledFit]:
        """The function that trains the model along ``route`` (one of :attr:`routes`)."""

    def train(self, budget: int, route: str, options: dict[str, Any]) -> ExactFit | SampledFit:
        return self.trainer(route)(self.curves, budget, **options)

    def training_options(self, route: str) -> tuple[str, ...]:
        from .training.optim import trainer_keywords

        return trainer_keywords(self.trainer(route))


@dataclass(frozen=True)
class QuadraticToyModel(TrainedToyModel):
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

    def trainer(self, route: str) -> Callable[..., ExactFit | SampledFit]:
        from .training.quadratic import train_quadratic_exact, train_quadratic_sampled

        trainers: dict[str, Callable[..., ExactFit | SampledFit]] = {
            "exact": train_quadratic_exact, "sampled": train_quadratic_sampled}
        return trainers[route]


@dataclass(frozen=True)
class LinearAutoencoderModel(TrainedToyModel):
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

    def trainer(self, route: str) -> Callable[..., ExactFit | SampledFit]:
        from .training.autoencoders import train_linear_autoencoder, train_linear_autoencoder_sampled

        trainers: dict[str, Callable[..., ExactFit | SampledFit]] = {
            "exact": train_linear_autoencoder, "sampled": train_linear_autoencoder_sampled}
        return trainers[route]
