r"""Expectation of a polynomial in independent random inputs, from their moments alone.

For independent inputs the expectation of a monomial factorises,

.. math::

    \mathbb{E}\Big[c \prod_i x_i^{k_i}\Big] = c \prod_i \mathbb{E}[x_i^{k_i}],

and expectation is linear, so expanding a polynomial and replacing each monomial by the
product of per-variable moments gives its exact expectation. A *moment rule* is a callable
``moment(x, k)`` returning :math:`\mathbb{E}[x^k]` for one variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import sympy

__all__ = ["expectation", "unit_variance_moments", "random_variable_moments"]

MomentRule = Callable[[sympy.Symbol, int], sympy.Expr]


def expectation(expr: sympy.Expr, variables: Sequence[sympy.Symbol], moment: MomentRule):
    r"""Expectation of a polynomial in independent random variables.

    Parameters
    ----------
    expr : sympy.Expr
        Polynomial in ``variables``; any other symbol is a deterministic coefficient.
    variables : sequence of sympy.Symbol
        The random variables, mutually independent.
    moment : callable
        ``moment(x, k)`` is :math:`\mathbb{E}[x^k]` for each ``x`` in ``variables``.

    Returns
    -------
    sympy.Expr
        :math:`\mathbb{E}[\text{expr}]`, expanded.

    Examples
    --------
    >>> x, y, K = sympy.symbols("x y K")
    >>> expectation((x**2 + y)**2, [x, y], unit_variance_moments({}, {x: K, y: 3}))
    K + 1
    """
    poly = sympy.Poly(sympy.expand(expr), *variables)
    total = sympy.Integer(0)
    for powers, coeff in poly.terms():
        term = coeff
        for x, k in zip(variables, powers):
            term *= moment(x, k)
        total += term
    return sympy.expand(total)


def unit_variance_moments(
    third: Mapping[sympy.Symbol, sympy.Expr], fourth: Mapping[sympy.Symbol, sympy.Expr]
) -> MomentRule:
    r"""Moment rule for inputs of mean 0 and variance 1 with given third and fourth moments.

    Parameters
    ----------
    third, fourth : mapping
        :math:`\mathbb{E}[x^3]` and :math:`\mathbb{E}[x^4]` per variable. A variable
        missing from a mapping makes that moment an error, so a derivation that should not
        need it fails loudly instead of silently assuming a value.

    Returns
    -------
    callable
        ``moment(x, k)`` for ``k`` in 0..4.
    """

    def moment(x, k):
        if k <= 2:
            return (sympy.Integer(1), sympy.Integer(0), sympy.Integer(1))[k]
        if k == 3 and x in third:
            return third[x]
        if k == 4 and x in fourth:
            return fourth[x]
        raise ValueError(f"E[{x}**{k}] is not given by this moment rule")

    return moment


def random_variable_moments(random_variables: Mapping[sympy.Symbol, sympy.Expr]) -> MomentRule:
    r"""Moment rule that reads :math:`\mathbb{E}[x^k]` from ``sympy.stats`` random variables.

    Parameters
    ----------
    random_variables : mapping
        Plain symbol (as it appears in the polynomial) -> ``sympy.stats`` random variable.

    Returns
    -------
    callable
        ``moment(x, k) = sympy.stats.E(random_variables[x]**k)``, simplified.
    """
    from sympy import stats

    def moment(x, k):
        return sympy.simplify(stats.E(random_variables[x] ** k))

    return moment
