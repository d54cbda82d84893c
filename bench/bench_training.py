"""Part ``training``: capopt's solve against reaching the same allocation by gradient training.

Run with the suite (``python -m bench``) or alone (``python -m bench --only training``).

For each problem (quadratic model, importances v_i = r^i, an integer d) the allocation is
solved by :func:`capopt.solve` (median time, :func:`bench._common.timed`) and reached by
training the model itself, as a user would today:

* **L-BFGS, exact loss**: :func:`capopt.training.train_quadratic_exact` (multi-start
  L-BFGS on the closed-form expected loss, its default 8 starts and ``gtol``);
* **Adam, minibatches**: :func:`capopt.training.train_quadratic_sampled` (fresh inputs of
  the right kurtosis every step, batch 1024, lr 1e-2 with a cosine schedule, as the
  cross-check tables train it).

An observer wraps the function each trainer hands to its optimiser and stops the training
as soon as the trained capacities are within :data:`TOL` of the solver's (max |dC|), i.e.
what a user who already knew the answer would do: the time-to-answer is a lower bound on
training's cost. The observer's own work (computing capacities) is timed and subtracted.
A route that never gets there is reported with the best max |dC| it reached, when it
reached it, and its whole training time; its ratio is then a lower bound (">").
"Converged" is the plain L-BFGS call run to its own stopping rule, not stopped early. The
L-BFGS times are medians over :data:`SEEDS` seeds; the Adam run is one seeded run.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from unittest import mock

import numpy as np

from capopt.capacity import capacity
from capopt.curves import quadratic
from capopt.solvers import solve
import capopt.training.quadratic as trainers
from capopt.training.quadratic import QUADRATIC_SAMPLED_OPTIONS

from ._common import markdown_table, progress, ratio, seconds, timed

#: Target agreement of the trained capacities with the solver's.
TOL = 1e-3
SEEDS = (0, 1, 2)
#: Adam schedule (the cross-check tables' settings: batch 1024, lr 1e-2 cosine) and how
#: often the observer looks.
ADAM = QUADRATIC_SAMPLED_OPTIONS.with_overrides(steps=20_000)
ADAM_QUICK_STEPS = 1000
ADAM_CHECK_EVERY = 50


@dataclass(frozen=True)
class Problem:
    label: str
    decay: float  # v_i = decay ** i
    kurtosis: float | tuple
    n: int
    d: int

    def arrays(self):
        v = self.decay ** np.arange(self.n)
        K = self.kurtosis
        if isinstance(K, tuple):
            K = np.where(np.arange(self.n) % 2 == 0, K[0], K[1])
        return v, K


PROBLEMS = (
    Problem("v=0.9^i, K=10", 0.9, 10.0, 20, 5),
    Problem("v=0.98^i, K=10", 0.98, 10.0, 100, 20),
    Problem("v=0.9^i, K=2/7 alternating", 0.9, (2.0, 7.0), 20, 5),
)


class _Reached(Exception):
    """Raised by the observer to stop a trainer that reached the target."""


class _Observer:
    """Tracks max |C(W) - target| every ``every`` calls; raises _Reached within ``tol``."""

    def __init__(self, target: np.ndarray, tol: float, every: int):
        self.target, self.tol, self.every = target, tol, every
        self.calls = 0
        self.best, self.best_at, self.reached_at = math.inf, math.nan, None
        self.check_seconds = 0.0
        self.t0 = time.perf_counter()

    def elapsed(self, now: float) -> float:
        """Training time so far: wall time less the observer's own."""
        return now - self.t0 - self.check_seconds

    def look(self, W: np.ndarray) -> None:
        self.calls += 1
        if (self.calls - 1) % self.every:
            return
        now = time.perf_counter()
        # Best instance of a batch (R, d, N); a single embedding (d, N) is one instance.
        dC = float(np.min(np.max(np.abs(capacity(W) - self.target), axis=-1)))
        at = self.elapsed(now)
        self.check_seconds += time.perf_counter() - now
        if dC < self.best:
            self.best, self.best_at = dC, at
        if dC <= self.tol:
            self.reached_at = at
            raise _Reached


class _ObservedModel:
    """A batched model whose every loss evaluation is shown to an observer first."""

    def __init__(self, model, observer: _Observer):
        self._model, self._observer = model, observer

    def __getattr__(self, name):
        return getattr(self._model, name)

    def loss_and_grad(self, params, x):
        self._observer.look(params["W"])
        return self._model.loss_and_grad(params, x)


def _observed_run(train, patch_target, wrap, observer: _Observer) -> dict:
    """Run ``train()`` with ``patch_target`` (a trainer's optimiser) wrapped by ``wrap``."""
    real = getattr(trainers, patch_target)
    with mock.patch.object(trainers, patch_target, wrap(real)):
        observer.t0 = time.perf_counter()
        try:
            train()
        except _Reached:
            pass
        total = observer.elapsed(time.perf_counter())
    return dict(reached=observer.reached_at is not None, time_to_answer=observer.reached_at,
                best_dC=observer.best, best_at=observer.best_at, total=total)


