r"""The quadratic model's closed forms compiled for the kernels, and the rules of one curve.

Every formula the kernels evaluate comes from :mod:`capopt._formulas` (derived with sympy in
``derivations/quadratic.py`` and, for the water-filling algebra, in
``derivations/waterfilling.py``) and is compiled here, once for every kernel module: the
kernels call ``quadratic.marginal(C, v, K)``, ``quadratic.folded_numerator(...)``, never a
formula typed again (they read two things directly: the glossary's eps = K - 3, and the full
level, below). The generated forms evaluate in the order of floating-point operations the
kernels rely on (see ``derivations/waterfilling.py``).

A curve is flat when capacity removes none of its loss, v <= 0 or K = 1 (:func:`flat`, the
one test every kernel asks): its loss is the constant (K - 1) v^2, its marginal and its
response 0. :func:`feature_loss`, :func:`feature_marginal` and :func:`capacity` are one
feature's loss, marginal and response to a level with that rule applied.

A curve's full level, where its capacity reaches 1, is its importance itself
(:math:`\mu(1) = v`, asserted where :func:`capopt._formulas.quadratic_full_level` is derived),
and the kernels compare levels with v directly: the generated function adds ``0*K`` so that
numpy broadcasts it, an addition IEEE arithmetic obliges the compiler to keep, which slowed
water-filling by 7-17% at N = 1e5 (measured).

Glossary: ``C`` capacity, ``v`` (``x`` in a loop) importance, ``K`` (``k``) kurtosis, ``mu``
level :math:`\sqrt{\lambda/2}`, ``z`` the ignore level (K - 1) v / 2.
"""

from __future__ import annotations

from .. import _formulas as F
from .._jit import jit

__all__ = [
    "flat", "feature_loss", "feature_marginal", "capacity",
    "loss", "marginal", "curvature", "benefit", "gain", "response", "response_loss",
    "level_multiplier", "level_multiplier_slope", "multiplier_level", "ignore_level",
    "full_multiplier", "ignore_multiplier", "marginal_d_importance", "marginal_d_kurtosis",
    "loss_d_importance", "loss_d_kurtosis", "level_numerator", "numerator_gap", "response_offset",
    "response_slope", "response_total", "folded_numerator", "window_level", "shared_level",
    "shared_numerator",
]

flat = jit(F.quadratic_flat)
loss = jit(F.quadratic_loss)
marginal = jit(F.quadratic_marginal)
curvature = jit(F.quadratic_curvature)
benefit = jit(F.quadratic_benefit)
gain = jit(F.quadratic_gain)
response = jit(F.quadratic_response)
response_loss = jit(F.quadratic_response_loss)
level_multiplier = jit(F.quadratic_level_multiplier)
level_multiplier_slope = jit(F.quadratic_level_multiplier_slope)
multiplier_level = jit(F.quadratic_multiplier_level)
ignore_level = jit(F.quadratic_ignore_level)
full_multiplier = jit(F.quadratic_full_multiplier)
ignore_multiplier = jit(F.quadratic_ignore_multiplier)
marginal_d_importance = jit(F.quadratic_marginal_d_importance)
marginal_d_kurtosis = jit(F.quadratic_marginal_d_kurtosis)
loss_d_importance = jit(F.quadratic_loss_d_importance)
loss_d_kurtosis = jit(F.quadratic_loss_d_kurtosis)
# The water-filling algebra (derivations/waterfilling.py).
level_numerator = jit(F.quadratic_level_numerator)
numerator_gap = jit(F.quadratic_numerator_gap)
response_offset = jit(F.quadratic_response_offset)
response_slope = jit(F.quadratic_response_slope)
response_total = jit(F.quadratic_response_total)
folded_numerator = jit(F.quadratic_folded_numerator)
window_level = jit(F.quadratic_window_level)
shared_level = jit(F.quadratic_shared_level)
shared_numerator = jit(F.quadratic_shared_numerator)


@jit
def feature_loss(C, v, K):
    r""":math:`\ell(C)`, with a flat curve's constant loss :math:`(K - 1) v^2`.

    Matches :meth:`capopt.curves.QuadraticCurves.loss`: a flat curve is evaluated as
    v = 0 (and K = 3, where the formula would be 0/0 at K = 1) plus its constant, the gain.
    """
    if flat(v, K):
        return loss(C, 0.0, 3.0) + gain(v, K)
    return loss(C, v, K)


@jit
def feature_marginal(C, v, K):
    r"""Marginal benefit :math:`-\ell'(C)`; 0 for a flat curve."""
    if flat(v, K):
        return marginal(C, 0.0, 3.0)
    return marginal(C, v, K)


@jit
def capacity(x, k, mu):
    """Response of one feature at level mu, without branches: 1 up to v, 0 from z on,
    C(mu) between (a linear step counts 0 at its own level, a flat curve 0)."""
    inside = min(max(response(mu, x, k), 0.0), 1.0) if k > 3.0 else 0.0
    value = 1.0 if mu <= x else 0.0 if mu >= ignore_level(x, k) else inside
    value = 0.0 if (k == 3.0) & (mu == x) else value
    return 0.0 if flat(x, k) else value
