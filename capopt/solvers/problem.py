r"""The capacity allocation problem as one value: a family of loss curves and a budget.

.. math::

    \min_{C \in \mathbb{R}^N} \sum_i \ell_i(C_i)
    \quad \text{s.t.} \quad 0 \le C_i \le 1, \quad \sum_i C_i \le d .

:func:`capopt.solve` validates its arguments once into a :class:`Problem`, and that value is
what every method (:mod:`capopt.solvers.methods`) receives.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._validation import check_scalar
from ..curves import LossCurves

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    r"""A validated allocation problem: ``curves`` :math:`\ell_i` and ``budget`` d.

    Parameters
    ----------
    curves : LossCurves
        The per-feature loss curves, e.g. :func:`capopt.quadratic`.
    budget : float
        :math:`d \ge 0`, finite.
    label : str
        What the problem is, for tables (the catalogue's problems have one).

    Raises
    ------
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.LossCurves`.
    ValueError
        For a negative or non-finite budget.

    Examples
    --------
    >>> import capopt
    >>> Problem(capopt.quadratic([2.0, 1.0], 7.0), 1).budget
    1.0
    """

    curves: LossCurves
    budget: float
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.curves, LossCurves):
            raise TypeError(
                "curves must be a LossCurves family (e.g. capopt.quadratic(...)), got "
                f"{type(self.curves).__name__}"
            )
        object.__setattr__(self, "budget", check_scalar(self.budget, "budget", minimum=0.0))

    @property
    def n_features(self) -> int:
        """N, the number of curves."""
        return self.curves.n_features
