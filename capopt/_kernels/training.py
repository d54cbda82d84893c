r"""numba kernels for the element-wise parts of sampled training.

The matrix products stay in BLAS; these kernels fuse the element-wise passes that numpy
would make one temporary array at a time (the largest cost of a Toy Models of
Superposition step: R x B x N entries, ~4e6 for 20 instances of 200 features). Private:
:mod:`capopt.training.inputs`, :mod:`capopt.training.autoencoders` and
:mod:`capopt.training.two_layer` call them with clean arrays. Each kernel is checked against
a plain numpy formula in ``tests/test_training.py``, and the suite also runs with
``NUMBA_DISABLE_JIT=1``.

Glossary: ``R`` instances, ``B`` batch, ``N`` features; ``u`` uniform draws, ``p`` density.
"""

from __future__ import annotations

import math

from .. import _formulas as F
from .._jit import jit

__all__ = ["BASE_CODES", "ACTIVATION_CODES", "NEURON_CODES", "gate", "autoencoder_residual",
           "two_layer_residual"]

#: Codes of the input bases (see :mod:`capopt.training.inputs`).
BASE_CODES = {"tms": 0, "uniform": 1, "rademacher": 2, "gaussian": 3}

#: Codes of the autoencoder output nonlinearities.
ACTIVATION_CODES = {"linear": 0, "relu": 1, "gelu": 2}

#: Codes of the two-layer models' neuron nonlinearities.
NEURON_CODES = {"linear": 0, "square": 1, "relu": 2, "gelu": 3, "abs": 4}

_SQRT3 = math.sqrt(3.0)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


_relu = jit(F.relu)
_relu_slope = jit(F.relu_slope)
_gelu = jit(F.gelu)
_gelu_slope = jit(F.gelu_slope)
_square = jit(F.square)
_square_slope = jit(F.square_slope)
_absolute = jit(F.absolute)
_absolute_slope = jit(F.absolute_slope)


@jit
def _normal_cdf(z):
    """The standard normal distribution function, as GeLU and its slope take it."""
    return 0.5 * (1.0 + math.erf(z * _INV_SQRT2))


@jit
def gate(u, z, p, base, out):
    r"""Sparse inputs from uniform draws: ``out = B * value`` with ``B = [u < p]``.

    ``u`` (B, N) uniforms, ``z`` (B, N) standard normals (read only for the Gaussian base),
    ``p`` (N,) densities. Conditioned on ``u < p``, ``t = u / p`` is uniform on [0, 1), so
    ``t`` supplies the value of the TMS (:math:`U`), uniform (:math:`\sqrt3 (2t - 1)`) and
    Rademacher (sign of :math:`t - 1/2`) bases; unit-variance bases are divided by
    :math:`\sqrt p`.
    """
    n_rows, n = u.shape
    for b in range(n_rows):
        for i in range(n):
            if u[b, i] < p[i]:
                t = u[b, i] / p[i]
                if base == 0:
                    out[b, i] = t
                else:
                    if base == 1:
                        value = _SQRT3 * (2.0 * t - 1.0)
                    elif base == 2:
                        value = -1.0 if t < 0.5 else 1.0
                    else:
                        value = z[b, i]
                    out[b, i] = value / math.sqrt(p[i])
            else:
                out[b, i] = 0.0


@jit
def autoencoder_residual(z, b, x, importance, activation, scale, loss):
    r"""Fused output pass of the autoencoder, in place.

    On entry ``z`` (R, B, N) holds :math:`W^\top W x` without the bias; on exit it holds
    :math:`\delta = \text{scale}\cdot I \odot (\sigma(z + b) - x) \odot \sigma'(z + b)`, and
    ``loss[r]`` holds :math:`\sum_{b, i} I_i (\sigma(z + b) - x)^2` for instance r.
    """
    R, n_rows, n = z.shape
    for r in range(R):
        total = 0.0
        for k in range(n_rows):
            for i in range(n):
                pre = z[r, k, i] + b[r, i]
                if activation == 0:
                    out, slope = pre, 1.0
                elif activation == 1:
                    out, slope = _relu(pre), _relu_slope(pre)
                else:
                    cdf = _normal_cdf(pre)
                    out = _gelu(pre, cdf)
                    slope = _gelu_slope(pre, cdf)
                err = out - x[r, k, i]
                weighted = importance[r, i] * err
                total += weighted * err
                z[r, k, i] = scale * weighted * slope
        loss[r] = total



@jit
def _neuron(h, activation):
    """One neuron's output and slope at pre-activation ``h`` (codes: :data:`NEURON_CODES`)."""
    if activation == 0:
        return h, 1.0
    if activation == 1:
        return _square(h), _square_slope(h)
    if activation == 2:
        return _relu(h), _relu_slope(h)
    if activation == 3:
        cdf = _normal_cdf(h)
        return _gelu(h, cdf), _gelu_slope(h, cdf)
    return _absolute(h), _absolute_slope(h)


@jit
def two_layer_residual(h, x, v, b, activation, scale, loss, residual_sum):
    r"""Fused output pass of the two-layer model, in place.

    On entry ``h`` (R, B, d) holds the pre-activations :math:`W x`; on exit it holds
    :math:`\text{scale}\cdot r\,\phi'(h)` with the residual
    :math:`r = \sum_k \phi(h_k) + b - \sum_i v_i x_i^2` of each example. ``loss[r]`` gets
    :math:`\sum_\text{batch} r^2` and ``residual_sum[r]`` :math:`\sum_\text{batch} r` for
    instance r. Each neuron's nonlinearity is evaluated once (GeLU's :math:`\Phi` too).
    """
    R, n_rows, d = h.shape
    n = x.shape[2]
    for q in range(R):
        total, total_sq = 0.0, 0.0
        for k in range(n_rows):
            target = 0.0
            for i in range(n):
                target += v[q, i] * x[q, k, i] * x[q, k, i]
            output = b[q] - target
            for j in range(d):
                out, slope = _neuron(h[q, k, j], activation)
                output += out
                h[q, k, j] = slope
            total += output
            total_sq += output * output
            for j in range(d):
                h[q, k, j] *= scale * output
        loss[q] = total_sq
        residual_sum[q] = total
