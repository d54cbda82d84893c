r"""Sparsity sweeps: trained architectures without closed-form curves (theory §4).

:func:`sparsity_sweep` trains one instance of an architecture (ReLU / GeLU autoencoders,
two-layer models; :data:`ARCHITECTURES`) per density in one batched run and tabulates the
capacities, the regime fractions and the block sizes against sparsity
(:class:`SparsitySweep`), with the feature dimensionalities Toy Models of Superposition
reports (:data:`PUBLISHED_DIMENSIONALITIES`) to compare with.

Glossary: ``C`` capacity, ``d`` the budget (hidden width), ``v`` / ``I`` importance, ``p``
density, ``S = 1 - p`` sparsity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from .._validation import as_float_vector, check_choice, check_count
from ..catalogue import TMS_EXPERIMENTS, TmsExperiment
from ..geometry import block_sizes, block_summary, blocks, represented
from ..regimes import Regime, regime_codes
from .autoencoders import AutoencoderModel, autoencoder_model
from .optim import fit, training_options
from .options import TrainingOptions
from .results import TRAINED_BLOCK_TOL, TRAINED_REGIME_ATOL, TRAINED_ZERO_TOL, SampledFit
from .two_layer import TwoLayerModel, two_layer_model
from .._typing import ArrayLike

__all__ = [
    "sparsity_sweep",
    "SparsitySweep",
    "Architecture",
    "ARCHITECTURES",
    "PUBLISHED_DIMENSIONALITIES",
    "SWEEP_OPTIONS",
    "tms_experiment",
    "tms_options",
]

#: The capacities of the tight frames Toy Models of Superposition draws as reference lines
#: under its feature dimensionalities: monosemantic, tetrahedron, triangle, antipodal pair,
#: pentagon, square antiprism, ignored (theory §1). Which of them trained models stick at,
#: and in which setting, is what :data:`capopt.catalogue.TMS_EXPERIMENTS` measures.
PUBLISHED_DIMENSIONALITIES = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8, 0.0)


class Architecture(NamedTuple):
    """How to build a batched model of one architecture without closed-form curves."""

    build: Callable  # (importance (R, N), budget, density (R,), base, dtype, init) -> batched model
    base: str
    summary: str


def _autoencoder(activation: str) -> Callable[..., AutoencoderModel]:
    return lambda I, budget, p, base, dtype, init: autoencoder_model(
        I, budget, activation=activation, density=p, base=base, dtype=dtype, init=init)


def _two_layer(activation: str) -> Callable[..., TwoLayerModel]:
    return lambda v, budget, p, base, dtype, init: two_layer_model(v, budget, activation, p, base,
                                                                   None, dtype=dtype, init=init)


#: Architectures :func:`sparsity_sweep` trains, with their default input distribution.
ARCHITECTURES = {
    "tms-relu": Architecture(_autoencoder("relu"), "tms",
                             "Toy Models of Superposition autoencoder xhat = ReLU(W^T W x + b)"),
    "tms-gelu": Architecture(_autoencoder("gelu"), "tms", "GeLU variant xhat = GeLU(W^T W x + b)"),
    "square": Architecture(_two_layer("square"), "uniform",
                           "two-layer yhat = sum_k (Wx)_k^2 + b (the quadratic model)"),
    "relu": Architecture(_two_layer("relu"), "uniform", "two-layer yhat = sum_k ReLU((Wx)_k) + b"),
    "gelu": Architecture(_two_layer("gelu"), "uniform", "two-layer yhat = sum_k GeLU((Wx)_k) + b"),
    "abs": Architecture(_two_layer("abs"), "uniform", "two-layer yhat = sum_k |(Wx)_k| + b"),
}


@dataclass(frozen=True, repr=False)
class SparsitySweep:
    r"""Capacities of trained models against input density, one instance per (density, seed).

    Attributes
    ----------
    architecture : str
        A key of :data:`ARCHITECTURES`.
    densities : ndarray, shape (S,)
        Input densities :math:`p = 1 - S`.
    importance : ndarray, shape (N,)
    budget : int
        Hidden dimension d.
    fit : SampledFit
        The batched training run; instance ``s * n_seeds + k`` has density ``densities[s]``
        and seed index k.
    structures : tuple of tuple of BlockStructure, shape (S, n_seeds)
        :func:`capopt.blocks` of every trained embedding.
    regime_atol : float
        Capacities within this distance of 0 or 1 count as ignored or monosemantic.
    zero_tol : float
        Features whose column is not longer than ``zero_tol`` times the longest of its
        embedding are unused, hence ignored whatever their capacity
        (:func:`capopt.geometry.represented`).
    """

    architecture: str
    densities: np.ndarray
    importance: np.ndarray
    budget: int
    fit: SampledFit
    structures: tuple
    regime_atol: float
    zero_tol: float = TRAINED_ZERO_TOL

    @property
    def capacities(self) -> np.ndarray:
        """Capacities, shape (S, n_seeds, N)."""
        S = self.densities.size
        return self.fit.capacities.reshape(S, -1, self.importance.size)

    def regimes(self, *, regime_atol: float | None = None, zero_tol: float | None = None) -> np.ndarray:
        r"""Regime code of every feature (0 mono, 1 poly, 2 ignored), shape (S, n_seeds, N).

        A feature is polysemantic when it is represented, :math:`\|W_i\| > \text{zero\_tol}
        \max_j \|W_j\|`, and :math:`\text{atol} < C_i < 1 - \text{atol}`; unrepresented
        features are ignored. The thresholds default to the sweep's own; others give the
        sensitivity of the count to them.
        """
        atol = self.regime_atol if regime_atol is None else regime_atol
        ztol = self.zero_tol if zero_tol is None else zero_tol
        codes = regime_codes(self.capacities, atol=atol)
        used = represented(self.fit.weights, zero_tol=ztol).reshape(codes.shape)
        return np.where(used, codes, list(Regime).index(Regime.IGNORED))

    def fractions(self, *, regime_atol: float | None = None, zero_tol: float | None = None) -> np.ndarray:
        """Fraction of features monosemantic, polysemantic, ignored: shape (S, n_seeds, 3),
        with the thresholds of :meth:`regimes`."""
        codes = self.regimes(regime_atol=regime_atol, zero_tol=zero_tol)
        return np.stack([np.mean(codes == k, axis=-1) for k in range(3)], axis=-1)

    @property
    def regime_fractions(self) -> np.ndarray:
        """Fraction of features monosemantic, polysemantic, ignored: shape (S, n_seeds, 3)."""
        return self.fractions()

    @property
    def polysemantic_fraction(self) -> np.ndarray:
        """Fraction of all features that are polysemantic, shape (S, n_seeds)."""
        return self.regime_fractions[..., 1]

    def threshold_sensitivity(self, regime_atols: Sequence[float],
                              zero_tols: Sequence[float]) -> np.ndarray:
        """Seed-mean polysemantic fraction at every pair of thresholds, shape
        (len(regime_atols), len(zero_tols), S)."""
        return np.array([[self.fractions(regime_atol=a, zero_tol=z)[..., 1].mean(axis=1)
                          for z in zero_tols] for a in regime_atols])

    @property
    def dimensions_per_feature(self) -> np.ndarray:
        r"""Toy Models of Superposition's :math:`d / \|W\|_F^2`, shape (S, n_seeds)."""
        W = self.fit.weights
        return (self.budget / np.sum(W * W, axis=(-2, -1))).reshape(self.densities.size, -1)

    @property
    def block_sizes(self) -> tuple:
        """Per (density, seed): the (features, dims) of each block, largest first."""
        return tuple(tuple(block_sizes(st) for st in row) for row in self.structures)

    def near_values(
        self,
        values: Sequence[float],
        *,
        atol: float = TRAINED_REGIME_ATOL,
        used_only: bool = True,
    ) -> np.ndarray:
        """Per density, how many features sit within ``atol`` of each of ``values``.

        Returns an int array of shape (S, len(values) + 1), counted over seeds: column j
        counts the features nearest to ``values[j]`` and within ``atol`` of it, the last
        column the others. With ``used_only`` only represented features
        (:meth:`regimes`' norm threshold) are counted.
        """
        C = self.capacities
        distance = np.abs(C[..., None] - np.asarray(values, dtype=np.float64))
        nearest = np.where(np.min(distance, axis=-1) <= atol, np.argmin(distance, axis=-1), len(values))
        used = (represented(self.fit.weights, zero_tol=self.zero_tol).reshape(C.shape) if used_only
                else np.ones(C.shape, dtype=bool))
        return np.stack([np.sum((nearest == j) & used, axis=(1, 2)) for j in range(len(values) + 1)],
                        axis=-1)

    def at_published(
        self,
        values: Sequence[float] = PUBLISHED_DIMENSIONALITIES,
        *,
        atol: float = TRAINED_REGIME_ATOL,
    ) -> dict:
        """How many features sit within ``atol`` of each of ``values``, over all densities,
        seeds and features: a dict ``value -> count`` plus ``"other"``."""
        counts = self.near_values(values, atol=atol, used_only=False).sum(axis=0)
        return {**{float(v): int(c) for v, c in zip(values, counts)}, "other": int(counts[-1])}

    def __repr__(self) -> str:
        return (
            f"SparsitySweep(architecture={self.architecture!r}, densities={self.densities.size}, "
            f"n_features={self.importance.size}, d={self.budget}, steps={self.fit.steps})"
        )

    def table(self) -> str:
        """One line per (density, seed): regime counts, sum C, d/||W||_F^2 and blocks."""
        N = self.importance.size
        fractions = self.regime_fractions
        dpf = self.dimensions_per_feature
        C = self.capacities
        lines = [f"{'density':>8} {'seed':>4} {'mono':>4} {'poly':>4} {'ignored':>7} {'sum C':>7} "
                 f"{'d/|W|^2':>7}  blocks (features/dims)"]
        for s, p in enumerate(self.densities):
            for k, st in enumerate(self.structures[s]):
                mono, poly, ign = np.rint(fractions[s, k] * N).astype(int)
                lines.append(f"{p:>8.4f} {k:>4d} {mono:>4d} {poly:>4d} {ign:>7d} "
                             f"{C[s, k].sum():>7.3f} {dpf[s, k]:>7.3f}  {block_summary(st)}")
        return "\n".join(lines)


