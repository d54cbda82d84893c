r"""The certified global method for non-convex allocation problems, and for every table.

.. math::

    \min_{C} \sum_i \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\ \sum_i C_i \le d .

``global`` dispatches on the family: the quadratic model's mixed families to the exact
structured method (:mod:`capopt.solvers.structured`), tables to branch and bound on their
knots (:mod:`capopt.solvers.tables`), and curves given as functions to the branch and bound
over the concave curves' boxes (:mod:`capopt.solvers.branch_and_bound`); every answer
carries a proven lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .._validation import check_count, check_flag, check_scalar
from ..curves import QuadraticCurves, Shape
from ..user_curves import TabulatedCurves
from .branch_and_bound import branch_and_bound
from .method import Method
from .problem import Problem
from .result import Solution
from .structured import solve_mixed
from .tables import solve_tables

__all__ = ["Global", "DEFAULT_MAX_NODES", "DEFAULT_GAP_RTOL"]

#: Node budget of the branches and bounds (tables, curves given as functions); the budget
#: (seconds of work) is for the hard cases, such as many identical concave curves sharing
#: a fractional budget.
DEFAULT_MAX_NODES = 20_000

#: The branch and bound stops when incumbent - lower bound <= DEFAULT_GAP_RTOL * max(1,
#: |incumbent|): a decade below the method's certificate tolerance (1e-8), so that the
#: certificate is never the first to notice a gap.
DEFAULT_GAP_RTOL = 1e-9


@dataclass(frozen=True)
class Global(Method):
    r"""Certified global optimum for families mixing convex and concave curves, and tables.

    .. math::

        \min_C \sum_i \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\ \sum_i C_i \le d,

    where some :math:`\ell_i` are convex (diminishing returns), some linear and some concave
    (increasing returns) -- e.g. the quadratic model with dense features (K < 3) and sparse
    ones (K > 3) -- or tabulated curves of any shape. Irregular curves given as functions
    need :class:`capopt.solvers.dp.GridDP`.

    Parameters
    ----------
    max_nodes : int
        Relaxations solved before a branch and bound gives up (:data:`DEFAULT_MAX_NODES`);
        the result then carries the gap reached. The structured method needs no search.
    gap_rtol : float
        A branch and bound stops when incumbent - lower bound <= ``gap_rtol`` times the
        loss scale (:data:`DEFAULT_GAP_RTOL`).
    polish : bool
        For curves given as functions: refine the concave capacities to a KKT point after
        the search (see Notes).

    Raises
    ------
    ValueError
        From :meth:`run`, for irregular curves given as functions (no exact envelope).

    Notes
    -----
    *Quadratic families* (:mod:`capopt.solvers.structured`): exact and polynomial. At an
    optimum at most one concave feature is fractional, the others at 1 are those of the
    largest gains, and the chord relaxation's concave total pins the candidates to one unit
    interval; chord bounds and dominance leave a few candidate fractional features, each
    solved exactly at its stationary levels. Ties between identical curves need no search.

    *Tables* (:mod:`capopt.solvers.tables`): branch and bound over intervals of knots, each
    curve replaced by the lower convex hull of its knots in its interval (its exact convex
    envelope); finite, exact to ``gap_rtol``.

    *Curves given as functions*: branch and bound over the boxes :math:`[lo_j, hi_j]` of the
    concave curves (Falk and Soland 1969). At a node each concave :math:`\ell_j` is replaced
    by its chord over its box, its convex envelope there; the relaxation is a separable
    convex problem, solved exactly by water-filling, whose value bounds the node's loss from
    below, and whose solution is feasible, so the true loss there is an upper bound. At the
    relaxation's optimum at most one chord is fractional (ties are filled in index order); a
    node without one is solved exactly, one with a fractional chord j at :math:`c` is split
    into :math:`[lo_j, c]` and :math:`[c, hi_j]`. The reported lower bound is the smallest
    bound over all leaves. The polish then moves the one fractional concave curve to the
    root of :math:`\lambda_V(R - c) = m_j(c)` and any concave curve whose sign condition
    fails, accepting only moves that do not raise the loss, in at most
    :data:`POLISH_PASSES` moves. The number of nodes is exponential in the worst case, as
    for any concave minimisation (k identical concave curves sharing a fractional budget
    need about :math:`\binom{k}{k/2}`); ``max_nodes`` then ends the search with the gap it
    reached (status INACCURATE through :func:`capopt.solve`).

    References
    ----------
    J. E. Falk and R. M. Soland, "An algorithm for separable nonconvex programming
    problems", Management Science 15(9), 550-569 (1969).
    R. Horst and H. Tuy, *Global Optimization: Deterministic Approaches*, ch. 7 (1996).

    Examples
    --------
    >>> import capopt
    >>> curves = capopt.quadratic([3.0, 1.0, 1.0], [1.8, 12.0, 12.0])   # one dense feature
    >>> result = capopt.solve(curves, 1.5)          # mixed family: "global" is the default
    >>> result.method, result.status.name
    ('global', 'OPTIMAL')
    >>> result.capacities.round(12)                 # dense: monosemantic; sparse: share
    array([1.  , 0.25, 0.25])
    """

    name: ClassVar[str] = "global"
    shapes: ClassVar[frozenset[Shape]] = frozenset(Shape)
    tol: ClassVar[float] = 1e-8
    summary: ClassVar[str] = (
        "certified global optimum of mixed families and tables: the structure of the "
        "optimum for the quadratic model, branch and bound otherwise"
    )

    max_nodes: int = DEFAULT_MAX_NODES
    gap_rtol: float = DEFAULT_GAP_RTOL
    polish: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_nodes", check_count(self.max_nodes, "max_nodes"))
        object.__setattr__(self, "gap_rtol", check_scalar(self.gap_rtol, "gap_rtol", minimum=0.0))
        object.__setattr__(self, "polish", check_flag(self.polish, "polish"))

    def run(self, problem: Problem) -> Solution:
        curves, budget = problem.curves, problem.budget
        if isinstance(curves, QuadraticCurves):
            return solve_mixed(curves, budget)
        if isinstance(curves, TabulatedCurves):
            return solve_tables(curves, budget, max_nodes=self.max_nodes, gap_rtol=self.gap_rtol)
        if curves.shape is Shape.IRREGULAR:
            raise ValueError(
                "method 'global' needs convex, linear and concave curves, or tables; irregular "
                "curves given as functions have no exact envelope: use method='dp' (or "
                "tabulate them with from_table)"
            )
        return branch_and_bound(
            curves, budget, max_nodes=self.max_nodes, gap_rtol=self.gap_rtol, polish=self.polish
        )
