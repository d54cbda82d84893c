"""How much work ``capopt reproduce`` does: the default run, ``--quick`` and ``--full``.

Every size that sets the run time lives here, so the presets differ in this file only.
Seeds are fixed: the same preset gives the same numbers on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import cast

import numpy as np

from ..training.options import TrainingOptions

__all__ = ["Settings", "DEFAULT", "QUICK", "FULL"]

#: The appendix's rows for :attr:`Settings.training`, in order: the options the presets set,
#: under their names as :class:`Settings` properties, with the instances per density among them.
_TRAINING_ROWS = ("train_steps", "train_seeds", "train_batch", "train_lr", "train_dtype",
                  "train_tol", "train_window")


@dataclass(frozen=True)
class Settings:
    """Sizes of every computation behind the figures.

    Attributes
    ----------
    name : str
        ``"default"``, ``"quick"`` or ``"full"``; printed in the report.
    allocation_features, allocation_budget : int
        N and d of the allocation-vs-importance figure (importances ``0.9 ** i``).
    allocation_kurtosis : tuple of float
        One panel per kurtosis.
    two_feature_ratios, two_feature_kurtoses : int
        Grid of the two-feature phase diagram (importance ratio 1..4, kurtosis 1..16).
    phase_densities, phase_decays : int
        Grid of the N-feature phase diagram (density 0.01..1, importance decay 0.5..1).
    phase_features, phase_budget : int
        N and d of the N-feature phase diagram.
    train_features, train_budget : int
        N and d of the trained sparsity sweeps (importances ``0.9 ** i``).
    train_densities : int
        Densities from 1 to ``train_min_density``, geometrically spaced.
    train_min_density : float
        Sparsest density trained.
    train_seeds : int
        Instances per density.
    training : TrainingOptions
        How the sweeps are trained (:func:`capopt.training.sparsity_sweep`'s options): a cap
        on the Adam steps, the minibatch size, the learning rate (constant), float32 (the
        precision Toy Models of Superposition trains in: half the memory traffic of float64;
        capacities are read to 1e-2), each architecture's own initialiser, and the
        convergence criterion (``tol`` and ``window``, records of 100 steps): training
        stops when the mean loss of the last ``window`` records differs from that of the
        ``window`` before by less than ``tol`` relative, for every instance, or at
        ``steps``. Its ``seed`` is :attr:`seed`. The appendix lists its options as
        ``train_steps``, ``train_batch``, ``train_lr``, ``train_dtype``, ``train_tol`` and
        ``train_window`` (properties of the same names).
    regime_atols, zero_tols : tuple of float
        Thresholds over which the polysemantic count's sensitivity is reported: a
        represented feature (column norm above ``zero_tol`` of the longest) with
        ``atol < C < 1 - atol`` is polysemantic.
    tms_experiments : tuple of str
        Keys of :data:`capopt.catalogue.TMS_EXPERIMENTS` trained in their reference
        recipe (none in the default and quick runs: together 16 minutes on two cores).
    tms_seeds : int
        Instances per density of each TMS experiment.
    tms_steps : int or None
        Adam steps of the TMS experiments; None for each one's own (10 000, the
        published recipe; fewer is a cheaper, not a faithful, run).
    gram_density : float
        Density of the trained embeddings whose Gram matrices are drawn (the nearest
        trained one).
    crosscheck_starts : int
        L-BFGS random starts per cross-check problem.
    budget_points : int
        Budgets solved for the budget-response figure.
    seed : int
        Seed of every random choice (training, realisations, cross-checks): a property,
        ``training.seed``.
    """

    name: str
    allocation_features: int
    allocation_budget: int
    allocation_kurtosis: tuple
    two_feature_ratios: int
    two_feature_kurtoses: int
    phase_densities: int
    phase_decays: int
    phase_features: int
    phase_budget: int
    train_features: int
    train_budget: int
    train_densities: int
    train_min_density: float
    train_seeds: int
    training: TrainingOptions
    regime_atols: tuple
    zero_tols: tuple
    tms_experiments: tuple
    tms_seeds: int
    tms_steps: int | None
    gram_density: float
    crosscheck_starts: int
    budget_points: int

    def __post_init__(self) -> None:
        # The report is reproducible, and its captions state the convergence criterion.
        if not isinstance(self.training.seed, int) or self.training.tol is None:
            raise ValueError(f"training must have an int seed and a tol, got seed "
                             f"{self.training.seed!r} and tol {self.training.tol!r}")

    @property
    def seed(self) -> int:
        return cast(int, self.training.seed)  # checked on construction

    @property
    def train_steps(self) -> int:
        return self.training.steps

    @property
    def train_batch(self) -> int:
        return self.training.batch_size

    @property
    def train_lr(self) -> float:
        return self.training.lr

    @property
    def train_dtype(self) -> str:
        return np.dtype(self.training.dtype).name

    @property
    def train_tol(self) -> float:
        return cast(float, self.training.tol)  # not None: checked on construction

    @property
    def train_window(self) -> int:
        return self.training.window

    def as_dict(self) -> dict:
        """The settings as the report's appendix and ``numbers.json`` list them: one row per
        field, :attr:`training` as its ``train_*`` rows, ``seed`` last."""
        rows: dict[str, object] = {}
        for f in fields(self):
            names = (_TRAINING_ROWS if f.name == "training" else
                     () if f.name in _TRAINING_ROWS else (f.name,))
            rows.update((name, getattr(self, name)) for name in names)
        return {**rows, "seed": self.seed}


#: ``capopt reproduce`` (its measured time: :data:`capopt._progress.MEASURED_SECONDS`).
DEFAULT = Settings(
    name="default",
    allocation_features=40,
    allocation_budget=10,
    allocation_kurtosis=(2.0, 4.0, 8.0, 30.0),
    two_feature_ratios=151,
    two_feature_kurtoses=151,
    phase_densities=121,
    phase_decays=101,
    phase_features=64,
    phase_budget=16,
    train_features=20,
    train_budget=5,
    train_densities=12,
    train_min_density=0.01,
    train_seeds=3,
    training=TrainingOptions(steps=8000, batch_size=256, lr=3e-3, seed=0, dtype=np.float32,
                             tol=1e-3, window=10),
    regime_atols=(0.01, 0.02, 0.05),
    zero_tols=(0.05, 0.1, 0.2),
    tms_experiments=(),
    tms_seeds=1,
    tms_steps=None,
    gram_density=0.1,
    crosscheck_starts=4,
    budget_points=141,
)

#: ``capopt reproduce --quick``: the same figures from smaller runs, for CI (the fields
#: not listed are the defaults).
QUICK = replace(
    DEFAULT,
    name="quick",
    two_feature_ratios=61,
    two_feature_kurtoses=61,
    phase_densities=41,
    phase_decays=31,
    phase_features=32,
    phase_budget=8,
    train_features=10,
    train_budget=3,
    train_densities=6,
    train_min_density=0.02,
    training=DEFAULT.training.with_overrides(steps=3000, lr=1e-2),
    train_seeds=2,
    crosscheck_starts=2,
    budget_points=57,
)

#: ``capopt reproduce --full``: the trained figures at paper strength (N = 40, d = 10, five
#: seeds, batch 1024) plus the published Toy Models of Superposition settings in their
#: reference recipe (the fields not listed are the defaults).
FULL = replace(
    DEFAULT,
    name="full",
    train_features=40,
    train_budget=10,
    train_densities=16,
    training=DEFAULT.training.with_overrides(steps=20_000, batch_size=1024),
    train_seeds=5,
    tms_experiments=("tms-200-20", "tms-400-30"),
    crosscheck_starts=8,
)
