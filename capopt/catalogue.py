"""A catalogue of allocation problems with a label each, for cross-checks and tests.

:data:`STANDARD_PROBLEMS` are the problems ``capopt crosscheck`` and the report train and
solve by default: convex, concave and mixed quadratic families (kurtosis per feature
straddling 3) and the linear autoencoder, small enough to train in seconds. Nothing here
needs hypothesis; :mod:`capopt.testing` re-exports the catalogue beside its strategies.

Glossary: ``v`` importance, ``K`` kurtosis, ``d`` budget.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .curves import LossCurves, gated_kurtosis, linear_autoencoder, quadratic

__all__ = ["Problem", "STANDARD_PROBLEMS"]


class Problem(NamedTuple):
    """A labelled cross-check problem: curves and embedding dimension."""

    label: str
    curves: LossCurves
    budget: int


def _standard_problems() -> tuple[Problem, ...]:
    dense_sparse = np.where(np.arange(8) % 2 == 0, gated_kurtosis(1.0, "uniform"),
                            gated_kurtosis(0.1, "uniform"))
    return (
        Problem("worked case v=(2,1), K=7", quadratic([2.0, 1.0], 7.0), 1),
        Problem("v=0.8^i, K=5", quadratic(0.8 ** np.arange(6), 5.0), 3),
        Problem("v=0.8^i, K=2 (concave)", quadratic(0.8 ** np.arange(8), 2.0), 3),
        Problem("v=0.85^i, dense+sparse K=1.8/18", quadratic(0.85 ** np.arange(8), dense_sparse), 3),
        Problem("v=0.9^i, K=10", quadratic(0.9 ** np.arange(20), 10.0), 5),
        Problem("v=1, K=1.5..12", quadratic(np.ones(10), np.linspace(1.5, 12.0, 10)), 4),
        Problem("v=U(0.2,1), K=U(1.2,6)", quadratic(np.random.default_rng(7).uniform(0.2, 1.0, 12),
                                                    np.random.default_rng(8).uniform(1.2, 6.0, 12)), 5),
        Problem("linear autoencoder I=0.7^i", linear_autoencoder(0.7 ** np.arange(6)), 3),
    )


#: The problems ``capopt crosscheck`` runs by default: convex, concave and mixed quadratic
#: families (kurtosis per feature straddling 3) and the linear autoencoder.
STANDARD_PROBLEMS = _standard_problems()
