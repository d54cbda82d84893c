r"""The fused certificate of a quadratic-model allocation, and its KKT multiplier interval.

:func:`certify_quadratic` evaluates, in one pass (on numba's threads for large problems),
everything :func:`capopt.solvers.certificate.certify` computes for a generic family: the
loss, the KKT residuals, the Lagrangian dual terms, the scales, and the regime codes.
:func:`kkt_interval` gives the multipliers that satisfy the KKT conditions at an allocation
(:func:`capopt.solvers.certificate.multiplier_interval`). Private: the public wrappers
validate once and pass clean float64 arrays; every quadratic-model answer
``tests/test_optimality.py`` checks against the exact brute force was certified here.

Glossary: ``v``, ``K`` the family (``K`` of length 1 when shared), ``C`` capacities, ``lam``
multiplier, ``mu`` its level, ``atol`` the bound tolerance, ``codes`` regime codes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit
from . import quadratic

__all__ = ["CERTIFICATE_FIELDS", "certify_quadratic", "kkt_interval"]

#: Names of the values :func:`certify_quadratic` returns, in order.
CERTIFICATE_FIELDS = (
    "loss", "stationarity", "bound_signs", "total", "below_zero", "above_one", "dual_terms",
    "marginal_scale", "loss_scale", "not_finite",
)


def _certify(v, K, C, lam, atol, codes):
    r"""One pass over a quadratic-model allocation: loss, KKT residuals, dual terms, scales.

    Parameters
    ----------
    v, K : ndarray
        The family (K of length 1 when shared).
    C : ndarray, shape (N,)
        Capacities to certify.
    lam : float
        The multiplier claimed.
    atol : float
        Capacities within atol of 0 or 1 count as at that bound.
    codes : ndarray of int8, shape (N,)
        Output: regime codes, 0 monosemantic, 1 polysemantic, 2 ignored.

    Returns
    -------
    tuple of float
        :data:`CERTIFICATE_FIELDS`: :math:`\sum \ell_i(C_i)`; the largest
        :math:`|m_i(C_i) - \lambda|` inside (0, 1); the largest sign violation at a bound;
        :math:`\sum C_i`; the largest :math:`-C_i` and :math:`C_i - 1`;
        :math:`\sum_i \min_c \ell_i(c) + \lambda c`; the largest marginal (and
        :math:`\lambda`); :math:`\sum_i |\ell_i(0) - \ell_i(1)|`; how many capacities are
        not finite (max and min pass NaN by).

    Notes
    -----
    A feature exactly at 0 or 1 takes its loss and marginal from the gain and the end
    multipliers, with no division: in a typical optimum most features sit there.
    """
    mu = quadratic.multiplier_level(lam)
    shared = K.size == 1
    loss = 0.0
    stationarity = 0.0
    signs = max(-lam, 0.0)
    total = 0.0
    below = 0.0
    above = 0.0
    dual = 0.0
    scale = lam
    spread = 0.0
    bad = 0
    for i in prange(v.size):
        x = v[i]
        k = K[0] if shared else K[i]
        c = C[i]
        bad += not np.isfinite(c)
        total += c
        below = max(below, -c)
        above = max(above, c - 1.0)
        codes[i] = 0 if c >= 1.0 - atol else 2 if c <= atol else 1
        if quadratic.flat(x, k):
            # A flat curve: constant loss (K - 1) v^2 (0 when K = 1), zero marginal.
            constant = quadratic.gain(x, k)
            loss += constant
            dual += constant
            signs = max(signs, 0.0 if c <= atol else lam)
            continue
        gain = quadratic.gain(x, k)
        m0 = quadratic.ignore_multiplier(x, k)
        m1 = quadratic.full_multiplier(x, k)
        spread += gain
        if c == 0.0:
            m = m0
            loss += gain
        elif c == 1.0:
            m = m1
        else:
            m = quadratic.marginal(c, x, k)
            loss += quadratic.loss(c, x, k)
        scale = max(scale, max(m, max(m0, m1)))
        if c <= atol:
            signs = max(signs, m - lam)
        elif c >= 1.0 - atol:
            signs = max(signs, lam - m)
        else:
            stationarity = max(stationarity, abs(m - lam))
        # min over [0, 1] of l(c) + lam c: at the response of a convex curve, where the loss
        # is affine in the level, and an end otherwise.
        if k > 3.0 and mu > x and mu < quadratic.ignore_level(x, k):
            r = min(max(quadratic.response(mu, x, k), 0.0), 1.0)
            dual += quadratic.response_loss(mu, x, k) + lam * r
        else:
            dual += min(gain, lam)
    return loss, stationarity, signs, total, below, above, dual, scale, spread, bad


_certify_serial = jit(_certify)
_certify_parallel = jit(_certify, parallel=True)

#: Features from which the certificate's pass runs on numba's threads: below, waking
#: them costs more than the pass.
PARALLEL_FROM = 1 << 18


def certify_quadratic(v, K, C, lam, atol, codes):
    """:func:`_certify` on numba's threads for large problems, serially for small ones."""
    run = _certify_parallel if v.size >= PARALLEL_FROM else _certify_serial
    return run(v, K, C, lam, atol, codes)


@jit
def kkt_interval(v, K, C, atol):
    r"""The multipliers that satisfy the KKT conditions at C: ``(P, Q)`` with
    :math:`P = \max(0, \max_{C_i < 1} m_i(C_i))` and :math:`Q = \min_{C_i > 0} m_i(C_i)`
    (inf when no capacity is held), capacities within ``atol`` of a bound being at it; one
    pass, for :func:`capopt.solvers.certificate.multiplier_interval`."""
    shared = K.size == 1
    P = 0.0
    Q = math.inf
    for i in range(v.size):
        c = C[i]
        m = quadratic.feature_marginal(c, v[i], K[0] if shared else K[i])
        if c < 1.0 - atol:
            P = max(P, m)
        if c > atol:
            Q = min(Q, m)
    return P, Q
