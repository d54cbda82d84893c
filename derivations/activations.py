r"""The GeLU nonlinearity of the trained architectures and its derivative (theory §4).

:math:`\mathrm{GeLU}(z) = z\,\Phi(z)` with :math:`\Phi(z) = \tfrac12 (1 + \mathrm{erf}(z/\sqrt2))`
the standard normal distribution function (the exact form, not the tanh approximation).
Its derivative is :math:`\Phi(z) + z\,\varphi(z)`, :math:`\varphi` the normal density.

:math:`\Phi` itself is left to the caller as the argument ``cdf``: numpy code evaluates it with
``scipy.special.ndtr`` on arrays, numba kernels with ``math.erf`` on scalars, and the rest is
arithmetic both compile. Symbols: ``z`` pre-activation, ``cdf`` :math:`\Phi(z)`.
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
    """Derive GeLU and its derivative in terms of the normal distribution function.

    Returns
    -------
    dict of str to Formula
        Generated-function name -> formula, in the order they are emitted.
    """
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
        "gelu": Formula((z, cdf), value, "GeLU z Phi(z), given cdf = Phi(z).", "GeLU(z) = z Phi(z)"),
        "gelu_slope": Formula(
            (z, cdf),
            slope,
            "Derivative of GeLU, given cdf = Phi(z).",
            "GeLU'(z) = Phi(z) + z exp(-z^2 / 2) / sqrt(2 pi)",
        ),
    }
