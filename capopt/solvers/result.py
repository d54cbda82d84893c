"""What a solver returns: the allocation, its multiplier, regimes and a certificate."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from ..regimes import Regime

__all__ = ["Status", "Certificate", "AllocationResult", "AllocationError", "Solution"]


class Status(str, enum.Enum):
    """Outcome of a solve; the value is the message shown to the user."""

    OPTIMAL = "optimal: every KKT residual and the optimality gap are within tolerance"
    INACCURATE = "inaccurate: a KKT residual or the optimality gap exceeds the tolerance"
    FAILED = "failed: the method did not produce an allocation"


@dataclass(frozen=True)
class Certificate:
    r"""Evidence that an allocation solves :math:`\min \sum_i \ell_i(C_i)` s.t.
    :math:`0 \le C_i \le 1,\ \sum_i C_i \le d`.

    All residuals are absolute and non-negative. They are judged against two scales of
    the problem itself, so that the verdict does not change when every importance is
    multiplied by a constant: ``marginal_scale`` for residuals in units of marginal benefit
    and ``loss_scale`` for those in units of loss.

    Attributes
    ----------
    stationarity : float
        :math:`\max |{-\ell_i'(C_i)} - \lambda|` over features strictly inside (0, 1).
    bound_signs : float
        Largest violation of the sign conditions: :math:`\lambda - (-\ell_i'(1))` at
        :math:`C_i = 1`, :math:`-\ell_i'(0) - \lambda` at :math:`C_i = 0`, and :math:`-\lambda`.
    complementarity : float
        :math:`|\lambda\,(d - \sum_i C_i)|`.
    feasibility : float
        Largest violation of :math:`0 \le C_i \le 1` and :math:`\sum_i C_i \le d`.
    lower_bound : float
        A proven lower bound on the optimal loss (equal to the loss for convex problems
        whose KKT residuals vanish; from a relaxation or a grid bound otherwise).
    gap : float
        ``loss - lower_bound`` (non-negative up to rounding).
    marginal_scale : float
        :math:`\max_i \max(|\ell_i'(0)|, |\ell_i'(1)|, |\ell_i'(C_i)|)` and
        :math:`\lambda` (1 when all vanish).
    loss_scale : float
        :math:`\sum_i |\ell_i(0) - \ell_i(1)|`, the most any allocation can change the
        loss (1 when it vanishes).
    how : str
        Where ``lower_bound`` comes from.
    """

    stationarity: float
    bound_signs: float
    complementarity: float
    feasibility: float
    lower_bound: float
    gap: float
    marginal_scale: float
    loss_scale: float
    how: str

    def worst(self, budget: float) -> float:
        """Largest residual after scaling each to be dimensionless."""
        return max(
            self.stationarity / self.marginal_scale,
            self.bound_signs / self.marginal_scale,
            self.complementarity / self.loss_scale,
            self.feasibility / max(1.0, budget),
            max(self.gap, 0.0) / self.loss_scale,
        )


@dataclass(frozen=True)
class Solution:
    """What a method hands back to :func:`capopt.solve` before certification.

    ``lower_bound`` is set by methods that prove one themselves (global, grid DP);
    ``None`` asks the certificate to use the Lagrangian dual bound.
    """

    capacities: np.ndarray
    multiplier: float
    lower_bound: float | None = None
    lower_bound_how: str = ""
    iterations: int = 0


@dataclass(frozen=True, repr=False)
class AllocationResult:
    r"""Solution of the capacity allocation problem, with its certificate.

    Attributes
    ----------
    capacities : ndarray, shape (N,)
        Optimal :math:`C_i` (read-only).
    loss : float
        :math:`\sum_i \ell_i(C_i)`.
    losses : ndarray, shape (N,)
        :math:`\ell_i(C_i)`.
    multiplier : float
        :math:`\lambda \ge 0`, the marginal value of one more dimension
        (:math:`-\partial L^*/\partial d` from the right).
    regimes : tuple of Regime
        Monosemantic, polysemantic or ignored, per feature.
    status : Status
    method : str
        The method that ran (``"auto"`` resolved).
    certificate : Certificate
    budget : float
        The budget d it was solved for.
    iterations : int
        Work counter of the method (segments, nodes, solver iterations); 0 if not counted.
    """

    capacities: np.ndarray
    loss: float
    losses: np.ndarray
    multiplier: float
    regimes: tuple[Regime, ...]
    status: Status
    method: str
    certificate: Certificate
    budget: float
    iterations: int = 0

    @property
    def counts(self) -> dict[str, int]:
        """Number of features in each regime."""
        return {r.value: sum(x is r for x in self.regimes) for r in Regime}

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items())
        return (
            f"AllocationResult(method={self.method!r}, status={self.status.name}, "
            f"loss={self.loss:.6g}, multiplier={self.multiplier:.6g}, "
            f"sum_C={self.capacities.sum():.6g}/{self.budget:g}, {counts}, "
            f"gap={self.certificate.gap:.2g})"
        )

    def table(self) -> str:
        """Plain-text table: feature, capacity, regime, loss."""
        lines = [f"{'feature':>7}  {'capacity':>10}  {'regime':<12}  {'loss':>12}"]
        lines += [
            f"{i:>7d}  {c:>10.6f}  {r.value:<12}  {l:>12.6g}"
            for i, (c, r, l) in enumerate(zip(self.capacities, self.regimes, self.losses))
        ]
        lines.append(
            f"total loss {self.loss:.6g}   sum C = {self.capacities.sum():.6g} of d = "
            f"{self.budget:g}   lambda = {self.multiplier:.6g}   ({self.method}, "
            f"{self.status.name.lower()}, gap {self.certificate.gap:.2g})"
        )
        return "\n".join(lines)


class AllocationError(RuntimeError):
    """Raised when a solve fails or is not certified; ``.result`` holds what was found."""

    def __init__(self, message: str, result: AllocationResult | None = None):
        super().__init__(message)
        self.result = result
