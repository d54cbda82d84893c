r"""How far is a trained embedding from the optimal allocation? :func:`compare`.

A model trained anywhere (PyTorch, JAX, a notebook) is judged without retraining: its
capacities :math:`C_i(W)` (:func:`capopt.capacity`) against the solver's optimum
:math:`C^*` for the same loss curves and budget (:func:`capopt.solve`), feature by feature,
with the regimes both put each feature in, the model's exact loss at ``W`` where the family
has an explicit model, and the blocks of ``W`` against those the optimum predicts.

Glossary: ``W`` embedding (features on ``feature_axis``), ``d`` budget, ``N`` number of
features, ``C`` capacity of ``W``, ``C*`` optimal capacity, ``L`` loss.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._typing import ArrayLike
from ._validation import check_scalar
from .capacity import _features_last_as_given, capacity
from .curves import LossCurves
from .geometry import DEFAULT_BLOCK_TOL, DEFAULT_ZERO_TOL, BlockStructure, block_summary, blocks
from .toy_models import PREDICTION_REALIZE_TOL
from .regimes import DEFAULT_REGIME_ATOL, Regime, classify
from .solvers import AllocationError, AllocationResult, Status, solve
from .solvers.problem import Problem

if TYPE_CHECKING:
    import dask.array as da
    import pandas as pd
    import xarray as xr

__all__ = [
    "compare",
    "against_optimum",
    "Comparison",
    "RegimeDifference",
    "model_loss",
    "PREDICTION_REALIZE_TOL",
    "checked_weights",
]

def model_loss(curves: LossCurves, W: ArrayLike) -> np.ndarray | None:
    r"""Exact loss :math:`L(W)` of the family's explicit model
    (:meth:`~capopt.curves.LossCurves.model`), or None for a family without one.

    Quadratic model: :func:`capopt.quadratic_model_loss` (optimal bias); linear
    autoencoder: :func:`capopt.linear_autoencoder_model_loss`. ``W`` has features on the
    last axis and optional leading batch axes; the result has the batch shape.

    Examples
    --------
    >>> import capopt
    >>> float(model_loss(capopt.quadratic([2.0, 1.0], 7.0), [[1.875**0.5, 0.375**0.5]]))
    5.25
    """
    model = curves.model()
    return None if model is None else model.loss(W)


class RegimeDifference(NamedTuple):
    """A feature that ``W`` puts in another regime than the optimum does."""

    feature: int
    measured: Regime
    optimal: Regime


@dataclass(frozen=True, repr=False, eq=False)
class Comparison:
    r"""An embedding ``W`` against the optimal allocation of its loss curves and budget.

    Built by :func:`compare`. The main figures are

    .. math::

        \max_i |C_i(W) - C_i^*|, \qquad
        L(W) - \sum_i \ell_i(C_i^*) \ \ (\text{explicit models only}),

    and the features whose regime (monosemantic :math:`C = 1`, polysemantic, ignored
    :math:`C = 0`) differs. Everything past the capacities is evaluated on first access
    (the model's loss and the blocks cost :math:`O(dN^2)`), from ``weights``.

    Attributes
    ----------
    capacities : ndarray, shape (N,)
        :math:`C_i(W)` (read-only).
    optimal : AllocationResult
        The solver's allocation :math:`C^*` for the same curves and budget. Its ``status``
        says whether it is certified optimal: a comparison with an uncertified optimum is
        still made, and :attr:`certified` is False.
    weights : ndarray, shape (d, N)
        ``W`` as compared, features on the last axis, in its own dtype: a read-only copy,
        or, for a file memory-mapped for reading or a dask array, ``W`` itself.
    regime_atol : float
        ``C >= 1 - regime_atol`` counts as monosemantic and ``C <= regime_atol`` as ignored,
        for ``W`` as for the optimum.
    block_tol, zero_tol : float
        Tolerances of :func:`capopt.blocks` for the blocks of ``W``.

    Examples
    --------
    The worked case of theory §3 (two features sharing one neuron at K = 7) against a
    model that keeps only the first feature:

    >>> import capopt
    >>> comparison = capopt.compare([[2.0**0.5, 0.0]], capopt.quadratic([2.0, 1.0], 7.0), 1)
    >>> print(comparison.table())
    feature       C(W)         C*    C(W)-C*  regime(W)     regime(C*)
          0   1.000000   0.833333    1.7e-01  monosemantic  polysemantic  *
          1   0.000000   0.166667   -1.7e-01  ignored       polysemantic  *
    max |C(W) - C*| = 1.67e-01   regimes differ for 2 features (marked *)
    loss: W 6, optimal 5.25, gap 7.50e-01
    blocks (features/dims): W 1/1; optimal 2/1 (differ)
    optimum: waterfill, certified optimal, gap 0
    """

    capacities: np.ndarray
    optimal: AllocationResult
    weights: np.ndarray
    regime_atol: float = DEFAULT_REGIME_ATOL
    block_tol: float = DEFAULT_BLOCK_TOL
    zero_tol: float = DEFAULT_ZERO_TOL

    @property
    def n_features(self) -> int:
        """N."""
        return int(self.capacities.shape[0])

    @property
    def status(self) -> Status:
        """The optimum's status (:class:`capopt.Status`)."""
        return self.optimal.status

    @property
    def certified(self) -> bool:
        """Whether the optimum compared with is certified optimal."""
        return self.optimal.status is Status.OPTIMAL

    @property
    def errors(self) -> np.ndarray:
        r""":math:`C_i(W) - C_i^*` per feature."""
        return self.capacities - self.optimal.capacities

    @property
    def max_abs_error(self) -> float:
        r""":math:`\max_i |C_i(W) - C_i^*|` (0 for no features)."""
        return float(np.max(np.abs(self.errors), initial=0.0))

    @cached_property
    def regimes(self) -> tuple[Regime, ...]:
        """The regime of each feature of ``W`` (:func:`capopt.classify` at ``regime_atol``)."""
        return classify(self.capacities, atol=self.regime_atol)

    @cached_property
    def optimal_regimes(self) -> tuple[Regime, ...]:
        """The regime of each feature at the optimum, classified at ``regime_atol``."""
        return classify(self.optimal.capacities, atol=self.regime_atol)

    @cached_property
    def differing(self) -> tuple[RegimeDifference, ...]:
        """The features in another regime in ``W`` than at the optimum, ascending."""
        return tuple(
            RegimeDifference(i, got, want)
            for i, (got, want) in enumerate(zip(self.regimes, self.optimal_regimes))
            if got is not want
        )

    @property
    def regimes_agree(self) -> bool:
        """Whether ``W`` has the optimum's monosemantic, polysemantic and ignored sets."""
        return not self.differing

    @cached_property
    def loss(self) -> float | None:
        """Exact loss of the family's model at ``W`` (:func:`model_loss`); None without one."""
        loss = model_loss(self.optimal.curves, self.weights)
        return None if loss is None else float(loss)

    @property
    def loss_gap(self) -> float | None:
        """:attr:`loss` minus the optimal loss: >= 0 up to rounding when ``W`` has at most
        ``budget`` dimensions, as the optimum is the least loss of any such embedding."""
        return None if self.loss is None else self.loss - self.optimal.loss

    @cached_property
    def blocks(self) -> BlockStructure:
        """:func:`capopt.blocks` of ``W`` at ``block_tol`` and ``zero_tol``."""
        return blocks(self.weights, tol=self.block_tol, zero_tol=self.zero_tol)

    @cached_property
    def _prediction(self) -> tuple[BlockStructure | None, str]:
        model = self.optimal.curves.model()
        if model is None:
            return None, (
                f"{type(self.optimal.curves).__name__} has no explicit model: the allocation "
                "alone does not fix the blocks a trained model forms (capopt.realize builds "
                "one embedding with these capacities)"
            )
        try:
            W = model.optimal_embedding(self.optimal)
        except ValueError as exc:
            return None, f"the optimum has no block-semi-orthogonal embedding: {exc}"
        return blocks(W), ""

    @property
    def predicted_blocks(self) -> BlockStructure | None:
        """:func:`capopt.blocks` of the model that attains the optimum (the quadratic
        model's :func:`capopt.optimal_quadratic_model`, the linear autoencoder's
        :func:`capopt.realize`): features, dimension and eigenvalue of each block. None
        where there is no prediction; :attr:`predicted_blocks_reason` says why."""
        return self._prediction[0]

    @property
    def predicted_blocks_reason(self) -> str:
        """Why :attr:`predicted_blocks` is None (empty otherwise)."""
        return self._prediction[1]

    @property
    def blocks_agree(self) -> bool | None:
        """Whether ``W`` groups its features into the predicted blocks, with the predicted
        dimensions (None without a prediction)."""
        predicted = self.predicted_blocks
        if predicted is None:
            return None
        return _partition(self.blocks) == _partition(predicted)

    @property
    def max_eigenvalue_error(self) -> float | None:
        r""":math:`\max_b |\lambda_b(W) - \lambda_b^*| / \lambda_b^*` over the blocks, where
        they agree (None otherwise)."""
        predicted = self.predicted_blocks
        if predicted is None or not self.blocks_agree:
            return None
        want = {b.features: b.eigenvalue for b in predicted.blocks}
        return max(
            (abs(b.eigenvalue - want[b.features]) / want[b.features] for b in self.blocks.blocks),
            default=0.0,
        )

    def __repr__(self) -> str:
        loss = "None" if self.loss_gap is None else f"{self.loss_gap:.2e}"
        return (
            f"Comparison(n_features={self.n_features}, max_abs_error={self.max_abs_error:.2e}, "
            f"regimes_agree={self.regimes_agree}, loss_gap={loss}, "
            f"optimal_status={self.status.name})"
        )

    def table(self) -> str:
        """Plain text: per feature the measured and optimal capacity and regime, a ``*``
        where the regimes differ; then the error, losses, blocks and the optimum's status."""
        lines = [f"{'feature':>7}  {'C(W)':>9}  {'C*':>9}  {'C(W)-C*':>9}  "
                 f"{'regime(W)':<12}  {'regime(C*)':<12}"]
        lines += [
            f"{i:>7d}  {c:>9.6f}  {o:>9.6f}  {c - o:>9.1e}  {r.value:<12}  {s.value:<12}"
            + ("  *" if r is not s else "")
            for i, (c, o, r, s) in enumerate(
                zip(self.capacities, self.optimal.capacities, self.regimes, self.optimal_regimes))
        ]
        n = len(self.differing)
        agree = ("regimes agree" if not n else
                 f"regimes differ for {n} feature{'s' if n > 1 else ''} (marked *)")
        lines.append(f"max |C(W) - C*| = {self.max_abs_error:.2e}   {agree}")
        if self.loss is None:
            lines.append(f"loss: {type(self.optimal.curves).__name__} has no explicit model; "
                         f"optimal {self.optimal.loss:.10g}")
        else:
            lines.append(f"loss: W {self.loss:.10g}, optimal {self.optimal.loss:.10g}, "
                         f"gap {self.loss_gap:.2e}")
        if self.predicted_blocks is None:
            predicted = f"no prediction ({self.predicted_blocks_reason})"
        else:
            predicted = (f"{block_summary(self.predicted_blocks)} "
                         f"({'agree' if self.blocks_agree else 'differ'})")
        lines.append(f"blocks (features/dims): W {block_summary(self.blocks)}; optimal {predicted}")
        status = ("certified optimal" if self.certified
                  else f"NOT CERTIFIED: {self.status.value}")
        lines.append(f"optimum: {self.optimal.method}, {status}, gap {self.optimal.certificate.gap:.2g}")
        return "\n".join(line.rstrip() for line in lines)

    def to_dict(self) -> dict:
        """The comparison as plain Python values (lists for arrays), e.g. for JSON."""
        predicted = self.predicted_blocks
        return {
            "capacities": self.capacities.tolist(),
            "optimal": self.optimal.to_dict(),
            "max_abs_error": self.max_abs_error,
            "regimes": [r.value for r in self.regimes],
            "optimal_regimes": [r.value for r in self.optimal_regimes],
            "regimes_agree": self.regimes_agree,
            "differing": [
                {"feature": f.feature, "measured": f.measured.value, "optimal": f.optimal.value}
                for f in self.differing
            ],
            "loss": self.loss,
            "optimal_loss": self.optimal.loss,
            "loss_gap": self.loss_gap,
            "blocks": _blocks_as_dicts(self.blocks),
            "predicted_blocks": None if predicted is None else _blocks_as_dicts(predicted),
            "predicted_blocks_reason": self.predicted_blocks_reason,
            "blocks_agree": self.blocks_agree,
            "certified": self.certified,
        }

    def to_dataframe(self) -> pd.DataFrame:
        """Per-feature table as a :class:`pandas.DataFrame` indexed by ``feature``."""
        import pandas as pd  # optional, and slow to import

        frame = pd.DataFrame({
            "capacity": self.capacities,
            "optimal_capacity": self.optimal.capacities,
            "error": self.errors,
            "regime": [r.value for r in self.regimes],
            "optimal_regime": [r.value for r in self.optimal_regimes],
        })
        frame["differs"] = frame["regime"] != frame["optimal_regime"]
        frame.index.name = "feature"
        return frame

    def to_xarray(self) -> xr.Dataset:
        """Per-feature table as an :class:`xarray.Dataset` over dimension ``feature``."""
        return self.to_dataframe().to_xarray()


def _partition(structure: BlockStructure) -> set[tuple[tuple[int, ...], int]]:
    return {(b.features, b.dim) for b in structure.blocks}


def _blocks_as_dicts(structure: BlockStructure) -> list[dict]:
    return [{"features": list(b.features), "dim": b.dim, "eigenvalue": b.eigenvalue}
            for b in structure.blocks]


def compare(
    W: ArrayLike,
    curves: LossCurves,
    budget: float,
    *,
    feature_axis: int = -1,
    regime_atol: float = DEFAULT_REGIME_ATOL,
    block_tol: float = DEFAULT_BLOCK_TOL,
    zero_tol: float = DEFAULT_ZERO_TOL,
) -> Comparison | list:
    r"""Compare an embedding's capacities with the optimal allocation of its loss curves.

    Solves

    .. math::

        C^* = \operatorname*{arg\,min}_C \sum_i \ell_i(C_i) \quad \text{s.t.} \quad
        0 \le C_i \le 1,\ \sum_i C_i \le d

    with :func:`capopt.solve`, measures :math:`C_i(W) = G_{ii}^2 / \sum_j G_{ij}^2`
    (:func:`capopt.capacity`, :math:`G = W^\top W`) and reports them side by side:
    :math:`\max_i |C_i(W) - C_i^*|`, the features whose regime differs, the model's exact
    loss :math:`L(W)` against :math:`\sum_i \ell_i(C_i^*)` (quadratic model and linear
    autoencoder), and the blocks of ``W`` against those of the model attaining the optimum.

    Parameters
    ----------
    W : array_like, shape (..., d, N) or (..., N, d)
        The embedding: a numpy array, or anything with ``__array__`` (a CPU torch tensor
        after ``.detach()``, a JAX array), optionally with leading instance axes. Never
        modified.
    curves : LossCurves
        The loss curves of the N features, e.g. :func:`capopt.quadratic`.
    budget : float
        :math:`d \ge 0`, validated as :func:`capopt.solve` does; usually ``W``'s d.
    feature_axis : {-1, -2}
        Which of the last two axes of ``W`` indexes features (see :func:`capopt.capacity`).
    regime_atol : float
        Capacities within this distance of 0 or 1 count as ignored or monosemantic, in ``W``
        and in the optimum (the default is the solvers'); weights trained by a stochastic
        optimiser need more, about their jitter.
    block_tol, zero_tol : float
        Tolerances of :func:`capopt.blocks` for the blocks of ``W``.

    Returns
    -------
    Comparison or list
        One :class:`Comparison` for a single ``W``; for ``W`` with leading instance axes,
        one per instance in nested lists of the instance shape (a plain list for one
        leading axis), all against the same optimum.

    Raises
    ------
    ValueError
        If ``W`` has fewer than two axes or non-finite entries, its feature count differs
        from ``curves.n_features``, ``feature_axis`` does not name one of its last two axes,
        the budget is negative or not finite, or a tolerance is negative.
    TypeError
        If ``curves`` is not a :class:`~capopt.curves.LossCurves` or ``W`` is not numeric.
    AllocationError
        If the solver produced no allocation at all (status FAILED): there is nothing to
        compare with. An optimum that is merely not certified (INACCURATE, UNPROVEN) is
        compared with, and :attr:`Comparison.certified` is False.

    Notes
    -----
    Capacities are compared, never weights: capacity and the models' losses are invariant
    under :math:`W \to QW` for orthogonal Q. Cost: the solve, plus :math:`O(d^2 N)` per
    instance for the capacities on the call; the loss and the blocks, :math:`O(dN^2)`, only
    when first read.

    References
    ----------
    A. Scherlis, K. Sachan, A. S. Jermyn, J. Benton, B. Shlegeris, "Polysemanticity and
    Capacity in Neural Networks", arXiv:2210.01892.

    Examples
    --------
    The worked case of theory §3 (two features in one neuron, K = 7): the optimal model
    against one that drops the second feature.

    >>> import numpy as np
    >>> import capopt
    >>> curves = capopt.quadratic([2.0, 1.0], 7.0)
    >>> best = compare(np.sqrt([[15 / 8, 3 / 8]]), curves, 1)
    >>> best.max_abs_error < 1e-12, best.regimes_agree, abs(best.loss_gap) < 1e-12
    (True, True, True)
    >>> dropped = compare([[2.0**0.5, 0.0]], curves, 1)
    >>> [(f.feature, f.measured.value, f.optimal.value) for f in dropped.differing]
    [(0, 'monosemantic', 'polysemantic'), (1, 'ignored', 'polysemantic')]
    >>> round(dropped.loss, 6), round(dropped.optimal.loss, 6)
    (6.0, 5.25)
    """
    problem = Problem(curves, budget)
    X = checked_weights(W, curves.n_features, feature_axis)
    tolerances = _tolerances(regime_atol, block_tol, zero_tol)
    optimal = solve(problem.curves, problem.budget, throw=False)
    if optimal.status is Status.FAILED:
        raise AllocationError(
            f"{optimal.method} produced no allocation to compare W with: {optimal.reason}",
            optimal,
        )
    return _comparisons(X, optimal, tolerances)


def checked_weights(W: ArrayLike, n_features: int, feature_axis: int) -> np.ndarray | da.Array:
    """``W`` features last, in its own dtype and container, checked to have ``n_features``
    features (ValueError otherwise, naming the axis to pass when the other one fits):
    what :func:`compare` checks before it solves.

    A comparison reads W again later (the loss and the blocks, on first access), so an
    array in memory is copied, in its own dtype; a file memory-mapped for reading (what
    :func:`capopt.load_weights` returns for ``.npy`` and safetensors files) and a dask
    array are kept as they are: at the size of a dictionary no copy is made, and no
    float64 one ever.
    """
    X, _ = _features_last_as_given(W, feature_axis)
    n, other = X.shape[-1], X.shape[-2]
    if n != n_features:
        last = feature_axis % X.ndim == X.ndim - 1
        shape = X.shape if last else X.shape[:-2] + (n, other)
        hint = (f"; its other axis has {other}: pass feature_axis={-2 if last else -1}"
                if other == n_features else "")
        raise ValueError(
            f"W has {n} features on feature_axis={feature_axis} (shape {shape}), but the "
            f"curves have curves.n_features = {n_features}; they must match{hint}"
        )
    if isinstance(X, np.ndarray) and (X.flags.writeable or not _mapped_file(X)):
        X = X.copy()
        X.setflags(write=False)
    return X


def _mapped_file(X: np.ndarray) -> bool:
    """Whether ``X``'s memory is a memory-mapped file (following its chain of views)."""
    base: Any = X
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, mmap.mmap)


