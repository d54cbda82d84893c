"""Symbolic derivations of every formula capopt takes from a model (sympy only).

Each model module derives its closed forms from the model's definition, asserting every
intermediate identity on the way, and returns them from ``formulas()``: the loss-vs-capacity
curve with its derivatives, partials and inverses, the optimal norms, the disciplined convex
form, and the exact loss of an explicit embedding in the entries of its Gram matrix with the
partials that give its gradient. ``python -m
derivations`` prints them as plain numpy functions into the committed module
``capopt/_formulas.py``; ``python -m derivations --check`` proves that file is fresh. The
library imports only the generated file, so sympy never runs when capopt is imported.

Modules: ``moments`` (the expectation operator), ``quadratic`` (the paper's quadratic model),
``waterfilling`` (the algebra of its water-filling kernels, in the kernels' own evaluation
order), ``linear_autoencoder``, ``kurtosis`` (sparsity as kurtosis), ``activations`` (the GeLU
nonlinearity of the trained architectures), ``tms`` (the Toy Models of Superposition ReLU
autoencoder's loss as truncated powers) and ``codegen`` (the writer).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

__all__ = [
    "Formula",
    "tidy",
    "interference_at_capacity",
    "minimise_over_norm",
    "gram_partials",
    "check_gram_partials",
    "unevaluated",
]


@dataclass(frozen=True)
class Formula:
    """A closed form to be emitted as a numpy function.

    Attributes
    ----------
    args : tuple of sympy.Symbol
        Parameters in signature order; their names become the parameter names.
    expr : sympy.Expr
        The derived value, a function of ``args`` only.
    summary : str
        What the value means, one line; the docstring's first line.
    statement : str
        The formula in plain-text math, as a reader would write it.
    steps, result : optional
        How floating point evaluates it, when ``expr`` as sympy prints it would lose
        accuracy or overflow: local assignments ``(symbol, expression)`` in order, then the
        returned ``result``. Substituting the steps into ``result`` must give ``expr``;
        this is checked. Expressions here are built with ``evaluate=False`` where sympy's
        canonical form (which distributes ``2*(1 - C)``, for one) would change the order
        of the floating-point operations.
    """

    args: tuple[sympy.Symbol, ...]
    expr: sympy.Expr
    summary: str
    statement: str
    steps: tuple[tuple[sympy.Symbol, sympy.Expr], ...] = ()
    result: sympy.Expr | None = None

    def __post_init__(self):
        stray = self.expr.free_symbols - set(self.args)
        if stray:
            raise ValueError(f"expression depends on {sorted(map(str, stray))}, not in args")
        if self.result is not None:
            value = self.result
            for name, step in reversed(self.steps):
                value = value.subs(name, step)
            if sympy.simplify(value - self.expr) != 0:
                raise ValueError(f"the evaluation steps compute {value}, not {self.expr}")

    @property
    def evaluation(self) -> tuple[tuple[tuple[sympy.Symbol, sympy.Expr], ...], sympy.Expr]:
        """The assignments and the returned expression the generated function evaluates."""
        return self.steps, self.expr if self.result is None else self.result


def tidy(expr: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
    """Factor ``expr`` and write every remaining sum as a polynomial in ``x``.

    Only the printed form changes: ``C*K - 3*C + 2`` becomes ``C*(K - 3) + 2``, the form in
    which the formulas are read and evaluated.
    """
    return sympy.factor(expr).replace(
        lambda e: e.is_Add, lambda e: sympy.collect(e, x, sympy.factor)
    )


def interference_at_capacity(a: sympy.Symbol, C: sympy.Symbol) -> sympy.Expr:
    r"""Interference of a feature in terms of its squared norm and capacity.

    Solves the definition of capacity,

    .. math::

        C = \frac{a^2}{a^2 + S}, \qquad a = G_{ii}, \quad S = \sum_{j \ne i} G_{ij}^2,

    for :math:`S`, giving :math:`S = a^2 (1/C - 1)`.
    """
    S = sympy.Symbol("S", nonnegative=True)
    (interference,) = sympy.solve(sympy.Eq(C, a**2 / (a**2 + S)), S)
    assert sympy.simplify(interference - a**2 * (1 / C - 1)) == 0
    return interference


def minimise_over_norm(loss, a, C, domain):
    r"""Minimise a per-feature loss :math:`\ell(a, C)` over the squared norm :math:`a`.

    Parameters
    ----------
    loss : sympy.Expr
        :math:`\ell(a, C)`, quadratic in ``a``.
    a, C : sympy.Symbol
        Squared norm and capacity.
    domain : dict
        Substitutions that encode the parameters' domain through positive symbols (for
        example ``{K: 1 + kappa}`` for :math:`K > 1`); used to prove the minimum is one.

    Returns
    -------
    sympy.Expr
        :math:`a^*(C)`, the unique root of :math:`\partial\ell/\partial a = 0`, after checking
        :math:`\partial^2\ell/\partial a^2 > 0` for every :math:`0 < C \le 1`.
    """
    (a_star,) = sympy.solve(sympy.diff(loss, a), a)
    # C = 1/(1 + t) with t >= 0 spans 0 < C <= 1, so positivity in t is positivity on (0, 1].
    t = sympy.Symbol("t", nonnegative=True)
    second = sympy.diff(loss, a, 2).subs(C, 1 / (1 + t)).subs(domain)
    assert sympy.simplify(second).is_positive, second
    return a_star


def gram_partials(per_feature, a, S, entry):
    r"""Partial derivatives of a per-feature loss written in the entries of :math:`G = W^\top W`.

    A loss that separates as :math:`L = \sum_i \ell_i(a_i, S_i)`, with :math:`a_i = G_{ii}`
    and :math:`S_i = \sum_{j \ne i} G_{ij}^2`, has, treating the entries as independent,

    .. math::

        \frac{\partial L}{\partial G_{ii}} = \frac{\partial \ell_i}{\partial a}, \qquad
        \frac{\partial L}{\partial G_{ij}} = 2 G_{ij} \frac{\partial \ell_i}{\partial S}
        \quad (i \ne j),

    and :math:`\partial L / \partial W = W (P + P^\top)` for the matrix P of these partials.

    Parameters
    ----------
    per_feature : sympy.Expr
        :math:`\ell(a, S)`.
    a, S : sympy.Symbol
        Squared norm and interference.
    entry : sympy.Symbol
        An off-diagonal entry :math:`G_{ij}` of feature i's row.

    Returns
    -------
    d_norm, d_entry : sympy.Expr
        :math:`\partial \ell / \partial a` and :math:`\partial \ell_i / \partial G_{ij}`.
    """
    return sympy.diff(per_feature, a), 2 * entry * sympy.diff(per_feature, S)


def check_gram_partials(loss, G, features, d_norm, d_entry, a, entry) -> None:
    """Assert that ``d_norm`` and ``d_entry`` are the partials of ``loss`` in symmetric G.

    ``features[i]`` substitutes feature i's parameters. An off-diagonal symbol
    :math:`g_{ij}` stands for both :math:`G_{ij}` and :math:`G_{ji}`, so its derivative is
    the sum of the two rows' partials.
    """
    n = G.shape[0]
    for i in range(n):
        assert sympy.expand(sympy.diff(loss, G[i, i]) - d_norm.subs({a: G[i, i], **features[i]})) == 0
        for j in range(i + 1, n):
            rows = d_entry.subs({entry: G[i, j], **features[i]}) + d_entry.subs(
                {entry: G[i, j], **features[j]}
            )
            assert sympy.expand(sympy.diff(loss, G[i, j]) - rows) == 0


def unevaluated(op, *args) -> sympy.Expr:
    """``op(*args)`` (``sympy.Add`` or ``sympy.Mul``) kept as written, not canonicalised."""
    return op(*args, evaluate=False)
