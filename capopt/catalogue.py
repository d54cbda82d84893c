"""A catalogue of allocation problems with a label each, for cross-checks and tests.

:data:`TMS_EXPERIMENTS` are published Toy Models of Superposition settings, trained by
:func:`capopt.training.tms_experiment` and ``capopt crosscheck --experiment NAME``.
:data:`STANDARD_PROBLEMS` are the problems ``capopt crosscheck`` and the report train and
solve by default: convex, concave and mixed quadratic families (kurtosis per feature
straddling 3) and the linear autoencoder, small enough to train in seconds. Nothing here
needs hypothesis; :mod:`capopt.testing` re-exports the catalogue beside its strategies.

Glossary: ``v`` importance, ``K`` kurtosis, ``d`` budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .curves import gated_kurtosis, linear_autoencoder, quadratic
from .solvers.problem import Problem

__all__ = ["Problem", "STANDARD_PROBLEMS", "TmsExperiment", "TMS_EXPERIMENTS"]


def _standard_problems() -> tuple[Problem, ...]:
    dense_sparse = np.where(np.arange(8) % 2 == 0, gated_kurtosis(1.0, "uniform"),
                            gated_kurtosis(0.1, "uniform"))
    return (
        Problem(quadratic([2.0, 1.0], 7.0), 1, label="worked case v=(2,1), K=7"),
        Problem(quadratic(0.8 ** np.arange(6), 5.0), 3, label="v=0.8^i, K=5"),
        Problem(quadratic(0.8 ** np.arange(8), 2.0), 3, label="v=0.8^i, K=2 (concave)"),
        Problem(quadratic(0.85 ** np.arange(8), dense_sparse), 3, label="v=0.85^i, dense+sparse K=1.8/18"),
        Problem(quadratic(0.9 ** np.arange(20), 10.0), 5, label="v=0.9^i, K=10"),
        Problem(quadratic(np.ones(10), np.linspace(1.5, 12.0, 10)), 4, label="v=1, K=1.5..12"),
        Problem(quadratic(np.random.default_rng(7).uniform(0.2, 1.0, 12),
                          np.random.default_rng(8).uniform(1.2, 6.0, 12)), 5, label="v=U(0.2,1), K=U(1.2,6)"),
        Problem(linear_autoencoder(0.7 ** np.arange(6)), 3, label="linear autoencoder I=0.7^i"),
    )


#: The problems ``capopt crosscheck`` runs by default: convex, concave and mixed quadratic
#: families (kurtosis per feature straddling 3) and the linear autoencoder.
STANDARD_PROBLEMS = _standard_problems()


@dataclass(frozen=True)
class TmsExperiment:
    r"""One published Toy Models of Superposition experiment, in its reference recipe.

    ReLU autoencoders :math:`\hat x = \mathrm{ReLU}(W^\top W x + b)` of constant importance,
    trained with Adam at a constant learning rate from the notebook's initialisation
    (:func:`capopt.training.train_autoencoder`'s defaults;
    :func:`capopt.training.tms_experiment` trains it), one instance per density.

    Attributes
    ----------
    name : str
    n_features, budget : int
        N and d.
    densities : tuple of float
        Input densities :math:`1 - S`, one instance each per seed.
    steps, batch_size : int
    lr : float
    measure : {"capacity", "dimensions per feature"}
        What the publication reads its sticky values off: each feature's capacity
        (dimensionality) :math:`C_i`, or the model's :math:`d / \|W\|_F^2`.
    published : tuple of float
        The values the publication reports that ``measure`` sticks at.
    source : str
        Where the setting and the values are published.
    """

    name: str
    n_features: int
    budget: int
    densities: tuple
    steps: int
    batch_size: int
    lr: float
    measure: str
    published: tuple
    source: str


_TMS_SOURCE = ("Elhage et al., Toy Models of Superposition (2022), section 'Feature Dimensionality', "
               "and its notebook")

#: The published settings :func:`capopt.training.tms_experiment` reproduces, by name. In 200 -> 20 the
#: dimensions per feature stick at 1 and 1/2 over 20 densities from 1 to 1/20 (the
#: notebook's ``20 ** -linspace(0, 1, 20)``); the per-feature values 1/2 -> 2/5 -> 3/8 are
#: read in 400 -> 30 in a window of densities near the end of the 1/2 plateau.
TMS_EXPERIMENTS = {
    "tms-200-20": TmsExperiment(
        "tms-200-20", 200, 20, tuple(float(p) for p in 20.0 ** -np.linspace(0.0, 1.0, 20)),
        10_000, 1024, 1e-3, "dimensions per feature", (1.0, 1 / 2), _TMS_SOURCE),
    "tms-400-30": TmsExperiment(
        "tms-400-30", 400, 30, tuple(float(p) for p in np.linspace(0.19, 0.30, 8)),
        10_000, 1024, 1e-3, "capacity", (1 / 2, 2 / 5, 3 / 8), _TMS_SOURCE),
}
