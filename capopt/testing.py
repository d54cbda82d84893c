"""Hypothesis strategies and checks for property-testing allocation theorems.

Requires ``hypothesis`` (``pip install capopt[test]``). Everything here is public so that
users can test their own theorems against capopt's solvers::

    from hypothesis import given
    import capopt
    from capopt.testing import problems, check_certificate

    @given(problems())
    def test_more_budget_never_hurts(problem):
        curves, d = problem
        assert capopt.solve(curves, d + 1).loss <= capopt.solve(curves, d).loss + 1e-9
"""

from __future__ import annotations

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    raise ImportError(
        "capopt.testing needs hypothesis; install it with `pip install capopt[test]`"
    ) from exc

from .curves import LossCurves, linear_autoencoder, quadratic
from .regimes import DEFAULT_REGIME_ATOL, classify
from .solvers import METHODS, AllocationResult, certify

__all__ = [
    "importances",
    "kurtoses",
    "quadratic_families",
    "linear_autoencoder_families",
    "problems",
    "embeddings",
    "check_certificate",
]

#: Kurtosis ranges of each returns regime of the quadratic model (theory §3): increasing
#: returns below 3, diminishing above. Bounded away from 3 and 1 so that draws stay
#: clearly in one regime and the curves stay well conditioned.
KURTOSIS_RANGES = {"concave": (1.2, 2.8), "convex": (3.2, 40.0)}


def importances(n: int, *, min_value: float = 0.05, max_value: float = 10.0):
    """Strategy for n positive importances, as a float64 array."""
    return hnp.arrays(
        np.float64, n, elements=st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)
    )


def kurtoses(n: int, *, returns: str = "convex"):
    """Strategy for n kurtoses in one returns regime, or ``"mixed"`` for either per feature.

    Parameters
    ----------
    returns : {"convex", "concave", "mixed"}
        Diminishing returns (K > 3), increasing returns (K < 3), or a mix of the two.
    """
    if returns == "mixed":
        lo_range = st.floats(*KURTOSIS_RANGES["concave"])
        hi_range = st.floats(*KURTOSIS_RANGES["convex"])
        return st.lists(st.one_of(lo_range, hi_range), min_size=n, max_size=n).map(np.array)
    if returns not in KURTOSIS_RANGES:
        raise ValueError(f"returns must be 'convex', 'concave' or 'mixed', got {returns!r}")
    return hnp.arrays(np.float64, n, elements=st.floats(*KURTOSIS_RANGES[returns]))


#: Values that exercise the special cases of the quadratic curves: flat curves (v <= 0,
#: K = 1), linear ones (K = 3) and ties between equal importances.
EDGE_IMPORTANCES = (-1.0, 0.0, 1.0, 2.0)
EDGE_KURTOSES = (1.0, 3.0)


@st.composite
def quadratic_families(
    draw, *, min_features: int = 1, max_features: int = 8, returns: str = "convex", edge_cases: bool = False
):
    """Strategy for :class:`~capopt.curves.QuadraticCurves` in one returns regime.

    Parameters
    ----------
    min_features, max_features : int
    returns : {"convex", "concave", "mixed"}
        See :func:`kurtoses`.
    edge_cases : bool
        Also draw the special values :data:`EDGE_IMPORTANCES` and :data:`EDGE_KURTOSES`
        (flat and linear curves, ties). The family's shape may then be linear or, with
        ``returns="mixed"``, anything.
    """
    n = draw(st.integers(min_features, max_features))
    if not edge_cases:
        return quadratic(draw(importances(n)), draw(kurtoses(n, returns=returns)))
    v_entry = st.one_of(st.floats(0.05, 10.0), st.sampled_from(EDGE_IMPORTANCES))
    K_entry = st.one_of(
        *(st.floats(*KURTOSIS_RANGES[r]) for r in (("concave", "convex") if returns == "mixed" else (returns,))),
        st.sampled_from(EDGE_KURTOSES),
    )
    v = draw(st.lists(v_entry, min_size=n, max_size=n))
    K = draw(st.lists(K_entry, min_size=n, max_size=n))
    return quadratic(v, K)


@st.composite
def linear_autoencoder_families(draw, *, min_features: int = 1, max_features: int = 8):
    """Strategy for :class:`~capopt.curves.LinearAutoencoderCurves`."""
    n = draw(st.integers(min_features, max_features))
    return linear_autoencoder(draw(importances(n)))


@st.composite
def problems(draw, families=None, *, integer_budget: bool = False):
    """Strategy for ``(curves, budget)`` pairs with budgets from 0 to beyond N.

    Parameters
    ----------
    families : strategy of LossCurves, optional
        Default: convex quadratic families.
    integer_budget : bool
        Draw whole dimensions only (the realisable case of theory §2).
    """
    curves = draw(quadratic_families() if families is None else families)
    n = curves.n_features
    if integer_budget:
        budget = float(draw(st.integers(0, n + 1)))
    else:
        budget = draw(st.floats(0.0, n + 1.0, allow_nan=False))
    return curves, budget


