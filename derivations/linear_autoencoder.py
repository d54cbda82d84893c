r"""Loss-vs-capacity curve of the linear autoencoder (theory §3, last paragraph).

Model: :math:`\hat x = W^\top W x = G x`, loss
:math:`L = \mathbb{E}\sum_i I_i (x_i - \hat x_i)^2` with independent inputs of mean 0 and
variance 1. The loss is quadratic in :math:`x`, so only the variance matters: the moment rule
is given no third or fourth moments and would fail if one were needed.

Steps, each asserted when :func:`formulas` runs:

1. :math:`L = \sum_i I_i \big[(1 - g_{ii})^2 + \sum_{j \ne i} g_{ij}^2\big]` for
   :math:`N = 2, 3, 4`.
2. Per feature, :math:`\ell = I (1 - a)^2 + I S`: the exact loss of an explicit W, whose
   partials in the entries of G are checked against those of :math:`L` (they give the
   gradient in W). Capacity eliminates :math:`S = a^2 (1/C - 1)`.
3. Minimising over :math:`a` gives :math:`a^*(C) = C` and :math:`\ell(C) = I (1 - C)`: constant
   returns, so the marginal is :math:`I` and the curvature 0 (PCA-like, no superposition).
   Its partials in :math:`I` at fixed C serve the sensitivities.

Symbols: ``C`` capacity, ``I`` importance, ``a`` squared norm :math:`G_{ii}`, ``S``
interference :math:`\sum_{j \ne i} G_{ij}^2`, ``G_ij`` an off-diagonal entry of G.
"""

from __future__ import annotations

import functools

import sympy

from . import Formula, interference_at_capacity, minimise_over_norm, tidy
from . import check_gram_partials, gram_partials
from .moments import expectation, unit_variance_moments

__all__ = ["separated_loss", "formulas"]

C = sympy.Symbol("C", positive=True)
I = sympy.Symbol("I", positive=True)  # noqa: E741 -- the importance's name in the paper
a = sympy.Symbol("a", real=True)
# A feature's interference S = sum_{j != i} G_ij^2 and an off-diagonal entry G_ij of its row.
S = sympy.Symbol("S", nonnegative=True)
G_ij = sympy.Symbol("G_ij", real=True)

#: Sizes at which the separated form of the N-feature loss is checked.
CHECKED_SIZES = (2, 3, 4)


def separated_loss(n: int):
    r"""The n-feature loss, checked against its separated form.

    .. math::

        L = \sum_i I_i \Big[(1 - g_{ii})^2 + \sum_{j \ne i} g_{ij}^2\Big].

    Parameters
    ----------
    n : int
        Number of features.

    Returns
    -------
    loss : sympy.Expr
        :math:`L`.
    Is : tuple of sympy.Symbol
        Importances.
    G : sympy.Matrix
        Symmetric Gram matrix of symbols ``g_ij``.
    """
    x = sympy.symbols(f"x0:{n}", real=True)
    Is = sympy.symbols(f"I0:{n}", positive=True)
    G = sympy.Matrix(n, n, lambda i, j: sympy.Symbol(f"g{min(i, j)}{max(i, j)}", real=True))
    x_hat = G * sympy.Matrix(x)
    error = sum(Is[i] * (x[i] - x_hat[i]) ** 2 for i in range(n))
    loss = expectation(error, x, unit_variance_moments({}, {}))
    stated = sum(
        Is[i] * ((1 - G[i, i]) ** 2 + sum(G[i, j] ** 2 for j in range(n) if j != i))
        for i in range(n)
    )
    assert sympy.expand(loss - stated) == 0
    return loss, Is, G


def _feature_loss_in_interference():
    """Per-feature loss I (1 - a)^2 + I S and its partials in G, checked against the
    separated loss: the terms sum to it, and the partials are its derivatives."""
    per_feature = I * (1 - a) ** 2 + I * S
    d_norm, d_entry = gram_partials(per_feature, a, S, G_ij)
    assert sympy.expand(d_norm + 2 * I * (1 - a)) == 0 and d_entry == 2 * I * G_ij
    for n in CHECKED_SIZES:
        loss, Is, G = separated_loss(n)
        features = [{I: Is[i]} for i in range(n)]
        total = sum(
            per_feature.subs(
                {a: G[i, i], **features[i], S: sum(G[i, j] ** 2 for j in range(n) if j != i)}
            )
            for i in range(n)
        )
        assert sympy.expand(total - loss) == 0
        check_gram_partials(loss, G, features, d_norm, d_entry, a, G_ij)
    return per_feature, d_norm, d_entry


@functools.cache
def formulas() -> dict[str, Formula]:
    """Derive the linear autoencoder's closed forms, asserting each step.

    Returns
    -------
    dict of str to Formula
        Generated-function name -> formula, in the order they are emitted.
    """
    per_feature, gram_d_norm, gram_d_entry = _feature_loss_in_interference()
    loss_a_C = per_feature.subs(S, interference_at_capacity(a, C))
    a_star = tidy(minimise_over_norm(loss_a_C, a, C, {}), C)
    assert a_star == C
    loss = tidy(loss_a_C.subs(a, a_star), C)
    assert sympy.simplify(loss - I * (1 - C)) == 0
    marginal = tidy(-sympy.diff(loss, C), C)
    curvature = sympy.diff(loss, C, 2)
    assert (marginal, curvature) == (I, 0)
    marginal_dI, loss_dI = sympy.diff(marginal, I), tidy(sympy.diff(loss, I), C)

    return {
        "linear_autoencoder_loss": Formula(
            (C, I),
            loss,
            "Loss of a feature at capacity C, with its norm optimised.",
            "l(C) = I (1 - C)",
        ),
        "linear_autoencoder_marginal": Formula(
            (C, I),
            marginal,
            "Marginal value of capacity, m(C) = -dl/dC: constant returns.",
            "m(C) = I",
        ),
        "linear_autoencoder_curvature": Formula(
            (C, I),
            curvature,
            "Curvature d2l/dC2 of the loss curve: zero, the curve is a line.",
            "l''(C) = 0",
        ),
        "linear_autoencoder_marginal_d_importance": Formula(
            (C, I),
            marginal_dI,
            "Partial dm/dI of the marginal at fixed C (sensitivities).",
            "dm/dI = 1",
        ),
        "linear_autoencoder_loss_d_importance": Formula(
            (C, I),
            loss_dI,
            "Partial dl/dI of the loss at fixed C (sensitivities).",
            "dl/dI = 1 - C",
        ),
        "linear_autoencoder_optimal_norm": Formula(
            (C, I),
            a_star,
            "Optimal squared embedding norm a = G_ii of a feature at capacity C.",
            "a*(C) = C",
        ),
        "linear_autoencoder_gram_loss": Formula(
            (a, S, I),
            per_feature,
            "Loss of a feature of an explicit W, in its row of G = W^T W; the loss is their sum.",
            "l(a, S) = I ((1 - a)^2 + S), a = G_ii, S = sum_{j != i} G_ij^2",
        ),
        "linear_autoencoder_gram_loss_d_norm": Formula(
            (a, I),
            gram_d_norm,
            "Partial dL/dG_ii of the loss of an explicit W.",
            "dl/da = -2 I (1 - a)",
        ),
        "linear_autoencoder_gram_loss_d_entry": Formula(
            (G_ij, I),
            gram_d_entry,
            "Partial dl_i/dG_ij (j != i, entries independent) of the loss of an explicit W.",
            "dl_i/dG_ij = 2 G_ij dl/dS = 2 I G_ij; dL/dW = W (P + P^T) for the matrix P of "
            "partials.",
        ),
    }