def lbfgs_to_tolerance(curves, budget, target, seed) -> dict:
    """train_quadratic_exact, stopped at the first evaluation within TOL of ``target``."""
    observer = _Observer(target, TOL, every=1)

    def wrap(fit_exact):
        def observed(loss_and_grad, shape, **options):
            def watched(W):
                observer.look(W)
                return loss_and_grad(W)
            return fit_exact(watched, shape, **options)
        return observed

    return _observed_run(lambda: trainers.train_quadratic_exact(curves, budget, seed=seed),
                         "fit_exact", wrap, observer)


def adam_to_tolerance(curves, budget, target, steps, seed=0) -> dict:
    """train_quadratic_sampled (ADAM settings), stopped once within TOL of ``target``."""
    observer = _Observer(target, TOL, every=ADAM_CHECK_EVERY)

    def wrap(fit):
        return lambda model, *args, **kwargs: fit(_ObservedModel(model, observer), *args, **kwargs)

    out = _observed_run(lambda: trainers.train_quadratic_sampled(curves, budget, options=ADAM,
                                                                 steps=steps, seed=seed),
                        "fit", wrap, observer)
    out["steps"] = steps
    return out


def _median_of(runs: list[dict], key: str):
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def run(quick: bool = False) -> dict:
    problems = PROBLEMS[:1] if quick else PROBLEMS
    seeds = SEEDS[:1] if quick else SEEDS
    out = []
    for p in problems:
        v, K = p.arrays()
        curves = quadratic(v, K)
        timing, result = timed(lambda: solve(curves, p.d))
        target = result.capacities

        lbfgs = [lbfgs_to_tolerance(curves, p.d, target, s) for s in seeds]
        converged = []
        for s in seeds:
            start = time.perf_counter()
            fit = trainers.train_quadratic_exact(curves, p.d, seed=s)
            converged.append(dict(seconds=time.perf_counter() - start,
                                  dC=float(np.max(np.abs(fit.capacities - target)))))
        adam = adam_to_tolerance(curves, p.d, target, ADAM_QUICK_STEPS if quick else ADAM.steps)
        out.append(dict(
            problem=p.label, n=p.n, d=p.d, method=result.method, solve=timing.as_dict(),
            lbfgs=dict(runs=lbfgs, reached=sum(r["reached"] for r in lbfgs),
                       time_to_answer=_median_of(lbfgs, "time_to_answer"),
                       best_dC=min(r["best_dC"] for r in lbfgs),
                       total=_median_of(lbfgs, "total")),
            converged=dict(runs=converged,
                           seconds=statistics.median(r["seconds"] for r in converged),
                           dC=max(r["dC"] for r in converged)),
            adam=adam,
        ))
        progress(f"  training: {p.label} N={p.n} d={p.d} done")
    adam = {name: getattr(ADAM, name) for name in ("steps", "batch_size", "lr", "schedule")}
    return {"problems": out, "tol": TOL, "adam": adam, "seeds": list(seeds)}


def report(results: dict) -> str:
    table = []
    for r in results["problems"]:
        solve_s = r["solve"]["seconds"]
        table.append([r["problem"], str(r["n"]), str(r["d"]), f"capopt.solve ({r['method']})",
                      "0 (exact)", seconds(solve_s), "1x"])
        lb = r["lbfgs"]
        n_seeds = len(lb["runs"])
        if lb["time_to_answer"] is not None:
            table.append(["", "", "", f"L-BFGS exact loss, stopped at {TOL:g} "
                          f"({lb['reached']}/{n_seeds} seeds reached)",
                          f"<= {TOL:g}", seconds(lb["time_to_answer"]),
                          ratio(lb["time_to_answer"] / solve_s)])
        else:
            table.append(["", "", "", "L-BFGS exact loss (never within tolerance)",
                          f"{lb['best_dC']:.1e}", seconds(lb["total"]),
                          "> " + ratio(lb["total"] / solve_s)])
        cv = r["converged"]
        table.append(["", "", "", "L-BFGS exact loss, to convergence (8 starts)",
                      f"{cv['dC']:.1e}", seconds(cv["seconds"]), ratio(cv["seconds"] / solve_s)])
        a = r["adam"]
        label = f"Adam minibatch, {a['steps']} steps"
        if a["reached"]:
            table.append(["", "", "", label + f", stopped at {TOL:g}", f"<= {TOL:g}",
                          seconds(a["time_to_answer"]), ratio(a["time_to_answer"] / solve_s)])
        else:
            table.append(["", "", "", label + f" (best at {seconds(a['best_at'])}; never "
                          f"within {TOL:g})", f"{a['best_dC']:.1e}", seconds(a["total"]),
                          "> " + ratio(a["total"] / solve_s)])
    return markdown_table(["problem", "N", "d", "route", "max abs dC", "time to answer",
                           "x solve"], table, "lrrllrr")