@st.composite
def embeddings(draw, *, max_dim: int = 6, max_features: int = 10, zero_columns: bool = True):
    """Strategy for d x N embedding matrices (features on the last axis).

    Entries are 0 or of magnitude in [1e-2, 3], so that numerical rank and exact rank agree;
    with ``zero_columns`` some columns may be exactly zero.
    """
    d = draw(st.integers(1, max_dim))
    n = draw(st.integers(1, max_features))
    magnitude = st.floats(1e-2, 3.0)
    entry = st.one_of(st.just(0.0), magnitude, magnitude.map(lambda x: -x))
    W = draw(hnp.arrays(np.float64, (d, n), elements=entry))
    if zero_columns:
        mask = draw(hnp.arrays(bool, n))
        W = np.where(mask[None, :], 0.0, W)
    return W


def check_certificate(curves: LossCurves, result: AllocationResult, *, tol: float | None = None) -> None:
    """Assert that ``result`` is a certified optimum of the problem it claims to solve.

    The certificate is recomputed from ``curves`` rather than read from the result, so a
    solver cannot vouch for itself. Checks feasibility, the KKT residuals, the gap to the
    lower bound, that the reported losses are the curves' losses at the capacities, and
    that the regimes match the capacities.

    Parameters
    ----------
    curves : LossCurves
        The family the result was solved for.
    result : AllocationResult
    tol : float, optional
        Largest accepted scaled residual; defaults to the tolerance of ``result.method``.

    Raises
    ------
    AssertionError
        Naming the first condition that fails and by how much.
    """
    tol = METHODS[result.method].tol if tol is None else tol
    C = result.capacities
    assert C.shape == (curves.n_features,), f"capacities have shape {C.shape}, expected ({curves.n_features},)"
    fresh = certify(
        curves,
        C,
        result.multiplier,
        result.budget,
        lower_bound=result.certificate.lower_bound,
        lower_bound_how=result.certificate.how,
    )
    worst = fresh.worst(result.budget)
    assert worst <= tol, f"certificate fails: worst scaled residual {worst:.3g} > {tol:.3g}: {fresh}"
    assert np.allclose(curves.loss(C), result.losses, rtol=1e-12, atol=1e-12), "losses differ from curves.loss(C)"
    assert np.isclose(result.loss, np.sum(result.losses), rtol=1e-12, atol=1e-12), "loss is not sum(losses)"
    assert result.regimes == classify(C, atol=DEFAULT_REGIME_ATOL), "regimes do not match capacities"


@st.composite
def realisable_allocations(
    draw,
    *,
    max_blocks: int = 3,
    max_block_features: int = 6,
    max_monosemantic: int = 3,
    max_ignored: int = 3,
    max_spare_dims: int = 2,
):
    """Strategy for ``(capacities, dim)`` pairs that some embedding realises (theory §2).

    Built from blocks, as :func:`capopt.realize` needs: up to ``max_blocks``
    polysemantic blocks of n features sharing k < n dimensions, with capacities
    k/n + (a zero-sum perturbation kept inside (0, 1)), so each block sums to k up to
    rounding; monosemantic features (C = 1), ignored ones (C = 0), all shuffled; and
    ``dim`` the dimensions used (at least one) plus up to ``max_spare_dims`` spare ones.
    """
    parts = []
    n_blocks = draw(st.integers(0, max_blocks))
    for _ in range(n_blocks):
        n = draw(st.integers(2, max_block_features))
        k = draw(st.integers(1, n - 1))
        w = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0)))
        w = w - w.mean()
        room = min(k / n, 1 - k / n)
        spread = np.max(np.abs(w))
        # 0.99 keeps every capacity strictly inside (0, 1), away from the snapping band;
        # near-equal draws (spread ~ rounding) are not amplified into large errors.
        step = 0.99 * room / spread * draw(st.floats(0.0, 1.0)) if spread > 1e-6 else 0.0
        block = k / n + step * w
        parts.append(block * (k / block.sum()))
    # At least one dimension is used: a 0 x N embedding is no test of anything.
    parts.append(np.ones(draw(st.integers(0 if n_blocks else 1, max(max_monosemantic, 1)))))
    parts.append(np.zeros(draw(st.integers(0, max_ignored))))
    C = np.concatenate(parts)
    C = C[np.array(draw(st.permutations(range(C.size))), dtype=int)]
    used = round(float(C.sum()))
    return C, used + draw(st.integers(0, max_spare_dims))


__all__ += ["realisable_allocations"]
