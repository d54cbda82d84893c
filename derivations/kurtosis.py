r"""Sparsity as kurtosis: the fourth moment of a gated input (theory §3).

A feature active with probability :math:`p` is :math:`x = B z / \sqrt{p}` with
:math:`B \sim \mathrm{Bernoulli}(p)` independent of :math:`z`, where :math:`z` has mean 0,
variance 1 and fourth moment :math:`K_z`. Then

.. math::

    \mathbb{E}x^2 = 1, \qquad \mathbb{E}x^4 = K_z / p,

so the plain kurtosis is :math:`K = K_z / p`: sparser features have heavier tails. The
Bernoulli moments come from ``sympy.stats``, and so do the base distributions' :math:`K_z`:
Gaussian 3, Rademacher 1, centred uniform of unit variance 9/5.

Symbols: ``p`` feature density (:math:`0 < p \le 1`), ``K_z`` fourth moment of :math:`z`.
"""

from __future__ import annotations

import functools

import sympy
from sympy import stats

from . import Formula
from .moments import expectation, random_variable_moments, unit_variance_moments

__all__ = ["base_fourth_moments", "formulas"]

p = sympy.Symbol("p", positive=True)
K_z = sympy.Symbol("K_z", positive=True)
B = sympy.Symbol("B")
z = sympy.Symbol("z")


def _gated_moments(z_moment):
    """E[x^2] and E[x^4] of x = B z / sqrt(p), for z with moment rule ``z_moment``."""
    bernoulli_moment = random_variable_moments({B: stats.Bernoulli("B", p)})
    rules = {B: bernoulli_moment, z: z_moment}
    x = B * z / sympy.sqrt(p)
    return tuple(
        sympy.simplify(expectation(x**k, [B, z], lambda var, power: rules[var](var, power)))
        for k in (2, 4)
    )


@functools.cache
def base_fourth_moments() -> dict[str, sympy.Expr]:
    r"""Fourth moment of each unit-variance base distribution, from ``sympy.stats``.

    Returns
    -------
    dict of str to sympy.Expr
        Distribution name -> :math:`\mathbb{E}z^4`, after checking mean 0 and variance 1 and
        that gating it gives :math:`\mathbb{E}x^4 = \mathbb{E}z^4 / p`.
    """
    distributions = {
        "gaussian": stats.Normal("z", 0, 1),
        "rademacher": stats.Rademacher("z"),
        "uniform": stats.Uniform("z", -sympy.sqrt(3), sympy.sqrt(3)),
    }
    fourth = {}
    for name, Z in distributions.items():
        assert (stats.E(Z), sympy.simplify(stats.E(Z**2))) == (0, 1), name
        fourth[name] = sympy.simplify(stats.E(Z**4))
        assert _gated_moments(random_variable_moments({z: Z})) == (1, fourth[name] / p), name
    assert fourth == {"gaussian": 3, "rademacher": 1, "uniform": sympy.Rational(9, 5)}
    return fourth


@functools.cache
def formulas() -> dict[str, Formula]:
    """Derive the kurtosis of a gated input for a generic base distribution.

    Returns
    -------
    dict of str to Formula
        Generated-function name -> formula.
    """
    second, fourth = _gated_moments(unit_variance_moments({}, {z: K_z}))
    assert second == 1
    kurtosis = fourth / second**2
    assert kurtosis == K_z / p
    return {
        "gated_kurtosis": Formula(
            (p, K_z),
            kurtosis,
            "Fourth moment (plain kurtosis) of x = B z / sqrt(p) with B ~ Bernoulli(p).",
            "K = K_z / p",
        ),
        "gated_kurtosis_d_density": Formula(
            (p, K_z),
            sympy.diff(kurtosis, p),
            "Derivative dK/dp of the gated kurtosis in the density (sweep sensitivities).",
            "dK/dp = -K_z / p^2",
        ),
    }
