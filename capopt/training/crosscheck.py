r"""Does gradient training land where the solver says? (theory §3-§4)

* :func:`crosscheck`: for a family with closed-form curves (quadratic model, linear
  autoencoder), solve the allocation problem with :func:`capopt.solve`, train the model
  itself (exact-loss L-BFGS by default, sampled minibatches optionally), and compare the
  capacities, losses and block structures.
* :func:`sparsity_sweep`: for architectures without a closed form (ReLU / GeLU autoencoders,
  two-layer models), train one instance per density in one batched run and tabulate the
  capacities, the regime fractions and the block sizes against sparsity.

Glossary: ``C`` capacity, ``d`` embedding dimension, ``v`` / ``I`` importance, ``K``
kurtosis, ``p`` density, ``S = 1 - p`` sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..capacity import capacity
from ..curves import (
    LinearAutoencoderCurves,
    LossCurves,
    QuadraticCurves,
    gated_kurtosis,
    linear_autoencoder,
    quadratic,
)
from .._validation import check_count
from ..geometry import BlockStructure, blocks
from ..models import linear_autoencoder_model_loss, quadratic_model_loss
from ..realisation import realize
from ..regimes import Regime, classify
from ..solvers import AllocationResult, solve
from .autoencoders import autoencoder_model, train_autoencoder, train_linear_autoencoder
from .optim import fit
from .quadratic import train_quadratic_exact, train_quadratic_sampled
from .results import ExactFit, SampledFit
from .two_layer import two_layer_model

__all__ = [
    "crosscheck",
    "CrosscheckReport",
    "Problem",
    "STANDARD_PROBLEMS",
    "sparsity_sweep",
    "SparsitySweep",
    "ARCHITECTURES",
    "PUBLISHED_DIMENSIONALITIES",
    "crosscheck_table",
    "TRAINED_REGIME_ATOL",
    "TRAINED_BLOCK_TOL",
    "TRAINED_ZERO_TOL",
]

#: Feature dimensionalities at which Toy Models of Superposition reports trained ReLU
#: autoencoders sticking: monosemantic, tetrahedron, triangle, antipodal pair, pentagon,
#: square antiprism, ignored.
PUBLISHED_DIMENSIONALITIES = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8, 0.0)

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

#: Tolerance for grouping the predicted allocation into blocks: the certified methods
#: return capacities to ~1e-9 (the global method's own tolerance is 1e-8), and a block's
#: sum accumulates that over its features.
REALIZE_TOL = 1e-6


def _block_summary(structure: BlockStructure) -> str:
    """Blocks as 'features/dims' terms, largest first, e.g. '1/1 x2, 5/2'."""
    if not structure.blocks:
        return "none"
    sizes = sorted(((len(b.features), b.dim) for b in structure.blocks), reverse=True)
    terms = []
    for size in dict.fromkeys(sizes):
        count = sizes.count(size)
        terms.append(f"{size[0]}/{size[1]}" + (f" x{count}" if count > 1 else ""))
    return ", ".join(terms)


# ---------------------------------------------------------------- closed-form cross-check
def _train_quadratic(curves: QuadraticCurves, d: int, route: str, options: dict):
    if route == "exact":
        return train_quadratic_exact(curves.importance, curves.kurtosis, d, **options)
    return train_quadratic_sampled(curves.importance, curves.kurtosis, d, **options)


def _train_linear(curves: LinearAutoencoderCurves, d: int, route: str, options: dict):
    if route == "exact":
        return train_linear_autoencoder(curves.importance, d, **options)
    # Unit-variance Gaussian inputs, the distribution the closed-form loss assumes.
    n_seeds = options.pop("n_seeds", 1)
    return train_autoencoder(curves.importance, d, activation="linear", base="gaussian",
                             n_instances=n_seeds,
                             **{"steps": 5000, "lr": 1e-2, "schedule": "cosine", **options})


#: Per family: (train(curves, d, route, options), exact model loss(curves, W)).
_FAMILIES = {
    QuadraticCurves: (_train_quadratic,
                      lambda c, W: quadratic_model_loss(W, c.importance, c.kurtosis)),
    LinearAutoencoderCurves: (_train_linear,
                              lambda c, W: linear_autoencoder_model_loss(W, c.importance)),
}

#: How to read the blocks of each route's weights: L-BFGS optima are clean to ~1e-6 and
#: suit :func:`capopt.blocks`' defaults; Adam leaves jitter (see TRAINED_BLOCK_TOL).
_TRAINED_BLOCK_OPTIONS = {
    "exact": {},
    "sampled": {"tol": TRAINED_BLOCK_TOL, "zero_tol": TRAINED_ZERO_TOL},
}

ROUTES = tuple(_TRAINED_BLOCK_OPTIONS)


@dataclass(frozen=True, repr=False)
class CrosscheckReport:
    r"""Predicted (solver) against trained (gradient descent) allocation of one problem.

    Attributes
    ----------
    curves : LossCurves
        The problem's loss curves.
    budget : int
        Embedding dimension d.
    route : str
        ``"exact"`` (L-BFGS on the exact expected loss) or ``"sampled"`` (Adam on minibatches).
    predicted : AllocationResult
        :func:`capopt.solve`'s certified allocation.
    fit : ExactFit or SampledFit
        The training run.
    trained_weights : ndarray, shape (d, N)
        The trained embedding compared (for the sampled route, the instance of lowest exact
        loss).
    trained_loss : float
        Exact expected loss of ``trained_weights`` (bias at its optimum).
    predicted_blocks, trained_blocks : BlockStructure
        :func:`capopt.blocks` of an embedding realising the predicted allocation
        (:func:`capopt.realize`) and of the trained one.
    """

    curves: LossCurves
    budget: int
    route: str
    predicted: AllocationResult
    fit: ExactFit | SampledFit
    trained_weights: np.ndarray
    trained_loss: float
    predicted_blocks: BlockStructure
    trained_blocks: BlockStructure

    @property
    def predicted_capacities(self) -> np.ndarray:
        return self.predicted.capacities

    @property
    def trained_capacities(self) -> np.ndarray:
        return capacity(self.trained_weights)

    @property
    def max_abs_dC(self) -> float:
        r""":math:`\max_i |C_i^{\text{trained}} - C_i^{\text{predicted}}|`."""
        return float(np.max(np.abs(self.trained_capacities - self.predicted_capacities)))

    @property
    def loss_gap(self) -> float:
        """Trained minus predicted loss: >= 0 up to rounding, as the solver's is the minimum."""
        return self.trained_loss - self.predicted.loss

    def __repr__(self) -> str:
        return (
            f"CrosscheckReport(route={self.route!r}, n_features={self.curves.n_features}, "
            f"d={self.budget}, max_abs_dC={self.max_abs_dC:.2e}, loss_gap={self.loss_gap:.2e})"
        )

    def table(self) -> str:
        """Per-feature table of predicted and trained capacities, then the totals."""
        pred, got = self.predicted_capacities, self.trained_capacities
        lines = [f"{'feature':>7}  {'predicted C':>11}  {'trained C':>10}  {'dC':>9}  regime"]
        lines += [
            f"{i:>7d}  {p:>11.6f}  {t:>10.6f}  {t - p:>9.1e}  {r.value}"
            for i, (p, t, r) in enumerate(zip(pred, got, self.predicted.regimes))
        ]
        lines.append(
            f"max |dC| = {self.max_abs_dC:.2e}   loss: predicted {self.predicted.loss:.10g}, "
            f"trained {self.trained_loss:.10g}, gap {self.loss_gap:.2e}"
        )
        lines.append(f"blocks (features/dims): predicted {_block_summary(self.predicted_blocks)}; "
                     f"trained {_block_summary(self.trained_blocks)}")
        return "\n".join(lines)


