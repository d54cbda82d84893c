r"""Each family's parameters and the partials of its curves in them, at fixed capacity.

The sensitivities differentiate the optimum in the parameters :math:`\theta_{jp}` that
define feature j's curve; what they need of a family is, at the optimum's capacities,

.. math::

    \frac{\partial m_j}{\partial \theta_{jp}}, \qquad
    \frac{\partial \ell_j}{\partial \theta_{jp}} \qquad (m = -\ell'),

for every parameter of every feature (a feature's curve depends on its own parameters
only). The quadratic model has its importances v and kurtoses K (partials derived in
``derivations/quadratic.py``), the linear autoencoder its importances, a table its values
at the knots; curves given as functions have no parameters known to capopt, and are
differentiated in the budget only. :func:`local_terms` gathers, besides, the one-sided
marginals and the curvatures the KKT system needs; for the quadratic model all of it comes
from one pass of a numba kernel (:func:`capopt.solvers._kernels.quadratic_partials`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _formulas as F
from ..curves import LinearAutoencoderCurves, LossCurves, QuadraticCurves
from ..solvers._kernels import quadratic_partials
from ..user_curves import TabulatedCurves

__all__ = ["Parameter", "LocalTerms", "parameters", "local_terms"]


@dataclass(frozen=True)
class Parameter:
    r"""One named parameter of a family, and its partials at fixed capacities.

    Attributes
    ----------
    name : str
        As the family's constructor calls it (``"importance"``, ``"kurtosis"``,
        ``"values"``).
    shape : tuple of int
        The parameter's shape: (N,), or (N, P) for P values per feature.
    marginal : ndarray, shape (N, P)
        :math:`\partial m_j / \partial \theta_{jp}`.
    loss : ndarray, shape (N, P)
        :math:`\partial \ell_j / \partial \theta_{jp}`.
    """

    name: str
    shape: tuple[int, ...]
    marginal: np.ndarray
    loss: np.ndarray


@dataclass(frozen=True)
class LocalTerms:
    r"""What the KKT system of an optimum reads of the curves at its capacities C.

    Attributes
    ----------
    right, left : ndarray, shape (N,)
        One-sided marginals :math:`-\ell_i'(C_i^+)`, :math:`-\ell_i'(C_i^-)` (equal off
        the knots of a table).
    curvature : ndarray, shape (N,)
        :math:`\ell_i''(C_i)`.
    parameters : tuple of Parameter
        The family's parameters with their partials.
    """

    right: np.ndarray
    left: np.ndarray
    curvature: np.ndarray
    parameters: tuple[Parameter, ...]


def local_terms(curves: LossCurves, C: np.ndarray) -> LocalTerms:
    """The one-sided marginals, curvatures and parameter partials of ``curves`` at ``C``."""
    if isinstance(curves, QuadraticCurves):
        shared = curves.shared_kurtosis
        K = np.array([shared]) if shared is not None else np.ascontiguousarray(curves.kurtosis)
        out = np.empty((6, C.size))
        quadratic_partials(np.ascontiguousarray(C, dtype=np.float64), curves.importance, K, out)
        m, h, dm_dv, dm_dK, dl_dv, dl_dK = out
        n = curves.n_features
        return LocalTerms(m, m, h, (_per_feature("importance", dm_dv, dl_dv, n),
                                    _per_feature("kurtosis", dm_dK, dl_dK, n)))
    right, left = curves.one_sided_marginals(C)
    return LocalTerms(right, left, curves.curvature(C), parameters(curves, C))


def _per_feature(name: str, marginal, loss, n: int) -> Parameter:
    """A parameter with one value per feature."""
    as_column = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).reshape(n, 1)  # noqa: E731
    return Parameter(name, (n,), as_column(marginal), as_column(loss))


def parameters(curves: LossCurves, C: np.ndarray) -> tuple[Parameter, ...]:
    """The family's parameters with their partials at capacities ``C`` (shape (N,)).

    Empty for families whose parameters capopt does not know (curves given as functions).
    """
    n = curves.n_features
    if isinstance(curves, QuadraticCurves):
        return local_terms(curves, np.asarray(C, dtype=np.float64)).parameters
    if isinstance(curves, LinearAutoencoderCurves):
        I = curves.importance  # noqa: E741 -- the importance's name in the paper
        return (_per_feature("importance", F.linear_autoencoder_marginal_d_importance(C, I),
                             F.linear_autoencoder_loss_d_importance(C, I), n),)
    if isinstance(curves, TabulatedCurves):
        dm, dl = curves.value_partials(C)
        return (Parameter("values", curves.values.shape, dm, dl),)
    return ()
