r"""Block energies of the TMS ReLU autoencoder: the loss per feature of a block, minimised.

For a configuration t (k unit vectors in m dimensions, :mod:`capopt.tms.configurations`) with
every feature at squared norm :math:`a` and bias :math:`b`, each feature loses
:math:`L_t(a, b; p)` (:func:`capopt.tms.losses.configuration_loss`, exact). The block energy

.. math::

    e_t(p) = \min_{a \ge 0,\ b} L_t(a, b; p)

is the loss per feature of unit importance at the best norm and bias (and, for a shape with
free parameters such as an antiprism's height, the best shape). Ignoring a feature costs
:math:`e_0 = p/3 - p^2/4`, its loss at the best constant output :math:`b = p/2`
(:func:`capopt.tms.losses.ignored_loss`; :math:`p/3` is the cost at :math:`b = 0`, a
baseline that overstates every block's gain by :math:`p^2/4` per feature). A block removes
:math:`e_0 - e_t` per feature and :math:`(e_0 - e_t)\, k/m` per dimension it spans: the
figure of merit by which blocks compete for the dimensions when features are many and equally
important.

Glossary: ``a`` squared norm, ``b`` bias, ``p`` density, ``e`` block energy, ``k``/``m``
features/dimensions of a block, ``x`` the minimised coordinates (a, b, *shape parameters).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from .._typing import ArrayLike
from .._validation import as_float_array
from .configurations import Configuration, LargeFrame
from .losses import _checked_density, configuration_loss, ignored_bias, ignored_loss

__all__ = ["BlockEnergy", "block_energy", "block_energies", "minimise"]


@dataclass(frozen=True, repr=False)
class BlockEnergy:
    r"""The minimised loss per feature of a block, :math:`e_t(p) = \min_{a \ge 0, b} L_t`.

    Attributes
    ----------
    configuration : Configuration or LargeFrame
        The block, with its free shape parameters (an antiprism's height) at the optimum.
    density : float
    energy : float
        :math:`e_t(p)`, per feature, unit importance.
    norm_squared, bias : float
        The optimal :math:`a^*` and :math:`b^*` (0 and p/2 when ignoring beats the block).
    stationarity : float
        Certificate: the largest central-difference partial derivative of the loss at the
        optimum over the coordinates strictly inside their bounds (~1e-8 at a true minimum).
    """

    configuration: Configuration | LargeFrame
    density: float
    energy: float
    norm_squared: float
    bias: float
    stationarity: float

    @property
    def gain(self) -> float:
        """Loss removed per feature relative to ignoring it, :math:`p/3 - p^2/4 - e_t`."""
        return ignored_loss(self.density) - self.energy

    @property
    def gain_per_dimension(self) -> float:
        r"""Loss removed per dimension, :math:`(p/3 - p^2/4 - e_t)\,k/m` (0 for ``ignored``)."""
        dims = self.configuration.dimensions_per_feature
        return self.gain / dims if dims > 0 else 0.0

    def __repr__(self) -> str:
        return (f"BlockEnergy({self.configuration.name}, p={self.density:g}: e={self.energy:.10g}"
                f", a={self.norm_squared:.6g}, b={self.bias:.6g})")


#: Starting grid of the minimisation. The optima of the named configurations and of large
#: frames lie in a in [0.03, 1.45], b in [-0.45, 0.5] (b tends to p/2 as a tends to 0, at
#: dense inputs, where a block degrades to its features' means).
_GRID_A = np.linspace(0.1, 2.0, 12)
_GRID_B = np.linspace(-1.0, 0.6, 17)
#: Box of (a, b) searched; no optimum comes near its edges.
_BOUNDS_A = (1e-6, 5.0)
_BOUNDS_B = (-5.0, 2.0)
#: Nelder–Mead stops when the simplex is this small in every coordinate and its values agree
#: to _FATOL; the energy is then within ~1e-16 of its minimum (quadratic in the distance).
#: Smaller steps would change the loss by less than its rounding (~1e-17), and the simplex
#: would wander instead of shrinking.
_XATOL = 1e-8
_FATOL = 1e-14
#: Edges of Nelder–Mead's first simplex: the grid's spacing, then a restart at 1/100 of it.
_SIMPLEX_STEPS = (0.1, 1e-3)
#: Relative step of the central differences of the certificate.
_CERTIFICATE_STEP = 1e-6


def _stationarity(objective: Callable[[np.ndarray], float], x: np.ndarray,
                  bounds: Sequence[tuple[float, float]]) -> float:
    worst = 0.0
    for i, (lo, hi) in enumerate(bounds):
        h = _CERTIFICATE_STEP * max(1.0, abs(x[i]))
        if x[i] - h <= lo or x[i] + h >= hi:
            continue
        step = np.zeros_like(x)
        step[i] = h
        worst = max(worst, abs(objective(x + step) - objective(x - step)) / (2 * h))
    return worst


def minimise(objective: Callable[[np.ndarray], float], shape: Sequence[float],
             shape_bounds: Sequence[tuple[float, float]]) -> tuple[np.ndarray, float, float]:
    """Minimise ``objective(x)``, x = (a, b, *shape), over a box: grid, then Nelder–Mead.

    Parameters
    ----------
    objective : callable
        The loss at x = (a, b, *shape), smooth in the interior.
    shape : sequence of float
        Starting values of the shape parameters (may be empty).
    shape_bounds : sequence of (float, float)
        Their open bounds.

    Returns
    -------
    x : ndarray
        The minimiser.
    minimum : float
    stationarity : float
        The largest central-difference partial derivative at x over the coordinates inside
        their bounds.

    Notes
    -----
    The best point of a grid over (a, b) at the given shape starts a bounded Nelder–Mead,
    restarted once from its answer with a smaller simplex.
    """
    grid = [(objective(np.array([a, b, *shape])), a, b) for a, b in
            itertools.product(_GRID_A, _GRID_B)]
    _, a0, b0 = min(grid)
    bounds = [_BOUNDS_A, _BOUNDS_B, *[(lo + 1e-9, hi - 1e-9) for lo, hi in shape_bounds]]
    x = np.array([a0, b0, *shape])
    # scipy's default first simplex scales with |x_i| and collapses at a coordinate near 0
    # (b = 0 is on the grid): steps of the grid's spacing, then a finer restart.
    for step in _SIMPLEX_STEPS:
        simplex = np.vstack([x, x + step * np.eye(x.size)])
        simplex = np.clip(simplex, [lo for lo, _ in bounds], [hi for _, hi in bounds])
        result = optimize.minimize(objective, x, method="Nelder-Mead", bounds=bounds,
                                   options={"xatol": _XATOL, "fatol": _FATOL, "maxfev": 20000,
                                            "adaptive": len(x) > 2,
                                            "initial_simplex": simplex})
        x = result.x
    return x, float(result.fun), _stationarity(objective, x, bounds)


def _ignoring(configuration: Configuration | LargeFrame, p: float) -> BlockEnergy:
    """Ignoring the features: a = 0 and the best constant output, b = p/2."""
    return BlockEnergy(configuration, p, ignored_loss(p), 0.0, ignored_bias(p), 0.0)


def _settle(configuration: Configuration | LargeFrame, p: float, x: np.ndarray, e: float,
            certificate: float) -> BlockEnergy:
    """The block energy, or ignoring when that is no worse."""
    if e >= ignored_loss(p):
        return _ignoring(configuration, p)
    return BlockEnergy(configuration, p, e, float(x[0]), float(x[1]), certificate)


def block_energy(configuration: Configuration, density: float, *,
                 optimise_shape: bool = True) -> BlockEnergy:
    r"""The block energy :math:`e_t(p) = \min_{a \ge 0,\, b} L_t(a, b; p)` of a configuration.

    Parameters
    ----------
    configuration : Configuration
    density : float
    optimise_shape : bool
        Also minimise over the configuration's free parameters (an antiprism's height),
        starting from their current values; otherwise keep them.

    Returns
    -------
    BlockEnergy

    Notes
    -----
    :func:`minimise`: the best of a 12 x 17 grid over (a, b), then bounded Nelder–Mead (from
    its answer once more). :math:`L_t` is smooth in (a, b) away from a = 0; the point a = 0
    (ignoring, :math:`p/3 - p^2/4` at b = p/2) is compared separately. A few hundred loss
    evaluations.

    Examples
    --------
    >>> from capopt.tms.configurations import CONFIGURATIONS
    >>> block_energy(CONFIGURATIONS["dedicated"], 0.3).energy < 1e-14
    True
    """
    p = _checked_density(density)
    if configuration.dimensions == 0:
        return _ignoring(configuration, p)
    names = list(configuration.free_parameters) if optimise_shape else []

    def shaped(x: np.ndarray) -> Configuration:
        if not names:
            return configuration
        return configuration.with_parameters(**dict(zip(names, map(float, x[2:]))))

    def objective(x: np.ndarray) -> float:
        return configuration_loss(shaped(x), x[0], x[1], p)

    x, e, certificate = minimise(objective, [getattr(configuration, n) for n in names],
                                 [configuration.free_parameters[n] for n in names])
    return _settle(shaped(x), p, x, e, certificate)


def block_energies(configuration: Configuration, densities: ArrayLike, *,
                   optimise_shape: bool = True) -> tuple[BlockEnergy, ...]:
    """:func:`block_energy` at each density (the rows of the finite sum are cached)."""
    p = as_float_array(densities, "densities").ravel()
    return tuple(block_energy(configuration, float(q), optimise_shape=optimise_shape) for q in p)
