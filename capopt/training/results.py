"""What the trainers return: the trained weights and how the training went.

Weights always have the features on the last axis, ``W[..., hidden, feature]``, the layout
:func:`capopt.capacity` reads by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..capacity import capacity

__all__ = ["ExactFit", "SampledFit", "TRAINED_REGIME_ATOL", "TRAINED_BLOCK_TOL", "TRAINED_ZERO_TOL"]

# How to read regimes and blocks off Adam-trained weights (cross-checks and sparsity sweeps).

#: Regime tolerance for Adam-trained weights: capacities within 0.02 of 0 or 1 count as
#: ignored or monosemantic. Adam at a constant learning rate leaves the weights jittering,
#: which moves capacities by ~1e-3..1e-2; 0.02 is also the distance at which a capacity is
#: said to sit at a published value.
TRAINED_REGIME_ATOL = 0.02

#: Block tolerance for Adam-trained weights: features whose cosine exceeds 0.1 share a
#: block. The 1e-3 default of :func:`capopt.blocks` suits L-BFGS optima; Adam leaves
#: cross-block cosines c of a few 1e-2, and a cosine c moves a capacity by ~c^2, so 0.1
#: matches the ~1e-2 capacity jitter of TRAINED_REGIME_ATOL. Genuine overlaps are far
#: larger (a pentagon's neighbours have cosine 0.31, an antipodal pair -1).
TRAINED_BLOCK_TOL = 0.1

#: Columns shorter than 0.1 of the longest are ignored features when reading the blocks of
#: Adam-trained weights: unused features keep small residual columns pointing anywhere.
TRAINED_ZERO_TOL = 0.1


@dataclass(frozen=True, repr=False)
class ExactFit:
    """Best of several L-BFGS runs on a model's exact expected loss.

    Attributes
    ----------
    weights : ndarray, shape (d, N)
        Embedding of the start that reached the lowest loss.
    loss : float
        Its exact expected loss.
    start_losses : ndarray, shape (starts,)
        Final loss of every start, in the order they ran.
    iterations : ndarray of int, shape (starts,)
        L-BFGS iterations of every start.
    seconds : float
        Wall-clock time of all starts.
    """

    weights: np.ndarray
    loss: float
    start_losses: np.ndarray
    iterations: np.ndarray
    seconds: float

    @property
    def capacities(self) -> np.ndarray:
        """Capacities of the trained embedding, shape (N,)."""
        return capacity(self.weights)

    def n_at_best(self, rtol: float = 1e-8) -> int:
        """How many starts ended within ``rtol`` (relative) of the best loss."""
        scale = max(abs(self.loss), np.finfo(float).tiny)
        return int(np.sum(self.start_losses - self.loss <= rtol * scale))

    def __repr__(self) -> str:
        return (
            f"ExactFit(loss={self.loss:.10g}, starts={self.start_losses.size}, "
            f"at_best={self.n_at_best()}, seconds={self.seconds:.2g})"
        )


@dataclass(frozen=True, repr=False)
class SampledFit:
    """Model instances trained together with Adam on sampled minibatches.

    Attributes
    ----------
    weights : ndarray, shape (R, d, N)
        Embedding of every instance.
    bias : ndarray, shape (R,) or (R, N)
        Output bias (a scalar per instance for the two-layer models, one per feature for
        the autoencoders).
    loss_history : ndarray, shape (n_records, R)
        Mean minibatch loss over each recording window.
    record_steps : ndarray of int, shape (n_records,)
        Step count at the end of each window.
    steps : int
        Adam steps taken (fewer than the cap when the convergence criterion stopped
        training).
    seconds : float
        Wall-clock training time, summed over resumed runs.
    resumed_from : int
        Step the last call resumed from (0 for a fresh run).
    converged : bool
        Whether the convergence criterion (:func:`capopt.training.fit`'s ``tol``) stopped
        training; False for a fixed step count or a run that reached the cap.
    """

    weights: np.ndarray
    bias: np.ndarray
    loss_history: np.ndarray
    record_steps: np.ndarray
    steps: int
    seconds: float
    resumed_from: int = 0
    converged: bool = False

    @property
    def capacities(self) -> np.ndarray:
        """Capacities of every instance's embedding, shape (R, N)."""
        return capacity(self.weights)

    @property
    def final_loss(self) -> np.ndarray:
        """Mean minibatch loss of the last recording window, shape (R,)."""
        return self.loss_history[-1]

    def __repr__(self) -> str:
        R, d, N = self.weights.shape
        return (
            f"SampledFit(instances={R}, d={d}, n_features={N}, steps={self.steps}, "
            f"converged={self.converged}, seconds={self.seconds:.3g})"
        )
