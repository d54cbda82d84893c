r"""The neuron nonlinearities of the trained architectures and their derivatives (theory §4).

The two-layer models :math:`\hat y = \sum_k \phi((Wx)_k) + b` and the autoencoders
backpropagate through :math:`\phi` and :math:`\phi'` for :math:`\phi` one of

* square, :math:`\phi(z) = z^2` (the two-layer model that *is* the quadratic model),
  :math:`\phi'(z) = 2z`;
* ReLU, :math:`\max(z, 0)`, and absolute value :math:`|z|`: their derivatives
  :math:`[z > 0]` and :math:`\operatorname{sign} z` are taken as 0 at the kink :math:`z = 0`
  (a subgradient), which is where a pre-activation sits whenever an input is all zeros;
* GeLU, below.

:math:`\mathrm{GeLU}(z) = z\,\Phi(z)` with :math:`\Phi(z) = \tfrac12 (1 + \mathrm{erf}(z/\sqrt2))`
the standard normal distribution function (the exact form, not the tanh approximation).
Its derivative is :math:`\Phi(z) + z\,\varphi(z)`, :math:`\varphi` the normal density.

:math:`\Phi` itself is left to the caller as the argument ``cdf``: numpy code evaluates it with
``scipy.special.ndtr`` on arrays, numba kernels with ``math.erf`` on scalars, and the rest is
arithmetic both compile. The ReLU derivative is emitted as
:math:`\operatorname{sign}(\max(z, 0))`, which numpy and numba both evaluate in the argument's
precision (see ``codegen``). Symbols: ``z`` pre-activation, ``cdf`` :math:`\Phi(z)`.
"""

from __future__ import annotations

import functools

import sympy

from . import Formula

__all__ = ["formulas"]

z = sympy.Symbol("z", real=True)
cdf = sympy.Symbol("cdf", positive=True)


@functools.cache
def formulas() -> dict[str, Formula]:
    """Derive each nonlinearity's value and derivative; GeLU's in terms of the normal CDF.

    Returns
    -------
    dict of str to Formula
        Generated-function name -> formula, in the order they are emitted.
    """
    square, relu, absolute = z**2, sympy.Max(z, 0), sympy.Abs(z)
    square_slope = sympy.diff(square, z)
    # sympy's derivatives of the kinked functions are Heaviside(z) (1/2 at 0) and sign(z):
    # at the kink the trainers take the subgradient 0, the convention H(0) = 0.
    relu_slope = sympy.diff(relu, z).subs(sympy.Heaviside(z), sympy.Heaviside(z, 0))
    abs_slope = sympy.diff(absolute, z)
    assert square_slope == 2 * z and abs_slope == sympy.sign(z)
    assert relu_slope == sympy.Heaviside(z, 0)

    normal_cdf = (1 + sympy.erf(z / sympy.sqrt(2))) / 2
    density = sympy.exp(-(z**2) / 2) / sympy.sqrt(2 * sympy.pi)
    assert sympy.simplify(sympy.diff(normal_cdf, z) - density) == 0
    gelu = z * normal_cdf
    # Eliminating erf for the symbol cdf leaves an expression in z and cdf only.
    in_cdf = {sympy.erf(z / sympy.sqrt(2)): 2 * cdf - 1}
    value = sympy.simplify(gelu.subs(in_cdf))
    slope = sympy.simplify(sympy.diff(gelu, z).subs(in_cdf))
    assert sympy.simplify(value - z * cdf) == 0
    assert sympy.simplify(slope - (cdf + z * density)) == 0
    return {
        "square": Formula((z,), square, "Square nonlinearity z^2.", "phi(z) = z^2"),
        "square_slope": Formula((z,), square_slope, "Derivative of the square.", "phi'(z) = 2 z"),
        "relu": Formula((z,), relu, "ReLU max(z, 0).", "ReLU(z) = max(z, 0)"),
        "relu_slope": Formula(
            (z,),
            relu_slope,
            "Derivative of ReLU, 0 at the kink z = 0.",
            "ReLU'(z) = [z > 0], evaluated as sign(max(z, 0))",
        ),
        "absolute": Formula((z,), absolute, "Absolute value |z|.", "phi(z) = |z|"),
        "absolute_slope": Formula(
            (z,), abs_slope, "Derivative of |z|, 0 at the kink z = 0.", "phi'(z) = sign(z)"
        ),
        "gelu": Formula((z, cdf), value, "GeLU z Phi(z), given cdf = Phi(z).", "GeLU(z) = z Phi(z)"),
        "gelu_slope": Formula(
            (z, cdf),
            slope,
            "Derivative of GeLU, given cdf = Phi(z).",
            "GeLU'(z) = Phi(z) + z exp(-z^2 / 2) / sqrt(2 pi)",
        ),
    }
