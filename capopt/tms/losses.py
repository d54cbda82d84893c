r"""Exact expected loss of a feature of the TMS ReLU autoencoder (theory §4).

The model: inputs :math:`x_j = B_j U_j`, :math:`B_j \sim \mathrm{Bernoulli}(p)`,
:math:`U_j \sim U[0, 1]`, all independent; output :math:`\hat x = \mathrm{ReLU}(W^\top W x + b)`.
Feature i's expected loss, with :math:`a = G_{ii}` and :math:`\lambda_j = G_{ij}`:

.. math::

    L_i = \mathbb E\bigl[(x_i - \mathrm{ReLU}(a x_i + r))^2\bigr], \qquad
    r = b_i + \sum_{j \ne i} \lambda_j x_j .

**Conditioning.** Group the couplings by value, :math:`\lambda_g` with multiplicity
:math:`n_g`; the number :math:`\kappa_g` of active features in group g is binomial, and given
:math:`\kappa`, :math:`r = b + a \sum_g c_g T_g` with :math:`c_g = \lambda_g / a` and
:math:`T_g` a sum of :math:`\kappa_g` uniforms (Irwin–Hall). Integrating :math:`x_i` first
(``derivations/tms.py``):

.. math::

    L_i = \sum_\kappa \Pr(\kappa)\Bigl[p\,\mathbb E F(r) + (1 - p)\,a^2\,
    \mathbb E (r/a)_+^2\Bigr], \qquad
    F(r) = \tfrac13 - a (r/a + 1)_+^2 + \tfrac{a (1 + a)}{3}
    \bigl[(r/a + 1)_+^3 - (r/a)_+^3\bigr].

**Box splines.** For nonzero :math:`\lambda_j` and integer :math:`Q \ge 0`,

.. math::

    \int_{[0,1]^n} \Bigl(\beta + \sum_j \lambda_j u_j\Bigr)_+^Q du
    = \frac{Q!}{(Q + n)!\, \prod_j \lambda_j}
      \sum_{T \subseteq [n]} (-1)^{n - |T|} \Bigl(\beta + \sum_{j \in T} \lambda_j\Bigr)_+^{Q+n}

(one uniform at a time: :math:`\int_0^1 (\beta + \lambda u)_+^Q du =
[(\beta + \lambda)_+^{Q+1} - \beta_+^{Q+1}]/((Q + 1)\lambda)`, whatever the sign of
:math:`\lambda`). Within a group the subsets collapse to counts :math:`t_g \le \kappa_g` with
weight :math:`\binom{\kappa_g}{t_g}`, so :math:`L_i` is a finite sum over rows
:math:`(\kappa, t)` of :math:`\prod_g \binom{n_g}{\kappa_g}\binom{\kappa_g}{t_g}`
:math:`(-1)^{\kappa_g - t_g}\, p^{n}(1-p)^{N-n} / \prod_g c_g^{\kappa_g}` times
:math:`Q!/(Q+n)!\,(b/a + \sigma + \sum_g t_g c_g)_+^{Q+n}`, :math:`n = \sum_g \kappa_g`,
:math:`N = \sum_g n_g`.

**Accuracy.** The alternating sum loses digits as its terms outgrow its value, roughly as
:math:`(|b|/a + 1 + \sum_g n_g |c_g|)^{Q+n} / \prod_g |c_g|^{\kappa_g}` against a loss of
order 0.01: positive biases and small norms lose most. Each evaluation bounds its own
rounding error (:func:`_sum`); above :data:`FLOAT64_BUDGET` the sum is redone in long double,
then in mpmath with as many digits as the bound says were lost and 20 more. Measured against
80-digit mpmath on the configurations of
:data:`~capopt.tms.configurations.CONFIGURATIONS`: float64 is within 1.5e-14 for
a in [0.3, 2], b in [-1, 0.5], any p, and within 1e-10 while b/a <= 4 (the 12 vertices of the
icosahedron at p = 1); at a in [0.02, 0.3], b in [0, 0.6] it loses up to 1e-5 (pentagonal
antiprism), which the bound detects. The value returned was within 1e-14 at every point
measured, and the bound held at every one.

Glossary: ``a`` squared norm :math:`G_{ii}`, ``b`` bias, ``p`` density, ``c`` couplings over
``a`` (cosines, in a block), ``n`` a multiplicity or an active count, ``kappa`` active counts
per group, ``t`` subset counts per group, ``sigma`` the shift (0 or 1) of a truncated power,
``Q`` its power, ``e`` a block energy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import comb

from .. import _formulas as F
from .._typing import ArrayLike
from .._validation import as_float_array, check_scalar
from .configurations import Configuration, group_values

__all__ = [
    "feature_loss",
    "configuration_loss",
    "embedding_loss",
    "ignored_loss",
    "ignored_bias",
    "loss_terms",
    "FLOAT64_BUDGET",
    "MAX_ROWS",
]

#: Largest rounding error (absolute; losses are 1e-4..1) a loss may carry before it is
#: recomputed in a longer number type. 100x below the 1e-10 the energies are quoted to.
FLOAT64_BUDGET = 1e-12

#: Rows of the finite sum above which :func:`feature_loss` refuses (memory ~100 bytes a row):
#: the dodecahedron needs 235 200; a large frame needs the model of ``large_frames``.
MAX_ROWS = 2_000_000

#: Significant digits mpmath carries beyond the magnitude of the largest sum of terms: the
#: result is then exact to ~1e-20 relative to that magnitude.
_EXTRA_DIGITS = 20


def _active_coefficients(a: Any) -> tuple[tuple[int, int, Any], ...]:
    r"""F(r) - 1/3 as :math:`\sum \gamma(a)\,(r/a + \sigma)_+^Q`: rows (sigma, Q, gamma).

    Derived and asserted in ``derivations/tms.py``.
    """
    cube = F.tms_active_cube_coefficient(a)
    return ((1, 2, F.tms_active_square_coefficient(a)), (1, 3, cube), (0, 3, -cube))


def loss_terms(a: Any, p: Any) -> tuple[Any, tuple[tuple[int, int, Any], ...]]:
    r"""L as :math:`p/3 + \sum \text{coefficient}\;\mathbb E (r/a + \sigma)_+^Q`: the
    constant and the rows (sigma, Q, coefficient), the inactive feature's first."""
    return p / 3, ((0, 2, (1 - p) * a * a),
                   *((s, Q, p * g) for s, Q, g in _active_coefficients(a)))


