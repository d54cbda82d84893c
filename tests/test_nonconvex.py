"""The global branch-and-bound method and the grid dynamic programme (theory §2, §3).

Independent routes used as references:
- exhaustive enumeration of a capacity grid (N <= 3), and of the vertices of the polytope
  for concave families (a concave function attains its minimum over a polytope at a vertex);
- the theory §3 closed form for identical K > 3, with mu found here by plain bisection;
- problems built around a known optimum: choose C* and lambda* first, then curves whose
  Lagrangian l_i(c) + lambda* c is minimised over [0, 1] at C*_i feature by feature, which
  makes C* a global optimum of the budget-constrained problem (Everett's theorem);
- between the two methods: the grid DP's own proven bound.

Rounding bound of a grid of step h (used for both grid references): rounding a continuous
optimum down to the grid keeps it feasible and costs at most h * sum_i L_i with
L_i = max(0, m_i(0), m_i(1)) for convex/concave/linear curves, so
grid minimum - h sum_i L_i <= optimum <= grid minimum.
"""

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import capopt
from capopt.curves import Shape
from capopt.solvers import AUTO, METHODS, AllocationError, solve
from capopt.solvers import dp
from capopt.testing import check_certificate, problems, quadratic_families
from capopt.user_curves import from_functions, from_table

#: Loss comparisons between two exact routes: the sums of N losses agree to rounding.
LOSS_RTOL = 1e-12


@st.composite
def mixed_families(draw, max_features=5):
    """Quadratic families with kurtoses on both sides of 3 and moderate marginals.

    Importances in [0.2, 2] and convex kurtoses up to 12 keep max m_i(0) = (K-1)^2 v^2 / 2
    below ~250, so that the grid references' bound h * sum L_i stays informative.
    """
    n = draw(st.integers(1, max_features))
    v = draw(st.lists(st.floats(0.2, 2.0), min_size=n, max_size=n))
    K = draw(st.lists(st.one_of(st.floats(1.2, 2.8), st.floats(3.2, 12.0)), min_size=n, max_size=n))
    return capopt.quadratic(v, K)


def grid_rounding_bound(curves, M):
    """h * sum_i max(0, m_i(0), m_i(1)): the cost of rounding an optimum down to the grid."""
    n = curves.n_features
    ends = curves.marginal(np.stack([np.zeros(n), np.ones(n)]))
    return float(np.sum(np.maximum(0.0, ends.max(axis=0)))) / M


def exhaustive_grid_minimum(curves, d, M):
    """Least total loss over every grid allocation k / M with sum_i k_i / M <= d."""
    n = curves.n_features
    grid = np.arange(M + 1) / M
    table = curves.loss(np.broadcast_to(grid[:, None], (M + 1, n))).T
    units = np.indices((M + 1,) * n).reshape(n, -1)
    total = sum(table[i, units[i]] for i in range(n))
    return float(total[units.sum(axis=0) / M <= d].min())


def vertex_minimum(curves, d):
    """Least loss over the vertices of {0 <= C <= 1, sum C <= d}: 0/1 points, and points
    with floor(d) ones plus one coordinate at frac(d)."""
    n = curves.n_features
    whole, part = int(np.floor(d)), d - np.floor(d)
    best = np.inf
    for size in range(min(whole, n) + 1):
        for ones in itertools.combinations(range(n), size):
            C = np.zeros(n)
            C[list(ones)] = 1.0
            best = min(best, curves.total_loss(C))
            if size == whole and part > 0:
                for r in set(range(n)) - set(ones):
                    C_r = C.copy()
                    C_r[r] = part
                    best = min(best, curves.total_loss(C_r))
    return best


# --------------------------------------------------------------------------------------
# The global method against independent routes


@settings(max_examples=40)
@given(problems(mixed_families()))
@example((capopt.quadratic([1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]), 2.5))
@example((capopt.quadratic([1.75, 0.68, 0.58], [2.75, 15.0, 33.0]), 1.0))
# The sparse feature sits at 1 and the dense one fills the rest of the budget: the
# water-filled part has a kink there, which once sent the polish back and forth.
@example((capopt.quadratic([0.678, 1.494, 1.690], [1.968, 14.88, 1.692]), 1.589))
def test_global_is_no_worse_than_a_fine_grid_dp_and_within_its_bound(problem):
    curves, d = problem
    best = solve(curves, d, method="global")
    M = 400
    grid = solve(curves, d, method="dp", resolution=M, throw=False)
    slack = LOSS_RTOL * max(1.0, abs(grid.loss))
    assert best.loss <= grid.loss + slack
    assert best.loss >= grid.loss - grid_rounding_bound(curves, M) - slack


