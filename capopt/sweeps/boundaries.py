r"""Exact phase boundaries: where a feature changes regime, traced through a sweep's grid.

A sweep (:func:`~capopt.sweeps.sweep`, :func:`~capopt.sweeps.two_feature_phase`,
:func:`~capopt.sweeps.polysemantic_phase`) shows each feature's regime at grid points; a
phase diagram drawn from it places every boundary only to within one grid step.
:func:`phase_boundaries` finds the cells of the grid along one parameter ``along`` across
which a feature changes regime and refines each crossing, the other parameters fixed, to a
relative accuracy ``rtol`` (1e-10 by default), re-solving the sweep's own problem at every
step.

The quantity refined
--------------------
For the quadratic model with one kurtosis K > 3 (diminishing returns) the optimum is the
response of every feature to one level :math:`\mu = \sqrt{\lambda / 2}`
(:mod:`capopt._kernels.waterfill`): feature i is monosemantic iff :math:`\mu \le v_i` and
ignored iff :math:`\mu \ge z_i = (K - 1) v_i / 2`. In multipliers these are the KKT gaps
:math:`\lambda - m_i(1) \le 0` and :math:`m_i(0) - \lambda \le 0`, with
:math:`m_i(1) = 2 v_i^2`, :math:`m_i(0) = 2 z_i^2`. The optimum's levels form an interval
:math:`[\mu_-, \mu_+]`: one point while some feature is strictly inside (0, 1); otherwise
(every feature at a bound, e.g. d features monosemantic at a whole budget d) from the
largest ignore level of the ignored features to the smallest full level :math:`v_j` of the
monosemantic ones. The two margins

.. math::

    f_i = 1 - \mu_- / v_i \ \ (\ge 0 \iff C_i = 1), \qquad
    g_i = 1 - z_i / \mu_+ \ \ (\ge 0 \iff C_i = 0)

are continuous in every parameter (the capacities of a strictly convex problem are, and
:math:`\mu_\pm` move continuously through the instants where features reach their bounds),
and they are strictly negative on the polysemantic side and strictly positive on the other,
also where the levels form an interval: taking :math:`\mu_-` for the one and
:math:`\mu_+` for the other is what keeps the sign change strict where the feature itself
sets the end of the interval (the less important of two features on one neuron below
:math:`K^*` is ignored with :math:`z_b = \mu_-`). A boundary is a root of :math:`f_i` (the
feature leaves C = 1) or of :math:`g_i` (it leaves C = 0), found by a bracketing root
finder with superlinear steps (Illinois), safeguarded by bisection. Because the margins are
exact, so is the boundary: it does not move with ``regime_atol``. Regimes, at the grid
points and during bisection, are read from the exact capacities (C = 1, 0 < C < 1, C = 0,
no tolerance: the kernel places every feature at its bound from the same levels).

For K <= 3 (linear or increasing returns) the optimum is a vertex of the polytope, it jumps
where two vertices tie, and the margins say nothing about it (:math:`m_i` increases with
C). A cell across K = 3 is cut at the value nearest K = 3 on its convex side, and a cell
at K <= 3 is refined by bisection on the regime itself: the crossing lies where the feature
leaves the regime it has at the lower end. The jump at K = 3 between the vertex and the
shared allocation of equally important features (:math:`K^* = 3` at a/b = 1,
:math:`p^* = K_z / 3` at r = 1) is found so, as is a margin that rounding leaves without a
sign change (K within a few ulps of 3, where the margins are themselves O(K - 3)).

A cell whose ends show the same regime can still hide two crossings (a regime entered and
left between two grid points); the tracer sees only what the grid brackets.

Glossary: ``x`` the value of the traced parameter, ``mu`` level, ``v`` importance, ``z``
ignore level, ``K`` kurtosis, ``d`` budget, ``r`` importance decay, ``n`` number of
features, ``W`` the widest problem, ``f``/``g`` the full and ignore margins.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from .. import _formulas as F
from .._validation import check_choice, check_scalar
from ..regimes import Regime, regime_codes
from .grid import PARAMETERS, _solve_chunk, importances
from .scheduling import DEFAULT_CHUNK_SIZE

__all__ = ["phase_boundaries", "DEFAULT_BOUNDARY_RTOL", "MAX_REFINEMENTS"]

#: Relative accuracy of a traced crossing.
DEFAULT_BOUNDARY_RTOL = 1e-10
#: Refinement steps at most; the bisection safeguard halves a bracket at least every third
#: step, so 1e-10 of a grid cell takes about 35 steps in the worst case.
MAX_REFINEMENTS = 200
#: The smallest rtol: below a few ulps the bracket cannot shrink further (as scipy's brentq).
MIN_RTOL = 4 * np.finfo(np.float64).eps

#: How a crossing was refined: a root of a KKT margin, or bisection on the regime.
MARGIN, REGIME = "kkt-margin", "regime-bisection"
_FULL, _IGNORE, _JUMP = 0, 1, 2
_MONO, _POLY, _IGNORED = range(3)  # regime codes, as capopt.regimes.regime_codes

DESCRIPTIONS = {
    "feature": "feature index i, by decreasing importance",
    "regime_below": "regime of the feature just below the crossing (smaller value of the traced parameter)",
    "regime_above": "regime of the feature just above the crossing",
    "crossing": "k-th crossing of this feature between these regimes along its line of the grid",
    "bracket_width": "width of the final bracket around the crossing, in units of the traced parameter",
    "refined_by": f"{MARGIN}: root of a continuous KKT margin (K > 3); {REGIME}: bisection on the regime",
}


def phase_boundaries(ds: xr.Dataset, along: str | None = None, *,
                     rtol: float = DEFAULT_BOUNDARY_RTOL) -> xr.Dataset:
    r"""Points where some feature changes regime, refined along one parameter of a sweep.

    For every line of the grid along ``along`` (the other swept parameters fixed) and every
    cell of it across which feature i changes regime, the crossing :math:`x^*` is refined
    until its bracket is narrower than ``rtol`` :math:`\cdot |x^*|`, by re-solving the
    sweep's problem

    .. math::

        \min_C \sum_{i<N} \ell_i(C_i) \quad \text{s.t.} \quad 0 \le C_i \le 1,\
        \sum_i C_i \le d, \qquad v_i = r^i,

    at each step (module docstring: a root of a continuous KKT margin for K > 3, bisection
    on the regime where a cell reaches K <= 3).

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`~capopt.sweeps.sweep` (or :func:`~capopt.sweeps.polysemantic_phase`,
        :func:`~capopt.sweeps.load_sweep`) or :func:`~capopt.sweeps.two_feature_phase`.
        Only its coordinates and attributes are read: the grid points are solved again,
        so that their regimes come from the same exact margins as the refinement.
    along : str, optional
        The swept parameter to refine along: ``"kurtosis"``, ``"density"``,
        ``"importance_decay"``, ``"budget"`` or, for the two-feature diagram,
        ``"importance_ratio"``. By default the swept density or kurtosis.
    rtol : float
        Relative accuracy of each crossing, in [4 eps, 1).

    Returns
    -------
    xarray.Dataset
        Over ``point`` (one per crossing, ordered by line, then along the line): the
        crossing's value of ``along`` and of every other swept parameter as coordinates
        (and ``kurtosis`` with ``density``); ``feature``, ``regime_below`` and
        ``regime_above`` (the words of :class:`capopt.Regime`), ``crossing`` (k-th crossing
        of the same feature and regimes on its line), ``bracket_width`` and ``refined_by``.
        The dataset's scalar parameters are scalar coordinates; attributes ``along`` and
        ``rtol``.

    Raises
    ------
    TypeError
        If ``ds`` is not a dataset of one of the sweeps above.
    ValueError
        If ``along`` is not one of its swept parameters (or is ``n_features``, which is
        whole), or ``rtol`` is out of range.

    See Also
    --------
    capopt.plotting.plot_two_feature_phase, capopt.plotting.plot_polysemantic_phase :
        Draw the traced boundaries over the grid.

    Notes
    -----
    Every step solves all brackets still open at once (:func:`capopt.sweeps.sweep`'s
    kernel, O(N log N) each); a bracket of one grid step needs about 10 steps to reach
    1e-10 by root finding and about 35 by bisection. Tracing the grid itself costs one
    solve per grid point; memory is one byte per feature and grid point, for the regimes.

    Examples
    --------
    Two features on one neuron share it above :math:`K^* = 1 + 2a/b` (theory §3):

    >>> from capopt.sweeps import two_feature_phase
    >>> ds = two_feature_phase([2.0, 3.0], [4.0, 6.0, 8.0])
    >>> bd = phase_boundaries(ds, along="kurtosis")
    >>> bd.kurtosis.values.round(9).tolist()
    [5.0, 5.0, 7.0, 7.0]
    >>> bd.regime_below.values.tolist()[:2], bd.regime_above.values.tolist()[:2]
    (['monosemantic', 'ignored'], ['polysemantic', 'polysemantic'])
    """
    if not isinstance(ds, xr.Dataset) or "multiplier" not in ds:
        raise TypeError("ds must be the dataset of capopt.sweeps.sweep or two_feature_phase, got "
                        + (f"a dataset of variables {sorted(map(str, ds.data_vars))}" if isinstance(ds, xr.Dataset)
                           else type(ds).__name__))
    dims = tuple(ds.multiplier.dims)
    traceable = [k for k in dims if k != "n_features"]
    if along is None:
        along = next((k for k in ("density", "kurtosis") if k in dims), None)
        if along is None:
            raise ValueError(f"along must name the swept parameter to refine along, one of {traceable}")
    check_choice(along, "along", traceable)
    rtol = check_scalar(rtol, "rtol", minimum=MIN_RTOL)
    if rtol >= 1:
        raise ValueError(f"rtol must be in [{MIN_RTOL:.3g}, 1), got {rtol!r}")

    names = _parameter_names(ds)
    axis = dims.index(along)
    order = np.argsort(ds[along].values, kind="stable")
    # Every parameter at every grid point, as (lines, points along the line).
    grid = {}
    for name in names:
        full = ds[name].broadcast_like(ds.multiplier).transpose(*dims).values
        full = np.take(np.moveaxis(full, axis, -1), order, axis=-1)
        grid[name] = full.reshape(-1, full.shape[-1])
    problem = _Problem(ds, names)
    # A cell across K = 3 is cut there: the part above is convex and refined exactly.
    x3 = problem.just_convex(along)
    axis_values = grid[along][0]
    if x3 is not None and axis_values[0] < x3 < axis_values[-1] and x3 not in axis_values:
        at = int(np.searchsorted(axis_values, x3))
        grid = {k: np.insert(x, at, x3 if k == along else x[:, at], axis=1) for k, x in grid.items()}
    lines, L = grid[along].shape
    codes = problem.codes_on_grid({k: x.ravel() for k, x in grid.items()}).reshape(lines, L, -1)

    # Cells (line, step j -> j + 1) and features whose regime changes across them.
    K = problem.kurtosis({k: x for k, x in grid.items()})
    convex = (K[:, :-1] > 3) & (K[:, 1:] > 3)
    lo, hi = codes[:, :-1], codes[:, 1:]
    kinds = {
        _FULL: convex[..., None] & ((lo == _MONO) != (hi == _MONO)),
        _IGNORE: convex[..., None] & ((lo == _IGNORED) != (hi == _IGNORED)),
        _JUMP: ~convex[..., None] & (lo != hi),
    }
    found = [(np.full(np.count_nonzero(mask), k),) + np.nonzero(mask) for k, mask in kinds.items()]
    kind, line, step, feature = (np.concatenate(parts) for parts in zip(*found))
    start = np.lexsort((feature, step, line))
    kind, line, step, feature = kind[start], line[start], step[start], feature[start]
    values = {k: x[line, step] for k, x in grid.items()}
    a, b = grid[along][line, step], grid[along][line, step + 1]

    x, width = np.empty(a.size), np.empty(a.size)
    below, above = lo[line, step, feature], hi[line, step, feature]
    # A margin within rounding of 0 at an end (K a few ulps above 3) may show no sign change:
    # such a cell is bisected on the regime too.
    smooth = np.flatnonzero(kind != _JUMP)
    margin = problem.margin_function(values, along, feature, kind)
    fa, fb = margin(a[smooth], smooth), margin(b[smooth], smooth)
    changes = (fa >= 0) != (fb >= 0)
    smooth, fa, fb = smooth[changes], fa[changes], fb[changes]
    x[smooth], width[smooth] = _illinois(a[smooth], b[smooth], fa, fb, lambda z, i: margin(z, smooth[i]), rtol)
    jump = np.setdiff1d(np.arange(a.size), smooth)
    same = problem.same_regime_function(values, along, feature, below)
    x[jump], width[jump] = _illinois(a[jump], b[jump], np.ones(jump.size), -np.ones(jump.size),
                                     lambda z, i: same(z, jump[i]), rtol, interpolate=False)
    # The regime just above each crossing, at the upper end of its final bracket.
    upper = np.minimum(x + np.maximum(0.5 * width, rtol * np.abs(x)), b)
    above = problem.codes(values, along, upper)[np.arange(a.size), feature]
    refined = np.zeros(a.size, dtype=bool)
    refined[smooth] = True
    return _result(ds, names, along, rtol, values, x, width, line, feature, below, above, refined)


class _Problem:
    """The sweep's problem at given parameter values: solved, with regimes and margins."""

    def __init__(self, ds: xr.Dataset, names: tuple[str, ...]):
        self.two_feature = "importance_ratio" in names
        self.base_moment = F.BASE_FOURTH_MOMENT[ds.attrs["base"]] if "density" in names else None
        self.width = 2 if self.two_feature else int(np.max(ds.n_features))

    def kurtosis(self, values: dict) -> np.ndarray:
        if self.base_moment is not None:
            return F.gated_kurtosis(values["density"], self.base_moment)
        return values["kurtosis"]

    def just_convex(self, along: str) -> float | None:
        """The value of ``along`` nearest K = 3 with K > 3, where ``along`` sets K; else None."""
        if along == "kurtosis":
            return float(np.nextafter(3.0, np.inf))
        if along != "density" or self.base_moment is None:
            return None
        p = self.base_moment / 3.0
        while F.gated_kurtosis(p, self.base_moment) <= 3.0:
            p = np.nextafter(p, 0.0)
        return float(p)

    def solve(self, values: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(capacities (P, W), levels mu_- and mu_+ (P, 1), importances (P, W), K (P, 1))."""
        K = np.asarray(self.kurtosis(values), dtype=np.float64)
        if self.two_feature:  # two_feature_phase: the sweep N = 2, d = 1, r = b/a
            r = 1.0 / values["importance_ratio"]
            n, d = np.full(r.shape, 2), np.ones(r.shape)
        else:
            n, d, r = values["n_features"], values["budget"], values["importance_decay"]
        C, lam, _, _ = _solve_chunk(n, d.astype(np.float64), r.astype(np.float64), K, self.width, 0.0)
        v = importances(r, self.width)
        K = K[:, None]
        mu_lo = F.quadratic_multiplier_level(lam)[:, None]
        interior = np.any((C > 0) & (C < 1), axis=1, keepdims=True)
        full_levels = np.where(C == 1, F.quadratic_full_level(v, K), np.inf)
        mu_hi = np.where(interior, mu_lo, np.min(full_levels, axis=1, keepdims=True))
        return C, mu_lo, mu_hi, v, K

    def margins(self, values: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Full and ignore margins f, g (P, W) (meaningful for K > 3), and the regime codes
        (P, W) of the exact capacities (-1 beyond a problem's N)."""
        C, mu_lo, mu_hi, v, K = self.solve(values)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = 1.0 - mu_lo / F.quadratic_full_level(v, K)
            g = 1.0 - F.quadratic_ignore_level(v, K) / mu_hi
        return f, g, np.where(np.isnan(C), -1, regime_codes(C, atol=0.0)).astype(np.int8)

    def codes_on_grid(self, values: dict) -> np.ndarray:
        """Regime codes (P, W) of every grid point, solved a chunk at a time."""
        P = next(iter(values.values())).size
        parts = []
        for s in range(0, P, DEFAULT_CHUNK_SIZE):
            parts.append(self.margins({k: x[s:s + DEFAULT_CHUNK_SIZE] for k, x in values.items()})[2])
        return np.concatenate(parts)

    def _at(self, values: dict, along: str, x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sub = {k: v[rows] for k, v in values.items()}
        sub[along] = x
        return self.margins(sub)

    def codes(self, values: dict, along: str, x: np.ndarray) -> np.ndarray:
        """Regime codes (P, W) of the problems ``values`` with ``along`` set to ``x``."""
        return self._at(values, along, x, np.arange(x.size))[2]

    def margin_function(self, values: dict, along: str, feature: np.ndarray,
                        kind: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``margin(x, rows)``: f_i (kind _FULL) or g_i (kind _IGNORE) of the brackets ``rows`` at x."""
        def margin(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
            f, g, _ = self._at(values, along, x, rows)
            i = feature[rows]
            return np.where(kind[rows] == _FULL, f[np.arange(i.size), i], g[np.arange(i.size), i])
        return margin

    def same_regime_function(self, values: dict, along: str, feature: np.ndarray,
                             regime: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``same(x, rows)``: 1 where feature i of the brackets ``rows`` is in ``regime`` at x, else -1."""
        def same(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
            codes = self._at(values, along, x, rows)[2]
            return np.where(codes[np.arange(rows.size), feature[rows]] == regime[rows], 1.0, -1.0)
        return same


def _illinois(a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray,
              function: Callable[[np.ndarray, np.ndarray], np.ndarray], rtol: float, *,
              interpolate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Roots of functions that change sign in brackets [a, b], all brackets at once.

    ``function(x, open_)`` evaluates the functions of the brackets ``open_`` (indices) at
    ``x``. Illinois steps (regula falsi that halves the value kept at an end twice in a
    row), and a bisection wherever two steps did not halve a bracket, or every step with
    ``interpolate=False``. Returns the midpoints and widths of the final brackets.
    """
    a, b, fa, fb = (np.array(z, dtype=np.float64) for z in (a, b, fa, fb))
    kept = np.zeros(a.size, dtype=np.int8)  # the end the last step kept: -1 a, +1 b
    widths = np.full((2, a.size), np.inf)  # the widths one and two steps ago
    for _ in range(MAX_REFINEMENTS):
        open_ = np.flatnonzero(b - a > rtol * np.maximum(np.abs(a), np.abs(b)))
        if open_.size == 0:
            break
        lo, hi, flo, fhi = a[open_], b[open_], fa[open_], fb[open_]
        mid = 0.5 * (lo + hi)
        if interpolate:
            with np.errstate(divide="ignore", invalid="ignore"):
                x = (lo * fhi - hi * flo) / (fhi - flo)
            slow = hi - lo > 0.5 * widths[1, open_]
            x = np.where(slow | ~((x > lo) & (x < hi)), mid, x)
        else:
            x = mid
        widths[1, open_], widths[0, open_] = widths[0, open_], hi - lo
        fx = function(x, open_)
        root = fx == 0
        move_a = (np.sign(fx) == np.sign(flo)) & ~root
        move_b = ~move_a & ~root
        fb[open_] = np.where(move_a & (kept[open_] == 1), 0.5 * fhi, fhi)
        fa[open_] = np.where(move_b & (kept[open_] == -1), 0.5 * flo, flo)
        a[open_] = np.where(move_a | root, x, lo)
        b[open_] = np.where(move_b | root, x, hi)
        fa[open_] = np.where(move_a, fx, fa[open_])
        fb[open_] = np.where(move_b, fx, fb[open_])
        kept[open_] = np.where(move_a, 1, np.where(move_b, -1, 0))
    return 0.5 * (a + b), b - a


def _parameter_names(ds: xr.Dataset) -> tuple[str, ...]:
    """The parameters that define the dataset's problems (kurtosis follows from density)."""
    if "importance_ratio" in ds.coords:
        return ("importance_ratio", "kurtosis")
    missing = [k for k in ("n_features", "budget", "importance_decay") if k not in ds.coords]
    if missing or ("kurtosis" not in ds.coords and "density" not in ds.coords):
        raise TypeError(f"ds must be the dataset of capopt.sweeps.sweep or two_feature_phase; its "
                        f"coordinates {sorted(map(str, ds.coords))} miss {missing or ['kurtosis or density']}")
    if "density" in ds.coords and "base" not in ds.attrs:
        raise TypeError("ds sweeps density but has no 'base' attribute (the distribution of an "
                        "active input), which its kurtosis K = K_z / p needs")
    return tuple(k for k in PARAMETERS if k in ds.coords and not (k == "kurtosis" and "density" in ds.coords))


def _result(ds: xr.Dataset, names: tuple[str, ...], along: str, rtol: float, values: dict, x: np.ndarray,
            width: np.ndarray, line: np.ndarray, feature: np.ndarray, below: np.ndarray, above: np.ndarray,
            smooth: np.ndarray) -> xr.Dataset:
    words = np.array([r.value for r in Regime], dtype=object)
    # Points are ordered by line, then along it: count within each (line, feature, regimes).
    order = np.lexsort((np.arange(x.size), above, below, feature, line))
    keys = np.stack([line, feature, below, above])[:, order]
    first = np.ones(x.size, dtype=bool)
    first[1:] = np.any(keys[:, 1:] != keys[:, :-1], axis=0)
    starts = np.maximum.accumulate(np.where(first, np.arange(x.size), 0))
    crossing = np.empty(x.size, dtype=np.int32)
    crossing[order] = np.arange(x.size) - starts
    swept = tuple(ds.multiplier.dims)
    coords: dict[str, tuple[str | tuple[str, ...], np.ndarray, dict]] = {}
    for name in names:
        value = x if name == along else values[name]
        if name in swept:
            coords[name] = ("point", value, ds[name].attrs)
        else:
            coords[name] = ((), ds[name].values, ds[name].attrs)
    if "density" in names:
        K = F.gated_kurtosis(coords["density"][1], F.BASE_FOURTH_MOMENT[ds.attrs["base"]])
        coords["kurtosis"] = (coords["density"][0], K, ds["kurtosis"].attrs)
    data = {
        "feature": feature.astype(np.int32),
        "regime_below": words[below].astype(str),
        "regime_above": words[above].astype(str),
        "crossing": crossing,
        "bracket_width": width,
        "refined_by": np.where(smooth, MARGIN, REGIME),
    }
    out = xr.Dataset({k: ("point", v, {"description": DESCRIPTIONS[k]}) for k, v in data.items()},
                     coords=coords)
    out.attrs = {**ds.attrs, "along": along, "rtol": rtol,
                 "description": f"crossings of regime boundaries, refined along {along}"}
    return out
