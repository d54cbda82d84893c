r"""The TMS ReLU autoencoder's per-feature loss as truncated powers (theory §4).

Model: :math:`x_j = B_j U_j` with :math:`B_j \sim \mathrm{Bernoulli}(p)`,
:math:`U_j \sim U[0, 1]`; feature i's output :math:`\mathrm{ReLU}(a x_i + r)`, where
:math:`a = G_{ii}` and :math:`r = b_i + \sum_{j \ne i} G_{ij} x_j` collects the bias and the
interference. ``capopt/tms/losses.py`` evaluates the expected loss as a finite sum of
truncated powers; the identities it rests on are derived here, each asserted when
:func:`formulas` runs.

1. The value :math:`x_i` integrated first. Expanding
   :math:`(u - \mathrm{ReLU}(z))^2 = u^2 - 2u\,\mathrm{ReLU}(z) + \mathrm{ReLU}(z)^2`,

   .. math::

       J_1(r) = \int_0^1 u\,(a u + r)_+ du, \qquad J_2(r) = \int_0^1 (a u + r)_+^2 du

   are piecewise polynomials in r (pieces :math:`r \ge 0`, :math:`-a < r < 0`,
   :math:`r \le -a`), and

   .. math::

       F(r) = \int_0^1 (u - (a u + r)_+)^2 du = \tfrac13 - 2 J_1 + J_2
            = \tfrac13 - a\,(r/a + 1)_+^2 + \tfrac{a(1 + a)}{3}\bigl[(r/a + 1)_+^3
              - (r/a)_+^3\bigr],

   asserted piece by piece. An inactive feature (:math:`x_i = 0`) loses
   :math:`\mathrm{ReLU}(r)^2 = a^2 (r/a)_+^2`. An ignored one (:math:`W_i = 0`) outputs the
   constant :math:`\mathrm{ReLU}(b_i)` and loses :math:`p/3 - p b + b^2` for :math:`b \ge 0`,
   least at its mean, :math:`b = p/2`: :math:`p/3 - p^2/4` (:math:`p/3` at :math:`b = 0`).
2. One uniform of the interference integrated: for :math:`\lambda \ne 0` of either sign and
   :math:`Q = 0, 1, \dots`,

   .. math::

       \int_0^1 (\beta + \lambda u)_+^Q du
       = \frac{(\beta + \lambda)_+^{Q+1} - \beta_+^{Q+1}}{(Q + 1)\lambda},

   asserted on every piece for a symbolic whole number Q. A truncated power goes to a
   difference of truncated powers one degree up, so by induction over the uniforms
   :math:`\int_{[0,1]^n} (\beta + \sum_j \lambda_j u_j)_+^Q du = Q!/((Q+n)! \prod_j
   \lambda_j) \sum_{T} (-1)^{n - |T|} (\beta + \sum_{j \in T} \lambda_j)_+^{Q+n}` (the
   box-spline identity the library sums).
3. The density :math:`D_j` of a sum of j uniforms on :math:`[-\tfrac12, \tfrac12]` (the large
   frame's interference, ``capopt/tms/large_frames.py``), from the same identity with
   Q = 0 differentiated, obeys the B-spline recurrence
   :math:`(j - 1) D_j(w) = (w + j/2) D_{j-1}(w + \tfrac12) + (j/2 - w) D_{j-1}(w - \tfrac12)`,
   asserted exactly at rational points for j up to :data:`CHECKED_SUMS`.

Symbols: ``a`` squared norm :math:`G_{ii}`, ``r`` bias plus interference, ``u`` the value of
the feature, ``beta`` and ``lam`` the constant and the coupling of a truncated power, ``w`` an
interference in units of twice its coupling, ``p`` density.
"""

from __future__ import annotations

import functools

import sympy

from . import Formula

__all__ = ["active_loss", "box_spline_step", "centred_uniform_sum_density", "formulas"]

a = sympy.Symbol("a", positive=True)
r = sympy.Symbol("r", real=True)
u = sympy.Symbol("u", real=True)
p = sympy.Symbol("p", positive=True)
beta = sympy.Symbol("beta", real=True)
lam = sympy.Symbol("lam", positive=True)
w = sympy.Symbol("w", real=True)
# A positive gap, so that each piece of a piecewise identity is a region sympy can sign.
g = sympy.Symbol("g", positive=True)

#: The power of a truncated power: any whole number (the library uses Q = 2, 3 and their
#: raises by the number of active features).
Q = sympy.Symbol("Q", integer=True, nonnegative=True)

#: Numbers of uniforms at which the density recurrence is asserted.
CHECKED_SUMS = range(2, 7)