@settings(max_examples=25)
@given(problems(mixed_families(max_features=3)))
def test_global_matches_exhaustive_grid_search_for_up_to_three_features(problem):
    curves, d = problem
    M = 100 if curves.n_features == 3 else 400
    reference = exhaustive_grid_minimum(curves, d, M)
    best = solve(curves, d, method="global")
    slack = LOSS_RTOL * max(1.0, abs(reference))
    assert best.loss <= reference + slack
    assert best.loss >= reference - grid_rounding_bound(curves, M) - slack


@settings(max_examples=40)
@given(problems(quadratic_families(max_features=8, returns="mixed")))
def test_global_certifies_mixed_quadratic_families(problem):
    curves, d = problem
    result = solve(curves, d, method="global")
    assert result.status.name == "OPTIMAL"
    check_certificate(curves, result)


@settings(max_examples=40)
@given(
    st.integers(1, 8).flatmap(lambda n: st.lists(st.floats(0.05, 10.0), min_size=n, max_size=n)),
    st.floats(3.2, 40.0),
    st.floats(0.0, 1.0),
)
def test_global_on_identical_convex_kurtosis_matches_the_closed_form(v, K, fraction):
    # theory §3: C_i = clip(((K-1) v_i / mu - 2) / (K-3), 0, 1) with mu set by sum C = d.
    v = np.array(v)
    n = v.size
    d = fraction * n
    closed_form = lambda mu: np.clip(((K - 1) * v / mu - 2) / (K - 3), 0.0, 1.0)
    lo, hi = 1e-300, (K - 1) * v.max()  # sum C = n at mu -> 0, 0 at the top
    for _ in range(2000):
        mu = 0.5 * (lo + hi)
        if not lo < mu < hi:
            break
        lo, hi = (mu, hi) if closed_form(mu).sum() > d else (lo, mu)
    result = solve(capopt.quadratic(v, K), d, method="global")
    # Both routes are exact to rounding; mu's last bit moves C by ~(K-1) v / ((K-3) mu) ulps.
    np.testing.assert_allclose(result.capacities, closed_form(hi), atol=1e-9)
    if np.any((result.capacities > 1e-9) & (result.capacities < 1 - 1e-9)):
        assert result.multiplier == pytest.approx(2 * hi**2, rel=1e-9)  # mu = sqrt(lam / 2)


@settings(max_examples=40)
@given(
    st.integers(1, 8).flatmap(lambda n: st.lists(st.floats(0.05, 10.0), min_size=n, max_size=n)),
    st.floats(1.05, 2.95),  # K = 1 is a flat curve (x^2 = 1 is absorbed by the bias)
    st.data(),
)
def test_global_on_concave_family_keeps_the_top_d_features(v, K, data):
    # theory §3: for K <= 3 the d largest v get C = 1, the rest 0 (ties: lower index first).
    v = np.array(v)
    d = data.draw(st.integers(0, v.size), label="d")
    curves = capopt.quadratic(v, K)
    result = solve(curves, float(d), method="global")
    expected = np.zeros(v.size)
    expected[np.argsort(-v, kind="stable")[:d]] = 1.0
    np.testing.assert_allclose(result.capacities, expected, atol=1e-12)
    # Smallest KKT multiplier: the best marginal among the ignored features at 0.
    ignored = expected == 0
    m0 = curves.marginal(np.zeros(v.size))
    assert result.multiplier == pytest.approx(max(0.0, m0[ignored].max(initial=0.0)), rel=1e-14)


@settings(max_examples=30)
@given(
    st.integers(1, 6).flatmap(lambda n: st.lists(st.floats(0.2, 3.0), min_size=n, max_size=n)),
    st.integers(1, 6).flatmap(lambda n: st.lists(st.floats(1.1, 2.9), min_size=n, max_size=n)),
    st.floats(0.0, 6.0),
)
def test_global_on_concave_families_matches_vertex_enumeration(v, K, d):
    n = min(len(v), len(K))
    curves = capopt.quadratic(v[:n], K[:n])
    result = solve(curves, d, method="global")
    reference = vertex_minimum(curves, d)
    assert result.loss == pytest.approx(reference, rel=LOSS_RTOL, abs=LOSS_RTOL)


