r"""What each figure of ``capopt reproduce`` computes, apart from how it is drawn and told.

One function per figure takes the :class:`Workbench` (the settings and the computations
several figures share, done once) and returns a :class:`Computed`: the numbers behind the
figure (``numbers.json``), the rows of its table as values, and the data its drawing
(:mod:`capopt.report.drawing`) and caption (:mod:`capopt.report.captions`) take.

Glossary: ``C`` capacity, ``lam`` multiplier (the marginal value of a dimension), ``d``
budget, ``K`` kurtosis, ``v`` importance, ``p`` density, ``N`` number of features.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import _formulas as F
from .._progress import progress_bar, show_progress
from ..catalogue import STANDARD_PROBLEMS
from ..curves import Shape, gated_kurtosis, quadratic
from ..capacity import capacity
from ..geometry import block_sizes, block_summary, blocks
from ..perturbation import sensitivity
from ..realisation import optimal_quadratic_model
from ..regimes import Regime, classify
from ..solvers import solve
from ..sweeps import phase_boundaries, polysemantic_phase, two_feature_phase
from ..catalogue import TMS_EXPERIMENTS
from ..training import ARCHITECTURES, crosscheck, sparsity_sweep, tms_experiment, train_autoencoder
from ..training.checkpoint import CheckpointError
from ..training.results import TRAINED_REGIME_ATOL, SampledFit
from .captions import fmt
from .drawing import ARCHITECTURE_LABELS
from .settings import Settings

__all__ = ["Workbench", "Computed", "TWO_FEATURE_CASES", "ON_BOUNDARY", "FD_STEP", "BUDGET_FEATURES",
           "SENSITIVITY_BUDGET"]


@dataclass(frozen=True)
class Computed:
    """What one figure's computation produced.

    Attributes
    ----------
    numbers : dict of str to int, float or str
        The numbers behind the figure; the caption or the table shows each.
    data : dict
        What the drawing and the caption take, by name.
    rows : tuple of tuple, optional
        The rows of the figure's table, as values (formatted by the caption module).
    """

    numbers: dict
    data: dict = field(default_factory=dict)
    rows: tuple | None = None


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
                n_seeds=s.train_seeds, steps=s.train_steps, batch_size=s.train_batch,
                lr=s.train_lr, seed=s.seed, dtype=np.dtype(s.train_dtype), tol=s.train_tol,
                window=s.train_window, progress=self.progress, desc=f"training {name}",
            ))
            self._trained(name, self.train_densities.size * s.train_seeds, out[name].fit, started)
        return out

    @cached_property
    def tms(self) -> dict:
        """Each of ``settings.tms_experiments`` trained in its reference recipe, by name."""
        out = {}
        s = self.settings
        for name in s.tms_experiments:
            started = time.perf_counter()
            out[name] = self.train(name, partial(
                tms_experiment, name, n_seeds=s.tms_seeds, steps=s.tms_steps, seed=s.seed,
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


#: The code of the polysemantic regime in ``AllocationResult.regime_codes``.
_POLYSEMANTIC = list(Regime).index(Regime.POLYSEMANTIC)

_RETURNS = {Shape.CONCAVE: "increasing", Shape.LINEAR: "constant", Shape.CONVEX: "diminishing"}


# ---------------------------------------------------------------- 1. allocation vs importance
def _affine_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line y = slope x + intercept: (slope, intercept, max |residual|)."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept), float(np.max(np.abs(y - (slope * x + intercept))))


def allocation(wb: Workbench) -> Computed:
    s = wb.settings
    v = 0.9 ** np.arange(s.allocation_features, dtype=np.float64)
    Ks = s.allocation_kurtosis
    results = [solve(quadratic(v, K), s.allocation_budget) for K in Ks]
    theory, rows = [], []
    numbers: dict[str, int | float | str] = {}
    off_curve = 0.0
    grid = np.linspace(0.0, 1.02 * v.max(), 400)
    for K, r in zip(Ks, results):
        curve = None
        if K > 3 and r.multiplier > 0:
            # theory §3: C(v) = clip(((K - 1) v / mu - 2)/(K - 3), 0, 1), level mu = sqrt(lam/2).
            level = F.quadratic_multiplier_level(r.multiplier)
            with np.errstate(divide="ignore"):
                curve = (grid, np.clip(F.quadratic_response(level, grid, K), 0.0, 1.0))
            on = np.clip(F.quadratic_response(level, v, K), 0.0, 1.0)
            off_curve = max(off_curve, float(np.max(np.abs(r.capacities - on))))
        theory.append(curve)
        # v decreases with i, so regimes in importance order have non-decreasing codes
        # (monosemantic, polysemantic, ignored).
        ordered = bool(np.all(np.diff(r.regime_codes) >= 0))
        numbers[f"K={K:g} regimes in importance order"] = "yes" if ordered else "no"
        poly = r.regime_codes == _POLYSEMANTIC
        if K > 3 and poly.sum() >= 2:
            # theory §3: between the thresholds C_i is affine in v_i with intercept -2/(K - 3).
            slope, intercept, residual = _affine_fit(v[poly], r.capacities[poly])
            numbers.update({f"K={K:g} poly slope": slope, f"K={K:g} poly intercept": intercept,
                            f"K={K:g} closed-form intercept -2/(K-3)": -2.0 / (K - 3.0),
                            f"K={K:g} poly fit max residual": residual,
                            f"K={K:g} poly mean C": float(r.capacities[poly].mean())})
        counts = r.counts
        shape = _RETURNS[quadratic(v, K).shape]
        for regime in ("monosemantic", "polysemantic", "ignored"):
            numbers[f"K={K:g} {regime}"] = counts[regime]
        numbers[f"K={K:g} lambda"] = r.multiplier
        numbers[f"K={K:g} loss"] = r.loss
        rows.append((K, shape, r.method, counts["monosemantic"], counts["polysemantic"],
                     counts["ignored"], numbers[f"K={K:g} regimes in importance order"], r.multiplier, r.loss))
    numbers["max |C - closed form|"] = off_curve
    data = {"importance": v, "kurtosis": Ks, "results": results, "theory": theory}
    return Computed(numbers, data, tuple(rows))


# ---------------------------------------------------------------- 2. marginal benefit, cases A-F
#: The paper's cases A-F as points (importance ratio a/b, kurtosis K) of the two-feature phase
#: diagram: increasing returns (A, B), constant (C), diminishing (D, E, F); D stays
#: monosemantic because K < 1 + 2a/b.
TWO_FEATURE_CASES = (
    ("A", 1.0, 1.8),
    ("B", 2.0, 2.0),
    ("C", 1.5, 3.0),
    ("D", 3.0, 5.0),
    ("E", 2.0, 7.0),
    ("F", 1.0, 15.0),
)


def marginal_benefit(wb: Workbench) -> Computed:
    cases, numbers, rows = [], {}, []
    for letter, ratio, K in TWO_FEATURE_CASES:
        curves = quadratic([ratio, 1.0], K)
        result = solve(curves, 1.0)
        returns = _RETURNS[curves.shape]
        poly = any(r is Regime.POLYSEMANTIC for r in result.regimes)
        verdict = "polysemantic" if poly else "monosemantic"
        importance = "equal importance" if ratio == 1 else f"a/b = {fmt(ratio)}"
        title = f"{letter}: K = {fmt(K)}, {importance}\n{returns} returns -> {verdict}"
        cases.append((title, curves, result))
        C = result.capacities
        numbers.update({f"{letter} C_a": C[0], f"{letter} C_b": C[1],
                        f"{letter} lambda": result.multiplier, f"{letter} loss": result.loss})
        rows.append((letter, ratio, K, returns, C[0], C[1], result.multiplier, result.loss, verdict))
    return Computed(numbers, {"cases": cases}, tuple(rows))


# ---------------------------------------------------------------- 3. two-feature phase diagram
#: Relative distance to the boundary K* = 1 + 2a/b within which a grid point counts as on it:
#: rounding of the grid and of K* is ~1e-16 relative.
ON_BOUNDARY = 1e-12


def two_feature(wb: Workbench) -> Computed:
    s = wb.settings
    ratios = np.linspace(1.0, 4.0, s.two_feature_ratios)
    kurtoses = np.linspace(1.0, 16.0, s.two_feature_kurtoses)
    ds = two_feature_phase(ratios, kurtoses)
    dims = ds.polysemantic.dims
    poly = (ds.polysemantic == 2).values
    K, boundary = ds.kurtosis.broadcast_like(ds.polysemantic), ds.boundary.broadcast_like(ds.polysemantic)
    predicted = (K > boundary).transpose(*dims).values
    # Grid points on the boundary itself (K = 1 + 2a/b up to rounding) have C_b = 0 exactly,
    # while the rounded comparison K > K* may go either way: they are counted apart.
    on = (np.abs(K - boundary) <= ON_BOUNDARY * boundary).transpose(*dims).values
    disagree = int(np.sum((poly != predicted) & ~on))
    traced = phase_boundaries(ds, along="kurtosis")
    # K = 1 is the edge where nothing is represented (x^2 = 1 is absorbed by the bias).
    sharing = traced.where(traced.regime_above == "polysemantic", drop=True)
    K_star = F.two_feature_polysemantic_kurtosis(sharing.importance_ratio, 1.0)
    numbers = {"grid points": int(poly.size), "polysemantic points": int(poly.sum()),
               "points on the boundary": int(on.sum()),
               "disagreements with K > 1 + 2a/b": disagree,
               "traced crossings": int(sharing.point.size),
               "max relative distance of traced K from 1 + 2a/b":
                   float(np.max(np.abs(sharing.kurtosis - K_star) / K_star))}
    return Computed(numbers, {"phase": ds, "cases": TWO_FEATURE_CASES, "boundaries": traced})


# ---------------------------------------------------------------- 4. N-feature phase diagram
def phase_diagram(wb: Workbench) -> Computed:
    s = wb.settings
    density = np.geomspace(0.01, 1.0, s.phase_densities)
    decay = np.linspace(0.5, 1.0, s.phase_decays)
    ds = polysemantic_phase(density, decay, n_features=s.phase_features, budget=s.phase_budget)
    some = (ds.polysemantic > 0).transpose("importance_decay", "density").values
    below = (ds.density < ds.boundary_density).transpose("importance_decay", "density").values
    fraction = ds.polysemantic_fraction.values
    traced = phase_boundaries(ds, along="density")
    # Some feature is polysemantic left of the largest density where one changes regime.
    outer = traced.density.groupby(traced.importance_decay).max()
    p_star = ds.boundary_density.sel(importance_decay=outer.importance_decay)
    numbers = {
        "grid points": int(fraction.size),
        "max polysemantic fraction": float(fraction.max()),
        "points with some polysemantic feature": int(some.sum()),
        "disagreements with p < p*(r)": int(np.sum(some != below)),
        "traced crossings": int(traced.point.size),
        "max relative distance of the traced outer boundary from p*(r)":
            float(np.max(np.abs(outer - p_star) / p_star)),
    }
    return Computed(numbers, {"phase": ds, "boundaries": traced})


# ---------------------------------------------------------------- 5. trained: poly vs sparsity
def _predicted_fraction(v, d, densities) -> np.ndarray:
    """Solver's polysemantic fraction of the quadratic model on the two-layer models' inputs."""
    out = []
    for p in densities:
        result = solve(quadratic(v, gated_kurtosis(p, ARCHITECTURES["square"].base)), d)
        regimes = classify(result.capacities, atol=TRAINED_REGIME_ATOL)
        out.append(sum(r is Regime.POLYSEMANTIC for r in regimes) / len(regimes))
    return np.array(out)


def _spread(values: np.ndarray) -> float:
    """Range over seeds (the last axis) of a per-seed quantity."""
    return float(np.max(values, axis=-1) - np.min(values, axis=-1))


def sparsity(wb: Workbench) -> Computed:
    s = wb.settings
    sweeps = wb.sweeps
    p = wb.train_densities
    predicted = _predicted_fraction(wb.train_importance, s.train_budget, p)
    numbers: dict[str, int | float | str] = {}
    rows = []
    grows = 0
    for name, sw in sweeps.items():
        per_seed = sw.polysemantic_fraction
        f = per_seed.mean(axis=1)
        # The count without the norm threshold: what capacity alone calls polysemantic.
        alone = sw.fractions(zero_tol=0.0)[0, :, 1].mean()
        by_threshold = sw.threshold_sensitivity(s.regime_atols, s.zero_tols)
        numbers[f"{name} dense"] = float(f[0])
        numbers[f"{name} dense seed range"] = _spread(per_seed[0])
        numbers[f"{name} sparse"] = float(f[-1])
        numbers[f"{name} sparse seed range"] = _spread(per_seed[-1])
        numbers[f"{name} dense by capacity alone"] = float(alone)
        numbers[f"{name} max change over thresholds"] = float(np.max(np.abs(by_threshold - f)))
        numbers[f"{name} Adam steps"] = int(sw.fit.steps)
        numbers[f"{name} converged"] = "yes" if sw.fit.converged else "no (cap)"
        grows += bool(f[-1] > f[0])
        rows.append((name, f[0], numbers[f"{name} dense seed range"], f[-1],
                     numbers[f"{name} sparse seed range"], alone,
                     numbers[f"{name} max change over thresholds"], sw.fit.steps,
                     numbers[f"{name} converged"]))
    gap = float(np.max(np.abs(sweeps["square"].polysemantic_fraction.mean(axis=1) - predicted)))
    numbers["architectures where it grows"] = grows
    numbers["square vs solver max |difference|"] = gap
    numbers["max change over thresholds, all architectures"] = max(
        float(numbers[f"{name} max change over thresholds"]) for name in sweeps)
    data = {"sweeps": sweeps, "densities": p,
            "predicted": (r"solver: quadratic model, $\hat y = \sum_k (Wx)_k^2 + b$ at its optimum", p, predicted)}
    return Computed(numbers, data, tuple(rows))


# ---------------------------------------------------------------- 5b. trained: block sizes
def _size_distribution(structures) -> str:
    """Blocks of several embeddings pooled, as 'features:count' terms ('none' if none)."""
    sizes = [n for st in structures for n, _ in block_sizes(st)]
    if not sizes:
        return "none"
    values, counts = np.unique(sizes, return_counts=True)
    return " ".join(f"{v}:{c}" for v, c in zip(values, counts))


def block_statistics(wb: Workbench) -> Computed:
    numbers: dict[str, int | float | str] = {}
    rows, curves = [], {}
    for name, sw in wb.sweeps.items():
        largest = np.array([[max((n for n, _ in block_sizes(st)), default=0) for st in row]
                            for row in sw.structures], dtype=float)
        residual = np.array([[st.residual for st in row] for row in sw.structures])
        curves[name] = (largest, residual)
        for k, p in enumerate(sw.densities):
            key = f"{name} p = {fmt(p)}"
            numbers[f"{key} block sizes"] = _size_distribution(sw.structures[k])
            numbers[f"{key} largest block"] = float(largest[k].mean())
            numbers[f"{key} largest block seed range"] = _spread(largest[k])
            numbers[f"{key} residual"] = float(residual[k].max())
            rows.append((name, p, numbers[f"{key} block sizes"], largest[k].mean(),
                         numbers[f"{key} largest block seed range"], residual[k].max()))
    return Computed(numbers, {"densities": wb.train_densities, "curves": curves}, tuple(rows))


# ---------------------------------------------------------------- 5c. Toy Models of Superposition
def pca_like_loss(n_features: int, budget: int) -> float:
    r"""Loss per feature of the dense TMS autoencoder that keeps d features whole.

    With :math:`x_i \sim U[0, 1]` dense and constant importance, the d kept features are
    reconstructed exactly and each of the N - d others is replaced by its best constant,
    the bias :math:`b_i = 1/2` (ReLU passes it), at the variance :math:`1/12`:
    :math:`(N - d) / (12 N)`, 0.075 for 200 features in d = 20.
    """
    return (n_features - budget) / (12.0 * n_features)


def tms_published(wb: Workbench) -> Computed:
    numbers: dict[str, int | float | str] = {}
    rows, panels = [], []
    for name, sw in wb.tms.items():
        spec = TMS_EXPERIMENTS[name]
        values = spec.published
        N = spec.n_features
        loss = sw.fit.final_loss.reshape(sw.densities.size, -1).mean(axis=1) / N
        if spec.measure == "dimensions per feature":
            dpf = sw.dimensions_per_feature.mean(axis=1)
            near = np.abs(dpf[:, None] - np.asarray(values)) <= TRAINED_REGIME_ATOL
            for v, hits in zip(values, near.T):
                numbers[f"{name} densities with d/|W|_F^2 within {fmt(TRAINED_REGIME_ATOL)} of {fmt(v)}"] = int(hits.sum())
            numbers[f"{name} densities elsewhere"] = int(np.sum(~near.any(axis=1)))
            dense = int(np.argmax(sw.densities))
            numbers[f"{name} loss per feature at p = 1"] = float(loss[dense])
            numbers[f"{name} PCA-like loss per feature"] = pca_like_loss(N, spec.budget)
            glorot = wb.train(f"{name}-glorot", partial(
                train_autoencoder, np.ones(N), spec.budget, density=1.0, init="glorot",
                steps=sw.fit.steps, batch_size=spec.batch_size, lr=spec.lr, seed=wb.settings.seed,
                dtype=np.float32, progress=wb.progress, desc=f"training {name}, glorot init"))
            numbers[f"{name} loss per feature at p = 1, glorot init"] = float(glorot.final_loss[0] / N)
            rows += [(name, fmt(p), fmt(q), "-", ell) for p, q, ell in zip(sw.densities, dpf, loss)]
            panels.append((name, spec, sw, dpf))
        else:
            counts = sw.near_values(values)
            total = counts.sum(axis=1)
            for j, v in enumerate(values):
                numbers[f"{name} represented features at C = {fmt(v)}"] = int(counts[:, j].sum())
            numbers[f"{name} represented features elsewhere"] = int(counts[:, -1].sum())
            numbers[f"{name} represented features"] = int(total.sum())
            for p, row, ell, q in zip(sw.densities, counts, loss, sw.dimensions_per_feature.mean(axis=1)):
                rows.append((name, fmt(p), fmt(q), " ".join(f"{fmt(v)}:{c}" for v, c in zip(values, row))
                             + f" other:{row[-1]}", ell))
            panels.append((name, spec, sw, counts))
    return Computed(numbers, {"panels": panels}, tuple(rows))


# ---------------------------------------------------------------- 6. Gram matrices and blocks
def _unused(W: np.ndarray, d: int) -> float:
    """min(d, N) - sum_i C_i of the d x N embedding W."""
    return float(min(d, W.shape[-1]) - capacity(W).sum())


def gram_blocks(wb: Workbench) -> Computed:
    s = wb.settings
    k = wb.gram_index
    p = float(wb.train_densities[k])
    curves = quadratic(wb.train_importance, gated_kurtosis(p, ARCHITECTURES["square"].base))
    result = solve(curves, s.train_budget)
    model = optimal_quadratic_model(curves, result, seed=s.seed)
    optimal_blocks = blocks(model.W)
    check = crosscheck(curves, s.train_budget, starts=s.crosscheck_starts, seed=s.seed)
    panels = [
        ("quadratic model: optimal (solver, realised)", model.W, optimal_blocks),
        ("quadratic model: trained (L-BFGS, exact loss)", check.trained_weights, check.trained_blocks),
    ]
    numbers = {"density": p,
               "quadratic optimal blocks": block_summary(optimal_blocks),
               "quadratic L-BFGS blocks": block_summary(check.trained_blocks),
               "quadratic L-BFGS max |dC|": check.max_abs_dC,
               # Zero iff the embedding is block-semi-orthogonal of rank min(d, N) (theory §1).
               "quadratic optimal min(d, N) - sum C": _unused(model.W, s.train_budget),
               "quadratic L-BFGS min(d, N) - sum C": _unused(check.trained_weights, s.train_budget)}
    rows = [("quadratic optimal", "capopt.solve + optimal_quadratic_model",
             numbers["quadratic optimal blocks"]),
            ("quadratic trained", "L-BFGS on the exact loss", numbers["quadratic L-BFGS blocks"])]
    for name, sw in wb.sweeps.items():
        structure = sw.structures[k][0]
        W = sw.fit.weights[k * s.train_seeds]
        panels.append((f"{ARCHITECTURE_LABELS[name]}: trained (Adam)", W, structure))
        numbers[f"{name} blocks"] = block_summary(structure)
        rows.append((name, "Adam, sampled inputs", numbers[f"{name} blocks"]))
    panels = [(f"{title}\nblocks (features/dims): {block_summary(st)}", W, st) for title, W, st in panels]
    return Computed(numbers, {"panels": panels}, tuple(rows))


# ---------------------------------------------------------------- 7. cross-check scatter
def crosscheck_scatter(wb: Workbench) -> Computed:
    reports = wb.crosschecks
    labels = [p.label for p in STANDARD_PROBLEMS]
    numbers, rows = {}, []
    for label, r in zip(labels, reports):
        numbers[f"{label} max |dC|"] = r.max_abs_dC
        numbers[f"{label} loss gap"] = r.loss_gap
        rows.append((label, r.curves.n_features, r.budget, r.predicted.method, r.max_abs_dC, r.loss_gap,
                     block_summary(r.predicted_blocks), block_summary(r.trained_blocks)))
    numbers["max |dC| over all problems"] = max(r.max_abs_dC for r in reports)
    # sum C <= rank W <= d for any W, with equality iff W is block-semi-orthogonal of full rank.
    numbers["max sum C - d over trained embeddings"] = max(
        float(r.trained_capacities.sum()) - r.budget for r in reports)
    numbers["max min(d, N) - sum C over trained embeddings"] = max(
        _unused(r.trained_weights, r.budget) for r in reports)
    numbers["max |loss gap| over all problems"] = max(abs(r.loss_gap) for r in reports)
    return Computed(numbers, {"reports": reports, "labels": labels}, tuple(rows))


# ---------------------------------------------------------------- 8. budget response
#: Step of the finite difference -dL*/dd checked against lambda; points closer than twice it
#: to a whole budget are skipped, as L* has kinks there for concave curves.
FD_STEP = 1e-4


#: Features of the budget-response families: few enough that every one is visible in the
#: stacked capacities.
BUDGET_FEATURES = 12


def _budget_families(n: int):
    v = 0.85 ** np.arange(n, dtype=np.float64)
    mixed = np.where(np.arange(n) % 2 == 0, gated_kurtosis(1.0, "uniform"), gated_kurtosis(0.1, "uniform"))
    return (
        ("convex, K = 5", quadratic(v, 5.0)),
        ("concave, K = 2", quadratic(v, 2.0)),
        ("mixed, K = 1.8 / 18 alternating", quadratic(v, mixed)),
    )


#: Budget at which the sensitivities of the budget-response families are reported.
SENSITIVITY_BUDGET = 2.5


def _budget_sensitivity(label: str, curves, d: float, h: float) -> dict:
    """dL*/dd from :func:`capopt.sensitivity` against the central difference of L*, and for
    a convex family of one kurtosis how dC/dd shares the marginal dimension."""
    s = sensitivity(curves, d)
    fd = (solve(curves, d + h).loss - solve(curves, d - h).loss) / (2 * h)
    out = {f"{label} d = {d:g}: dL*/dd": s.loss_d_budget,
           f"{label} d = {d:g}: central difference of L*": fd}
    if curves.shape is Shape.CONVEX and curves.shared_kurtosis is not None:
        # theory §3: C_i = ((K - 1) v_i / mu - 2)/(K - 3), so dC_i/dd is proportional to v_i
        # among the polysemantic features, and they share the whole marginal dimension.
        poly = solve(curves, d).regime_codes == _POLYSEMANTIC
        v = curves.importance[poly]
        share = s.capacity_d_budget[poly] / (v / v.sum())
        out.update({f"{label} d = {d:g}: polysemantic features": int(poly.sum()),
                    f"{label} d = {d:g}: max |(dC_i/dd) / (v_i / sum v) - 1|":
                        float(np.max(np.abs(share - 1.0))),
                    f"{label} d = {d:g}: sum dC/dd": float(s.capacity_d_budget.sum())})
    return out


def budget_response(wb: Workbench) -> Computed:
    n = BUDGET_FEATURES
    d = np.linspace(0.0, n + 1.0, wb.settings.budget_points)
    h = FD_STEP
    checked = np.abs(d - np.rint(d)) > 2 * h
    families, numbers, rows = [], {}, []
    for label, curves in _budget_families(n):
        results = [solve(curves, b) for b in d]
        C = np.array([r.capacities for r in results])
        lam = np.array([r.multiplier for r in results])
        fd = np.full(d.shape, np.nan)
        for j in np.flatnonzero(checked):
            fd[j] = (solve(curves, d[j] - h).loss - solve(curves, d[j] + h).loss) / (2 * h)
        families.append((label, C, lam, fd))
        used = float(np.max(np.abs(C.sum(axis=1) - np.minimum(d, n))))
        fd_error = float(np.nanmax(np.abs(lam - fd) / np.maximum(lam, 1.0)))
        numbers.update({f"{label} max |sum C - min(d, N)|": used,
                        f"{label} max lambda vs finite difference": fd_error,
                        f"{label} lambda at d = 2.5": solve(curves, 2.5).multiplier})
        rows.append((label, results[len(d) // 2].method, used, fd_error,
                     numbers[f"{label} lambda at d = 2.5"]))
        numbers.update(_budget_sensitivity(label, curves, SENSITIVITY_BUDGET, h))
    return Computed(numbers, {"budgets": d, "families": families, "n_features": n, "step": h},
                    tuple(rows))
