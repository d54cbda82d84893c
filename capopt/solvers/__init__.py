r"""Solvers for the capacity allocation problem.

.. math::

    \min_{C \in \mathbb{R}^N} \sum_i \ell_i(C_i)
    \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad \sum_i C_i \le d .

:func:`solve` validates once, picks a method from the registry :data:`METHODS` (by the
family's shape when ``method="auto"``), and certifies what the method returns. Each method
lives in its own module and maps ``(curves, budget, **options)`` to a :class:`Solution`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .._validation import check_scalar
from ..curves import LossCurves, Shape
from ..regimes import classify
from .certificate import certify, dual_bound
from .result import AllocationError, AllocationResult, Certificate, Solution, Status

__all__ = [
    "solve",
    "METHODS",
    "Method",
    "AllocationResult",
    "AllocationError",
    "Certificate",
    "Status",
    "Solution",
    "certify",
    "dual_bound",
]


@dataclass(frozen=True)
class Method:
    """A registered solution method.

    Attributes
    ----------
    run : callable
        ``run(curves, budget, **options) -> Solution``.
    shapes : frozenset of Shape
        Family shapes the method is exact (or, for references, valid) for.
    tol : float
        Default certificate tolerance: exact methods are judged at rounding level,
        iterative references at their solvers' accuracy.
    summary : str
        One line for ``capopt solve --help`` and error messages.
    """

    run: Callable[..., Solution]
    shapes: frozenset
    tol: float
    summary: str


#: Registry of methods by name, filled by the method modules at import.
METHODS: dict[str, Method] = {}

#: The method ``method="auto"`` picks for each family shape.
AUTO: dict[Shape, str] = {}


def register(name: str, *, shapes, tol: float, summary: str, auto_for=()):
    """Decorator that adds a method to :data:`METHODS` (and to :data:`AUTO` for ``auto_for``)."""

    def decorate(run):
        METHODS[name] = Method(run=run, shapes=frozenset(shapes), tol=tol, summary=summary)
        for shape in auto_for:
            AUTO[shape] = name
        return run

    return decorate


def solve(
    curves: LossCurves,
    budget: float,
    *,
    method: str = "auto",
    tol: float | None = None,
    throw: bool = True,
    **options,
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
    method : str
        A key of :data:`METHODS`, or ``"auto"``: exact water-filling for convex and linear
        families, the vertex solution for concave ones, the certified global method for
        mixed ones, the grid dynamic programme for irregular curves.
    tol : float, optional
        Largest accepted scaled KKT residual or relative gap; defaults to the method's.
    throw : bool
        Raise :class:`AllocationError` when the result is not certified optimal (default).
        With ``False`` the result is returned with its status for inspection.
    **options
        Passed to the method (see each method's documentation).

    Returns
    -------
    AllocationResult

    Raises
    ------
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.LossCurves`.
    ValueError
        For a negative or non-finite budget, an unknown method, or a method that does not
        apply to the family's shape.
    AllocationError
        If ``throw`` and the method failed or its certificate exceeds ``tol``.

    Notes
    -----
    KKT conditions with multiplier :math:`\lambda \ge 0`: :math:`-\ell_i'(C_i) = \lambda`
    inside (0, 1), :math:`\ge \lambda` at 1, :math:`\le \lambda` at 0, and
    :math:`\lambda(d - \sum_i C_i) = 0`. The certificate reports their residuals and a
    lower bound (the Lagrangian dual, or the method's own bound for non-convex problems).

    Examples
    --------
    >>> import capopt
    >>> result = capopt.solve(capopt.quadratic([2.0, 1.0], 7.0), 1)
    >>> result.capacities.round(12)
    array([0.83333333, 0.16666667])
    >>> round(result.loss, 12), result.status.name
    (5.25, 'OPTIMAL')
    """
    if not isinstance(curves, LossCurves):
        raise TypeError(
            "curves must be a LossCurves family (e.g. capopt.quadratic(...)), got "
            f"{type(curves).__name__}"
        )
    d = check_scalar(budget, "budget", minimum=0.0)
    name = AUTO.get(curves.shape) if method == "auto" else method
    if name not in METHODS:
        raise ValueError(f"method must be 'auto' or one of {sorted(METHODS)}, got {method!r}")
    spec = METHODS[name]
    if curves.shape not in spec.shapes:
        fitting = sorted(k for k, m in METHODS.items() if curves.shape in m.shapes)
        raise ValueError(
            f"method {name!r} needs a {'/'.join(sorted(s.value for s in spec.shapes))} family, "
            f"got a {curves.shape.value} one; use one of {fitting} or 'auto'"
        )
    tol = spec.tol if tol is None else check_scalar(tol, "tol", minimum=0.0)

    solution = spec.run(curves, d, **options)
    C = np.array(solution.capacities, dtype=np.float64, copy=True)
    C.setflags(write=False)
    losses = curves.loss(C)
    losses.setflags(write=False)
    loss = float(np.sum(losses))
    certificate = certify(
        curves,
        C,
        solution.multiplier,
        d,
        lower_bound=solution.lower_bound,
        lower_bound_how=solution.lower_bound_how,
        losses=losses,
    )
    ok = np.all(np.isfinite(C)) and certificate.worst(d) <= tol
    result = AllocationResult(
        capacities=C,
        loss=loss,
        losses=losses,
        multiplier=float(solution.multiplier),
        regimes=classify(C),
        status=Status.OPTIMAL if ok else Status.INACCURATE,
        method=name,
        certificate=certificate,
        budget=d,
        iterations=solution.iterations,
    )
    if throw and not ok:
        raise AllocationError(
            f"{name} did not certify its allocation: worst scaled residual/gap "
            f"{certificate.worst(d):.3g} > tol {tol:.3g} ({certificate}); pass "
            "throw=False to inspect the result",
            result,
        )
    return result
from . import waterfill  # noqa: E402,F401  (registers its methods)
from . import nonconvex  # noqa: E402,F401  (registers its methods)
from . import vertex  # noqa: E402,F401  (registers its methods)
from . import reference  # noqa: E402,F401  (registers its methods)
