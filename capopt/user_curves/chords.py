r"""What the values of a convex function prove about its slopes and its minimum.

For a convex :math:`\ell` on [0, 1] and points :math:`a < b < c`, the chord slopes bracket
the one-sided derivatives,

.. math::

    \frac{\ell(b) - \ell(a)}{b - a} \;\le\; \ell'(b^-) \;\le\; \ell'(b^+)
    \;\le\; \frac{\ell(c) - \ell(b)}{c - b},

at a kink as on a smooth stretch, with no truncation error: only the rounding of the
values. A finite difference, by contrast, averages the slopes on the two sides of a kink
within its step, and so places a kink's response up to a step (:math:`2^{-17}`) off.
:class:`~capopt.user_curves.FunctionCurves` uses the chords of its convex curves
(:func:`marginal_bracket`) three times:

- :func:`marginal_above` decides on which side of x the *response* to a multiplier
  :math:`\lambda` (the smallest minimiser of :math:`\ell(c) + \lambda c`) lies, from chords
  of steps :data:`CHORD_STEPS` (down to an ulp of x), so that bisection on it finds a
  kink to rounding; only where no chord decides (within about :math:`10^{-8}` of a smooth
  root) does the finite-difference marginal decide, as before;
- :func:`lagrangian_lower_bound` bounds :math:`\min_{[0, 1]} \ell(c) + \lambda c` from
  below by the lower envelope the chords prove (:func:`envelope_minimum`), a bound
  whatever the accuracy of the response it samples around: the terms of the dual bound;
- :func:`one_sided_marginals` tells a kink at x from curvature by chords of two lengths,
  and gives the certificate the slopes of its two pieces there, and elsewhere one
  marginal corrected into the chords' bracket.

All assume only that the curve is convex and that each value is within ~2 ulps of its
magnitude (:data:`~capopt.user_curves.differences.SLOPE_ROUNDING`); the bound is proven
under these assumptions, the rest only decides where a chord cannot.

Glossary: ``l`` loss, ``lam`` multiplier :math:`\lambda`, ``x`` point, ``y`` value of
:math:`\ell(x) + \lambda x`, ``s`` chord slope, ``w`` width of an interval.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .differences import FIRST, SLOPE_ROUNDING, evaluate

__all__ = [
    "marginal_bracket",
    "marginal_above",
    "one_sided_marginals",
    "lagrangian_lower_bound",
    "envelope_minimum",
    "CHORD_STEPS",
    "AT_KINK",
    "BOUND_DISTANCES",
    "CHORD_NOISE",
    "VALUE_NOISE",
]

#: Steps of the chords :func:`marginal_above` reads on each side of x: the finite-difference
#: step :math:`2^{-17}` and its quarters down to :math:`2^{-53}`, an ulp of capacities in
#: [1/2, 1]. A point farther than :math:`\delta` from a kink is decided by the chords of
#: steps below :math:`\delta`, which lie on one piece.
CHORD_STEPS = FIRST.step * 0.25 ** np.arange(19)

#: The shortest chord :func:`one_sided_marginals` brackets a slope with. Solvers place a
#: capacity at a kink only to a few ulps, and the exact one-sided slopes a little way off
#: a kink are both the slope of one piece, which no multiplier between the kink's slopes
#: matches: chords longer than this reach across such a kink and bracket both slopes.
AT_KINK = 2.0**-41

#: The steps whose chords tell a kink at x from curvature (:func:`one_sided_marginals`)
#: are :data:`CHORD_STEPS` this many apart, a factor of 64.
_KINK_RATIO = 3

#: Margin of a chord's decision, in units of max|l| / step: twice the rounding of a divided
#: difference (:data:`SLOPE_ROUNDING`), so that rounding never decides; a chord within the
#: margin leaves the decision to a longer chord or to the finite difference.
CHORD_NOISE = 2.0 * SLOPE_ROUNDING

#: Distances from the sampled centre at which :func:`lagrangian_lower_bound` evaluates
#: (each side): :math:`2^{-1}` down to :math:`2^{-52}`, about an ulp of capacities near 1, so
#: that the interval holding the minimiser is no wider than the centre's own error.
BOUND_DISTANCES = 2.0 ** -np.arange(1, 53)

#: Error of a value :math:`\ell(x) + \lambda x`, in units of :math:`\max|\ell| + |\lambda|`:
#: 2 ulps of the loss (as :data:`SLOPE_ROUNDING` assumes), one of :math:`\lambda x` and one
#: of the sum, each ulp at most eps of the magnitude.
VALUE_NOISE = 4.0 * float(np.finfo(np.float64).eps)


def _chords(f: Callable, x: np.ndarray, name: str, steps: np.ndarray,
            also: Sequence[np.ndarray]) -> tuple:
    """Chord marginals :math:`-s` from x to x + steps, then x - steps (clipped to [0, 1]),
    their rounding margins and the steps taken (0 where clipped to x), shape
    ``x.shape + (2 S,)`` each, and ``f`` at each array of points in ``also``, all from
    one call of ``f``."""
    ends = np.clip(x[..., None] + np.concatenate([steps, -steps]), 0.0, 1.0)
    values = evaluate(f, np.concatenate([x[..., None], ends, *also], axis=-1), name)
    centre, chord_values = values[..., :1], values[..., 1 : 1 + ends.shape[-1]]
    taken = ends - x[..., None]
    # Zero steps are masked out by the callers; subnormal ones overflow to inf.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        marginals = -(chord_values - centre) / taken
        noise = CHORD_NOISE * np.maximum(np.abs(centre), np.abs(chord_values)) / np.abs(taken)
    rest = values[..., 1 + ends.shape[-1] :]
    sizes = [a.shape[-1] for a in also]
    return (marginals, noise, taken, *(np.split(rest, np.cumsum(sizes)[:-1], axis=-1) if also else ()))


def _bracket(marginals: np.ndarray, noise: np.ndarray, taken: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lo and hi of :func:`marginal_bracket` from the chords of :func:`_chords`."""
    lo = np.max(marginals - noise, axis=-1, where=taken > 0, initial=-np.inf)
    hi = np.min(marginals + noise, axis=-1, where=taken < 0, initial=np.inf)
    return lo, hi


