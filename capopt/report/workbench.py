"""What several figures of ``capopt reproduce`` share: the settings, the training runs and
the cross-checks, each done once, on first use, and kept resumable.

The training runs keep their state in a folder of checkpoints (one file per preset and
run): an interrupted run resumes where it stopped, a finished one is read back.
"""

from __future__ import annotations

import time
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._progress import progress_bar, show_progress
from ..catalogue import STANDARD_PROBLEMS
from ..training import ARCHITECTURES, crosscheck, sparsity_sweep, tms_experiment
from ..training.checkpoint import CheckpointError
from ..training.results import SampledFit
from .settings import Settings

__all__ = ["Workbench"]


class Workbench:
    """Settings plus the computations shared by several figures, each done on first use.

    Parameters
    ----------
    settings : Settings
    log : callable
        Receives one line of progress per long computation.
    progress : bool, optional
        Draw a progress bar (stderr) over each training sweep and the cross-checks; by
        default only on an interactive terminal.
    checkpoints : Path, optional
        Folder of the training runs' checkpoints (one file per preset and run): an
        interrupted run resumes where it stopped, a finished one is read back. The caller
        holds its :class:`~capopt._folder_lock.FolderLock`, so that no other run writes
        there meanwhile (:func:`~capopt.report.reproduce` does, for the whole run).
    """

    def __init__(self, settings: Settings, log: Callable[[str], None] = print, *,
                 progress: bool | None = None, checkpoints: Path | None = None):
        self.settings = settings
        self.log = log
        self.progress = show_progress(progress)
        self.checkpoints = checkpoints

    def train(self, label: str, run: Callable[..., Any]) -> Any:
        """``run(checkpoint=...)``, resumable from ``checkpoints/<preset>-<label>.npz``.

        A checkpoint that cannot be resumed (unreadable, or written by another
        configuration) is named in the log, removed and the training done afresh; a run
        whose checkpoint is complete is read back, not trained again.
        """
        if self.checkpoints is None:
            return run(checkpoint=None)
        path = self.checkpoints / f"{self.settings.name}-{label}.npz"
        try:
            return run(checkpoint=path)
        except CheckpointError as exc:
            self.log(f"      {exc}: training {label} afresh")
            path.unlink()
            return run(checkpoint=path)

    def _trained(self, label: str, instances: int, fit: SampledFit, started: float) -> None:
        """Log one line for a finished training run."""
        resumed = f", resumed from step {fit.resumed_from}" if fit.resumed_from else ""
        self.log(f"      trained {label:<10} {instances} instances x {fit.steps} steps "
                 f"({'converged' if fit.converged else 'cap reached'}{resumed}) in "
                 f"{time.perf_counter() - started:.1f} s")

    @cached_property
    def train_importance(self) -> np.ndarray:
        return 0.9 ** np.arange(self.settings.train_features, dtype=np.float64)

    @cached_property
    def train_densities(self) -> np.ndarray:
        s = self.settings
        return np.geomspace(1.0, s.train_min_density, s.train_densities)

    @cached_property
    def sweeps(self) -> dict:
        """Trained sparsity sweep of every architecture without closed-form curves."""
        s = self.settings
        out = {}
        for name in ARCHITECTURES:
            started = time.perf_counter()
            out[name] = self.train(name, partial(
                sparsity_sweep, name, self.train_importance, s.train_budget, self.train_densities,
                n_seeds=s.train_seeds, options=s.training, progress=self.progress,
                desc=f"training {name}",
            ))
            self._trained(name, self.train_densities.size * s.train_seeds, out[name].fit, started)
        return out

    @cached_property
    def tms(self) -> dict:
        """Each of ``settings.tms_experiments`` trained in its reference recipe, by name."""
        out = {}
        s = self.settings
        # tms_steps None: each experiment's own steps.
        steps: dict[str, Any] = {} if s.tms_steps is None else {"steps": s.tms_steps}
        for name in s.tms_experiments:
            started = time.perf_counter()
            out[name] = self.train(name, partial(
                tms_experiment, name, n_seeds=s.tms_seeds, seed=s.seed, **steps,
                progress=self.progress, desc=f"training {name}"))
            self._trained(name, out[name].densities.size * s.tms_seeds, out[name].fit, started)
        return out

    @cached_property
    def gram_index(self) -> int:
        """Index of the trained density nearest (on a log scale) to ``settings.gram_density``."""
        return int(np.argmin(np.abs(np.log(self.train_densities / self.settings.gram_density))))

    @cached_property
    def crosschecks(self) -> list:
        """Exact-loss L-BFGS cross-check of every standard problem."""
        s = self.settings
        return [crosscheck(p.curves, p.budget, starts=s.crosscheck_starts, seed=s.seed)
                for p in progress_bar(STANDARD_PROBLEMS, progress=self.progress, desc="cross-checking",
                                      unit="problem", leave=False)]
