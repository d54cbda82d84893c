r"""The figures of ``capopt reproduce``: one function per figure, in a registry.

Each function takes the :class:`Workbench` (the settings and the computations several
figures share, done once) and returns a :class:`Rendered`: the matplotlib figure, its
caption, and the numbers behind it. Every number in ``numbers`` is printed in the caption or
in the figure's table, formatted by :func:`fmt`, so a reader (and the test suite) can find
it in the report.

Glossary: ``C`` capacity, ``lam`` multiplier (the marginal value of a dimension), ``d``
budget, ``K`` kurtosis, ``v`` importance, ``p`` density, ``N`` number of features.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
from matplotlib.figure import Figure

from .. import _formulas as F
from .. import plotting
from ..curves import Shape, gated_kurtosis, quadratic
from ..geometry import blocks
from ..realisation import optimal_quadratic_model
from ..regimes import Regime, classify
from ..solvers import solve
from ..sweeps import polysemantic_phase, two_feature_phase
from ..catalogue import STANDARD_PROBLEMS
from ..geometry import block_summary
from ..training import ARCHITECTURES, crosscheck, sparsity_sweep
from ..training.results import TRAINED_REGIME_ATOL
from .settings import Settings

__all__ = ["FIGURES", "FigureSpec", "Rendered", "Table", "Workbench", "fmt", "TWO_FEATURE_CASES"]


def fmt(value) -> str:
    """How every number is printed in captions and tables: integers whole, floats to 3 digits.

    Examples
    --------
    >>> fmt(5 / 6), fmt(3), fmt(1.2e-9), fmt("17/5")
    ('0.833', '3', '1.2e-09', '17/5')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return format(float(value), ".3g")