def marginal_bracket(f: Callable, x: np.ndarray, name: str, *,
                     steps: np.ndarray = CHORD_STEPS) -> tuple[np.ndarray, np.ndarray]:
    r"""Proven bounds lo <= :math:`-\ell'(x^+) \le -\ell'(x^-)` <= hi for a convex :math:`\ell`.

    With :math:`s_\delta^\pm` the chord slopes from x to :math:`x \pm \delta` (clipped to
    [0, 1]) for the ``steps`` (:data:`CHORD_STEPS`), and :math:`\nu_\delta` their rounding
    margin (:data:`CHORD_NOISE`),

    .. math::

        lo = \max_\delta (-s_\delta^+ - \nu_\delta), \qquad
        hi = \min_\delta (-s_\delta^- + \nu_\delta),

    :math:`-\infty` and :math:`+\infty` where no chord fits (at 1 and 0). Near a kink the
    chords shorter than the distance to it lie on one piece and bound its slope; on a
    smooth stretch the bracket is about :math:`\sqrt{\epsilon}` wide, and lo > hi only for
    a curve that is not convex.

    Parameters
    ----------
    f : callable
        The loss, vectorised.
    x : ndarray
        Points in [0, 1], any shape.
    name : str
        Names ``f`` in error messages.
    steps : ndarray
        The chords' steps.

    Returns
    -------
    lo, hi : ndarray, shape of ``x``
    """
    return _bracket(*_chords(f, np.asarray(x, dtype=np.float64), name, steps, ()))


