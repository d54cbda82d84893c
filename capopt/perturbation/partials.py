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
differentiated in the budget only. :func:`structure_terms` gives, besides, the one-sided
marginals and the curvatures the KKT system needs; for the quadratic model each comes from
one pass of a numba kernel (:func:`capopt.solvers._kernels.quadratic_partials`).

The sensitivities work in the solver's units (:mod:`capopt.solvers.units`), where a family's
losses are the user's divided by :math:`2^E`; a parameter that scales as the loss to the
power u (:attr:`Parameter.loss_power`: 1/2 for the quadratic model's importances, 0 for
its kurtoses, 1 for the linear autoencoder's importances and a table's values) is then the
user's times :math:`2^{-uE}`, so its partials convert back exactly by a power of two:
:math:`\partial m / \partial \theta = 2^{E(1 - u)}\, \partial \hat m / \partial \hat\theta`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _formulas as F
from ..curves import LinearAutoencoderCurves, LossCurves, QuadraticCurves
from ..user_curves import TabulatedCurves

__all__ = ["Parameter", "parameters", "structure_terms"]


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
    loss_power : float
        u such that multiplying every loss by s multiplies the parameter by :math:`s^u`
        (the partials above then scale by :math:`s^{1 - u}`).
    """

    name: str
    shape: tuple[int, ...]
    marginal: np.ndarray
    loss: np.ndarray
    loss_power: float


def structure_terms(curves: LossCurves, C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""What the KKT system reads of the curves at capacities C: the one-sided marginals
    :math:`-\ell_i'(C_i^+)`, :math:`-\ell_i'(C_i^-)` (equal off the knots of a table; one
    array for the quadratic model) and the curvatures :math:`\ell_i''(C_i)`, each shape (N,).
    """
    C = np.ascontiguousarray(C, dtype=np.float64)
    if isinstance(curves, QuadraticCurves):
        from ..solvers._kernels import quadratic_partials

        out = np.empty((2, C.size))
        quadratic_partials(C, *curves.kernel_arrays(), out)
        return out[0], out[0], out[1]
    right, left = curves.one_sided_marginals(C)
    return right, left, curves.curvature(C)


def _per_feature(name: str, marginal, loss, n: int, loss_power: float) -> Parameter:
    """A parameter with one value per feature."""
    as_column = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).reshape(n, 1)  # noqa: E731
    return Parameter(name, (n,), as_column(marginal), as_column(loss), loss_power)


def parameters(curves: LossCurves, C: np.ndarray) -> tuple[Parameter, ...]:
    """The family's parameters with their partials at capacities ``C`` (shape (N,)).

    Empty for families whose parameters capopt does not know (curves given as functions).
    """
    n = curves.n_features
    C = np.ascontiguousarray(C, dtype=np.float64)
    if isinstance(curves, QuadraticCurves):
        from ..solvers._kernels import quadratic_partials

        out = np.empty((6, n))
        quadratic_partials(C, *curves.kernel_arrays(), out)
        _, _, dm_dv, dm_dK, dl_dv, dl_dK = out
        # Losses scale as v^2 at fixed K.
        return (_per_feature("importance", dm_dv, dl_dv, n, 0.5),
                _per_feature("kurtosis", dm_dK, dl_dK, n, 0.0))
    if isinstance(curves, LinearAutoencoderCurves):
        I = curves.importance  # noqa: E741 -- the importance's name in the paper
        return (_per_feature("importance", F.linear_autoencoder_marginal_d_importance(C, I),
                             F.linear_autoencoder_loss_d_importance(C, I), n, 1.0),)
    if isinstance(curves, TabulatedCurves):
        dm, dl = curves.value_partials(C)
        return (Parameter("values", curves.values.shape, dm, dl, 1.0),)
    return ()