def crosscheck(curves: LossCurves, budget: int, *, route: str = "exact", seed=0,
               **train_options) -> CrosscheckReport:
    r"""Solve a closed-form problem and train its model; compare capacities and losses.

    Parameters
    ----------
    curves : QuadraticCurves or LinearAutoencoderCurves
        From :func:`capopt.quadratic` or :func:`capopt.linear_autoencoder`.
    budget : int
        Embedding dimension d (a whole number: the trained model has d neurons).
    route : {"exact", "sampled"}
        ``"exact"``: multi-start L-BFGS on the model's exact expected loss
        (:func:`~capopt.training.train_quadratic_exact`,
        :func:`~capopt.training.train_linear_autoencoder`). ``"sampled"``: Adam on sampled
        minibatches (:func:`~capopt.training.train_quadratic_sampled`); with ``n_seeds > 1``
        the instance of lowest exact loss is compared.
    seed : int, optional
        Seed of the training run.
    **train_options
        Passed to the trainer (``starts``, ``steps``, ``n_seeds``, ...).

    Returns
    -------
    CrosscheckReport

    Raises
    ------
    TypeError
        For a family without a closed-form model.
    ValueError
        For an unknown route or a budget that is not a whole number >= 1.

    Notes
    -----
    Capacities are compared, never weights: the models are invariant under
    :math:`W \to Q W`. The trained loss is the exact expected loss of the trained
    embedding, so ``loss_gap`` measures optimisation error alone, also on the sampled route.

    Examples
    --------
    >>> import capopt
    >>> report = crosscheck(capopt.quadratic([2.0, 1.0], 7.0), 1, starts=2)
    >>> report.max_abs_dC < 1e-6, abs(report.loss_gap) < 1e-9
    (True, True)
    """
    family = _FAMILIES.get(type(curves))
    if family is None:
        raise TypeError(
            "curves must be a family with a closed-form model (capopt.quadratic(...) or "
            f"capopt.linear_autoencoder(...)), got {type(curves).__name__}; use "
            "sparsity_sweep for architectures without one"
        )
    if route not in ROUTES:
        raise ValueError(f"route must be one of {list(ROUTES)}, got {route!r}")
    if isinstance(budget, bool) or not float(budget).is_integer() or budget < 1:
        raise ValueError(f"budget must be a whole number of neurons >= 1, got {budget!r}")
    d = int(budget)
    train, model_loss = family

    predicted = solve(curves, d)
    trained = train(curves, d, route, {"seed": seed, **train_options})
    if isinstance(trained, ExactFit):
        W = trained.weights
    else:
        losses = model_loss(curves, trained.weights)
        W = trained.weights[int(np.argmin(losses))]
    return CrosscheckReport(
        curves=curves,
        budget=d,
        route=route,
        predicted=predicted,
        fit=trained,
        trained_weights=W,
        trained_loss=float(model_loss(curves, W)),
        predicted_blocks=blocks(realize(predicted.capacities, d, seed=0, tol=REALIZE_TOL)),
        trained_blocks=blocks(W, **_TRAINED_BLOCK_OPTIONS[route]),
    )


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


