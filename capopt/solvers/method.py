r"""What a solution method is: a small immutable object whose fields are its options.

Each method lives in a module of its own and is listed once, in :data:`capopt.solvers.methods.METHODS`,
which :func:`capopt.solve` reads. A method maps a :class:`~capopt.solvers.problem.Problem`
to a :class:`~capopt.solvers.result.Solution`; it never raises for a solver that did not
converge or a library that gave up, but returns :meth:`Solution.failed` with the reason,
and :func:`capopt.solve` turns that into status FAILED (or, with ``throw=True``, into an
:class:`~capopt.solvers.result.AllocationError`). Arguments that are wrong raise at once.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

from ..curves import Shape
from .problem import Problem
from .result import Solution

__all__ = ["Method"]


@dataclasses.dataclass(frozen=True)
class Method(abc.ABC):
    """A solution method; its dataclass fields are the options ``solve(..., **options)`` sets.

    Class attributes
    ----------------
    name : str
        The key ``method=`` selects it by.
    shapes : frozenset of Shape
        Family shapes the method is exact (or, for references, valid) for.
    tol : float
        Default certificate tolerance: exact methods are judged at rounding level,
        iterative references at their solvers' accuracy.
    summary : str
        One line for ``capopt solve --help``.
    """

    name: ClassVar[str]
    shapes: ClassVar[frozenset[Shape]]
    tol: ClassVar[float]
    summary: ClassVar[str]

    @abc.abstractmethod
    def run(self, problem: Problem) -> Solution:
        """Solve ``problem``; a failure is returned (:meth:`Solution.failed`), not raised."""

    def with_options(self, **options: Any) -> Method:
        """This method with the given options.

        Option values are checked once, by the method: where they stand alone when the copy
        is made, where they depend on the problem (a start point, a per-feature bound) when
        it runs, before any work.

        Raises
        ------
        TypeError
            For an option the method does not have, naming those it has.
        """
        known = [field.name for field in dataclasses.fields(self)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(
                f"method {self.name!r} got an unexpected keyword argument {unknown[0]!r}; its "
                f"options are {known or 'none'}"
            )
        return dataclasses.replace(self, **options) if options else self