#: :func:`sparsity_sweep`'s recipe: the Toy Models of Superposition settings (Adam at a
#: constant learning rate 1e-3, batch 1024, 10 000 steps), seed 0, each architecture's own
#: initialiser (``init=None``).
SWEEP_OPTIONS = TrainingOptions(seed=0)


def sparsity_sweep(
    architecture: str,
    importance: ArrayLike,
    budget: int,
    densities: ArrayLike,
    *,
    n_seeds: int = 1,
    base: str | None = None,
    regime_atol: float = TRAINED_REGIME_ATOL,
    block_tol: float = TRAINED_BLOCK_TOL,
    zero_tol: float = TRAINED_ZERO_TOL,
    options: TrainingOptions | None = None,
    **keywords: Any,
) -> SparsitySweep:
    r"""Train an architecture without closed-form curves at many densities in one batched run.

    Parameters
    ----------
    architecture : str
        A key of :data:`ARCHITECTURES`: ``"tms-relu"``, ``"tms-gelu"``, or a two-layer
        model ``"square"``, ``"relu"``, ``"gelu"``, ``"abs"``.
    importance : array_like, shape (N,)
        Feature importances (e.g. ``0.9 ** np.arange(N)``).
    budget : int
        Hidden dimension d.
    densities : array_like, shape (S,)
        Input densities :math:`p = 1 - S` in (0, 1].
    n_seeds : int
        Instances per density.
    base : str, optional
        Input distribution; default the architecture's (``"tms"`` inputs
        :math:`B U`, :math:`U \sim U[0, 1]` for the autoencoders, unit-variance gated
        uniform for the two-layer models).
    regime_atol, block_tol, zero_tol : float
        Tolerances for reading regimes and blocks off Adam-trained weights
        (:data:`TRAINED_REGIME_ATOL`, :data:`TRAINED_BLOCK_TOL`, :data:`TRAINED_ZERO_TOL`).
    options : TrainingOptions, optional
        The recipe; :data:`SWEEP_OPTIONS`, the Toy Models of Superposition settings, by
        default (``dtype=np.float32`` halves the memory traffic of large sweeps).
    **keywords
        Fields of ``options`` to replace (``steps=500``, ``lr=1e-2``, ...) and
        :func:`capopt.training.fit`'s run arguments (``checkpoint``, ``progress``, ...).

    Returns
    -------
    SparsitySweep

    Raises
    ------
    TypeError
        For a keyword that is neither a field of :class:`TrainingOptions` nor a run
        argument of :func:`~capopt.training.fit`; the message names the closest.

    Examples
    --------
    >>> import numpy as np
    >>> sweep = sparsity_sweep("tms-relu", 0.9 ** np.arange(5), 2, [1.0, 0.1], steps=50)
    >>> sweep.capacities.shape
    (2, 1, 5)
    """
    arch = ARCHITECTURES[check_choice(architecture, "architecture", sorted(ARCHITECTURES))]
    options, run = training_options("sparsity_sweep", SWEEP_OPTIONS, options, keywords)
    p = as_float_vector(densities, "densities")
    n_seeds = check_count(n_seeds, "n_seeds")
    budget = check_count(budget, "budget")
    v = np.asarray(importance, dtype=np.float64)
    R = p.size * n_seeds
    model = arch.build(np.broadcast_to(v, (R, v.size)), budget, np.repeat(p, n_seeds),
                       arch.base if base is None else base, options.dtype, options.init)
    trained = fit(model, options, **run)
    W = trained.weights.reshape(p.size, n_seeds, *trained.weights.shape[1:])
    structures = tuple(tuple(blocks(Wk, tol=block_tol, zero_tol=zero_tol) for Wk in row) for row in W)
    return SparsitySweep(architecture, p, v, budget, trained, structures, regime_atol, zero_tol)