@st.composite
def known_optima(draw):
    """A mixed quadratic family, its budget, and its unique optimum (C*, lambda*).

    Convex features (K > 3) get interior C*_i with importance solving m_i(C*_i) = lambda*;
    concave features are given chord marginals (K - 1) v^2 at least 2 lambda* (kept at 1)
    or at most lambda* / 2 (ignored): then c -> l_i(c) + lambda* c, concave, is least at
    that end. C* minimises the Lagrangian feature by feature and uses the whole budget.
    """
    lam = draw(st.floats(0.1, 10.0))
    n_convex = draw(st.integers(1, 4))
    K_convex = np.array(draw(st.lists(st.floats(3.5, 20.0), min_size=n_convex, max_size=n_convex)))
    C_convex = np.array(draw(st.lists(st.floats(0.05, 0.95), min_size=n_convex, max_size=n_convex)))
    v_convex = (2 + (K_convex - 3) * C_convex) * np.sqrt(lam / 2) / (K_convex - 1)
    kept = draw(st.lists(st.tuples(st.floats(1.2, 2.8), st.floats(1.0, 3.0)), max_size=3))
    dropped = draw(st.lists(st.tuples(st.floats(1.2, 2.8), st.floats(0.1, 1.0)), max_size=3))
    K_kept = np.array([k for k, _ in kept])
    v_kept = np.sqrt(2 * lam * np.array([f for _, f in kept]) / (K_kept - 1))
    K_drop = np.array([k for k, _ in dropped])
    v_drop = np.sqrt(0.5 * lam * np.array([f for _, f in dropped]) / (K_drop - 1))
    order = draw(st.permutations(range(n_convex + len(kept) + len(dropped))))
    v = np.concatenate([v_convex, v_kept, v_drop])[order]
    K = np.concatenate([K_convex, K_kept, K_drop])[order]
    C = np.concatenate([C_convex, np.ones(len(kept)), np.zeros(len(dropped))])[order]
    return capopt.quadratic(v, K), float(C.sum()), C, lam


@settings(max_examples=40)
@given(known_optima())
def test_global_finds_the_optimum_a_mixed_family_was_built_around(case):
    curves, d, C_star, lam_star = case
    result = solve(curves, d, method="global")
    np.testing.assert_allclose(result.capacities, C_star, atol=1e-9)
    assert result.multiplier == pytest.approx(lam_star, rel=1e-9)


def test_concave_curve_inside_the_unit_interval_is_stationary():
    # Found by search: at the optimum the dense feature (K = 2.75) is strictly inside (0, 1)
    # beside two polysemantic sparse ones. The structured method lands on the stationary
    # point itself; the branch and bound on the same curves given as functions polishes its
    # chord split point to it: two routes, one answer.
    curves = capopt.quadratic([1.75, 0.68, 0.58], [2.75, 15.0, 33.0])
    result = solve(curves, 1.0, method="global")
    assert np.all((result.capacities > 0.3) & (result.capacities < 0.4))
    assert result.certificate.stationarity <= 1e-13
    as_functions = from_functions(
        [lambda C, i=i: curves.loss(np.multiply.outer(C, np.eye(3)[i]) + 0.0)[..., i] for i in range(3)],
        [lambda C, i=i: curves.marginal(np.multiply.outer(C, np.eye(3)[i]) + 0.0)[..., i] for i in range(3)],
        shapes=curves.shapes,
    )
    polished = solve(as_functions, 1.0, method="global")
    np.testing.assert_allclose(polished.capacities, result.capacities, atol=1e-9)
    rough = solve(as_functions, 1.0, method="global", polish=False, throw=False)
    assert rough.status.name == "INACCURATE" and rough.loss >= result.loss - LOSS_RTOL


