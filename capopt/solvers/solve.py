r"""Solving the capacity allocation problem: :func:`solve`.

.. math::

    \min_{C \in \mathbb{R}^N} \sum_i \ell_i(C_i)
    \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad \sum_i C_i \le d .

:func:`solve` validates once into a :class:`~capopt.solvers.problem.Problem`, picks a method
from the table :data:`~capopt.solvers.methods.METHODS` (by the family's shape when
``method="auto"``), runs it in units where the family's losses are of order 1, tier by tier
where its scales cannot share one unit (:mod:`capopt.solvers.units`), and certifies what
it returns (:mod:`capopt.solvers.certificate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .._validation import check_scalar
from ..curves import LossCurves
from . import units
from .certificate import Evaluation, budget_violation, evaluate, onto_budget
from .method import Method
from .methods import METHODS, auto_method
from .problem import Problem
from .result import AllocationError, AllocationResult, Certificate, Solution, Status

__all__ = ["solve"]


def solve(
    curves: LossCurves,
    budget: float,
    *,
    method: str | Method = "auto",
    tol: float | None = None,
    throw: bool = True,
    **options: Any,
) -> AllocationResult:
    r"""Solve the capacity allocation problem and certify the answer.

    .. math::

        \min_C \sum_i \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\ \sum_i C_i \le d .

    Parameters
    ----------
    curves : LossCurves
        The per-feature loss curves, e.g. :func:`capopt.quadratic`.
    budget : float
        :math:`d \ge 0`, the embedding dimension (real values allowed, e.g. for
        sensitivities).
    method : str or Method
        A key of :data:`METHODS`, or ``"auto"``: exact water-filling for convex and linear
        families, the vertex solution for concave ones, the certified global method for
        mixed ones and for every table (exact on its knots, whatever its shapes), the grid
        dynamic programme for irregular curves given as functions. Or a configured method
        instance, e.g. ``Global(max_nodes=100)`` (its fields are its options).
    tol : float, optional
        Largest accepted scaled KKT residual or relative gap; defaults to the method's.
    throw : bool
        Raise :class:`AllocationError` unless the result is certified optimal (default).
        With ``False`` the result is returned with its status for inspection.
    **options
        Passed to the method (see each method's documentation); they override the fields
        of a method instance.

    Returns
    -------
    AllocationResult

    Raises
    ------
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.LossCurves`, ``method`` neither a name
        nor a :class:`~capopt.solvers.method.Method`, or for an option the method does not
        have.
    ValueError
        For a negative or non-finite budget, an unknown method, a method that does not
        apply to the family's shape, or a bad option value.
    AllocationError
        If ``throw`` and the status is not OPTIMAL: the method produced no allocation
        (FAILED, with its reason), the certificate exceeds ``tol`` (INACCURATE) or its proof
        rests on an assumption (UNPROVEN). With ``throw=False`` the result carries the
        status (and, FAILED, NaN capacities and the ``reason``).

    Notes
    -----
    KKT conditions with multiplier :math:`\lambda \ge 0`: :math:`-\ell_i'(C_i) = \lambda`
    inside (0, 1), :math:`\ge \lambda` at 1, :math:`\le \lambda` at 0, and
    :math:`\lambda(d - \sum_i C_i) = 0`. The certificate reports their residuals and a
    lower bound (the Lagrangian dual, or the method's own bound for non-convex problems).

    The family is solved and certified in units where its losses are of order 1 (a power
    of two, exact), and in tiers of features whose scales float64 cannot hold together
    (:mod:`capopt.solvers.units`), so capacities are exact for importances anywhere in
    the float64 range; the loss is reported in the user's units, ``inf`` only where it
    overflows (``scaled_loss`` and ``loss_exponent`` then give it).

    Examples
    --------
    >>> import capopt
    >>> result = capopt.solve(capopt.quadratic([2.0, 1.0], 7.0), 1)
    >>> result.capacities.round(12)
    array([0.83333333, 0.16666667])
    >>> round(result.loss, 12), result.status.name
    (5.25, 'OPTIMAL')

    A configured method, as an instance:

    >>> from capopt.solvers import Global
    >>> capopt.solve(capopt.quadratic([3.0, 1.0], [1.8, 12.0]), 1.5, method=Global(max_nodes=10)).method
    'global'
    """
    problem = Problem(curves, budget)
    d = problem.budget
    if isinstance(method, Method):
        name, chosen = method.name, method
    elif not isinstance(method, str):
        raise TypeError(f"method must be a name ('auto', {sorted(METHODS)}) or a Method instance "
                        f"(capopt.solvers.Global(...), ...), got {type(method).__name__}")
    else:
        name = auto_method(curves) if method == "auto" else method
        if name not in METHODS:
            raise ValueError(f"method must be 'auto' or one of {sorted(METHODS)}, got {method!r}")
        chosen = METHODS[name]
    if curves.shape not in chosen.shapes:
        fitting = sorted(k for k, m in METHODS.items() if curves.shape in m.shapes)
        raise ValueError(
            f"method {name!r} needs a {'/'.join(sorted(s.value for s in chosen.shapes))} "
            f"family, got a {curves.shape.value} one; use one of {fitting} or 'auto'"
        )
    chosen = chosen.with_options(**options)
    tol = chosen.tol if tol is None else check_scalar(tol, "tol", minimum=0.0)

    tier_list, notes = units.tiers(curves)
    if len(tier_list) == 1:
        tier = tier_list[0]
        solution, evaluation = _solve_tier(chosen, replace(problem, curves=tier.curves))
        if solution.failure:
            return _failed(problem, name, solution, throw)
        assert evaluation is not None  # a solution that did not fail is evaluated
        C = np.asarray(solution.capacities, dtype=np.float64)
        e = tier.exponent
        scaled_loss = evaluation.loss
        loss = _user_loss(curves, C, scaled_loss, e, tier.constant, tier.curves is not curves)
        scaled_multiplier, multiplier_exponent = float(solution.multiplier), e
        certificate = _in_user_units(evaluation.certificate, e, tier.constant, notes)
        codes, iterations = evaluation.regime_codes, solution.iterations
        alternatives = solution.alternatives
    else:
        solved = _solve_tiers(chosen, tier_list, problem, notes)
        if isinstance(solved, Solution):
            return _failed(problem, name, solved, throw)
        C, scaled_loss, e, (scaled_multiplier, multiplier_exponent), certificate, codes, iterations, alternatives = solved
        constant = sum(tier.constant for tier in tier_list)
        loss = _user_loss(curves, C, scaled_loss, e, constant, True)
    multiplier = _times_power_of_two(scaled_multiplier, multiplier_exponent)
    C.setflags(write=False)
    for alternative in alternatives:
        alternative.setflags(write=False)
    worst = certificate.worst
    # A capacity that is not finite makes the feasibility residual infinite.
    ok = worst <= tol
    status = Status.INACCURATE if not ok else Status.UNPROVEN if certificate.assumptions else Status.OPTIMAL
    result = AllocationResult(
        capacities=C,
        loss=loss,
        multiplier=multiplier,
        status=status,
        method=name,
        certificate=certificate,
        budget=d,
        curves=curves,
        iterations=iterations,
        scaled_loss=scaled_loss,
        loss_exponent=e,
        scaled_multiplier=scaled_multiplier,
        multiplier_exponent=multiplier_exponent,
        regime_codes=codes,
        alternatives=alternatives,
    )
    if throw and status is not Status.OPTIMAL:
        if status is Status.UNPROVEN:
            why = "its proof assumes: " + "; ".join(certificate.assumptions)
        else:
            why = f"worst scaled residual/gap {worst:.3g} > tol {tol:.3g} ({certificate})"
        raise AllocationError(
            f"{name} did not certify its allocation: {why}; pass throw=False to inspect the result",
            result,
        )
    return result


def _failed(problem: Problem, name: str, solution: Solution, throw: bool) -> AllocationResult:
    """The result of a method that produced no allocation: status FAILED, NaN capacities,
    every residual infinite, and the method's reason; raised as an error with ``throw``."""
    n = problem.n_features
    C = np.full(n, np.nan)
    C.setflags(write=False)
    codes = np.full(n, -1, dtype=np.int8)
    codes.setflags(write=False)
    inf = math.inf
    certificate = Certificate(
        stationarity=inf, bound_signs=inf, complementarity=inf, feasibility=inf, gap=inf,
        lower_bound=-inf, marginal_scale=math.nan, loss_scale=math.nan,
        how=f"no allocation: {solution.failure}",
    )
    result = AllocationResult(
        capacities=C, loss=math.nan, multiplier=math.nan, status=Status.FAILED, method=name,
        certificate=certificate, budget=problem.budget, curves=problem.curves,
        iterations=solution.iterations, scaled_loss=math.nan, scaled_multiplier=math.nan,
        regime_codes=codes, reason=solution.failure,
    )
    if throw:
        raise AllocationError(
            f"{name} produced no allocation: {solution.failure}; pass throw=False to inspect "
            "the result",
            result,
        )
    return result


def _solve_tier(method: Method, problem: Problem) -> tuple[Solution, Evaluation | None]:
    """Run the method on one tier's problem and evaluate its answer, brought onto the budget
    where rounding left it over (see :func:`~capopt.solvers.certificate.onto_budget`), in
    the tier's units. A failed solution is returned with no evaluation."""
    solution = method.run(problem)
    if solution.failure:
        return solution, None
    curves, d = problem.curves, problem.budget
    fitted = onto_budget(solution.capacities, d)
    if fitted is not solution.capacities:
        solution = replace(solution, capacities=fitted)
    if solution.alternatives:
        solution = replace(solution, alternatives=tuple(onto_budget(np.asarray(a, dtype=np.float64), d)
                                                        for a in solution.alternatives))
    evaluation = evaluate(
        curves,
        solution.capacities,
        solution.multiplier,
        d,
        lower_bound=solution.lower_bound,
        lower_bound_how=solution.lower_bound_how,
        assumptions=solution.assumptions,
    )
    return solution, evaluation


def _user_loss(
    curves: LossCurves, C: np.ndarray, scaled: float, e: int, constant: float, rescaled: bool
) -> float:
    """The loss in the user's units: from the scaled one, or, for a rescaled family (whose
    smallest terms the scaled units may have rounded away), the curves' own sum where it
    is finite, or +inf where that sum overflows (every loss is non-negative up to the
    constant, so an infinite sum of finite terms is a true overflow)."""
    loss = _times_power_of_two(scaled, e) + constant
    if rescaled:
        with np.errstate(over="ignore", invalid="ignore"):
            direct = float(curves.total_loss(C))
        if math.isfinite(direct) or direct == math.inf:
            return direct
    return loss


def _times_power_of_two(x: float, e: int) -> float:
    """``x * 2**e``, exact where representable, +-inf where it overflows float64."""
    with np.errstate(over="ignore"):
        return float(np.ldexp(x, e))


def _in_user_units(
    certificate: Certificate, e: int, constant: float, notes: tuple[str, ...]
) -> Certificate:
    """The certificate with its dimensioned fields in the user's units (scaled by 2**e, the
    constant loss added to the bound) and the notes added."""
    return replace(
        certificate,
        lower_bound=_times_power_of_two(certificate.lower_bound, e) + constant,
        marginal_scale=_times_power_of_two(certificate.marginal_scale, e),
        loss_scale=_times_power_of_two(certificate.loss_scale, e),
        assumptions=certificate.assumptions + notes,
    )


def _solve_tiers(
    method: Method, tier_list: Sequence[units.Tier], problem: Problem, notes: tuple[str, ...]
) -> Solution | tuple[np.ndarray, float, int, tuple[float, int], Certificate, np.ndarray, int,
                      tuple[np.ndarray, ...]]:
    """Solve tiers of separated scale in turn (see :mod:`capopt.solvers.units`).

    A tier gets the budget its predecessors left only when they are full: every useful
    feature at 1 with budget to spare. The combined certificate is the worst tier's; its
    multiplier is the largest in the user's units (that of the tier where the budget binds,
    by the separation), kept as its tier's scaled value and exponent. A tier's tied
    alternatives come back with the other tiers' capacities. The failed solution of a tier,
    if any, is returned instead.
    """
    n, d = problem.n_features, problem.budget
    C = np.zeros(n)
    codes = np.empty(n, np.int8)
    remaining = d
    iterations = 0
    multiplier = (0.0, 0)
    certificates = []
    tied: list[tuple[np.ndarray, np.ndarray]] = []
    top = tier_list[0].exponent
    scaled_loss = 0.0
    for tier in tier_list:
        solution, evaluation = _solve_tier(method, Problem(tier.curves, remaining))
        if solution.failure:
            return solution
        assert evaluation is not None  # a solution that did not fail is evaluated
        assert tier.features is not None  # several tiers: each names its features
        C[tier.features] = solution.capacities
        tied += [(tier.features, alternative) for alternative in solution.alternatives]
        codes[tier.features] = evaluation.regime_codes
        iterations += solution.iterations
        scaled_loss += _times_power_of_two(evaluation.loss, tier.exponent - top)
        lam = float(solution.multiplier)
        if lam > 0 and (multiplier[0] == 0 or math.log2(lam) + tier.exponent > math.log2(multiplier[0]) + multiplier[1]):
            multiplier = (lam, tier.exponent)
        certificates.append(
            _in_user_units(evaluation.certificate, tier.exponent, tier.constant, ())
        )
        used = float(np.sum(solution.capacities))
        useful = int(np.count_nonzero(tier.curves.loss_range() > 0))
        full = solution.multiplier == 0 and used >= useful
        remaining = max(remaining - used, 0.0) if full else 0.0
    combined = Certificate(
        stationarity=max(c.stationarity for c in certificates),
        bound_signs=max(c.bound_signs for c in certificates),
        complementarity=max(c.complementarity for c in certificates),
        feasibility=max(
            max(c.feasibility for c in certificates),
            budget_violation(float(np.sum(C)), d),
        ),
        gap=max(c.gap for c in certificates),
        lower_bound=sum(c.lower_bound for c in certificates),
        marginal_scale=max(c.marginal_scale for c in certificates),
        loss_scale=sum(c.loss_scale for c in certificates),
        how=f"{len(tier_list)} tiers of separated scale, each: {certificates[0].how}",
        assumptions=tuple(dict.fromkeys(a for c in certificates for a in c.assumptions)) + notes,
    )
    alternatives = []
    for features, values in tied:
        alternative = C.copy()
        alternative[features] = values
        alternatives.append(alternative)
    return C, scaled_loss, top, multiplier, combined, codes, iterations, tuple(alternatives)
