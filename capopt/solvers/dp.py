r"""The grid dynamic programme: any curves, with a bound on the grid's error.

.. math::

    \min_{k \in \{0, \dots, M\}^N} \sum_i \ell_i(k_i h) \quad \text{s.t.} \quad
    \sum_i k_i \le B = \lfloor d M \rfloor, \qquad h = 1/M .

Glossary: ``C`` capacities, ``d`` budget, ``M`` grid resolution, ``h = 1/M`` its step, ``B``
the budget in grid units, ``L`` a Lipschitz constant of a curve's benefit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._typing import ArrayLike
from .._validation import as_float_array, check_count
from ..curves import LossCurves, Shape
from .certificate import kkt_multiplier
from .method import Method
from .problem import Problem
from .result import Solution

__all__ = ["GridDP", "run_dp", "DEFAULT_RESOLUTION", "DP_TOL"]

#: Grid resolution M of the ``dp`` method (step h = 1/200).
DEFAULT_RESOLUTION = 200

#: The ``dp`` certificate is judged at its grid error: its gap is the proven rounding bound
#: sum_i L_i h and its KKT residuals are those of a grid point, both O(h).
DP_TOL = 1e-2

#: Largest backtracking table of the ``dp`` method (N x (B + 1) small integers).
DP_TABLE_BYTES = 2**30

#: Elements of the candidate matrix formed per step of the min-plus product (32 MiB).
DP_CHUNK = 2**22


def _grid_units(d: float, M: int, n: int) -> int:
    """Largest B with B / M <= d (in floating point), capped at n M."""
    if d >= n:
        return n * M
    B = int(np.floor(d * M))
    # d * M is rounded: step to the exact answer of the float comparison B / M <= d.
    while (B + 1) / M <= d:
        B += 1
    while B > 0 and B / M > d:
        B -= 1
    return B


def _min_plus(table: np.ndarray, B: int) -> np.ndarray:
    r"""Grid units :math:`k_i` minimising :math:`\sum_i` ``table[i, k_i]``, :math:`\sum k_i \le B`.

    :math:`F_0(b) = 0`, :math:`F_i(b) = \min_{0 \le k \le \min(M, b)} F_{i-1}(b - k) +
    \ell_i(k h)` is the least loss of the first i features using at most b units; each step
    is a min-plus product done as an argmin over a sliding window, in chunks of
    :data:`DP_CHUNK` elements. The argmin takes the smallest k, so among equal features
    the later ones get less (ties go to the lower index) and flat curves get 0.
    """
    n, width = table.shape
    M = width - 1
    dtype = np.uint8 if M <= np.iinfo(np.uint8).max else np.uint16
    need = n * (B + 1) * np.dtype(dtype).itemsize
    if need > DP_TABLE_BYTES:
        raise ValueError(
            f"resolution={M} needs a {need / 2**20:.0f} MiB backtracking table for {n} features "
            f"and {B} budget units, above the {DP_TABLE_BYTES / 2**20:.0f} MiB limit; lower "
            "resolution"
        )
    choice = np.empty((n, B + 1), dtype=dtype)
    F = np.zeros(B + 1)
    pad = np.full(M, np.inf)
    rows = max(1, DP_CHUNK // width)
    for i in range(n):
        # The first i + 1 features hold at most (i + 1) M units: beyond that F_i is constant.
        top = min(B, (i + 1) * M)
        window = sliding_window_view(np.concatenate([pad, F[: top + 1]]), width)[:, ::-1]
        new = np.empty(B + 1)
        for s in range(0, top + 1, rows):
            e = min(s + rows, top + 1)
            candidates = window[s:e] + table[i]
            k = np.argmin(candidates, axis=1)
            choice[i, s:e] = k
            new[s:e] = np.take_along_axis(candidates, k[:, None], axis=1)[:, 0]
        new[top + 1 :] = new[top]
        choice[i, top + 1 :] = choice[i, top]
        F = new
    units = np.empty(n, dtype=np.int64)
    b = B
    for i in range(n - 1, -1, -1):
        units[i] = choice[i, b]
        b -= units[i]
    return units


@dataclass(frozen=True)
class GridDP(Method):
    """The grid dynamic programme for any curves: :func:`run_dp`, whose options
    ``resolution`` and ``lipschitz`` are its fields."""

    name: ClassVar[str] = "dp"
    shapes: ClassVar[frozenset[Shape]] = frozenset(Shape)
    tol: ClassVar[float] = DP_TOL
    summary: ClassVar[str] = "grid dynamic programme for any curves, with a proven grid error bound"

    resolution: int = DEFAULT_RESOLUTION
    lipschitz: ArrayLike | None = None

    def run(self, problem: Problem) -> Solution:
        return run_dp(
            problem.curves, problem.budget, resolution=self.resolution, lipschitz=self.lipschitz
        )


def run_dp(
    curves: LossCurves,
    budget: float,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    lipschitz: ArrayLike | None = None,
) -> Solution:
    r"""Grid dynamic programme for arbitrary curves, with a bound on the grid's error.

    .. math::

        \min_{k \in \{0, \dots, M\}^N} \sum_i \ell_i(k_i h) \quad \text{s.t.} \quad
        \sum_i k_i \le B = \lfloor d M \rfloor, \qquad h = 1/M .

    Parameters
    ----------
    curves : LossCurves
        Any family, irregular curves included.
    budget : float
        :math:`d \ge 0`.
    resolution : int
        M, the number of grid steps on [0, 1] (:data:`DEFAULT_RESOLUTION`; at most 65535).
        The certificate passes the method's tolerance (:data:`DP_TOL`) when the grid bound
        :math:`h \sum_i L_i` is below ``DP_TOL`` of the loss scale; steep curves need a finer
        grid (the time grows as :math:`M^2`) or a looser ``tol`` in :func:`capopt.solve`.
    lipschitz : float or array_like of shape (N,), optional
        A bound :math:`L_i \ge \max(0, \max_{[0, 1]} m_i)` on each curve's marginal benefit,
        for curves whose family cannot prove one (irregular curves given as functions).
        Without it such a bound is estimated from the grid and the result can be at best
        ``Status.UNPROVEN``.

    Returns
    -------
    Solution
        Capacities on the grid, and the lower bound below.

    Raises
    ------
    ValueError
        For a bad ``resolution`` or ``lipschitz``, a ``resolution`` whose backtracking
        table would exceed :data:`DP_TABLE_BYTES`, or curves that are not finite on the
        grid.

    Notes
    -----
    Error bound: rounding a continuous optimum :math:`C^*` down to the grid keeps
    :math:`\sum_i k_i \le \lfloor \sum_i C^*_i M \rfloor \le B` and raises each loss by at
    most :math:`L_i h`, with :math:`L_i = \max(0, \max_{[0,1]} m_i)` the largest marginal
    benefit (only a positive marginal makes rounding down cost). So

    .. math:: \text{DP value} - h \sum_i L_i \;\le\; \min(\text{problem}) \;\le\; \text{DP value}.

    Each family proves :math:`L_i` where it can
    (:meth:`~capopt.curves.LossCurves.benefit_lipschitz`: the ends of a monotone marginal,
    the steepest piece of a table); elsewhere ``lipschitz`` supplies it, or the steepest
    grid difference estimates it -- an estimate, not a bound, which the certificate lists
    among its assumptions. The certificate's KKT residuals are those of a grid point,
    O(h); the multiplier is the smallest (or, at a grid point that satisfies no KKT
    multiplier exactly, the least-residual) value given the marginals.

    Complexity: O(N B M) time (the min-plus products; B <= min(d, N) M), O(N B) bytes of
    backtracking table, O(B M) transient memory capped by chunking.

    References
    ----------
    T. Ibaraki and N. Katoh, *Resource Allocation Problems: Algorithmic Approaches*,
    ch. 3 (MIT Press, 1988).

    Examples
    --------
    >>> import capopt
    >>> curves = capopt.quadratic([2.0, 1.0], 7.0)
    >>> result = capopt.solve(curves, 1.0, method="dp", resolution=60)
    >>> result.capacities                     # 5/6 and 1/6 lie on the grid
    array([0.83333333, 0.16666667])
    >>> round(result.loss, 12)
    5.25
    """
    M = check_count(resolution, "resolution", maximum=np.iinfo(np.uint16).max)
    n = curves.n_features
    given = _lipschitz(lipschitz, n)
    B = _grid_units(budget, M, n)
    grid = np.arange(M + 1) / M
    table = np.ascontiguousarray(curves.loss(np.broadcast_to(grid[:, None], (M + 1, n))).T)
    if not np.all(np.isfinite(table)):
        i, k = np.argwhere(~np.isfinite(table))[0]
        raise ValueError(
            f"curves must be finite on [0, 1]; feature {i} has loss {table[i, k]} at C={grid[k]:g}"
        )
    units = _min_plus(table, B)
    C = units / M
    value = float(np.sum(table[np.arange(n), units]))

    proven = curves.benefit_lipschitz()
    if given is not None:
        proven = np.where(np.isnan(proven), given, proven)
    unknown = np.isnan(proven)
    steepest = np.max(table[:, :-1] - table[:, 1:], axis=1, initial=0.0) * M
    bound = np.maximum(0.0, np.where(unknown, steepest, proven))
    how = f"grid DP with Lipschitz rounding bound, h=1/{M}"
    assumptions: tuple[str, ...] = ()
    if unknown.any():
        assumptions = (
            f"Lipschitz constants of {int(unknown.sum())} irregular curve(s) estimated from "
            "grid differences, not proven (pass lipschitz= to state them)",
        )
    return Solution(
        capacities=C,
        multiplier=kkt_multiplier(curves, C),
        lower_bound=value - float(np.sum(bound)) / M,
        lower_bound_how=how,
        iterations=n,
        assumptions=assumptions,
    )


def _lipschitz(value: ArrayLike | None, n: int) -> np.ndarray | None:
    if value is None:
        return None
    L = as_float_array(value, "lipschitz")
    if L.shape not in ((), (n,)) or np.any(L < 0):
        raise ValueError(
            f"lipschitz must be >= 0, a scalar or one value per feature (shape ({n},)), got "
            f"{'shape ' + str(L.shape) if L.shape not in ((), (n,)) else 'min ' + format(L.min(), 'g')}"
        )
    return np.broadcast_to(L, (n,))