def marginal_above(f: Callable, x: np.ndarray, lam: np.ndarray, name: str) -> np.ndarray:
    r"""Whether :math:`-\ell'(x^+) > \lambda` for a convex :math:`\ell` (from the left at x = 1).

    Equivalently whether the response to ``lam`` -- the smallest minimiser of
    :math:`\ell(c) + \lambda c` over [0, 1] -- lies above x. With the proven bracket
    [lo, hi] of :func:`marginal_bracket`: yes if lo > lam, no if hi < lam; otherwise (or
    if both, which a convex curve cannot give) the finite-difference marginal at x decides
    (central inside, one-sided within a step of 0 and 1), accurate to about
    :math:`10^{-10}` on a smooth stretch.

    Parameters
    ----------
    f : callable
        The loss, vectorised (or several, each on its own entries of ``x``: ``f`` maps
        points of shape ``x.shape + (P,)`` to their values).
    x : ndarray
        Points in [0, 1], any shape.
    lam : ndarray
        Multipliers broadcasting against ``x``.
    name : str
        Names ``f`` in error messages.

    Returns
    -------
    ndarray of bool, shape of ``x``

    Notes
    -----
    One call of ``f`` on ``x.shape + (42,)`` points: x, 19 chords each side
    (:data:`CHORD_STEPS`) and the finite-difference stencil (padded to 3 points).
    """
    x = np.asarray(x, dtype=np.float64)
    points, weights = FIRST.layout(x)
    marginals, noise, taken, values = _chords(f, x, name, CHORD_STEPS, (points,))
    lo, hi = _bracket(marginals, noise, taken)
    yes, no = lo > lam, hi < lam
    return np.where(yes != no, yes, -FIRST.combine(values, weights) > lam)


