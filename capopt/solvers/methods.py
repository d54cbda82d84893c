"""The table of solution methods :func:`capopt.solve` reads, and the one ``"auto"`` picks.

Each method is an immutable :class:`~capopt.solvers.method.Method` in a module of its own;
adding one means writing that module and listing an instance here.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from ..curves import LossCurves, Shape
from .dp import GridDP
from .global_optimum import Global
from .method import Method
from .reference import Cvxpy, Scipy
from .vertex import Vertex
from .waterfill import Waterfill

__all__ = ["METHODS", "AUTO", "auto_method"]

#: Every method by name, with its default options.
METHODS: Mapping[str, Method] = MappingProxyType(
    {method.name: method for method in (Waterfill(), Vertex(), Global(), GridDP(), Cvxpy(), Scipy())}
)

#: The method ``method="auto"`` picks for each family shape (tables aside: see
#: :func:`auto_method`).
AUTO: Mapping[Shape, str] = MappingProxyType(
    {
        Shape.CONVEX: "waterfill",
        Shape.LINEAR: "waterfill",
        Shape.CONCAVE: "vertex",
        Shape.MIXED: "global",
        Shape.IRREGULAR: "dp",
    }
)


def auto_method(curves: LossCurves) -> str:
    """The method ``method="auto"`` picks: one the family says is exact for it whatever its
    shapes (:attr:`~capopt.curves.LossCurves.exact_method`: "global" for tables, exact on
    their knots), else by shape."""
    return curves.exact_method or AUTO[curves.shape]
