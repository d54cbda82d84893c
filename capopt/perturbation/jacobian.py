r"""The Jacobian of optimal capacities in per-feature parameters, as a structured operator.

On the active set F (the features strictly inside their pieces) the implicit derivative of
the optimum in parameters :math:`\theta` is

.. math::

    \frac{\partial C_F}{\partial \theta} = Q^\top \operatorname{diag}(g)\, Q\, B,
    \qquad Q = I - \mathbf 1 w^\top,

with :math:`g_i = 1/\ell_i''(C_i)` the inverse curvatures, :math:`w` the border (how the
multiplier follows the marginals: :math:`\partial\lambda = w^\top \partial m`) and
:math:`B` the partials :math:`\partial m_i / \partial \theta_{ip}` of each feature's
marginal in its own parameters. With a binding budget and no linear curve in F,
:math:`w = g / \sum_F g`, and :math:`Q^\top \operatorname{diag}(g) Q = \operatorname{diag}(g)
- g g^\top / \sum_F g`: a diagonal plus a rank-one term (Sherman--Morrison on the bordered
KKT matrix). One linear curve z in F pins the multiplier to its marginal: :math:`w = e_z`,
:math:`g_z = 0`. A slack budget has :math:`w = 0`. Rows of features outside F are zero,
since such a feature stays at its bound or knot.

Applying the operator costs O(N P) for P parameters per feature (the numba kernel
:func:`capopt._kernels.kkt.apply_border`, which the sweeps use too); :meth:`CapacityJacobian.todense`
forms the N x NP matrix for small N.

Glossary: ``F`` active features, ``g`` inverse curvatures (0 off F), ``w`` border (0 off F), ``B``
partials (N, P), ``P`` parameters per feature.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .._kernels.kkt import apply_border
from .._typing import ArrayLike

__all__ = ["CapacityJacobian"]


class CapacityJacobian(LinearOperator):
    r""":math:`\partial C^* / \partial \theta` for P parameters per feature, shape (N, N P).

    Columns are the parameters flattened in C order: column ``j * P + p`` is
    :math:`\theta_{jp}`, the p-th parameter of feature j (P = 1 for importances and
    kurtoses). ``J @ x`` is the first-order change of the capacities for a change ``x`` of
    the parameters, ``J.T @ u`` (``rmatvec``) the gradient of :math:`u^\top C^*`; both
    O(N P). ``J.todense()`` (or ``J @ np.eye(N * P)``) is the dense matrix. For one
    parameter shared by all features (one kurtosis), the derivative is
    ``J @ np.ones(N)``.

    Attributes
    ----------
    features : ndarray of int
        The active set F; rows outside it are zero (or NaN where undetermined).
    inverse_curvature : ndarray, shape (N,)
        :math:`g_i = 1 / \ell_i''(C_i)` on F, 0 elsewhere (and for a linear curve that
        pins the multiplier).
    border : ndarray, shape (N,)
        :math:`w`: :math:`\partial\lambda / \partial m_i`, 0 outside F.
    partials : ndarray, shape (N, P)
        :math:`\partial m_j / \partial \theta_{jp}` at the optimum.
    undetermined : ndarray of bool, shape (N,)
        Features whose capacity is not locally determined by the KKT system (tied
        vertices, tied linear curves): their rows are NaN, and a change of their
        parameters gives NaN everywhere.
    """

    def __init__(self, features: ArrayLike, inverse_curvature: ArrayLike, border: ArrayLike,
                 partials: ArrayLike, undetermined: ArrayLike) -> None:
        self.features = np.asarray(features, dtype=np.intp)
        self.inverse_curvature = np.asarray(inverse_curvature, dtype=np.float64)
        self.border = np.asarray(border, dtype=np.float64)
        n = self.inverse_curvature.size
        self.partials = np.asarray(partials, dtype=np.float64).reshape(n, -1)
        self.undetermined = np.asarray(undetermined, dtype=bool)
        self._per_feature = self.partials.shape[1]
        self._any_undetermined = bool(self.undetermined.any())
        super().__init__(np.float64, (n, n * self._per_feature))

    def _core(self, y: np.ndarray) -> np.ndarray:
        r""":math:`Q^\top \operatorname{diag}(g) Q y` for each column y (symmetric)."""
        rows = np.ascontiguousarray(y.T)
        out = np.empty_like(rows)
        apply_border(self.inverse_curvature, self.border, rows, out)
        return out.T

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        n, k = self.shape[0], X.shape[1]
        X = np.asarray(X, dtype=np.float64).reshape(n, self._per_feature, k)
        y = X[:, 0, :] * self.partials[:, :1] if self._per_feature == 1 else np.einsum("np,npk->nk", self.partials, X)
        out = self._core(y)
        if self._any_undetermined:
            out[self.undetermined] = np.nan
            out[:, np.any(X[self.undetermined] != 0, axis=(0, 1))] = np.nan
        return out

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._matmat(np.asarray(x).reshape(-1, 1))[:, 0]

    def _rmatmat(self, U: np.ndarray) -> np.ndarray:
        n, k = U.shape
        out = self.partials[:, :, None] * self._core(np.asarray(U, dtype=np.float64))[:, None, :]
        if self._any_undetermined:
            out[self.undetermined] = np.nan
            out[:, :, np.any(U[self.undetermined] != 0, axis=0)] = np.nan
        return out.reshape(n * self._per_feature, k)

    def _rmatvec(self, u: np.ndarray) -> np.ndarray:
        return self._rmatmat(np.asarray(u).reshape(-1, 1))[:, 0]

    def _adjoint(self) -> LinearOperator:
        return LinearOperator(self.dtype, (self.shape[1], self.shape[0]),
                              matvec=self._rmatvec, rmatvec=self._matvec,
                              matmat=self._rmatmat, rmatmat=self._matmat)

    def todense(self) -> np.ndarray:
        """The dense N x NP matrix (O(N^2 P) memory: for small N)."""
        n, P = self.shape[0], self._per_feature
        out = self._core(np.eye(n))[:, :, None] * self.partials[None, :, :]
        out[self.undetermined] = np.nan
        out[:, self.undetermined] = np.nan
        return out.reshape(n, n * P)

    def __repr__(self) -> str:
        n, cols = self.shape
        return (f"<CapacityJacobian {n}x{cols}: {self.features.size} active features, "
                f"{int(self.undetermined.sum())} undetermined>")
