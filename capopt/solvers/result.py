"""What a solver returns: the allocation, its multiplier, regimes and a certificate."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import numpy as np

from .._typing import ArrayLike
from ..regimes import Regime

if TYPE_CHECKING:
    import pandas as pd

    from ..curves import LossCurves

__all__ = ["Status", "Certificate", "AllocationResult", "AllocationError", "Solution"]


class Status(str, enum.Enum):
    """Outcome of a solve; the value is the message shown to the user."""

    OPTIMAL = "optimal: every KKT residual and the optimality gap are within tolerance"
    UNPROVEN = (
        "unproven: every check passes, but the proof rests on assumptions the certificate "
        "lists (certificate.assumptions)"
    )
    INACCURATE = "inaccurate: a KKT residual or the optimality gap exceeds the tolerance"
    FAILED = "failed: the method produced no allocation (the result's reason says why)"


@dataclass(frozen=True)
class Certificate:
    r"""Evidence that an allocation solves :math:`\min \sum_i \ell_i(C_i)` s.t.
    :math:`0 \le C_i \le 1,\ \sum_i C_i \le d`.

    Every residual is dimensionless and non-negative, judged against the problem's own
    scales so that the verdict does not change when the losses are multiplied by a
    constant: residuals in units of marginal benefit are divided by ``marginal_scale``,
    those in units of loss by ``loss_scale``, the budget's by the budget. A residual that
    is not finite makes :attr:`worst` infinite.

    Attributes
    ----------
    stationarity : float
        Distance of :math:`\lambda` from the interval between :math:`m_i(C_i^+)` and
        :math:`m_i(C_i^-)` (the one-sided marginals, equal on a smooth curve, so
        :math:`|m_i(C_i) - \lambda|` there) over features strictly inside (0, 1).
    bound_signs : float
        Largest violation of the sign conditions: :math:`\lambda - m_i(1^-)` at
        :math:`C_i = 1`, :math:`m_i(0^+) - \lambda` at :math:`C_i = 0`, and :math:`-\lambda`.
    complementarity : float
        :math:`|\lambda\,(d - \sum_i C_i)|` over the loss scale.
    feasibility : float
        Largest violation of :math:`0 \le C_i \le 1`, and of :math:`\sum_i C_i \le d`
        relative to d (for d = 0, in dimensions).
    gap : float
        ``(loss - lower_bound)`` over the loss scale (non-negative up to rounding; a
        negative gap beyond the tolerance fails the certificate too).
    lower_bound : float
        A proven lower bound on the optimal loss, in the user's units (the Lagrangian dual,
        or the method's own bound for non-convex problems).
    marginal_scale : float
        The largest marginal at the allocation, at 0 and at 1, and :math:`\lambda`, in the
        user's units (inf where that overflows float64).
    loss_scale : float
        :math:`\sum_i (\max \ell_i - \min \ell_i)`, the most any allocation can change the
        loss, in the user's units.
    how : str
        Where ``lower_bound`` comes from.
    assumptions : tuple of str
        What the proof takes on trust (empty for a proof): e.g. curve shapes detected on a
        sample, or a Lipschitz constant estimated from a grid.
    """

    stationarity: float
    bound_signs: float
    complementarity: float
    feasibility: float
    gap: float
    lower_bound: float
    marginal_scale: float
    loss_scale: float
    how: str
    assumptions: tuple[str, ...] = ()

    @property
    def worst(self) -> float:
        """The largest residual; infinite if any is not finite.

        The gap counts in either direction: a lower bound above the loss by more than
        rounding is no lower bound, and the certificate fails.
        """
        residuals = (
            self.stationarity,
            self.bound_signs,
            self.complementarity,
            self.feasibility,
            abs(self.gap),
        )
        if not all(math.isfinite(r) for r in residuals):
            return math.inf
        return max(residuals)


@dataclass(frozen=True)
class Solution:
    """What a method hands back to :func:`capopt.solve` before certification.

    ``lower_bound`` is set by methods that prove one themselves (vertex enumeration,
    global, grid DP); ``None`` asks the certificate to use the Lagrangian dual bound.
    ``assumptions`` name what the method's proof takes on trust; ``exact`` is False when
    the method knows its answer missed its own standard (the certificate then decides).
    ``failure`` is empty unless the method produced no allocation (:meth:`failed`).
    ``alternatives`` are other allocations the method evaluated whose loss it cannot tell
    from the returned one's (a tie: the optimum is not unique).
    """

    capacities: np.ndarray
    multiplier: float
    lower_bound: float | None = None
    lower_bound_how: str = ""
    iterations: int = 0
    assumptions: tuple[str, ...] = ()
    exact: bool = True
    failure: str = ""
    alternatives: tuple[np.ndarray, ...] = ()

    @classmethod
    def failed(cls, n_features: int, reason: str, *, iterations: int = 0) -> Solution:
        """No allocation: NaN capacities and multiplier, and ``reason`` for the user."""
        return cls(np.full(n_features, np.nan), math.nan, iterations=iterations, failure=reason)


#: The key of each per-feature column (``to_dataframe``) in ``to_dict``.
_PLURALS = {"capacity": "capacities", "regime": "regimes", "loss": "losses", "marginal": "marginals"}

# The last entry is what code -1 (no allocation) indexes.
_REGIMES = np.array([Regime.MONOSEMANTIC, Regime.POLYSEMANTIC, Regime.IGNORED, None], dtype=object)


@dataclass(frozen=True, repr=False, eq=False)
class AllocationResult:
    r"""Solution of the capacity allocation problem, with its certificate.

    Attributes
    ----------
    capacities : ndarray, shape (N,)
        Optimal :math:`C_i` (read-only).
    loss : float
        :math:`\sum_i \ell_i(C_i)`; ``inf`` only where the loss itself exceeds float64 (the
        allocation is then solved and certified in scaled units: ``loss = scaled_loss *
        2**loss_exponent``).
    multiplier : float
        :math:`\lambda \ge 0`, the marginal value of one more dimension
        (:math:`-\partial L^*/\partial d` from the right).
    status : Status
    method : str
        The method that ran (``"auto"`` resolved).
    certificate : Certificate
    budget : float
        The budget d it was solved for.
    curves : LossCurves
        The family solved, from which :attr:`losses` are evaluated on demand.
    iterations : int
        Work counter of the method (rounds, nodes, solver iterations); 0 if not counted.
    scaled_loss : float
        The loss in the solver's units.
    loss_exponent : int
        The power of two from the solver's units to the user's (0 unless the losses lie far
        outside the float64 range's middle).
    scaled_multiplier : float
        The multiplier in the units of the tier it comes from: ``multiplier =
        scaled_multiplier * 2**multiplier_exponent``, exactly, also where ``multiplier``
        over- or underflows float64.
    multiplier_exponent : int
    regime_codes : ndarray of int8, shape (N,)
        0 monosemantic, 1 polysemantic, 2 ignored, -1 no allocation (status FAILED)
        (read-only); :attr:`regimes` names them.
    reason : str
        Why the method produced no allocation (status FAILED); empty otherwise.
    alternatives : tuple of ndarray
        Other optimal allocations the method found: allocations it evaluated whose loss
        is that of :attr:`capacities` to within its rounding (read-only, shape (N,) each).
        Non-empty at a tie between structures of a non-convex family (say a dense feature
        taken whole against sparse ones sharing its dimension): the optimum is not unique
        there, and a small change of the problem can make any of them the only optimum
        (:func:`capopt.sensitivity` reads them). Empty for a unique optimum, and for
        methods that do not compare structures.
    """

    capacities: np.ndarray
    loss: float
    multiplier: float
    status: Status
    method: str
    certificate: Certificate
    budget: float
    curves: LossCurves = field(repr=False)
    iterations: int = 0
    scaled_loss: float = 0.0
    loss_exponent: int = 0
    scaled_multiplier: float = 0.0
    multiplier_exponent: int = 0
    regime_codes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8), repr=False)
    reason: str = ""
    alternatives: tuple[np.ndarray, ...] = field(default=(), repr=False)

    def _at_allocation(self, evaluate: Callable[[np.ndarray], ArrayLike]) -> np.ndarray:
        """``evaluate(capacities)`` as a read-only float64 array; NaN without an allocation."""
        if self.status is Status.FAILED:
            values = np.full(self.capacities.shape, np.nan)
        else:
            # A value beyond float64 is inf, as the result's own loss says (no warning twice).
            with np.errstate(over="ignore"):
                values = np.array(evaluate(self.capacities), dtype=np.float64)
        values.setflags(write=False)
        return values

    @cached_property
    def losses(self) -> np.ndarray:
        r""":math:`\ell_i(C_i)` per feature (read-only), evaluated on first access; NaN
        without an allocation (status FAILED)."""
        return self._at_allocation(self.curves.loss)

    @cached_property
    def marginals(self) -> np.ndarray:
        r"""Marginal benefit :math:`-\ell_i'(C_i)` per feature (read-only), evaluated on
        first access: :attr:`multiplier` for every polysemantic feature (KKT stationarity),
        at least it for monosemantic ones, at most it for ignored ones; NaN without an
        allocation (status FAILED)."""
        return self._at_allocation(self.curves.marginal)

    @cached_property
    def regimes(self) -> tuple[Regime, ...]:
        """Monosemantic, polysemantic or ignored, per feature (None where there is no
        allocation: status FAILED)."""
        return tuple(_REGIMES[self.regime_codes].tolist())

    @property
    def counts(self) -> dict[str, int]:
        """Number of features in each regime."""
        counts = np.bincount(self.regime_codes[self.regime_codes >= 0], minlength=3)
        return {regime.value: int(counts[code]) for code, regime in enumerate(_REGIMES[:3])}

    def _loss_text(self) -> str:
        if math.isinf(self.loss) and math.isfinite(self.scaled_loss):
            return f"{self.scaled_loss:.6g} * 2**{self.loss_exponent} (overflows float64)"
        return f"{self.loss:.6g}"

    def __repr__(self) -> str:
        if self.status is Status.FAILED:
            return f"AllocationResult(method={self.method!r}, status=FAILED, reason={self.reason!r})"
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items())
        return (
            f"AllocationResult(method={self.method!r}, status={self.status.name}, "
            f"loss={self._loss_text()}, multiplier={self.multiplier:.6g}, "
            f"sum_C={self.capacities.sum():.6g}/{self.budget:g}, {counts}, "
            f"gap={self.certificate.gap:.2g})"
        )

    def table(self) -> str:
        """Plain-text table: feature, capacity, regime, loss."""
        if self.status is Status.FAILED:
            return f"no allocation ({self.method}, failed): {self.reason}"
        lines = [f"{'feature':>7}  {'capacity':>10}  {'regime':<12}  {'loss':>12}"]
        lines += [
            f"{i:>7d}  {c:>10.6f}  {r.value:<12}  {l:>12.6g}"
            for i, (c, r, l) in enumerate(zip(self.capacities, self.regimes, self.losses))
        ]
        lines.append(
            f"total loss {self._loss_text()}   sum C = {self.capacities.sum():.6g} of d = "
            f"{self.budget:g}   lambda = {self.multiplier:.6g}   ({self.method}, "
            f"{self.status.name.lower()}, gap {self.certificate.gap:.2g})"
        )
        return "\n".join(lines)

    def _per_feature(self) -> dict:
        """The per-feature columns of :meth:`to_dict` and :meth:`to_dataframe`, by name."""
        return {
            "capacity": self.capacities,
            "regime": [None if r is None else r.value for r in self.regimes],
            "loss": self.losses,
            "marginal": self.marginals,
        }

    def _summary(self) -> dict:
        """The result-level values of :meth:`to_dict`, as plain Python values."""
        return {
            "method": self.method,
            "status": self.status.name,
            "budget": self.budget,
            "loss": self.loss,
            "multiplier": self.multiplier,
            "sum_capacity": float(np.sum(self.capacities)),
            "counts": self.counts,
            "reason": self.reason,
            "iterations": self.iterations,
            "certificate": {
                name: getattr(self.certificate, name)
                for name in Certificate.__dataclass_fields__
                if name != "assumptions"
            }
            | {"assumptions": list(self.certificate.assumptions)},
        }

    def to_dict(self) -> dict:
        r"""The result as plain Python values (lists for arrays), e.g. for JSON.

        Result-level values (``method``, ``status``, ``budget``, ``loss``, ``multiplier``,
        ``sum_capacity``, ``counts``, ``reason``, ``iterations``, ``certificate``) and one
        list per feature: ``capacities``, ``regimes``, ``losses`` and ``marginals``
        (:math:`-\ell_i'(C_i)`).

        Examples
        --------
        >>> import json
        >>> from capopt import quadratic, solve
        >>> record = solve(quadratic([2.0, 1.0], 7.0), 1).to_dict()
        >>> [round(c, 6) for c in record["capacities"]], record["status"]
        ([0.833333, 0.166667], 'OPTIMAL')
        >>> _ = json.dumps(record)
        """
        columns = {_PLURALS[name]: np.asarray(values).tolist() for name, values in self._per_feature().items()}
        return self._summary() | columns

    def to_dataframe(self) -> pd.DataFrame:
        r"""Per-feature table as a tidy :class:`pandas.DataFrame`, one row per feature.

        Indexed by ``feature``, with columns ``capacity``, ``regime``, ``loss`` and
        ``marginal`` (:math:`-\ell_i'(C_i)`); the result-level values of :meth:`to_dict`
        are in the frame's ``attrs``. pandas is imported here only (it is not a dependency
        of capopt).

        Examples
        --------
        >>> from capopt import quadratic, solve
        >>> frame = solve(quadratic([2.0, 1.0], 7.0), 1).to_dataframe()
        >>> frame.round(4)
                 capacity        regime  loss  marginal
        feature
        0          0.8333  polysemantic  1.50    10.125
        1          0.1667  polysemantic  3.75    10.125
        >>> frame.attrs["status"], frame.attrs["loss"]
        ('OPTIMAL', 5.25)
        """
        import pandas as pd  # optional, and slow to import

        frame = pd.DataFrame(self._per_feature())
        frame.index.name = "feature"
        frame.attrs = self._summary()
        return frame


class AllocationError(RuntimeError):
    """Raised when a solve fails or is not certified; ``.result`` holds what was found."""

    def __init__(self, message: str, result: AllocationResult | None = None):
        super().__init__(message)
        self.result = result
