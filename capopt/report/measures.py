"""What several figures of ``capopt reproduce`` measure alike.

Glossary: ``C`` capacity, ``d`` budget, ``N`` number of features, ``W`` a d x N embedding.
"""

from __future__ import annotations

import numpy as np

from ..capacity import capacity
from ..curves import Shape
from ..regimes import Regime

__all__ = ["POLYSEMANTIC", "RETURNS", "spread", "unused_capacity"]

#: The code of the polysemantic regime in ``AllocationResult.regime_codes``.
POLYSEMANTIC = list(Regime).index(Regime.POLYSEMANTIC)

#: The returns to capacity of a family of each shape, in the words of the captions and tables.
RETURNS = {Shape.CONCAVE: "increasing", Shape.LINEAR: "constant", Shape.CONVEX: "diminishing"}


def spread(values: np.ndarray) -> float:
    """Range over seeds (the last axis) of a per-seed quantity."""
    return float(np.max(values, axis=-1) - np.min(values, axis=-1))


def unused_capacity(W: np.ndarray, d: int) -> float:
    """min(d, N) - sum_i C_i of the d x N embedding W: zero iff W is block-semi-orthogonal
    of rank min(d, N) (theory §1)."""
    return float(min(d, W.shape[-1]) - capacity(W).sum())