def one_sided_marginals(f: Callable, x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`-\ell'(x^+)` and :math:`-\ell'(x^-)` of a convex :math:`\ell`, equal unless x
    is at a kink.

    The chords tell a kink at x from curvature: the difference of the slopes of the
    chords on either side,

    .. math::

        D(\delta) = \frac{\ell(x + \delta) - 2 \ell(x) + \ell(x - \delta)}{\delta}
        = \delta \ell''(x) + O(\delta^3)

    on a smooth stretch, is :math:`J (1 - \tau / \delta)` within :math:`\tau < \delta` of a
    kink whose slopes differ by J. So x is at a kink (to within :math:`\delta / 128`, which
    also covers a kink located only that well) when :math:`D(\delta / 64) > D(\delta) / 2`
    beyond rounding, for the longest step :math:`\delta \le h` (the finite-difference
    step) that fits on both sides. There each one-sided finite difference that fits on its
    side (:meth:`~capopt.user_curves.differences.Stencil.layout`) gives that side's slope;
    one that does not, within two steps of 0 or 1, is replaced by the side's end of the
    bracket of :func:`marginal_bracket` from chords no shorter than :data:`AT_KINK` (which
    widens the subgradient interval by the chords' resolution, never narrows it).
    Elsewhere both are the finite-difference marginal, clipped into that bracket: the
    clipping only ever moves it towards the truth, and corrects it where the stencil
    reaches across a kink a little way off.
    """
    x = np.asarray(x, dtype=np.float64)
    layouts = [FIRST.layout(x, side) for side in (0, 1, -1)]
    marginals, noise, taken, *values = _chords(f, x, name, CHORD_STEPS, [points for points, _ in layouts])
    central, right, left = (-FIRST.combine(v, weights) for v, (_, weights) in zip(values, layouts))
    n = CHORD_STEPS.size
    # D on the longest step that fits on both sides and on a 64th of it.
    longest = np.searchsorted(-CHORD_STEPS, -np.minimum(x, 1.0 - x))[..., None]
    probes = np.concatenate([longest, longest + _KINK_RATIO], axis=-1)
    fits = probes[..., 1] < n
    probes = np.minimum(probes, n - 1)
    D = np.take_along_axis(marginals, probes + n, -1) - np.take_along_axis(marginals, probes, -1)
    rounding = np.take_along_axis(noise, probes + n, -1)[..., 1] + np.take_along_axis(noise, probes, -1)[..., 1]
    kink = fits & (D[..., 1] > 0.5 * D[..., 0] + rounding)
    # The bracket of chords no shorter than AT_KINK (the others masked as if clipped).
    lo, hi = _bracket(marginals, noise, np.where(np.r_[CHORD_STEPS, CHORD_STEPS] >= AT_KINK, taken, 0.0))
    reach = max(FIRST.forward[0]) * FIRST.step
    right = np.where(x <= 1.0 - reach, right, lo)
    left = np.where(x >= reach, left, hi)
    smooth = np.where(lo <= hi, np.clip(central, lo, hi), central)
    return np.where(kink, right, smooth), np.where(kink, left, smooth)


def lagrangian_lower_bound(f: Callable, centre: float, lam: float, name: str) -> float:
    r"""A lower bound on :math:`\min_{0 \le c \le 1} \ell(c) + \lambda c` for a convex :math:`\ell`.

    Evaluates :math:`y = \ell(x) + \lambda x` at 0, 1, the ``centre`` and the centre
    :math:`\pm` :data:`BOUND_DISTANCES`, and returns the minimum of the lower envelope
    those values prove (:func:`envelope_minimum`) less their rounding. The bound holds
    wherever the centre is; it is tight, to rounding, when the centre is within an ulp or
    two of a minimiser (at a kink the bound gives up the slopes times the distance; at a
    smooth minimum the curvature times its square).

    Parameters
    ----------
    f : callable
        The loss, vectorised.
    centre : float
        Where the minimiser is believed to be (e.g. the response), in [0, 1].
    lam : float
        :math:`\lambda`.
    name : str
        Names ``f`` in error messages.

    Returns
    -------
    float
    """
    distances = np.concatenate([[0.0], BOUND_DISTANCES, -BOUND_DISTANCES])
    x = np.unique(np.clip(np.concatenate([[0.0, 1.0], centre + distances]), 0.0, 1.0))
    losses = evaluate(f, x, name)
    noise = VALUE_NOISE * (float(np.max(np.abs(losses))) + abs(lam))
    return envelope_minimum(x, losses + lam * x, noise)


def envelope_minimum(x: np.ndarray, y: np.ndarray, noise: float) -> float:
    r"""A lower bound on the minimum over :math:`[x_0, x_n]` of a convex function whose
    values at the increasing points x are y, each within ``noise``.

    On the interval :math:`[x_k, x_{k+1}]` (width :math:`w_k`, chord slope :math:`s_k`) a
    convex :math:`\phi` lies above the chords of its neighbours extended into it:
    :math:`L_1(x) = y_k + s_{k-1} (x - x_k)` and :math:`L_2(x) = y_{k+1} + s_{k+1} (x -
    x_{k+1})`. The minimum over the interval of :math:`L_1` alone, :math:`L_2` alone, or
    their maximum (at their crossing :math:`t = w_k (s_{k+1} - s_k) / (s_{k+1} - s_{k-1})`
    into the interval, or at an end) bounds :math:`\phi` there. Each line is off by the
    values' rounding: ``noise`` at its anchor, ``2 noise`` over the neighbour's width in
    its slope, so by at most :math:`\nu (2 + 2 w_k / w_{k \pm 1})` over the interval, one
    ``noise`` added for the arithmetic here; each bound is lowered by its own margin and
    the best kept. The result is the least over the intervals.

    Returns ``-inf`` (no bound) when fewer than three points leave an interval no
    neighbour, or rounding leaves one no finite line.
    """
    if x.size < 3:
        return -np.inf
    w = np.diff(x)
    nan = np.array([np.nan])
    w_left, w_right = np.concatenate([nan, w[:-1]]), np.concatenate([w[1:], nan])
    y0, y1 = y[:-1], y[1:]
    # A missing neighbour is NaN, ignored by fmax below; so is an overflow's inf - inf.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s = np.diff(y) / w
        left, right = np.concatenate([nan, s[:-1]]), np.concatenate([s[1:], nan])
        # L1 alone is lowest at the interval's right end if it falls, else at its left.
        from_left = np.where(left >= 0, y0, y0 + left * w) - noise * (2 + 2 * w / w_left)
        from_right = np.where(right <= 0, y1, y1 - right * w) - noise * (2 + 2 * w / w_right)
        # Both: max(L1, L2) falls with slope s_{k-1} up to the crossing, rises after it.
        t = np.clip(w * (right - s) / (right - left), 0.0, w)
        crossing = np.minimum(y0 + left * t, y1 + right * (t - w))
        both = np.where(left >= 0, y0, np.where(right <= 0, y1, crossing))
        both = both - noise * (2 + 2 * w / np.minimum(w_left, w_right))
    bounds = np.fmax(np.fmax(from_left, from_right), both)
    # An interval no line bounds (all NaN) leaves no bound at all.
    return float(np.min(np.where(np.isnan(bounds), -np.inf, bounds)))