def crosscheck_table(reports, labels) -> str:
    """One line per report: problem, N, d, solver method, max |dC|, loss gap, blocks.

    ``at best`` counts the L-BFGS starts that ended at the best loss (exact route): fewer
    than all means the others stopped in spurious local minima or saddles.
    """
    lines = [f"{'problem':<34} {'N':>3} {'d':>2} {'method':>9} {'max|dC|':>9} {'loss gap':>9} "
             f"{'at best':>7}  blocks predicted | trained"]
    for label, r in zip(labels, reports):
        starts = (f"{r.fit.n_at_best()}/{r.fit.start_losses.size}" if isinstance(r.fit, ExactFit)
                  else "-")
        lines.append(
            f"{label:<34} {r.curves.n_features:>3d} {r.budget:>2d} {r.predicted.method:>9} "
            f"{r.max_abs_dC:>9.1e} {r.loss_gap:>9.1e} {starts:>7}  "
            f"{_block_summary(r.predicted_blocks)} | {_block_summary(r.trained_blocks)}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- sparsity sweeps
class Architecture(NamedTuple):
    """How to build a batched model of one architecture without closed-form curves."""

    build: Callable  # (importance (R, N), d, density (R,), base, dtype) -> batched model
    base: str
    summary: str


def _autoencoder(activation):
    return lambda I, d, p, base, dtype: autoencoder_model(I, d, activation=activation, density=p,
                                                          base=base, dtype=dtype)


def _two_layer(activation):
    return lambda v, d, p, base, dtype: two_layer_model(v, d, activation, p, base, None, dtype=dtype)


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
    """

    architecture: str
    densities: np.ndarray
    importance: np.ndarray
    budget: int
    fit: SampledFit
    structures: tuple
    regime_atol: float

    @property
    def capacities(self) -> np.ndarray:
        """Capacities, shape (S, n_seeds, N)."""
        S = self.densities.size
        return self.fit.capacities.reshape(S, -1, self.importance.size)

    @property
    def regime_fractions(self) -> np.ndarray:
        """Fraction of features monosemantic, polysemantic, ignored: shape (S, n_seeds, 3)."""
        C = self.capacities
        order = (Regime.MONOSEMANTIC, Regime.POLYSEMANTIC, Regime.IGNORED)
        out = np.zeros(C.shape[:2] + (3,))
        for index in np.ndindex(C.shape[:2]):
            regimes = classify(C[index], atol=self.regime_atol)
            out[index] = [sum(r is kind for r in regimes) / len(regimes) for kind in order]
        return out

    @property
    def polysemantic_fraction(self) -> np.ndarray:
        """Fraction of all features that are polysemantic, shape (S, n_seeds)."""
        return self.regime_fractions[..., 1]

    @property
    def dimensions_per_feature(self) -> np.ndarray:
        r"""Toy Models of Superposition's :math:`d / \|W\|_F^2`, shape (S, n_seeds)."""
        W = self.fit.weights
        return (self.budget / np.sum(W * W, axis=(-2, -1))).reshape(self.densities.size, -1)

    @property
    def block_sizes(self) -> tuple:
        """Per (density, seed): the (features, dims) of each block, largest first."""
        return tuple(
            tuple(tuple(sorted(((len(b.features), b.dim) for b in st.blocks), reverse=True))
                  for st in row)
            for row in self.structures
        )

    def at_published(self, values=PUBLISHED_DIMENSIONALITIES, *, atol: float = 0.02) -> dict:
        """How many features sit within ``atol`` of each published dimensionality.

        Returns a dict ``value -> count`` over all instances and features, plus ``"other"``.
        """
        C = self.capacities.ravel()
        distance = np.abs(C[:, None] - np.asarray(values)[None, :])
        nearest = np.argmin(distance, axis=1)
        hit = distance[np.arange(C.size), nearest] <= atol
        counts = {float(v): int(np.sum(hit & (nearest == j))) for j, v in enumerate(values)}
        counts["other"] = int(np.sum(~hit))
        return counts

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
                             f"{C[s, k].sum():>7.3f} {dpf[s, k]:>7.3f}  {_block_summary(st)}")
        return "\n".join(lines)


