"""Perturbation analysis of an optimal allocation: how it moves when the problem moves.

:func:`sensitivity` differentiates an optimum through its KKT system, for any family, with
the Jacobians in the family's parameters as O(N) operators
(:class:`~capopt.perturbation.jacobian.CapacityJacobian`); what each family contributes,
the partials of its curves in its parameters, it declares itself
(:meth:`capopt.curves.LossCurves.parameters`).
"""

from .analysis import KINK_RTOL, TIE_RTOL, Sensitivity, sensitivity
from .jacobian import CapacityJacobian
from ..curves import Parameter

__all__ = ["sensitivity", "Sensitivity", "CapacityJacobian", "Parameter", "KINK_RTOL", "TIE_RTOL"]
