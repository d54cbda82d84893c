r"""Reference methods: the allocation problem handed to general-purpose optimisers.

.. math::

    \min_{C \in \mathbb{R}^N} \sum_i \ell_i(C_i)
    \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad \sum_i C_i \le d .

``"cvxpy"`` states the problem in disciplined convex form and solves it with Clarabel, an
interior-point conic solver; ``"scipy"`` gives it to :func:`scipy.optimize.minimize`. They
share no code with the exact methods, which is what makes them useful as cross-checks, and
they are what a user would write without capopt. They are slower and accurate only to
their solvers' tolerances, so :func:`capopt.solve` certifies them at ``1e-6``, not at
rounding level.

Glossary: ``C`` capacity, ``lam`` multiplier of the budget constraint, ``d`` budget, ``v``
importance, ``K`` kurtosis, ``m`` marginal benefit :math:`-\ell_i'(C_i)`.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np

from .._typing import ArrayLike
from .._validation import as_float_array, check_scalar
from ..curves import LossCurves, Shape
from .certificate import kkt_multiplier, onto_budget
from .method import Method
from .problem import Problem
from .result import Solution

__all__ = [
    "Cvxpy",
    "Scipy",
    "cvxpy_reference",
    "scipy_reference",
    "CLARABEL_SETTINGS",
    "SCIPY_FTOL",
    "SNAP_TOL",
    "TRUST_CONSTR_BARRIER",
]

#: Clarabel settings applied unless overridden. Clarabel's own defaults (1e-8, the gap
#: relative to the objective) leave ignored features up to ~1e-6 above 0 at N = 1e4, where
#: they read as polysemantic and fail stationarity by ~1e-5; at these settings they sit
#: below 1e-10. Clarabel may then stop at its reduced accuracy when progress stalls near
#: rounding level (cvxpy's status ``optimal_inaccurate``); the certificate judges the result.
CLARABEL_SETTINGS = {
    "tol_gap_abs": 1e-12,
    "tol_gap_rel": 1e-12,
    "tol_feas": 1e-12,
    "tol_ktratio": 1e-10,
}

#: Default ``ftol`` per scipy method, relative to the loss at the start. SLSQP stops when an
#: iteration changes the objective by less; 1e-15 brings its KKT residuals to ~1e-7 of the
#: largest marginal on random problems of up to 100 features (1e-12: ~1e-6). trust-constr
#: uses it as ``gtol``, ``xtol`` and ``barrier_tol``; at 1e-10 it stops with capacities
#: ~1e-5 off their bounds on near-ties.
SCIPY_FTOL = {"SLSQP": 1e-15, "trust-constr": 1e-14}

#: trust-constr's starting barrier parameter (scipy's default is 0.1).
TRUST_CONSTR_BARRIER = 1e-3

#: Capacities this close to a bound are put on it when the bound's KKT sign condition holds
#: at the solver's multiplier. Interior-point iterates approach an active bound as
#: mu / z_i, z_i = |m_i - lam| the bound's dual, so a nearly indifferent feature stays
#: ~1e-8 off its bound (SLSQP too, by its own bound tolerance), beyond the 1e-9 at which
#: the certificate counts it as at the bound, and would fail stationarity.
SNAP_TOL = 1e-6

def _flat(curves: LossCurves) -> np.ndarray:
    """Features whose curve is flat (marginal 0 at both ends; monotone curves only): C = 0."""
    n = curves.n_features
    return (curves.marginal(np.zeros(n)) == 0) & (curves.marginal(np.ones(n)) == 0)


def _polish(
    curves: LossCurves, C: np.ndarray, reported: float | None, budget: float
) -> tuple[np.ndarray, float]:
    r"""Capacities and multiplier to return from an iterative solver's answer.

    ``C`` is clipped into [0, 1]; capacities within :data:`SNAP_TOL` of a bound are put on
    it where the bound's KKT sign condition holds strictly (:math:`m_i(0) < \lambda` at 0,
    :math:`m_i(1) > \lambda` at 1) at a first multiplier that treats that band as the
    bound: the active bounds an active-set method would identify from the solver's dual.
    Strictly, because a feature whose marginal equals :math:`\lambda` may belong inside
    (with a budget below SNAP_TOL, the one feature that takes it). Features not snapped
    stay where the solver left them. An allocation over ``budget`` is brought onto it
    (:func:`~capopt.solvers.certificate.onto_budget`). The
    multiplier is then recomputed for the snapped capacities (see
    :func:`capopt.solvers.certificate.kkt_multiplier`).
    """
    C = np.clip(C, 0.0, 1.0)
    lam = kkt_multiplier(curves, C, reported=reported, atol=SNAP_TOL)
    n = curves.n_features
    to_zero = (C <= SNAP_TOL) & (curves.marginal(np.zeros(n)) < lam)
    to_one = (C >= 1.0 - SNAP_TOL) & (curves.marginal(np.ones(n)) > lam)
    C = np.where(to_zero, 0.0, np.where(to_one, 1.0, C))
    # An interior-point or SQP iterate meets the budget to its own tolerance, absolutely;
    # brought onto the budget it is feasible relative to a budget of any size.
    C = onto_budget(C, budget)
    return C, kkt_multiplier(curves, C, reported=reported)


@dataclass(frozen=True)
class Cvxpy(Method):
    """The allocation as a disciplined convex programme for cvxpy: :func:`cvxpy_reference`.

    Its fields are ``solver`` and ``solver_options``; an option ``solve(..., name=value)``
    that is not a field goes into ``solver_options`` (a setting of the cvxpy solver).
    """

    name: ClassVar[str] = "cvxpy"
    shapes: ClassVar[frozenset[Shape]] = frozenset({Shape.CONVEX, Shape.LINEAR})
    tol: ClassVar[float] = 1e-6
    summary: ClassVar[str] = "reference: disciplined convex programme solved by cvxpy with Clarabel"

    solver: str = "CLARABEL"
    solver_options: Mapping[str, Any] = field(default_factory=dict)

    def with_options(self, **options: Any) -> Cvxpy:
        solver = options.pop("solver", self.solver)
        return Cvxpy(solver=solver, solver_options={**self.solver_options, **options})

    def run(self, problem: Problem) -> Solution:
        return cvxpy_reference(
            problem.curves, problem.budget, solver=self.solver, **self.solver_options
        )


def cvxpy_reference(
    curves: LossCurves, budget: float, *, solver: str = "CLARABEL", **solver_options: Any
) -> Solution:
    r"""Solve the allocation problem as a disciplined convex programme with cvxpy.

    Parameters
    ----------
    curves : LossCurves
        A convex or linear family (:func:`capopt.solve` checks the shape) with a
        disciplined convex form (:meth:`~capopt.curves.LossCurves.cvxpy_objective`: the
        quadratic model and the linear autoencoder have one).
    budget : float
        :math:`d \ge 0`, validated by :func:`capopt.solve`.
    solver : str
        The cvxpy solver; Clarabel by default. Another conic solver that handles
        second-order cones (e.g. ``"SCS"``) works, less accurately.
    **solver_options
        Passed to ``cvxpy.Problem.solve``; for Clarabel they override
        :data:`CLARABEL_SETTINGS` (e.g. ``tol_gap_rel=1e-8`` for Clarabel's defaults).

    Returns
    -------
    Solution
        Capacities (clipped into [0, 1], where the solver leaves them up to its feasibility
        tolerance outside), the multiplier, and the solver's iteration count.

        Or :meth:`Solution.failed`, with the reason, if the solver raised or reported
        anything but an (inaccurate) optimum.

    Raises
    ------
    TypeError
        If ``curves`` is not one of the supported families, or for a setting the solver
        does not know.

    Notes
    -----
    The quadratic model's curve :math:`\ell(C) = 2(K-1)v^2(1-C)/(2+(K-3)C)` is a ratio of
    affine functions, not a disciplined convex expression; its partial fraction is one:

    .. math::

        \ell(C) = 2(K-1)v^2\Big[-\frac{1}{K-3}
            + \frac{K-1}{(K-3)\,(2 + (K-3)C)}\Big] \quad (K > 3),

    a positive multiple of ``inv_pos`` of an affine expression, which is convex. At
    :math:`K = 3` the curve is linear, :math:`2v^2(1-C)`; a feature with :math:`v \le 0` or
    :math:`K = 1` has a flat curve and is left out at :math:`C = 0`. The linear autoencoder's
    curves :math:`I(1-C)` are linear. Constants are dropped from the objective (the loss is
    recomputed from the curves); the problem is built from vectors, never per feature, so
    compile time grows linearly in N.

    Interior-point iterates approach an active bound as :math:`\mu / z_i` (:math:`z_i` the
    bound's dual), so a nearly indifferent feature can end ~1e-8 off its bound, where the
    certificate would count it as polysemantic: capacities within :data:`SNAP_TOL` of a
    bound are put on it where the bound's KKT sign condition holds at the solver's
    multiplier (the active set an active-set method would report), and the others are
    left where the solver put them.

    The multiplier is the dual value of the budget constraint, clipped at 0. When no
    feature is strictly inside (0, 1) the dual optimum is an interval and an interior-point
    solver returns a point inside it; then the smallest KKT-consistent value is returned
    instead, the package convention.

    Clarabel is a primal-dual interior-point method: some 10 to 20 iterations, each a
    sparse factorisation, O(N) here (the KKT system is a bordered block diagonal); cvxpy's
    canonicalisation adds seconds at N = 1e5.

    References
    ----------
    S. Diamond, S. Boyd, "CVXPY: a Python-embedded modeling language for convex
    optimization", JMLR 17(83), 2016. P. J. Goulart, Y. Chen, "Clarabel: an interior-point
    solver for conic programs with quadratic objectives", arXiv:2405.12762 (2024).

    Examples
    --------
    The worked case of theory §3, C = (5/6, 1/6):

    >>> from capopt.curves import quadratic
    >>> solution = cvxpy_reference(quadratic([2.0, 1.0], 7.0), 1.0)
    >>> bool(np.allclose(solution.capacities, [5 / 6, 1 / 6], atol=1e-7))
    True
    """
    import cvxpy as cp  # slow to import; only this method needs it

    n = curves.n_features
    flat = _flat(curves)
    active = np.flatnonzero(~flat)
    C = np.zeros(n)
    x = cp.Variable(n)
    objective = curves.cvxpy_objective(x)
    if objective is None:
        raise TypeError(
            f"method 'cvxpy' needs a family with a disciplined convex form "
            f"(LossCurves.cvxpy_objective), got {type(curves).__name__}, which has none; use "
            "method 'scipy' or 'auto'"
        )
    if not active.size:
        return Solution(C, 0.0)
    # The objective in units of the largest marginal, so that Clarabel's absolute tolerances
    # mean the same for every scale of importance (importances of 0.05 left interior
    # marginals 1e-5 apart, relative, at the same settings).
    unit = float(np.max(curves.marginal(np.zeros(n))[active]))
    objective = objective / unit
    budget_constraint = cp.sum(x) <= budget
    problem = cp.Problem(cp.Minimize(objective), [x >= 0, x <= 1, budget_constraint])
    options = dict(CLARABEL_SETTINGS, **solver_options) if solver == "CLARABEL" else solver_options
    with warnings.catch_warnings():
        # "Solution may be inaccurate" accompanies optimal_inaccurate; the certificate
        # measures the actual accuracy, so the warning would only be noise.
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        try:
            problem.solve(solver=solver, **options)
        except cp.error.SolverError as error:
            # No allocation came back (e.g. kurtoses within 1e-6 of 3, whose curvature is
            # below Clarabel's tolerances): nothing for a certificate to judge.
            return Solution.failed(
                n, f"cvxpy with {solver} failed: {error}; method 'waterfill' solves this family exactly"
            )
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return Solution.failed(
            n, f"cvxpy with {solver} did not solve the problem: status {problem.status!r}"
        )
    assert x.value is not None, "an optimal status comes with a solution"
    # A flat curve gains nothing from capacity: wherever the solver left it, it gets 0.
    C[active] = x.value[active]
    dual = budget_constraint.dual_value
    C, lam = _polish(curves, C, None if dual is None else unit * float(dual), budget)
    iterations = problem.solver_stats.num_iters if problem.solver_stats else None
    return Solution(C, lam, iterations=int(iterations or 0))


@dataclass(frozen=True)
class Scipy(Method):
    """The allocation handed to :func:`scipy.optimize.minimize`: :func:`scipy_reference`,
    whose options ``scipy_method``, ``x0``, ``maxiter`` and ``ftol`` are its fields."""

    name: ClassVar[str] = "scipy"
    shapes: ClassVar[frozenset[Shape]] = frozenset(
        {Shape.CONVEX, Shape.LINEAR, Shape.CONCAVE, Shape.MIXED}
    )
    tol: ClassVar[float] = 1e-6
    summary: ClassVar[str] = (
        "reference: scipy.optimize.minimize (SLSQP); only a local optimum for concave or "
        "mixed families"
    )

    scipy_method: str = "SLSQP"
    x0: Any = None
    maxiter: int = 1000
    ftol: float | None = None

    def run(self, problem: Problem) -> Solution:
        return scipy_reference(
            problem.curves,
            problem.budget,
            scipy_method=self.scipy_method,
            x0=self.x0,
            maxiter=self.maxiter,
            ftol=self.ftol,
        )


def scipy_reference(
    curves: LossCurves,
    budget: float,
    *,
    scipy_method: str = "SLSQP",
    x0: ArrayLike | None = None,
    maxiter: int = 1000,
    ftol: float | None = None,
) -> Solution:
    r"""Solve the allocation problem with :func:`scipy.optimize.minimize`: a LOCAL method.

    For convex and linear families the local optimum is the global one. For concave and
    mixed families the problem is non-convex and the result is a local optimum only (a
    KKT point, typically a vertex for concave curves) that depends on the start; use
    ``method="global"`` or ``"vertex"`` of :func:`capopt.solve` for a certified optimum.

    Parameters
    ----------
    curves : LossCurves
        Any family of convex, linear or concave curves, N of them.
    budget : float
        :math:`d \ge 0`, validated by :func:`capopt.solve`.
    scipy_method : {"SLSQP", "trust-constr"}
        The :func:`~scipy.optimize.minimize` method (named so because :func:`capopt.solve`
        takes ``method`` for itself). SLSQP, sequential quadratic programming with an
        active-set subproblem, is the default; trust-constr, an interior-point method, is
        given the exact (diagonal) Hessian but can stop short of a vertex on near-ties.
    x0 : array_like, shape (N,), optional
        Feasible start: :math:`0 \le x_{0,i} \le 1`, :math:`\sum_i x_{0,i} \le d`.
        Default: every non-flat feature at :math:`\min(1, d / N_{\text{non-flat}})`.
        Flat features are held at 0 whatever their start.
    maxiter : int
        Iteration limit passed to the method.
    ftol : float, optional
        Precision goal, relative to the loss at the start: SLSQP's ``ftol``;
        trust-constr's ``gtol``, ``xtol`` and ``barrier_tol``. Default from
        :data:`SCIPY_FTOL`.

    Returns
    -------
    Solution
        Capacities (clipped into [0, 1]), the multiplier and the iteration count; or
        :meth:`Solution.failed`, with scipy's message, if it returned non-finite capacities.

    Raises
    ------
    ValueError
        For an unknown ``scipy_method``, a non-positive ``maxiter`` or ``ftol``, or an ``x0`` of
        the wrong shape or outside the feasible set.

    Notes
    -----
    Objective :math:`\sum_i \ell_i(C_i)` with the analytic gradient
    :math:`\partial/\partial C_i = -m_i(C_i)` from :meth:`~capopt.curves.LossCurves.marginal`,
    bounds [0, 1] kept feasible at every evaluation (the quadratic model's curves have a pole
    below C = 0 when K > 3) and one linear inequality :math:`\sum_i C_i \le d`, all in units
    of the loss at the start. Flat curves (marginal 0 at both ends) are held at 0 and left
    out. The answer is polished as for the cvxpy method: capacities within
    :data:`SNAP_TOL` of a bound go onto it where the KKT sign condition allows. The
    multiplier is the constraint's Lagrange multiplier where the method reports it
    (trust-constr; SLSQP in recent scipy), otherwise the median marginal of the interior
    features; with no feature strictly inside (0, 1), the smallest KKT-consistent value.

    Accuracy is set by SLSQP's quasi-Newton line search: KKT residuals of about 1e-7 of the
    largest marginal on random problems of up to 100 features, so a certificate at the
    method's tolerance 1e-6 can fail on hard ones (its status then says so). Each SLSQP
    iteration solves a dense least-squares subproblem, O(N^3) time and O(N^2) memory:
    seconds at N = 1e3, out of reach at 1e4. A symmetric start is itself a KKT point (a
    saddle) for identical concave curves; pass an ``x0`` to leave it.

    References
    ----------
    D. Kraft, "A software package for sequential quadratic programming", DFVLR-FB 88-28
    (1988). A. R. Conn, N. I. M. Gould, P. L. Toint, "Trust Region Methods", SIAM (2000).

    Examples
    --------
    >>> from capopt.curves import quadratic
    >>> solution = scipy_reference(quadratic([2.0, 1.0], 7.0), 1.0)
    >>> bool(np.allclose(solution.capacities, [5 / 6, 1 / 6], atol=1e-6))
    True
    """
    # scipy.optimize takes a fifth of a second to import; only this method needs it.
    from scipy.optimize import Bounds, LinearConstraint, minimize
    from scipy.sparse import diags

    if scipy_method not in SCIPY_FTOL:
        raise ValueError(f"scipy_method must be one of {sorted(SCIPY_FTOL)}, got {scipy_method!r}")
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 1:
        raise ValueError(f"maxiter must be an integer >= 1, got {maxiter!r}")
    ftol = SCIPY_FTOL[scipy_method] if ftol is None else check_scalar(ftol, "ftol", minimum=0.0)
    if ftol == 0:
        raise ValueError("ftol must be > 0, got 0.0")
    n = curves.n_features
    active = np.flatnonzero(~_flat(curves))
    if x0 is None:
        start = np.full(active.size, min(1.0, budget / max(active.size, 1)))
    else:
        start = _feasible_start(x0, n, budget)[active]
    if not active.size:
        return Solution(np.zeros(n), 0.0)
    # The curves take all N capacities; flat features stay at 0 in this work array.
    work = np.zeros(n)
    work[active] = start
    # In units of the starting loss, so that ftol is relative: unscaled, SLSQP stops on
    # large losses (marginals ~1e2) up to 1e-5 outside the budget, in a failed line search.
    unit = abs(float(np.sum(curves.loss(work)[active]))) or 1.0

    def loss(x):
        work[active] = x
        return float(np.sum(curves.loss(work)[active])) / unit

    def gradient(x):
        work[active] = x
        return -curves.marginal(work)[active] / unit

    def hessian(x):
        work[active] = x
        return diags(curves.curvature(work)[active] / unit)

    if scipy_method == "SLSQP":
        options = {"maxiter": int(maxiter), "ftol": ftol}
    else:
        options = {
            "maxiter": int(maxiter),
            "gtol": ftol,
            "xtol": ftol,
            "barrier_tol": ftol,
            # scipy's 0.1 is so large a start that gtol is met (the bound multipliers absorb
            # the barrier term) with capacities still ~1e-5 off their bounds.
            "initial_barrier_parameter": TRUST_CONSTR_BARRIER,
        }
    with warnings.catch_warnings():
        # trust-constr's quasi-Newton update warns on linear curves (zero curvature), which
        # it then handles correctly.
        warnings.filterwarnings("ignore", message="delta_grad == 0.0")
        found = minimize(
            loss,
            start,
            jac=gradient,
            hess=hessian if scipy_method != "SLSQP" else None,
            method=scipy_method,
            bounds=Bounds(0.0, 1.0, keep_feasible=True),
            constraints=[LinearConstraint(np.ones((1, active.size)), -np.inf, budget)],
            options=options,
        )
    if not np.all(np.isfinite(found.x)):
        return Solution.failed(
            n, f"scipy {scipy_method} returned non-finite capacities: {found.message}",
            iterations=int(found.nit),
        )
    C = np.zeros(n)
    C[active] = found.x
    reported = getattr(found, "multipliers", None) if scipy_method == "SLSQP" else found.v[0]
    reported = None if reported is None else unit * float(np.ravel(reported)[0])
    C, lam = _polish(curves, C, reported, budget)
    return Solution(C, lam, iterations=int(found.nit))


def _feasible_start(x0: ArrayLike, n: int, budget: float) -> np.ndarray:
    """Validate a user's start point: shape (N,), inside [0, 1]^N, within the budget."""
    x0 = as_float_array(x0, "x0")
    if x0.shape != (n,):
        raise ValueError(
            f"x0 must have shape ({n},), one capacity per feature, got shape {x0.shape}"
        )
    # Rounding allowance: np.full(N, d / N) may sum to one ulp above d.
    if np.any((x0 < 0) | (x0 > 1)) or x0.sum() > budget + 1e-12 * max(1.0, budget):
        raise ValueError(
            f"x0 must be feasible (0 <= x0 <= 1 and sum(x0) <= budget = {budget:g}), got "
            f"min {x0.min():g}, max {x0.max():g}, sum {x0.sum():g}"
        )
    return x0
