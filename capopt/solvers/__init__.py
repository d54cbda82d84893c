r"""Solvers for the capacity allocation problem.

.. math::

    \min_{C \in \mathbb{R}^N} \sum_i \ell_i(C_i)
    \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad \sum_i C_i \le d .

:func:`solve` (:mod:`~capopt.solvers.solve`) validates once into a :class:`Problem`, picks a
method from the table :data:`METHODS` (:mod:`~capopt.solvers.methods`; by the family's shape
when ``method="auto"``), and certifies what the method returns. Each method is a small
immutable :class:`Method` in a module of its own (:mod:`~capopt.solvers.waterfill`,
:mod:`~capopt.solvers.vertex`, :mod:`~capopt.solvers.global_optimum`,
:mod:`~capopt.solvers.dp`, :mod:`~capopt.solvers.reference`) whose fields are its options.
"""

from .certificate import certify, evaluate, multiplier_interval
from .method import Method
from .dp import GridDP
from .global_optimum import Global
from .methods import AUTO, METHODS
from .reference import Cvxpy, Scipy
from .vertex import Vertex
from .waterfill import Waterfill
from .problem import Problem
from .result import AllocationError, AllocationResult, Certificate, Solution, Status
from .solve import solve

__all__ = [
    "solve",
    "Problem",
    "METHODS",
    "AUTO",
    "Method",
    "Waterfill",
    "Vertex",
    "Global",
    "GridDP",
    "Cvxpy",
    "Scipy",
    "AllocationResult",
    "AllocationError",
    "Certificate",
    "Status",
    "Solution",
    "certify",
    "multiplier_interval",
    "evaluate",
]
