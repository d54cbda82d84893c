r"""Energy of one large near-tight frame of the TMS ReLU autoencoder: the sign model.

At low density the autoencoder packs many features into one block: k unit vectors in
m << k dimensions, close to tight. The exact finite sum of :mod:`capopt.tms.energies` needs
:math:`\prod_g (n_g+1)(n_g+2)/2` rows and its alternating terms lose ~k digits, so a large
frame is described by a model and its loss computed numerically.

**The model.** Feature i sees each of the k - 1 others at a cosine of magnitude
:math:`|c| = \sqrt{(k - m)/(m (k - 1))}` (the Welch bound) with sign + or - equally likely,
independently. Why: in a unit-norm tight frame every vertex has
:math:`\sum_{j \ne i} c_{ij}^2 = k/m - 1` (:math:`G^2 = (k/m) G`), so the second moment of
its interference is fixed; the Welch bound spreads it evenly, as an equiangular tight frame
does, and no frame has a smaller largest cosine. The signs only matter through the
interference :math:`\sum_j c_{ij} x_j`; taking them as fair coins treats the frame as
balanced (its vertices summing to about 0, so half the cosines a vertex sees are negative),
and makes the interference of j active features :math:`\lambda \sum_{l \le j} V_l` with
:math:`\lambda = a |c|` and :math:`V_l \sim U[-1, 1]`.

**The numerics.** With :math:`W_j` the sum of j uniforms on :math:`[-1/2, 1/2]`,
interference is :math:`2\lambda W_j`, :math:`j \sim \mathrm{Binomial}(k - 1, p)`. The density
:math:`D_j` of :math:`W_j` is a spline of degree j - 1 with knots on the half-integers and obeys
the B-spline recurrence (all weights >= 0, so stable)

.. math::

    D_j(w) = \frac{(w + j/2)\, D_{j-1}(w + \tfrac12) + (j/2 - w)\, D_{j-1}(w - \tfrac12)}{j - 1}.

Tabulated at the Gauss–Legendre nodes of every half-integer interval (a shift by 1/2 maps
nodes to nodes), the mixture :math:`M = \sum_{j \ge 1} \Pr(j) D_j` gives the tail moments
:math:`\int_{w > y} (w - y)^Q M(w)\, dw` by Gauss–Legendre on each interval to the right of
y, and on the part of y's own interval by barycentric interpolation of M to its nodes. The
rule integrates :math:`D_j (w - y)^Q` exactly for :math:`j + Q \le 2\cdot` :data:`NODES`;
beyond, :math:`D_j` is smooth on an interval of width 1/2 (its standard deviation
:math:`\sqrt{j/12}` exceeds 1.9) and the error is far below rounding. Measured against the
exact alternating sum in 60-120-digit mpmath (k <= 300, m = 10..30, p = 0.1..1): within
3e-16; against the exact sum mixed over sign counts (k <= 14): within 6e-16.

Glossary: ``k`` size, ``m`` dimensions, ``c`` the Welch-bound cosine, ``lam`` its multiple
:math:`a|c|`, ``j`` active others, ``w`` the interference in units of :math:`2\lambda`, ``M``
the mixture density, ``y`` a truncation point, ``Q`` a power.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .._typing import ArrayLike
from .._validation import as_float_array, check_scalar
from .configurations import LargeFrame
from .energies import BlockEnergy, _settle, minimise
from .losses import _checked_density, loss_terms

__all__ = ["frame_loss", "frame_energy", "frame_energies", "NODES"]

#: Gauss–Legendre nodes per half-integer interval (see the module docstring).
NODES = 24

#: Active counts whose binomial upper tail is below this are left out (a relative change of
#: the loss of at most ~this, losses being >= 1e-4 where the tail matters).
_TAIL = 1e-20

#: Intervals where the mixture density is below this fraction of its peak are dropped: their
#: share of a tail moment, (w - y)^Q M with |w - y| < k, stays below 1e-16.
_NEGLIGIBLE = 1e-24


@dataclass(frozen=True)
class _Mixture:
    """The interference law in units of 2 lam: an atom ``zero`` at 0, and density ``M``
    at ``nodes`` (rows: half-integer intervals with left ends ``left``)."""

    zero: float
    left: np.ndarray   # (rows,)
    nodes: np.ndarray  # (rows, NODES) points w
    M: np.ndarray      # (rows, NODES)


@functools.cache
def _rule(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [0, 1/2], and the nodes' barycentric weights."""
    x, w = np.polynomial.legendre.leggauss(n)
    x, w = (x + 1) / 4, w / 4
    bary = 1.0 / np.prod(x[:, None] - x[None, :] + np.eye(n), axis=1)
    return x, w, bary


