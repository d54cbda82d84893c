r"""Does gradient training land where the solver says? (theory §3)

:func:`crosscheck`: for a family with an explicit model (the quadratic model, the linear
autoencoder, any family whose :meth:`~capopt.curves.LossCurves.model` has a trainer), solve
the allocation problem with :func:`capopt.solve`, train the model itself (exact-loss L-BFGS
by default, sampled minibatches optionally), then compare the trained
embedding with the allocation as :func:`capopt.compare` does any embedding: capacities,
losses and block structures (:class:`CrosscheckReport`; :func:`crosscheck_table` for many).
The problems it runs by default are :data:`capopt.catalogue.STANDARD_PROBLEMS`;
architectures without closed-form curves are :mod:`capopt.training.sparsity`'s.

Glossary: ``C`` capacity, ``d`` the budget (embedding dimension), ``v`` / ``I`` importance,
``K`` kurtosis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypedDict, cast

import numpy as np

from .._validation import check_choice, check_keywords, check_whole
from ..comparison import Comparison, against_optimum
from ..curves import LossCurves
from ..geometry import BlockStructure, block_summary
from ..solvers import AllocationResult, solve
from .results import TRAINED_BLOCK_TOL, TRAINED_ZERO_TOL, ExactFit, SampledFit
from .._typing import Seed

__all__ = ["crosscheck", "CrosscheckReport", "crosscheck_table", "ROUTES"]


class _BlockOptions(TypedDict, total=False):
    """The options of :func:`capopt.compare` for the blocks of the trained embedding."""

    block_tol: float
    zero_tol: float


#: How to read the blocks of each route's weights: L-BFGS optima are clean to ~1e-6 and
#: suit :func:`capopt.blocks`' defaults; Adam leaves jitter (see TRAINED_BLOCK_TOL).
_TRAINED_BLOCK_OPTIONS: dict[str, _BlockOptions] = {
    "exact": {},
    "sampled": {"block_tol": TRAINED_BLOCK_TOL, "zero_tol": TRAINED_ZERO_TOL},
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
    fit : ExactFit or SampledFit
        The training run.
    comparison : Comparison
        :func:`capopt.compare` of the trained embedding (for the sampled route, the instance
        of lowest exact loss) with :func:`capopt.solve`'s certified allocation,
        :attr:`predicted`.
    """

    curves: LossCurves
    budget: int
    route: str
    fit: ExactFit | SampledFit
    comparison: Comparison

    @property
    def predicted(self) -> AllocationResult:
        """:func:`capopt.solve`'s certified allocation."""
        return self.comparison.optimal

    @property
    def trained_weights(self) -> np.ndarray:
        """The trained embedding compared, shape (d, N)."""
        return self.comparison.weights

    @property
    def trained_loss(self) -> float:
        """Exact expected loss of ``trained_weights`` (bias at its optimum)."""
        return cast(float, self.comparison.loss)

    @property
    def predicted_blocks(self) -> BlockStructure:
        """:func:`capopt.blocks` of the model that attains the predicted allocation."""
        predicted = self.comparison.predicted_blocks
        if predicted is None:  # a whole budget and a closed-form model: not expected
            raise ValueError(self.comparison.predicted_blocks_reason)
        return predicted

    @property
    def trained_blocks(self) -> BlockStructure:
        """:func:`capopt.blocks` of the trained embedding."""
        return self.comparison.blocks

    @property
    def predicted_capacities(self) -> np.ndarray:
        return self.predicted.capacities

    @property
    def trained_capacities(self) -> np.ndarray:
        return self.comparison.capacities

    @property
    def max_abs_dC(self) -> float:
        r""":math:`\max_i |C_i^{\text{trained}} - C_i^{\text{predicted}}|`."""
        return self.comparison.max_abs_error

    @property
    def loss_gap(self) -> float:
        """Trained minus predicted loss: >= 0 up to rounding, as the solver's is the minimum."""
        return cast(float, self.comparison.loss_gap)

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
        lines.append(f"blocks (features/dims): predicted {block_summary(self.predicted_blocks)}; "
                     f"trained {block_summary(self.trained_blocks)}")
        return "\n".join(lines)


def crosscheck(curves: LossCurves, budget: int, *, route: str = "exact", seed: Seed = 0,
               **train_options: Any) -> CrosscheckReport:
    r"""Solve a closed-form problem and train its model; compare capacities and losses.

    Parameters
    ----------
    curves : LossCurves
        A family with an explicit model that can be trained
        (:meth:`~capopt.curves.LossCurves.model`): :func:`capopt.quadratic`,
        :func:`capopt.linear_autoencoder`, or one of your own.
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
        Passed to the route's trainer: ``starts``, ``gtol``, ``maxiter`` on the exact route;
        ``n_seeds``, ``options`` (a :class:`~capopt.training.TrainingOptions`) or its
        fields (``steps``, ``lr``, ...) and :func:`~capopt.training.fit`'s run arguments
        on the sampled route.

    Returns
    -------
    CrosscheckReport

    Raises
    ------
    TypeError
        For a family without an explicit model, or whose model has no trainer; for an
        option the route's trainer does not take (the message lists those it does and
        suggests the closest).
    ValueError
        For a route the model does not offer or a budget that is not a whole number >= 1.

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
    model = curves.model() if isinstance(curves, LossCurves) else None
    if model is None or not model.routes:
        raise TypeError(
            "curves must be a family whose explicit model can be trained (capopt.quadratic(...), "
            f"capopt.linear_autoencoder(...), or a LossCurves whose model() has a trainer), got "
            f"{type(curves).__name__}; use sparsity_sweep for architectures without one"
        )
    check_choice(route, "route", list(model.routes))
    budget = check_whole(budget, "budget", minimum=1, unit="neurons")
    accepted = model.training_options(route)
    if accepted is not None:
        check_keywords(train_options, accepted, f"crosscheck (route {route!r})")

    predicted = solve(curves, budget)
    trained = model.train(budget, route, {"seed": seed, **train_options})
    compared = against_optimum(trained.weights, predicted, **_TRAINED_BLOCK_OPTIONS.get(route, {}))
    # The sampled route trains instances together: the one of lowest exact loss is judged.
    comparison = compared if isinstance(compared, Comparison) else min(
        compared, key=lambda c: cast(float, c.loss))
    return CrosscheckReport(curves=curves, budget=budget, route=route, fit=trained,
                            comparison=comparison)


def crosscheck_table(reports: Iterable[CrosscheckReport], labels: Iterable[str]) -> str:
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
            f"{block_summary(r.predicted_blocks)} | {block_summary(r.trained_blocks)}"
        )
    return "\n".join(lines)