def sparsity_sweep(
    architecture: str,
    importance,
    budget: int,
    densities,
    *,
    n_seeds: int = 1,
    base: str | None = None,
    steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    schedule: str = "constant",
    seed=0,
    dtype=np.float64,
    regime_atol: float = TRAINED_REGIME_ATOL,
    block_tol: float = TRAINED_BLOCK_TOL,
    zero_tol: float = TRAINED_ZERO_TOL,
    **fit_options,
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
    steps, batch_size, lr, schedule, seed, **fit_options
        Passed to :func:`capopt.training.fit` (``checkpoint``, ``progress``, ...). The
        defaults are the Toy Models of Superposition settings.
    dtype : {float64, float32}
        Precision of the training run (float32 halves the memory traffic of large sweeps).
    regime_atol, block_tol, zero_tol : float
        Tolerances for reading regimes and blocks off Adam-trained weights
        (:data:`TRAINED_REGIME_ATOL`, :data:`TRAINED_BLOCK_TOL`, :data:`TRAINED_ZERO_TOL`).

    Returns
    -------
    SparsitySweep

    Examples
    --------
    >>> import numpy as np
    >>> sweep = sparsity_sweep("tms-relu", 0.9 ** np.arange(5), 2, [1.0, 0.1], steps=50)
    >>> sweep.capacities.shape
    (2, 1, 5)
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}")
    arch = ARCHITECTURES[architecture]
    p = np.asarray(densities, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"densities must be a non-empty 1-d array, got shape {p.shape}")
    n_seeds = check_count(n_seeds, "n_seeds")
    v = np.asarray(importance, dtype=np.float64)
    R = p.size * n_seeds
    model = arch.build(np.broadcast_to(v, (R, v.size)), budget, np.repeat(p, n_seeds),
                       arch.base if base is None else base, dtype)
    trained = fit(model, steps=steps, batch_size=batch_size, lr=lr, schedule=schedule, seed=seed,
                  **fit_options)
    W = trained.weights.reshape(p.size, n_seeds, *trained.weights.shape[1:])
    structures = tuple(tuple(blocks(Wk, tol=block_tol, zero_tol=zero_tol) for Wk in row) for row in W)
    return SparsitySweep(architecture, p, v, int(budget), trained, structures, regime_atol)