@functools.lru_cache(maxsize=512)
def _mixture(others: int, p: float, n: int = NODES) -> _Mixture:
    """The mixture over j ~ Binomial(others, p) of the densities D_j, tabulated."""
    pmf = stats.binom.pmf(np.arange(others + 1), others, p)
    tail = stats.binom.sf(np.arange(others + 1), others, p)  # P(j > index)
    top = int(np.argmax(tail < _TAIL)) if np.any(tail < _TAIL) else others
    x, _, _ = _rule(n)
    left = np.arange(-max(top, 1), max(top, 1)) / 2
    nodes = left[:, None] + x[None, :]
    M = np.zeros_like(nodes)
    D = ((nodes >= -0.5) & (nodes <= 0.5)).astype(float)  # D_1
    for j in range(1, top + 1):
        if j > 1:
            up, down = np.zeros_like(D), np.zeros_like(D)
            up[:-1], down[1:] = D[1:], D[:-1]  # D_{j-1}(w + 1/2), D_{j-1}(w - 1/2)
            D = ((nodes + j / 2) * up + (j / 2 - nodes) * down) / (j - 1)
        M += pmf[j] * D
    keep = np.max(M, axis=1) > _NEGLIGIBLE * max(float(M.max()), 1e-300)
    return _Mixture(float(pmf[0]), left[keep], nodes[keep], M[keep])


def _tail_moment(mix: _Mixture, y: float, Q: int) -> float:
    r""":math:`\int_{w > y} (w - y)^Q M(w)\, dw`."""
    x, weights, bary = _rule(mix.nodes.shape[1])
    right = mix.left > y
    total = float(np.sum(weights * (mix.nodes[right] - y) ** Q * mix.M[right]))
    inside = np.flatnonzero((mix.left <= y) & (y < mix.left + 0.5))
    if inside.size:
        i = inside[0]
        end = mix.left[i] + 0.5
        t = y + (end - y) * 2 * x                      # the nodes of [y, end]
        diff = (t - mix.left[i])[:, None] - x[None, :]
        hit = diff == 0
        basis = np.where(hit.any(axis=1, keepdims=True), hit.astype(float),
                         bary / np.where(hit, 1.0, diff))
        values = basis @ mix.M[i] / basis.sum(axis=1)
        total += float(np.sum(weights * 2 * (end - y) * (t - y) ** Q * values))
    return total


def _loss(frame: LargeFrame, a: float, b: float, p: float) -> float:
    mix = _mixture(frame.size - 1, p)
    step = 2 * frame.coherence  # 2 lam / a: w in units of r / a
    constant, terms = loss_terms(a, p)
    total = constant
    for sigma, Q, coefficient in terms:
        shift = b / a + sigma
        moment = mix.zero * max(shift, 0.0) ** Q + step**Q * _tail_moment(mix, -shift / step, Q)
        total += coefficient * moment
    return total


def frame_loss(frame: LargeFrame, norm_squared: float, bias: float, density: float) -> float:
    r"""Loss of each feature of a large frame in the sign model, :math:`L(a, b; p)`.

    .. math::

        L = \mathbb E\Bigl[\bigl(x_i - \mathrm{ReLU}(a x_i + a |c| \textstyle\sum_{j \ne i}
        \epsilon_j x_j + b)\bigr)^2\Bigr], \quad \epsilon_j = \pm 1 \text{ fair},\
        |c| = \sqrt{\tfrac{k - m}{m (k - 1)}}.

    Parameters
    ----------
    frame : LargeFrame
    norm_squared, bias, density : float
        :math:`a > 0`, :math:`b`, :math:`p \in [0, 1]`.

    Returns
    -------
    float
        Within ~1e-15 of the model's exact value (module docstring).

    Notes
    -----
    The mixture table is built once per (k, p) in :math:`O(j_{\max}^2 \cdot` NODES) and
    cached; a loss is then O(rows x NODES), rows ~ 20 sqrt(j) intervals.

    Examples
    --------
    >>> from capopt.tms.configurations import LargeFrame
    >>> round(frame_loss(LargeFrame(60, 10), 1.0, -0.2, 0.2), 10)
    0.1139332195
    """
    a = check_scalar(norm_squared, "norm_squared", minimum=0.0)
    b = check_scalar(bias, "bias")
    p = _checked_density(density)
    if a == 0:
        raise ValueError("norm_squared must be > 0 in a frame; a = 0 is ignoring the features")
    return _loss(frame, a, b, p)


def frame_energy(frame: LargeFrame, density: float) -> BlockEnergy:
    r"""The energy :math:`\min_{a \ge 0, b} L(a, b; p)` per feature of a large frame.

    Minimised as :func:`capopt.tms.energies.block_energy` does; ignoring (a = 0, b = p/2,
    energy p/3 - p^2/4) when that is no worse.

    Examples
    --------
    >>> from capopt.tms.configurations import LargeFrame
    >>> frame_energy(LargeFrame(60, 20), 0.05).energy < 0.05 / 3
    True
    """
    p = _checked_density(density)
    x, e, certificate = minimise(lambda x: _loss(frame, x[0], x[1], p), [], [])
    return _settle(frame, p, x, e, certificate)


def frame_energies(frame: LargeFrame, densities: ArrayLike) -> tuple[BlockEnergy, ...]:
    """:func:`frame_energy` at each density."""
    p = as_float_array(densities, "densities").ravel()
    return tuple(frame_energy(frame, float(q)) for q in p)
