r"""Units the solvers compute in, and tiers of features whose scales cannot share one.

An allocation does not change when every loss is multiplied by a constant, so a family is
solved in units where its losses are of order 1: :meth:`~capopt.curves.LossCurves.normalized`
rescales it by a power of two, which is exact, and the solve reports the loss in the
user's units (``inf`` only where that overflows float64). Importances spanning more of the
float64 range than one unit can hold (say 1e-300 next to 1e300) are split into *tiers*:

.. math::

    \min_{c} m_i(c) \;>\; \max_{c} m_j(c) \quad \text{for } i \text{ in a tier above } j,

so every feature of a higher tier gains more from any capacity than any feature below it
gains from its first. Moving capacity from j to i then lowers the loss, so at every
optimum a tier gets capacity only once every tier above it is full (:math:`C = 1` on
all its useful features): the tiers are solved one after the other, each with the budget
its predecessors left, and each in its own units. The certificate of the whole is the
worst of the tiers' certificates; the separation itself is checked here, not assumed.

Glossary: ``lo``/``hi`` log2 of the smallest and largest marginal of each curve over [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..curves import LossCurves

__all__ = ["Tier", "tiers", "SPAN_LOG2"]

#: Largest ratio, in log2, between the marginals of one tier: its squares stay far inside
#: float64 (whose normal range spans 2^2046) once the tier is normalised.
SPAN_LOG2 = 800.0


@dataclass(frozen=True)
class Tier:
    """Features solved together: ``features`` (None: all) as ``curves``, whose losses are
    the user's divided by 2**exponent, less ``constant`` (in the user's units)."""

    features: np.ndarray | None
    curves: LossCurves
    exponent: int
    constant: float = 0.0


def tiers(curves: LossCurves) -> tuple[list[Tier], tuple[str, ...]]:
    """The tiers of a family, highest first, and any assumption the split could not avoid.

    One tier (the normalised family) unless the family reports marginal ranges spanning
    more than :data:`SPAN_LOG2`. Flat curves join the last tier. Should two curves whose
    marginal ranges overlap also lie more than the span apart (kurtoses beyond ~1e38), or
    a curve that varies be flat in its tier's units, the returned assumption says that the
    tier's smallest features were evaluated at the resolution of its largest.
    """
    if not curves.scale_span_log2() > SPAN_LOG2:
        return [Tier(None, *curves.normalized())], ()
    ranges = curves.marginal_range_log2()
    assert ranges is not None, "a family with a scale span knows its marginal ranges"
    lo, hi = ranges
    useful = np.flatnonzero(np.isfinite(hi))
    order = useful[np.argsort(-hi[useful], kind="stable")]
    groups: list[list[int]] = []
    unresolved = False
    floor = np.inf
    for i in order:
        if groups and hi[i] < floor and hi[groups[-1][0]] - lo[i] > SPAN_LOG2:
            groups.append([i])
            floor = lo[i]
            continue
        if groups and hi[groups[-1][0]] - lo[i] > SPAN_LOG2:
            unresolved = True
        if not groups:
            groups.append([])
        groups[-1].append(i)
        floor = min(floor, lo[i])
    flat = np.flatnonzero(~np.isfinite(hi))
    groups[-1].extend(flat.tolist())
    out = []
    for group in groups:
        features = np.sort(np.asarray(group, dtype=np.intp))
        subset = curves.subset(features)
        tier = Tier(features, *subset.normalized())
        # A curve that varies in the user's units but is flat in the tier's (a huge-K,
        # tiny-v curve sets a unit that underflows its neighbours', or its own, importance)
        # would be solved as if it could gain nothing.
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            lost = (subset.loss_range() > 0) & ~(tier.curves.loss_range() > 0)
        unresolved = unresolved or bool(lost.any())
        out.append(tier)
    note: tuple[str, ...] = ()
    if unresolved:
        note = (
            "curves of overlapping marginal range span more than 2^800 in scale; the "
            "smallest were solved at the resolution of the largest",
        )
    return out, note