def tms_options(experiment: TmsExperiment) -> TrainingOptions:
    """The reference recipe of one of :data:`capopt.catalogue.TMS_EXPERIMENTS`: its steps,
    batch size and learning rate, at a constant rate, in float32 (the precision the notebook
    trains in), seed 0, from the notebook's initialiser."""
    return SWEEP_OPTIONS.with_overrides(steps=experiment.steps, batch_size=experiment.batch_size,
                                        lr=experiment.lr, dtype=np.float32)


def tms_experiment(
    name: str,
    *,
    n_seeds: int = 1,
    options: TrainingOptions | None = None,
    **keywords: Any,
) -> SparsitySweep:
    """Train one of :data:`capopt.catalogue.TMS_EXPERIMENTS` in its reference recipe.

    Parameters
    ----------
    name : str
        A key of :data:`~capopt.catalogue.TMS_EXPERIMENTS`.
    n_seeds : int
        Instances per density.
    options : TrainingOptions, optional
        The experiment's reference recipe by default (:func:`tms_options`: its own 10 000
        steps, batch and learning rate, float32). Fewer steps give a cheaper, not a
        faithful, run.
    **keywords
        Fields of ``options`` to replace (``steps=500``, ``seed=1``, ...) and
        :func:`capopt.training.fit`'s run arguments (``progress``, ``checkpoint``, ...).

    Returns
    -------
    SparsitySweep
        Read the experiment's ``measure`` off it: :attr:`SparsitySweep.dimensions_per_feature`,
        or the per-feature capacities via :meth:`SparsitySweep.near_values` with the
        experiment's ``published`` values.
    """
    spec = TMS_EXPERIMENTS[check_choice(name, "name", sorted(TMS_EXPERIMENTS))]
    options, run = training_options("tms_experiment", tms_options(spec), options, keywords)
    return sparsity_sweep("tms-relu", np.ones(spec.n_features), spec.budget, spec.densities,
                          n_seeds=n_seeds, options=options, **run)