@dataclass(frozen=True)
class Table:
    """A small table printed under a figure: a header and rows of formatted cells."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Rendered:
    """One figure of the report.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
    caption : str
        Plain text (no markup), the numbers in it formatted by :func:`fmt`.
    numbers : dict of str to int, float or str
        The numbers behind the figure; each is shown in ``caption`` or ``table``.
    table : Table, optional
    """

    figure: Figure
    caption: str
    numbers: dict
    table: Table | None = None


@dataclass(frozen=True)
class FigureSpec:
    """A registered figure: file-name slug, heading, and the function that makes it."""

    slug: str
    title: str
    make: Callable[["Workbench"], Rendered] = field(repr=False)


#: The figures, in report order (slug -> spec).
FIGURES: dict[str, FigureSpec] = {}


def _figure(slug: str, title: str):
    def register(make):
        FIGURES[slug] = FigureSpec(slug, title, make)
        return make

    return register


class Workbench:
    """Settings plus the computations shared by several figures, each done on first use.

    Parameters
    ----------
    settings : Settings
    log : callable
        Receives one line of progress per long computation.
    """

    def __init__(self, settings: Settings, log: Callable[[str], None] = print):
        self.settings = settings
        self.log = log

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
            out[name] = sparsity_sweep(
                name, self.train_importance, s.train_budget, self.train_densities,
                n_seeds=s.train_seeds, steps=s.train_steps, batch_size=s.train_batch,
                lr=s.train_lr, schedule="cosine", seed=s.seed,
            )
            self.log(f"      trained {name:<8} {self.train_densities.size * s.train_seeds} instances x "
                     f"{s.train_steps} steps in {time.perf_counter() - started:.1f} s")
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
                for p in STANDARD_PROBLEMS]


_RETURNS = {Shape.CONCAVE: "increasing", Shape.LINEAR: "constant", Shape.CONVEX: "diminishing"}


# ---------------------------------------------------------------- 1. allocation vs importance
@_figure("allocation", "Optimal allocation against feature importance")
def allocation(wb: Workbench) -> Rendered:
    s = wb.settings
    v = 0.9 ** np.arange(s.allocation_features, dtype=np.float64)
    Ks = s.allocation_kurtosis
    results = [solve(quadratic(v, K), s.allocation_budget) for K in Ks]
    theory, numbers, rows = [], {}, []
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
        counts = r.counts
        shape = _RETURNS[quadratic(v, K).shape]
        for regime in ("monosemantic", "polysemantic", "ignored"):
            numbers[f"K={K:g} {regime}"] = counts[regime]
        numbers[f"K={K:g} lambda"] = r.multiplier
        numbers[f"K={K:g} loss"] = r.loss
        rows.append((fmt(K), shape, r.method, fmt(counts["monosemantic"]), fmt(counts["polysemantic"]),
                     fmt(counts["ignored"]), fmt(r.multiplier), fmt(r.loss)))
    numbers["max |C - closed form|"] = off_curve
    fig = plotting.plot_allocation_by_importance(v, Ks, results, theory=theory)
    caption = (
        f"Quadratic model with N = {s.allocation_features} features of importance v_i = 0.9^i and "
        f"d = {s.allocation_budget} dimensions, solved by capopt.solve at kurtosis K = "
        f"{', '.join(fmt(K) for K in Ks)}. Each point is one feature, coloured by regime. At K <= 3 "
        "(increasing or constant returns) the most important features take whole dimensions and the "
        "rest are ignored; at K > 3 a band of features of middling importance is polysemantic, and "
        "the band widens as K grows. The black line is the closed form C(v) = "
        "clip(((K-1) v s - 2)/(K-3), 0, 1) with s = sqrt(2/lambda) from the solver's multiplier; the "
        f"solver's capacities lie on it to max |C - closed form| = {fmt(off_curve)}."
    )
    table = Table(("K", "returns", "method", "monosemantic", "polysemantic", "ignored", "lambda", "loss"),
                  tuple(rows))
    return Rendered(fig, caption, numbers, table)


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


@_figure("marginal-benefit", "Marginal benefit of capacity: cases A-F")
def marginal_benefit(wb: Workbench) -> Rendered:
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
        rows.append((letter, fmt(ratio), fmt(K), returns, fmt(C[0]), fmt(C[1]), fmt(result.multiplier),
                     fmt(result.loss), verdict))
    fig = plotting.plot_marginal_pairs(cases)
    caption = (
        "Two features of importances a >= b (b = 1) sharing one neuron (d = 1) of the quadratic model. "
        "Blue: marginal benefit -l_a'(C_a) of giving feature a more capacity; black: -l_b'(1 - C_a), that "
        "of feature b, which gets what a leaves. With increasing returns (A, B: K < 3) or constant returns "
        "(C: K = 3) the optimum is an end point: one feature owns the neuron (a tie, as in A, goes to the "
        "first feature). With diminishing returns (K > 3) the curves cross, and the optimum is the "
        "crossing, where both marginals equal lambda, unless feature a's marginal at C_a = 1 still "
        "exceeds b's at 0, which happens for K < 1 + 2a/b (D). The dashed line is capopt.solve's "
        f"allocation at budget 1; case E is the worked example of theory §3, C = ({fmt(numbers['E C_a'])}, "
        f"{fmt(numbers['E C_b'])}), loss {fmt(numbers['E loss'])}. The same letters mark the "
        "two-feature phase diagram (next figure)."
    )
    table = Table(("case", "a/b", "K", "returns", "C_a", "C_b", "lambda", "loss", "regime"), tuple(rows))
    return Rendered(fig, caption, numbers, table)


# ---------------------------------------------------------------- 3. two-feature phase diagram
#: Relative distance to the boundary K* = 1 + 2a/b within which a grid point counts as on it:
#: rounding of the grid and of K* is ~1e-16 relative.
ON_BOUNDARY = 1e-12


@_figure("two-feature-phase", "Phase diagram: two features on one neuron")
def two_feature(wb: Workbench) -> Rendered:
    s = wb.settings
    ratios = np.linspace(1.0, 4.0, s.two_feature_ratios)
    kurtoses = np.linspace(1.0, 16.0, s.two_feature_kurtoses)
    ds = two_feature_phase(ratios, kurtoses)
    fig = plotting.mark_two_feature_cases(plotting.plot_two_feature_phase(ds), TWO_FEATURE_CASES)
    dims = ds.polysemantic.dims
    poly = (ds.polysemantic == 2).values
    K, boundary = ds.kurtosis.broadcast_like(ds.polysemantic), ds.boundary.broadcast_like(ds.polysemantic)
    predicted = (K > boundary).transpose(*dims).values
    # Grid points on the boundary itself (K = 1 + 2a/b up to rounding) have C_b = 0 exactly,
    # while the rounded comparison K > K* may go either way: they are counted apart.
    on = (np.abs(K - boundary) <= ON_BOUNDARY * boundary).transpose(*dims).values
    disagree = int(np.sum((poly != predicted) & ~on))
    numbers = {"grid points": int(poly.size), "polysemantic points": int(poly.sum()),
               "points on the boundary": int(on.sum()),
               "disagreements with K > 1 + 2a/b": disagree}
    caption = (
        f"Capacity C_b of the less important of two features on one neuron, solved exactly on a "
        f"{s.two_feature_ratios} x {s.two_feature_kurtoses} grid of importance ratio a/b in [1, 4] "
        f"and kurtosis K in [1, 16] (capopt.sweeps.two_feature_phase). The features share the neuron "
        f"(polysemantic) at {numbers['polysemantic points']} of {numbers['grid points']} grid points. "
        f"The closed-form boundary K = 1 + 2a/b (dashed) predicts which, with {disagree} "
        f"disagreements off the boundary ({numbers['points on the boundary']} grid points lie on it, "
        "where C_b = 0). Sparse inputs (large K) and similar importances (a/b near 1) make sharing "
        "optimal. The lettered points are the cases A-F of the previous figure."
    )
    return Rendered(fig, caption, numbers)


# ---------------------------------------------------------------- 4. N-feature phase diagram
@_figure("phase-diagram", "Phase diagram: polysemantic fraction over sparsity and importance decay")
def phase_diagram(wb: Workbench) -> Rendered:
    s = wb.settings
    density = np.geomspace(0.01, 1.0, s.phase_densities)
    decay = np.linspace(0.5, 1.0, s.phase_decays)
    ds = polysemantic_phase(density, decay, n_features=s.phase_features, budget=s.phase_budget)
    fig = plotting.plot_polysemantic_phase(ds)
    some = (ds.polysemantic > 0).transpose("importance_decay", "density").values
    below = (ds.density < ds.boundary_density).transpose("importance_decay", "density").values
    fraction = ds.polysemantic_fraction.values
    numbers = {
        "grid points": int(fraction.size),
        "max polysemantic fraction": float(fraction.max()),
        "points with some polysemantic feature": int(some.sum()),
        "disagreements with p < p*(r)": int(np.sum(some != below)),
    }
    caption = (
        f"Fraction of N = {s.phase_features} features that are polysemantic at the optimum with "
        f"d = {s.phase_budget}, importances v_i = r^i and sparse Gaussian inputs of density p "
        f"(kurtosis K = 3/p), on a {s.phase_densities} x {s.phase_decays} grid (capopt.sweeps."
        f"polysemantic_phase, numba kernels). {numbers['points with some polysemantic feature']} of "
        f"{numbers['grid points']} points have a polysemantic feature, up to a fraction of "
        f"{fmt(numbers['max polysemantic fraction'])}. The boundary p* = 3/(1 + 2/r) (dashed), where "
        "features d-1 and d start to share, predicts which points have one with "
        f"{numbers['disagreements with p < p*(r)']} disagreements: sparser inputs and flatter "
        "importance profiles mean more polysemanticity."
    )
    return Rendered(fig, caption, numbers)


# ---------------------------------------------------------------- 5. trained: poly vs sparsity
def _predicted_fraction(v, d, densities) -> np.ndarray:
    """Solver's polysemantic fraction of the quadratic model on the two-layer models' inputs."""
    out = []
    for p in densities:
        result = solve(quadratic(v, gated_kurtosis(p, ARCHITECTURES["square"].base)), d)
        regimes = classify(result.capacities, atol=TRAINED_REGIME_ATOL)
        out.append(sum(r is Regime.POLYSEMANTIC for r in regimes) / len(regimes))
    return np.array(out)


@_figure("sparsity-sweep", "Trained models: polysemantic fraction against sparsity, per architecture")
def sparsity(wb: Workbench) -> Rendered:
    s = wb.settings
    sweeps = wb.sweeps
    p = wb.train_densities
    predicted = _predicted_fraction(wb.train_importance, s.train_budget, p)
    fig = plotting.plot_polysemantic_vs_sparsity(
        sweeps, predicted=("solver, quadratic model (= square)", p, predicted))
    numbers, rows = {}, []
    grows = 0
    for name, sw in sweeps.items():
        f = sw.polysemantic_fraction.mean(axis=1)
        numbers[f"{name} dense"] = float(f[0])
        numbers[f"{name} sparse"] = float(f[-1])
        grows += bool(f[-1] > f[0])
        rows.append((name, ARCHITECTURES[name].summary, fmt(f[0]), fmt(f[-1]),
                     block_summary(sw.structures[-1][0])))
    gap = float(np.max(np.abs(sweeps["square"].polysemantic_fraction.mean(axis=1) - predicted)))
    numbers["architectures where it grows"] = grows
    numbers["square vs solver max |difference|"] = gap
    caption = (
        f"Fraction of features with {fmt(TRAINED_REGIME_ATOL)} < C < {fmt(1 - TRAINED_REGIME_ATOL)} in "
        f"models trained with Adam (capopt.training.sparsity_sweep: N = {s.train_features} features of "
        f"importance 0.9^i, d = {s.train_budget}, {s.train_steps} steps, batch {s.train_batch}, "
        f"{s.train_seeds} seed(s) per density"
        f"{', band = range over seeds' if s.train_seeds > 1 else ''}) at {p.size} densities from 1 "
        f"to {fmt(p[-1])}. Polysemanticity grows from the densest to the sparsest inputs in "
        f"{grows} of {len(sweeps)} architectures, at architecture-dependent rates (the paper's "
        "figure 7). The broad grey line is capopt.solve's prediction for the quadratic model on the same "
        "inputs, which the trained 'square' network implements: they differ by at most "
        f"{fmt(gap)} in fraction. The table gives the fractions at the densest and sparsest inputs "
        "and the block sizes (features/dims) of the sparsest trained embedding (seed 0)."
    )
    table = Table(("architecture", "model", f"poly at p = 1", f"poly at p = {fmt(p[-1])}",
                   "blocks at sparsest"), tuple(rows))
    return Rendered(fig, caption, numbers, table)


# ---------------------------------------------------------------- 6. Gram matrices and blocks
@_figure("gram-blocks", "Block structure of optimal and trained embeddings")
def gram_blocks(wb: Workbench) -> Rendered:
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
               "quadratic L-BFGS max |dC|": check.max_abs_dC}
    rows = [("quadratic optimal", "capopt.solve + optimal_quadratic_model",
             numbers["quadratic optimal blocks"]),
            ("quadratic trained", "L-BFGS on the exact loss", numbers["quadratic L-BFGS blocks"])]
    for name, sw in wb.sweeps.items():
        structure = sw.structures[k][0]
        W = sw.fit.weights[k * s.train_seeds]
        panels.append((f"{name}: trained (Adam)", W, structure))
        numbers[f"{name} blocks"] = block_summary(structure)
        rows.append((name, "Adam, sampled inputs", numbers[f"{name} blocks"]))
    panels = [(f"{title}\nblocks (features/dims): {block_summary(st)}", W, st) for title, W, st in panels]
    fig = plotting.plot_gram_blocks(panels)
    agree = "agree" if numbers["quadratic optimal blocks"] == numbers["quadratic L-BFGS blocks"] else "differ"
    caption = (
        f"Gram matrices G = W^T W (scaled by max |G|) of embeddings with N = {s.train_features} "
        f"features of importance 0.9^i in d = {s.train_budget} dimensions at input density p = "
        f"{fmt(p)}, features grouped by the blocks capopt.blocks finds (boxes; ignored features "
        "last). The quadratic model's optimal embedding (from the solver's allocation) and its "
        f"exact-loss L-BFGS training have blocks {numbers['quadratic optimal blocks']} and "
        f"{numbers['quadratic L-BFGS blocks']} (features/dims; they {agree}) and capacities within "
        f"max |dC| = {fmt(check.max_abs_dC)}; in the quadratic model all polysemantic features share "
        "one block. The other architectures, trained with Adam on sampled inputs "
        "(the sparsity sweep of the previous figure), form blocks of their own sizes; the table lists them."
    )
    table = Table(("embedding", "how", "blocks (features/dims)"), tuple(rows))
    return Rendered(fig, caption, numbers, table)


# ---------------------------------------------------------------- 7. cross-check scatter
@_figure("crosscheck", "Predicted against trained capacities")
def crosscheck_scatter(wb: Workbench) -> Rendered:
    reports = wb.crosschecks
    labels = [p.label for p in STANDARD_PROBLEMS]
    fig = plotting.plot_crosscheck(reports, labels)
    numbers, rows = {}, []
    for label, r in zip(labels, reports):
        numbers[f"{label} max |dC|"] = r.max_abs_dC
        numbers[f"{label} loss gap"] = r.loss_gap
        rows.append((label, fmt(r.curves.n_features), fmt(r.budget), r.predicted.method,
                     fmt(r.max_abs_dC), fmt(r.loss_gap), block_summary(r.predicted_blocks),
                     block_summary(r.trained_blocks)))
    worst_dC = max(r.max_abs_dC for r in reports)
    worst_gap = max(abs(r.loss_gap) for r in reports)
    numbers["max |dC| over all problems"] = worst_dC
    numbers["max |loss gap| over all problems"] = worst_gap
    caption = (
        f"The {len(reports)} standard cross-check problems (capopt.training.STANDARD_PROBLEMS: convex, "
        "concave and mixed quadratic families, per-feature kurtosis straddling 3, and the linear "
        "autoencoder), each solved by capopt.solve and trained independently by L-BFGS on the model's "
        f"exact expected loss from {wb.settings.crosscheck_starts} random starts (capopt.crosscheck). "
        "Left: every feature's trained capacity against the predicted one (the diagonal is "
        "agreement). Right: the largest disagreement per problem. Over all problems "
        f"max |dC| = {fmt(worst_dC)} and max |loss gap| = {fmt(worst_gap)} (trained minus predicted "
        "loss)."
    )
    table = Table(("problem", "N", "d", "method", "max |dC|", "loss gap", "blocks predicted",
                   "blocks trained"), tuple(rows))
    return Rendered(fig, caption, numbers, table)


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


@_figure("budget", "Capacity used and the marginal value of a dimension against the budget")
def budget_response(wb: Workbench) -> Rendered:
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
        rows.append((label, results[len(d) // 2].method, fmt(used), fmt(fd_error),
                     fmt(numbers[f"{label} lambda at d = 2.5"])))
    fig = plotting.plot_budget_response(d, families)
    caption = (
        f"Three quadratic families of N = {n} features with importances 0.85^i, solved by capopt.solve "
        f"at {d.size} budgets d from 0 to {fmt(d[-1])}. Stacked panels: each feature's capacity; the "
        "top edge is the capacity used, sum C = min(d, N) (the budget binds while lambda > 0). With "
        "diminishing returns features enter gradually and share; with increasing returns they enter "
        "one whole dimension at a time; the mixed family takes dense features whole and shares the "
        "sparse ones. Last panel: the multiplier lambda, the marginal value of one more dimension, "
        "checked against the finite difference -(L*(d+h) - L*(d-h))/2h, h = "
        f"{fmt(h)}, at budgets away from whole numbers (crosses, every third shown); the table gives "
        "the largest disagreement (relative to max(lambda, 1)) and the capacity used."
    )
    table = Table(("family", "method", "max |sum C - min(d, N)|", "max |lambda - FD| (rel.)",
                   "lambda at d = 2.5"), tuple(rows))
    return Rendered(fig, caption, numbers, table)