#: The truncated-power form of F: rows (shift sigma, power Q, coefficient) of
#: :math:`F - 1/3 = \sum \gamma\,(r/a + \sigma)_+^Q`.
ACTIVE_TERMS = ((1, 2, -a), (1, 3, a * (1 + a) / 3), (0, 3, -a * (1 + a) / 3))


# Placeholders for (r/a)_+ and (r/a + 1)_+ in the truncated-power forms.
plus0, plus1 = sympy.symbols("plus0 plus1", nonnegative=True)


def _on_piece(expr, piece):
    """``expr`` with (r/a)_+ and (r/a + 1)_+ resolved on a piece: ``piece[sigma]`` is the value
    of (r/a + sigma)_+ there (``None`` for 0)."""
    def resolve(sigma):
        return 0 if piece[sigma] is None else piece[sigma]

    return expr.subs({plus0: resolve(0), plus1: resolve(1)})


def active_loss():
    r""":math:`F(r) = \int_0^1 (u - (a u + r)_+)^2 du`, via :math:`J_1` and :math:`J_2`, each
    checked on every piece against its truncated-power form.

    Returns
    -------
    sympy.Expr
        F with ``Max``: :math:`\tfrac13 - a\,\max(r/a + 1, 0)^2 + \tfrac{a(1+a)}{3}
        [\max(r/a + 1, 0)^3 - \max(r/a, 0)^3]`.
    """
    relu = a * u + r
    # (a u + r)_+ = a (u + r/a)_+; in the placeholders (r + a)_+ = a plus1, r_+ = a plus0.
    J1_form = (a * plus1) ** 2 / (2 * a) - ((a * plus1) ** 3 - (a * plus0) ** 3) / (6 * a**2)
    J2_form = ((a * plus1) ** 3 - (a * plus0) ** 3) / (3 * a)
    F_form = sympy.Rational(1, 3) + sum(
        gamma * (plus1 if sigma else plus0) ** power for sigma, power, gamma in ACTIVE_TERMS)
    assert sympy.simplify(F_form - (sympy.Rational(1, 3) - 2 * J1_form + J2_form)) == 0
    s = sympy.Symbol("s", positive=True)
    # The pieces: r = a g >= 0, the ReLU on for all u; r = -a + a s (0 < s < 1), on for
    # u > 1 - s; r <= -a, never on (J1 = J2 = 0, F = 1/3).
    pieces = (
        (a * g, 0, {0: g, 1: g + 1}),
        (-a + a * s, 1 - s, {0: None, 1: s}),
    )
    for value, start, piece in pieces:
        J1 = sympy.integrate((u * relu).subs(r, value), (u, start, 1))
        J2 = sympy.integrate((relu**2).subs(r, value), (u, start, 1))
        assert sympy.simplify(J1 - _on_piece(J1_form, piece)) == 0
        assert sympy.simplify(J2 - _on_piece(J2_form, piece)) == 0
    assert _on_piece(F_form, {0: None, 1: None}) == sympy.Rational(1, 3)
    return F_form.subs({plus0: sympy.Max(r / a, 0), plus1: sympy.Max(r / a + 1, 0)})


def _plus(x):
    """:math:`x_+` on a piece where sympy can sign x (asserted), else an error."""
    x = sympy.factor(x)
    if x.is_nonnegative:
        return x
    if x.is_nonpositive:
        return sympy.Integer(0)
    raise AssertionError(f"the sign of {x} is not decided on this piece")


def box_spline_step():
    r"""The one-uniform step, asserted on every piece for both signs of the coupling.

    The pieces of :math:`\beta` are written through positive symbols (``g`` > 0 and
    :math:`0 < s < 1` as :math:`s = 1/(1 + g)`), so that sympy signs every truncated power.

    Returns
    -------
    sympy.Expr
        The step at Q = 2 with a positive coupling,
        :math:`[(\beta + \lambda)_+^3 - \beta_+^3]/(3\lambda)`.
    """
    s = 1 / (1 + g)
    for coupling in (lam, -lam):
        integrand = (beta + coupling * u) ** Q
        if coupling == lam:
            # beta >= 0: positive on [0, 1]; beta = -lam s: on (s, 1]; beta <= -lam: never.
            pieces = ((g, 0, 1), (-lam * s, s, 1), (-lam - g, None, None))
        else:
            # beta >= lam: positive on [0, 1]; beta = lam s: on [0, s); beta <= 0: never.
            pieces = ((lam + g, 0, 1), (lam * s, 0, s), (-g, None, None))
        for b, lo, hi in pieces:
            lhs = 0 if lo is None else sympy.integrate(integrand.subs(beta, b), (u, lo, hi))
            rhs = (_plus(b + coupling) ** (Q + 1) - _plus(b) ** (Q + 1)) / ((Q + 1) * coupling)
            difference = sympy.powsimp(sympy.powdenest(sympy.simplify(lhs - rhs), force=True),
                                       force=True)
            assert sympy.simplify(difference) == 0, (coupling, b)
    return (sympy.Max(beta + lam, 0) ** 3 - sympy.Max(beta, 0) ** 3) / (3 * lam)


