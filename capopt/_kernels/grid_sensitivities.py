r""":func:`capopt._kernels.grid.solve_grid` with each optimum's sensitivities, in one pass.

:func:`solve_grid_sensitivities` differentiates every problem of a sweep in the pass that
solves it (:func:`capopt.sweep` with ``sensitivities=True``): the changes of the capacities
and the multiplier in the budget d, the shared kurtosis K and the decay r of the
importances :math:`v_i = r^i`, and how far each may move before a feature changes regime.
It uses the KKT structure and the Jacobian's products of :mod:`capopt._kernels.kkt`.
Private: ``tests/test_sweep_sensitivities.py`` checks it against central finite
differences of re-solved sweeps.

Glossary: as :mod:`capopt._kernels.grid`, plus ``r`` each problem's decay, ``lam_dd``
:math:`\partial\lambda/\partial d`, ``dC_dd``, ``dC_dK``, ``dC_dr`` the capacities'
derivatives, ``margins`` the relative changes of d, K and r that keep every regime,
``m`` marginals, ``w`` the border :math:`\partial C / \partial d`, ``place`` each feature's
place in the KKT system.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit
from . import quadratic
from .grid import solve_one
from .kkt import ACTIVE, AT_ZERO, KINK_RTOL, TIGHT, apply_border, kkt_structure, quadratic_partials

__all__ = ["GRID_BLOCK", "solve_grid_sensitivities"]


@jit
def _margin(dist, theta):
    """The relative change ``dist / |theta|`` of a parameter, 0 for no distance at all."""
    return 0.0 if dist == 0.0 else dist / abs(theta)


@jit
def _nearer(dist, gap, rate):
    """``min(dist, gap / |rate|)``, dividing only when it is smaller (no change at rate 0)."""
    rate = abs(rate)
    return gap / rate if gap < dist * rate else dist


@jit
def _regime_distances(C, v, K, d, m, place, w, lam, lam_dd, dC_dd, dC_dK, dC_dr, dm_dK, dm_dr, lo, hi, out):
    r"""How far d, K and r may each move before a feature of a convex family changes regime.

    Writes the three distances (in the parameters' own units) into ``out``, looking at the
    features ``lo <= i < hi`` only: the active ones and their two neighbours. That is
    enough for a sweep's problems, whose importances decrease with i: with one kurtosis
    each capacity is non-decreasing in the importance, so the features are in the order
    monosemantic, active, ignored, and the first to change regime is an active one, the
    last at 1 or the first at 0.

    * **Budget, exact.** With one kurtosis K > 3 each capacity inside (0, 1) is affine in
      :math:`u = 1/\mu` (:mod:`capopt._kernels.waterfill`: :math:`C_i = (p_i u - 2)/\epsilon_i`), so
      :math:`\sum_i C_i = d` makes u, and every active capacity, affine in d within a
      regime, :math:`du/dd = -(d\lambda/dd) / (\lambda'(\mu) \mu^2)`. An active feature
      reaches a bound after :math:`\min(C_i, 1 - C_i) / |\partial C_i|`; one at a bound
      starts to move when u reaches :math:`1/z_i` (at 0) or :math:`1/v_i` (at 1), both
      linearly in d. With a slack budget the first change is where it binds,
      :math:`d = \sum_i C_i`.
    * **K and r, to first order.** An active feature as above; a feature at a bound starts
      to move once :math:`\lambda - m_i` closes, after :math:`|\lambda - m_i| /
      |\partial\lambda - \partial m_i|` with :math:`\partial\lambda = w^\top \partial m`.

    A kink is at distance 0 in every parameter.
    """
    dlam_dK = 0.0
    dlam_dr = 0.0
    for i in range(lo, hi):
        dlam_dK += w[i] * dm_dK[i]
        dlam_dr += w[i] * dm_dr[i]
    to_d = np.inf
    if lam == 0.0:
        total = 0.0
        for i in range(C.size):
            total += C[i]
        to_d = d - total
    to_K = np.inf
    to_r = np.inf
    # The nearest level at which a feature leaves a bound: the largest ignore level z_i of
    # the features at 0 (all below mu), the smallest full level v_i of those at 1 (above).
    z_max = 0.0
    v_min = np.inf
    for i in range(lo, hi):
        where = place[i]
        if where >= TIGHT:
            out[:] = 0.0
            return
        if where == ACTIVE:
            inside = min(C[i], 1.0 - C[i])
            if lam > 0.0:
                to_d = _nearer(to_d, inside, dC_dd[i])
            to_K = _nearer(to_K, inside, dC_dK[i])
            to_r = _nearer(to_r, inside, dC_dr[i])
        elif not quadratic.flat(v[i], K):  # flat curves never move
            if where == AT_ZERO:
                z_max = max(z_max, quadratic.ignore_level(v[i], K))
            else:
                v_min = min(v_min, v[i])
            gap = abs(lam - m[i])
            to_K = _nearer(to_K, gap, dlam_dK - dm_dK[i])
            to_r = _nearer(to_r, gap, dlam_dr - dm_dr[i])
    if lam > 0.0:
        mu = quadratic.multiplier_level(lam)
        du = abs((lam_dd / quadratic.level_multiplier_slope(mu)) / (mu * mu))
        u = 1.0 / mu
        if du != 0.0 and z_max > 0.0:
            to_d = min(to_d, abs(1.0 / z_max - u) / du)
        if du != 0.0 and v_min < np.inf:
            to_d = min(to_d, abs(u - 1.0 / v_min) / du)
    out[0], out[1], out[2] = to_d, to_K, to_r


@jit
def _differentiate_one(C, v, K, r, d, lam, atol, n_full, n_active, dC_dd, dC_dK, dC_dr, margins, scratch,
                       place, linear):
    r"""Sensitivities of one sweep problem at its optimum (C, lam); returns dlam/dd.

    ``n_full`` and ``n_active`` count the monosemantic and polysemantic features (the
    solve's counts); the importances decrease with i, so those are the first ``n_full``,
    then the next ``n_active`` (:func:`_regime_distances`), and only they and their two
    neighbours need more than their marginal. ``scratch`` (9, >= N) and ``place``,
    ``linear`` (>= N) are work space. The KKT
    structure of :func:`kkt_structure`, the border of
    :mod:`capopt.perturbation.analysis`, and :func:`apply_border` for the shared kurtosis
    K and the decay r of :math:`v_i = r^i` (:math:`\partial v_i / \partial r = i r^{i-1}`).
    ``margins`` gets, for d, K and r, the smallest relative change that changes a
    regime: exact for the budget, to first order for K and r (:func:`_regime_distances`).
    At K <= 3 (the vertex rule) the margin in K is the distance to K = 3, a lower bound.
    Where the optimum is not locally determined (a vertex at a whole budget; equal concave
    features, r = 1) the budget's margin is 0 and the derivatives that do not exist are
    NaN.
    """
    n = C.size
    lo, hi = max(n_full - 1, 0), min(n_full + n_active + 1, n)
    terms = scratch[:4, :n]
    m, h, dm_dv, dm_dK = terms[0], terms[1], terms[2], terms[3]
    for i in range(n):  # kkt_structure reads every marginal; the rest only in [lo, hi)
        m[i] = quadratic.feature_marginal(C[i], v[i], K[0])
    quadratic_partials(C[lo:hi], v[lo:hi], K, terms[:, lo:hi])
    # Rows 3 and 4 are the marginals' changes in K and r, side by side for apply_border; the
    # border w is dC/dd, written in place.
    y, g, w, moved = scratch[4, :n], scratch[5, :n], dC_dd, scratch[7:9, :n]
    place, linear = place[:n], linear[:n]
    linear[:] = K[0] == 3.0
    S, pins, first_pin, active = kkt_structure(C, m, m, h, linear, lam, atol, KINK_RTOL, place, g)
    w[:] = 0.0
    lam_dd = 0.0
    tied = K[0] <= 3.0 and r == 1.0 and 0.0 < d < n and n > 1
    vertex = lam > 0.0 and active == 0
    if lam > 0.0 and active > 0:
        if pins == 1:
            w[first_pin] = 1.0
        elif pins > 1 or not (S != 0.0 and math.isfinite(S)):
            tied = True
        else:
            inverse = 1.0 / S
            for i in range(n):
                w[i] = g[i] * inverse
            lam_dd = -inverse
    # The marginals' changes in K and in r (dv_i/dr = i r^(i-1) = i v_(i-1)), then the
    # capacities' through the border, both at once.
    for i in range(lo, hi):
        y[i] = dm_dv[i] * i * v[i - 1] if i > 0 else 0.0
    apply_border(g[lo:hi], w[lo:hi], scratch[3:5, lo:hi], moved[:, lo:hi])
    dC_dK[:] = 0.0
    dC_dr[:] = 0.0
    dC_dK[lo:hi] = moved[0, lo:hi]
    dC_dr[lo:hi] = moved[1, lo:hi]
    if K[0] <= 3.0:
        # The vertex rule: whole features and one fraction, constant in K and r until the
        # fraction reaches a bound; in K, the distance to K = 3, where the convex branch
        # takes over (a lower bound of the margin).
        f = d - math.floor(d)
        margins[0] = _margin(d - n if d >= n else min(f, 1.0 - f), d)
        margins[1] = _margin(3.0 - K[0], K[0])
        margins[2] = np.inf
    else:
        _regime_distances(C, v, K[0], d, m, place, w, lam, lam_dd, dC_dd, dC_dK, dC_dr, dm_dK, y, lo, hi,
                          margins)
        margins[0] = _margin(margins[0], d)
        margins[1] = _margin(margins[1], K[0])
        margins[2] = _margin(margins[2], r)
    if tied or vertex:
        # A whole budget at a vertex: any change of d moves a feature off its bound.
        dC_dd[:] = np.nan
        lam_dd = np.nan
        margins[0] = 0.0
    if tied:
        margins[:] = 0.0
        dC_dK[:] = np.nan
        dC_dr[:] = np.nan
    return lam_dd


#: Problems of a sweep that share one scratch space in :func:`solve_grid_sensitivities`.
GRID_BLOCK = 256


@jit(parallel=True)
def solve_grid_sensitivities(v, n, K, r, d, atol):
    r""":func:`capopt._kernels.grid.solve_grid` with each optimum's sensitivities, in the same pass.

    Parameters as :func:`~capopt._kernels.grid.solve_grid`, plus ``r`` (P,), the decay of each problem's
    importances :math:`v_i = r^i`.

    Returns
    -------
    C, lam, loss, counts
        As :func:`~capopt._kernels.grid.solve_grid`.
    lam_dd : ndarray, shape (P,)
        :math:`\partial\lambda / \partial d`.
    dC_dd, dC_dK, dC_dr : ndarray, shape (P, W)
        :math:`\partial C_i / \partial d`, :math:`\partial C_i / \partial K` (the shared
        kurtosis), :math:`\partial C_i / \partial r`; NaN beyond each n and where they do
        not exist.
    margins : ndarray, shape (P, 3)
        The first-order relative margins of d, K and r (:func:`_differentiate_one`).
    """
    P, W = v.shape
    C = np.full((P, W), np.nan)
    lam = np.empty(P)
    loss = np.empty(P)
    counts = np.zeros((P, 3), dtype=np.int64)
    lam_dd = np.empty(P)
    dC_dd = np.empty((P, W))
    dC_dK = np.empty((P, W))
    dC_dr = np.empty((P, W))
    margins = np.empty((P, 3))
    # Blocks of problems share one scratch space (allocating it per problem costs as much
    # as the differentiation of a small one).
    blocks = (P + GRID_BLOCK - 1) // GRID_BLOCK
    for b in prange(blocks):
        scratch = np.empty((9, W))
        place = np.empty(W, dtype=np.int8)
        linear = np.empty(W, dtype=np.bool_)
        for p in range(b * GRID_BLOCK, min(P, (b + 1) * GRID_BLOCK)):
            m = n[p]
            lam[p], loss[p] = solve_one(v[p, :m], K[p : p + 1], d[p], atol, C[p, :m], counts[p])
            lam_dd[p] = _differentiate_one(C[p, :m], v[p, :m], K[p : p + 1], r[p], d[p], lam[p], atol,
                                           counts[p, 0], counts[p, 1], dC_dd[p, :m], dC_dK[p, :m],
                                           dC_dr[p, :m], margins[p], scratch, place, linear)
            dC_dd[p, m:] = np.nan
            dC_dK[p, m:] = np.nan
            dC_dr[p, m:] = np.nan
    return C, lam, loss, counts, lam_dd, dC_dd, dC_dK, dC_dr, margins