def against_optimum(W: ArrayLike, optimal: AllocationResult, *, feature_axis: int = -1,
                    **tolerances: float) -> Comparison | list:
    """:func:`compare` with an allocation already solved, ``optimal`` (for the curves and
    budget it carries), e.g. certified with ``throw=True`` before training a model;
    ``feature_axis`` and ``tolerances`` (``regime_atol``, ``block_tol``, ``zero_tol``) are
    :func:`compare`'s keywords."""
    if not isinstance(optimal, AllocationResult) or optimal.status is Status.FAILED:
        raise TypeError(f"optimal must be a solved AllocationResult, got {optimal!r}")
    X = checked_weights(W, optimal.curves.n_features, feature_axis)
    return _comparisons(X, optimal, _tolerances(**tolerances))


def _tolerances(regime_atol: float = DEFAULT_REGIME_ATOL, block_tol: float = DEFAULT_BLOCK_TOL,
                zero_tol: float = DEFAULT_ZERO_TOL) -> tuple[float, float, float]:
    return (check_scalar(regime_atol, "regime_atol", minimum=0.0),
            check_scalar(block_tol, "block_tol", minimum=0.0),
            check_scalar(zero_tol, "zero_tol", minimum=0.0))


def _comparisons(X: np.ndarray | da.Array, optimal: AllocationResult,
                 tolerances: tuple[float, float, float]) -> Comparison | list:
    """One comparison per instance of the validated ``X`` (..., d, N)."""
    C = capacity(X)  # block by block at the size of a dictionary (capopt.capacity)
    C.setflags(write=False)

    def one(index: tuple[int, ...]) -> Comparison:
        return Comparison(C[index], optimal, X[index], *tolerances)

    if X.ndim == 2:
        return one(())
    out = np.empty(X.shape[:-2], dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = one(index)
    return out.tolist()