def test_global_breaks_ties_between_identical_features_by_lower_index():
    result = solve(capopt.quadratic(np.ones(5), 2.0), 2.5, method="global")
    np.testing.assert_allclose(result.capacities, [1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-15)


@pytest.mark.parametrize("n", [20, 100, 100_000])
@pytest.mark.parametrize("with_convex", [False, True])
def test_identical_concave_features_are_certified_without_search(n, with_convex):
    # The tie that defeats a bound: n identical concave curves sharing half a dimension. By
    # the structure of the optimum the top floor(d) take 1 and the next the fraction, in
    # index order, with as many convex curves beside them or without.
    v, K = np.ones(n), np.full(n, 2.0)
    if with_convex:
        v, K = np.concatenate([v, np.full(n, 0.5)]), np.concatenate([K, np.full(n, 7.0)])
    d = n / 2 + 0.5
    result = solve(capopt.quadratic(v, K), d, method="global")
    assert result.status.name == "OPTIMAL"
    if not with_convex:
        expected = np.zeros(n)
        expected[: n // 2] = 1.0
        expected[n // 2] = 0.5
        np.testing.assert_array_equal(result.capacities, expected)


def test_node_limit_reports_the_gap_instead_of_claiming_optimality():
    # Twelve identical concave curves given as functions: the branch and bound has no
    # structure to use, every permutation has the same chord bound.
    curve = capopt.quadratic([1.0], 2.0)
    curves = from_functions(
        [lambda C: curve.loss(np.expand_dims(C, -1))[..., 0]] * 12,
        [lambda C: curve.marginal(np.expand_dims(C, -1))[..., 0]] * 12,
        shapes=["concave"] * 12,
    )
    with pytest.raises(AllocationError, match="did not certify"):
        solve(curves, 5.5, method="global", max_nodes=50)
    result = solve(curves, 5.5, method="global", max_nodes=50, throw=False)
    assert result.status.name == "INACCURATE"
    assert result.certificate.gap > 1e-3
    assert result.certificate.lower_bound <= result.loss


# --------------------------------------------------------------------------------------
# Shared behaviour of both methods


@pytest.mark.parametrize("method, options", [("global", {}), ("dp", {"resolution": 40})])
def test_flat_curves_get_no_capacity(method, options):
    curves = capopt.quadratic([-1.0, 1.0, 0.0, 0.5], [2.0, 2.0, 7.0, 7.0])
    result = solve(curves, 3.0, method=method, **options, throw=False)
    assert result.capacities[0] == 0.0 and result.capacities[2] == 0.0


@pytest.mark.parametrize("method, options", [("global", {}), ("dp", {"resolution": 40})])
def test_edge_budgets(method, options):
    curves = capopt.quadratic([1.0, 0.5, 2.0], [2.0, 7.0, 2.0])
    np.testing.assert_array_equal(solve(curves, 0.0, method=method, **options).capacities, 0.0)
    np.testing.assert_array_equal(solve(curves, 3.0, method=method, **options).capacities, 1.0)
    np.testing.assert_array_equal(solve(curves, 7.5, method=method, **options).capacities, 1.0)


def test_auto_picks_global_for_mixed_families_and_tables_and_dp_for_irregular_functions():
    assert AUTO[Shape.MIXED] == "global" and AUTO[Shape.IRREGULAR] == "dp"
    assert solve(capopt.quadratic([1.0, 1.0], [2.0, 7.0]), 1.0).method == "global"
    table = from_table([0.0, 0.501, 0.502, 0.503, 1.0], [[1.0, 1.0, 0.0, 1.0, 1.0]])
    assert solve(table, 0.6).method == "global"
    wiggly = from_functions([lambda C: 1 - C + 0.1 * np.sin(12 * C)])
    assert solve(wiggly, 0.5, throw=False).method == "dp"
    with pytest.raises(ValueError, match="irregular curves given as functions"):
        solve(wiggly, 0.5, method="global")


# --------------------------------------------------------------------------------------
# The grid dynamic programme


@settings(max_examples=30)
@given(st.integers(1, 3), st.data())
def test_dp_matches_exhaustive_enumeration_of_its_grid(n, data):
    # Irregular tables on the DP's own grid: the DP must find the grid minimum exactly.
    M = 12
    values = data.draw(
        st.lists(st.floats(-5.0, 5.0), min_size=n * (M + 1), max_size=n * (M + 1)), label="values"
    )
    d = data.draw(st.floats(0.0, n + 0.5), label="d")
    curves = from_table(np.arange(M + 1) / M, np.reshape(values, (n, M + 1)))
    result = solve(curves, d, method="dp", resolution=M, throw=False)
    reference = exhaustive_grid_minimum(curves, d, M)
    assert result.loss == pytest.approx(reference, rel=LOSS_RTOL, abs=LOSS_RTOL)
    assert result.capacities.sum() <= d


@settings(max_examples=30)
@given(problems(mixed_families()))
def test_dp_gap_is_within_its_grid_bound(problem):
    curves, d = problem
    M = 100
    result = solve(curves, d, method="dp", resolution=M, throw=False)
    best = solve(curves, d, method="global")
    bound = grid_rounding_bound(curves, M)
    slack = LOSS_RTOL * max(1.0, abs(best.loss))
    assert result.certificate.gap * result.certificate.loss_scale <= bound + slack
    assert best.loss - slack <= result.loss <= best.loss + bound + slack
    assert result.certificate.lower_bound <= best.loss + slack


def test_dp_bound_of_irregular_curves_is_an_assumption_unless_a_lipschitz_constant_is_given():
    losses = [lambda C: 1 - C + 0.1 * np.sin(12 * C), lambda C: (1 - C) ** 2]
    curves = from_functions(losses, shapes=["irregular", "convex"])
    with pytest.raises(AllocationError, match="estimated from grid differences"):
        solve(curves, 1.0, method="dp", resolution=500)
    result = solve(curves, 1.0, method="dp", resolution=500, throw=False)
    assert result.status.name == "UNPROVEN"
    assert "h=1/500" in result.certificate.how
    assert any("estimated" in a for a in result.certificate.assumptions)
    # |l'| <= 1 + 1.2 for the first curve: a proven constant makes the bound a proof.
    proven = solve(curves, 1.0, method="dp", resolution=500, lipschitz=[2.2, 2.0], throw=False)
    assert proven.certificate.assumptions == ()
    assert proven.certificate.lower_bound < result.certificate.lower_bound + 1e-12


def test_dp_cannot_certify_a_table_whose_dip_falls_between_grid_points():
    # The reproducer of the certified-means-right issue: the grid misses the dip at 0.502,
    # and the table's steepest piece (slope 1000) proves the grid bound useless.
    table = from_table([0.0, 0.501, 0.502, 0.503, 1.0], [[1.0, 1.0, 0.0, 1.0, 1.0]])
    result = solve(table, 0.6, method="dp", throw=False)
    assert result.loss == 1.0 and result.status.name == "INACCURATE"
    assert solve(table, 0.6).loss == 0.0


def test_dp_uses_the_whole_grid_budget_without_exceeding_it():
    # 0.3 * 10 rounds to 3.0000000000000004 in floating point; 0.7 * 10 to 7.000000000000001.
    # The budget is counted in whole grid units, B = 3, 7, 29 here.
    curves = capopt.quadratic([1.0, 0.9, 0.8], 7.0)
    for d, B in ((0.3, 3), (0.7, 7), (2.9, 29)):
        C = solve(curves, d, method="dp", resolution=10, throw=False).capacities
        units = np.round(C * 10)
        np.testing.assert_array_equal(units / 10, C)
        assert units.sum() == B


def test_dp_breaks_ties_between_identical_features_by_lower_index():
    result = solve(capopt.quadratic(np.ones(5), 2.0), 2.5, method="dp", resolution=2, throw=False)
    np.testing.assert_array_equal(result.capacities, [1.0, 1.0, 0.5, 0.0, 0.0])


def test_dp_refuses_a_backtracking_table_above_its_memory_limit(monkeypatch):
    monkeypatch.setattr(dp, "DP_TABLE_BYTES", 1000)
    message = r"resolution=200 needs a .* MiB backtracking table.*lower resolution"
    with pytest.raises(ValueError, match=message):
        solve(capopt.quadratic(np.ones(10), 7.0), 5.0, method="dp")


# --------------------------------------------------------------------------------------
# Options

BAD_OPTIONS = [
    ("global", dict(max_nodes=0), ValueError, r"max_nodes must be >= 1, got 0"),
    ("global", dict(max_nodes=2.5), TypeError, r"max_nodes must be an integer, got float"),
    ("global", dict(gap_rtol=-1e-3), ValueError, r"gap_rtol must be finite and >= 0"),
    ("global", dict(polish="yes"), TypeError, r"polish must be True or False, got str"),
    ("global", dict(resolution=10), TypeError, r"unexpected keyword argument 'resolution'"),
    ("dp", dict(resolution=0), ValueError, r"resolution must be >= 1 and <= 65535, got 0"),
    ("dp", dict(resolution=70000), ValueError, r"resolution must be >= 1 and <= 65535, got 70000"),
    ("dp", dict(resolution=True), TypeError, r"resolution must be an integer, got bool"),
]


@pytest.mark.parametrize("method, options, error, message", BAD_OPTIONS)
def test_bad_options_raise_with_a_clear_message(method, options, error, message):
    with pytest.raises(error, match=message):
        solve(capopt.quadratic([1.0, 1.0], [2.0, 7.0]), 1.0, method=method, **options)


@pytest.mark.parametrize("seed", [17, 25])
def test_mixed_method_bounds_only_the_candidates_no_other_dominates(seed, monkeypatch):
    # The bench family on which the candidates' bounds were once evaluated before the
    # dominance test, 2772 and 2780 passes over the water-filled features (quadratic
    # time); the undominated candidates near the boundary rank are a handful.
    import importlib

    kernels = importlib.import_module("capopt._kernels.mixed")
    passes = []
    original = kernels.response_totals
    monkeypatch.setattr(kernels, "response_totals", lambda *a: passes.append(1) or original(*a))
    n = 100_000
    v = np.random.default_rng(0).pareto(1.5, n) + 0.01
    K = np.random.default_rng(seed).uniform(1.2, 10.0, n)
    assert solve(capopt.quadratic(v, K), n / 4).status.name == "OPTIMAL"
    assert 0 < len(passes) <= 20