def centred_uniform_sum_density(j: int):
    r"""Density of a sum of j uniforms on :math:`[-\tfrac12, \tfrac12]` (from the box-spline
    identity at Q = 0, differentiated): :math:`\sum_t (-1)^t \binom{j}{t} (w + j/2 - t)_+^{j-1}
    / (j - 1)!`."""
    def plus_power(x):
        # x_+^0 is the unit step (sympy's Max(x, 0)**0 would be 1 everywhere).
        return sympy.Heaviside(x, 0) if j == 1 else sympy.Max(x, 0) ** (j - 1)

    return sum((-1) ** t * sympy.binomial(j, t) * plus_power(w + sympy.Rational(j, 2) - t)
               for t in range(j + 1)) / sympy.factorial(j - 1)


def _check_density_recurrence():
    """The B-spline recurrence of the densities, exactly at rational points."""
    for j in CHECKED_SUMS:
        D, D_prev = centred_uniform_sum_density(j), centred_uniform_sum_density(j - 1)
        half = sympy.Rational(1, 2)
        # Points (3k + 1)/21 are never half-integers, where the step of D_1 would need a
        # convention.
        for k in range(-4 * j - 2, 4 * j + 3):
            point = sympy.Rational(3 * k + 1, 21)
            rhs = ((point + sympy.Rational(j, 2)) * D_prev.subs(w, point + half)
                   + (sympy.Rational(j, 2) - point) * D_prev.subs(w, point - half)) / (j - 1)
            assert D.subs(w, point) == rhs, (j, point)
        assert sympy.integrate(D, (w, -sympy.Rational(j, 2), sympy.Rational(j, 2))) == 1


def _ignored_feature():
    r"""An ignored feature outputs the constant ReLU(b): its loss
    :math:`p\,\mathbb E(u - b_+)^2 + (1 - p)\,b_+^2`, least at :math:`b = p/2`.

    Returns
    -------
    bias, loss : sympy.Expr
        :math:`p/2` and :math:`p/3 - p^2/4`.
    """
    bias = sympy.Symbol("bias", nonnegative=True)
    loss = sympy.expand(p * sympy.integrate((u - bias) ** 2, (u, 0, 1)) + (1 - p) * bias**2)
    assert sympy.expand(loss - (p / 3 - p * bias + bias**2)) == 0
    (best,) = sympy.solve(sympy.diff(loss, bias), bias)
    assert best == p / 2 and sympy.diff(loss, bias, 2) == 2
    # A negative bias outputs 0 and loses E x^2 = p/3, no less than at p/2.
    at_zero = loss.subs(bias, 0)
    assert at_zero == p / 3 and sympy.simplify(at_zero - loss.subs(bias, best) - p**2 / 4) == 0
    return best, sympy.expand(loss.subs(bias, best))


@functools.cache
def formulas() -> dict[str, Formula]:
    """Derive the TMS autoencoder's truncated-power forms, asserting each step.

    Returns
    -------
    dict of str to Formula
        Generated-function name -> formula, in the order they are emitted.
    """
    F = active_loss()
    box_spline_step()
    _check_density_recurrence()
    ignored_bias, ignored = _ignored_feature()
    (_, _, square), (_, _, cube), (_, _, minus_cube) = ACTIVE_TERMS
    assert sympy.simplify(cube + minus_cube) == 0
    return {
        "tms_active_loss": Formula(
            (r, a), F,
            "Loss of an active TMS feature, its value integrated: E_u (u - ReLU(a u + r))^2.",
            "F(r) = 1/3 - a max(r/a + 1, 0)^2 + a (1 + a)/3 (max(r/a + 1, 0)^3 - max(r/a, 0)^3)",
        ),
        "tms_active_square_coefficient": Formula(
            (a,), square,
            "Coefficient of (r/a + 1)_+^2 in the active loss F(r).",
            "-a",
        ),
        "tms_active_cube_coefficient": Formula(
            (a,), cube,
            "Coefficient of (r/a + 1)_+^3 - (r/a)_+^3 in the active loss F(r).",
            "a (1 + a) / 3",
        ),
        "tms_ignored_bias": Formula(
            (p,), ignored_bias,
            "Best bias of an ignored TMS feature (W_i = 0): its mean E[x] for x = B U.",
            "p / 2",
        ),
        "tms_ignored_loss": Formula(
            (p,), ignored,
            "Loss of an ignored TMS feature (W_i = 0) at its best bias p/2.",
            "p/3 - p^2/4 (p/3 at bias 0)",
        ),
    }