@dataclass(frozen=True)
class _Rows:
    """The rows (kappa, t) of the finite sum for couplings of multiplicities ``n``."""

    n: tuple[int, ...]
    kappa: np.ndarray   # (R, G) active counts per group
    t: np.ndarray       # (R, G) subset counts per group
    active: np.ndarray  # (R,) total active count
    sign_binomials: np.ndarray  # (R,) prod_g C(n_g, kappa_g) C(kappa_g, t_g) (-1)^(kappa_g-t_g)

    @functools.cached_property
    def exact_sign_binomials(self) -> np.ndarray:
        """The same products as exact Python ints (object array), for mpmath."""
        out = np.empty(self.active.size, dtype=object)
        for r, (kap, tt) in enumerate(zip(self.kappa.tolist(), self.t.tolist())):
            out[r] = math.prod(math.comb(n, k) * math.comb(k, s) * (-1) ** (k - s)
                               for n, k, s in zip(self.n, kap, tt))
        return out


def _row_count(n: Sequence[int]) -> int:
    return math.prod((m + 1) * (m + 2) // 2 for m in n)


@functools.lru_cache(maxsize=64)
def _rows(n: tuple[int, ...]) -> _Rows:
    """Every (kappa, t) with 0 <= t_g <= kappa_g <= n_g, and its signed binomial product."""
    if not n:  # no interference: the one empty row
        empty = np.zeros((1, 0), dtype=np.int64)
        return _Rows((), empty, empty, np.zeros(1, dtype=np.int64), np.ones(1))
    per_group = [np.array([(k, s) for k in range(m + 1) for s in range(k + 1)]).reshape(-1, 2)
                 for m in n]
    index = np.stack(np.meshgrid(*[np.arange(len(g)) for g in per_group], indexing="ij"),
                     axis=-1).reshape(-1, len(n))
    pairs = np.stack([per_group[g][index[:, g]] for g in range(len(n))], axis=1)
    kappa, t = pairs[..., 0], pairs[..., 1]
    nn = np.array(n)
    signed = np.prod(comb(nn, kappa) * comb(kappa, t) * (-1.0) ** (kappa - t), axis=1)
    return _Rows(tuple(n), kappa, t, kappa.sum(axis=1), signed)


def _sum(rows: _Rows, a: Any, b: Any, c: np.ndarray, p: Any, signed: np.ndarray, counts: Any,
         one: Any, eps: float | None) -> tuple[Any, float]:
    """The finite sum in the number type of ``one``, and its rounding error bound (when
    ``eps``, the type's machine epsilon, is given)."""
    kappa, t, n = counts
    N = sum(rows.n)
    # p^n (1-p)^(N-n) C(...) (-1)^... / prod c^kappa: the row's weight before the power.
    weight = signed * p**n * (1 - p) ** (N - n) / np.prod(c**kappa, axis=1)
    offset = t @ c
    total, terms = loss_terms(a, p)
    bound = 0.0
    for sigma, Q, coefficient in terms:
        x = b / a + sigma + offset
        # Q!/(Q + n)! for n = 0..N, one rounding a factor.
        steps = np.array([one] + [one / (Q + i) for i in range(1, N + 1)],
                         dtype=object if eps is None else offset.dtype)
        scaled = coefficient * weight * np.cumprod(steps)[rows.active]
        positive = np.maximum(x, 0 * one)
        total += np.sum(scaled * positive ** (Q + n))
        if eps is not None:
            # Each term: the power of x amplifies x's rounding (|b/a| + sigma + spread) eps by
            # Q + n; the products and the factorial add ~2N + G + 6 ulps; the (pairwise) sum
            # log2 R more.
            reach = abs(b / a) + sigma + t @ np.abs(c)
            ulps = 2 * (Q + n) + 2 * N + len(rows.n) + 6 + math.log2(max(n.size, 2))
            bound += eps * float(np.sum(np.abs(scaled) * positive ** (Q + n - 1) * reach * ulps))
    if eps is not None:  # the constant p/3 and the four additions to it
        bound += 5 * eps * (abs(float(total)) + float(p) / 3)
    return total, bound


#: Number types tried in turn: float64; numpy's long double (x86's 80-bit extended: 3 more
#: digits, as fast); mpmath, which :func:`_loss` gives the digits the others lost.
PRECISIONS = ("float64", "longdouble", "mpmath")
_NUMBER_TYPES: dict[str, type[np.floating[Any]]] = {"float64": np.float64,
                                                    "longdouble": np.longdouble}


def _evaluate(rows: _Rows, a: float, b: float, c: np.ndarray, p: float, precision: str,
              digits: int = 50) -> tuple[float, float]:
    """The finite sum in ``precision`` (one of :data:`PRECISIONS`; mpmath with ``digits``
    significant digits) and a bound on its rounding error (0 for mpmath)."""
    counts = (rows.kappa, rows.t, rows.active)
    if precision == "mpmath":
        import mpmath
        with mpmath.workdps(digits):
            mp = mpmath.mpf
            value, _ = _sum(rows, mp(a), mp(b), np.array([mp(v) for v in c], dtype=object),
                            mp(p), rows.exact_sign_binomials,
                            tuple(x.astype(object) for x in counts), mp(1), None)
            return float(value), 0.0
    kind = _NUMBER_TYPES[precision]
    value, bound = _sum(rows, kind(a), kind(b), c.astype(kind), kind(p),
                        rows.sign_binomials.astype(kind), counts, kind(1),
                        float(np.finfo(kind).eps))
    # Rounding to the float64 returned.
    return float(value), bound + float(np.finfo(np.float64).eps) * abs(float(value))


def _checked_density(density: object) -> float:
    p = check_scalar(density, "density", minimum=0.0)
    if p > 1:
        raise ValueError(f"density must be in [0, 1], got {p!r}")
    return p


def ignored_loss(density: float) -> float:
    r"""Loss of an ignored feature (:math:`W_i = 0`) at its best bias: :math:`p/3 - p^2/4`.

    The output is the constant :math:`\mathrm{ReLU}(b)`, and
    :math:`\mathbb E(x - b)^2 = p/3 - p b + b^2` is least at :math:`b = \mathbb E x = p/2`
    (``derivations/tms.py``). With :math:`b = 0` it would be :math:`\mathbb E x^2 = p/3`.

    Examples
    --------
    >>> ignored_loss(1.0)  # a dense feature predicted by its mean 1/2: Var U = 1/12
    0.08333333333333331
    """
    return float(F.tms_ignored_loss(_checked_density(density)))


def ignored_bias(density: float) -> float:
    r"""The best bias of an ignored feature, :math:`\mathbb E x = p/2`."""
    return float(F.tms_ignored_bias(_checked_density(density)))


def _lone_loss(b: float, p: float) -> float:
    r"""Loss of a feature with :math:`W_i = 0` and bias b:
    :math:`p\,\mathbb E(u - b_+)^2 + (1 - p) b_+^2`."""
    bp = max(b, 0.0)
    return p * (1 / 3 - bp + bp * bp) + (1 - p) * bp * bp


def _loss(a: float, b: float, groups: tuple[tuple[float, int], ...], p: float) -> float:
    """feature_loss on grouped, nonzero couplings (values over a), arguments checked."""
    n = tuple(m for _, m in groups)
    if _row_count(n) > MAX_ROWS:
        raise ValueError(
            f"couplings with multiplicities {n} need {_row_count(n)} rows, more than "
            f"{MAX_ROWS}: use capopt.tms.large_frames for a large frame")
    rows = _rows(n)
    c = np.array([v for v, _ in groups])
    value, bound = _evaluate(rows, a, b, c, p, "float64")
    if bound <= FLOAT64_BUDGET:
        return value
    # bound / eps is the sum of the terms' magnitudes: mpmath carries its digits and
    # _EXTRA_DIGITS more.
    digits = _EXTRA_DIGITS + max(0, math.ceil(math.log10(bound / np.finfo(np.float64).eps)))
    value, bound = _evaluate(rows, a, b, c, p, "longdouble")
    if bound <= FLOAT64_BUDGET:
        return value
    return _evaluate(rows, a, b, c, p, "mpmath", digits)[0]


def feature_loss(norm_squared: float, bias: float, couplings: ArrayLike, density: float) -> float:
    r"""Exact expected loss of one feature of the TMS ReLU autoencoder.

    .. math::

        L = \mathbb E\bigl[(x_i - \mathrm{ReLU}(a x_i + \textstyle\sum_j \lambda_j x_j + b))^2
        \bigr], \qquad x_j = B_j U_j,\ B_j \sim \mathrm{Bernoulli}(p),\ U_j \sim U[0, 1].

    Parameters
    ----------
    norm_squared : float
        :math:`a = G_{ii} \ge 0`.
    bias : float
        :math:`b = b_i`.
    couplings : array_like, shape (n,)
        :math:`\lambda_j = G_{ij}` for the other features j (zeros allowed, ignored).
    density : float
        :math:`p \in [0, 1]`.

    Returns
    -------
    float
        L, with absolute error below :data:`FLOAT64_BUDGET` (the sum is redone in long
        double, then mpmath, when its float64 error bound is larger).

    Notes
    -----
    The finite sum of the module docstring: :math:`\prod_g (n_g + 1)(n_g + 2)/2` rows for
    the distinct couplings' multiplicities :math:`n_g`, each O(G) work; at most
    :data:`MAX_ROWS`. With :math:`a = 0` every coupling of a PSD Gram matrix is 0, and
    :math:`L = p\,\mathbb E(u - b_+)^2 + (1 - p) b_+^2`.

    Examples
    --------
    A feature alone in a dimension, reconstructed exactly:

    >>> abs(feature_loss(1.0, 0.0, [], 0.3)) < 1e-15
    True

    Two features at opposite ends of one dimension (a digon), inputs dense:

    >>> round(feature_loss(1.0, -0.1, [-1.0], 1.0), 12)
    0.199683333333
    """
    a = check_scalar(norm_squared, "norm_squared", minimum=0.0)
    b = check_scalar(bias, "bias")
    p = _checked_density(density)
    lam = as_float_array(couplings, "couplings").ravel()
    nonzero = group_values(lam[lam != 0])
    if a == 0:
        if nonzero:
            raise ValueError("couplings must be 0 when norm_squared is 0 (G is PSD), got "
                             f"{[v for v, _ in nonzero]}")
        return _lone_loss(b, p)
    return _loss(a, b, tuple((v / a, m) for v, m in nonzero if v != 0), p)


def _interfering(configuration: Configuration) -> tuple[tuple[float, int], ...]:
    return tuple((c, n) for c, n in configuration.cosines if c != 0)


def configuration_loss(configuration: Configuration, norm_squared: float, bias: float,
                       density: float) -> float:
    r""":math:`L_t(a, b; p)`, the loss of each feature of a block in ``configuration``.

    Every feature has squared norm :math:`a` and bias :math:`b`, so feature i sees couplings
    :math:`a c_{ij}`: :func:`feature_loss` with the configuration's cosines.

    Examples
    --------
    >>> from capopt.tms.configurations import CONFIGURATIONS
    >>> round(configuration_loss(CONFIGURATIONS["digon"], 1.0, -0.1, 0.3), 12)
    0.0199315
    """
    a = check_scalar(norm_squared, "norm_squared", minimum=0.0)
    b = check_scalar(bias, "bias")
    p = _checked_density(density)
    if a == 0 or configuration.dimensions == 0:
        return _lone_loss(b, p)
    return _loss(a, b, _interfering(configuration), p)


def embedding_loss(W: ArrayLike, bias: ArrayLike, density: float, *,
                   feature_axis: int = -1) -> np.ndarray:
    r"""Exact expected loss of every feature of an explicit (small) embedding.

    Parameters
    ----------
    W : array_like, shape (d, N)
        Embedding, features on ``feature_axis``.
    bias : array_like, shape (N,) or scalar
    density : float

    Returns
    -------
    ndarray, shape (N,)
        :math:`L_i` of :func:`feature_loss` with :math:`a = G_{ii}`, :math:`\lambda = G_{i,
        j \ne i}`, :math:`G = W^\top W`. The TMS loss is :math:`\sum_i I_i L_i / N`.
    """
    X = as_float_array(W, "W", min_ndim=2)
    if X.ndim != 2:
        raise ValueError(f"W must be 2-d, got shape {X.shape}")
    X = X if feature_axis in (-1, 1) else X.T
    G = X.T @ X
    N = G.shape[0]
    b = np.broadcast_to(as_float_array(bias, "bias"), (N,))
    # Entries at rounding level of the Gram matrix are orthogonality, not coupling.
    tol = 64 * np.finfo(float).eps * max(float(np.max(np.abs(G), initial=0.0)), 1e-300)
    out = np.empty(N)
    for i in range(N):
        row = np.delete(G[i], i)
        row[np.abs(row) <= tol] = 0.0
        out[i] = feature_loss(max(G[i, i], 0.0), float(b[i]), row if G[i, i] > tol else
                              np.zeros(0), density)
    return out
