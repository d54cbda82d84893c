"""The vertex solution (method "vertex"): exact for concave and linear families (theory §2-3).

The reference is brute force: every vertex of {0 <= C <= 1, sum C <= d} is listed and its
loss evaluated; a concave objective attains its minimum over the polytope at one of them.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import example, given, strategies as st

from capopt.curves import linear_autoencoder, quadratic
import references
from capopt._kernels import vertex as kernels
from capopt.solvers import solve
from capopt.solvers.vertex import vertex
from capopt.testing import KURTOSIS_RANGES, check_certificate, importances, linear_autoencoder_families, quadratic_families

#: Two evaluations of the same vertex's loss, summed in different orders: rounding only.
EXACT = 1e-12

concave_K = st.floats(*KURTOSIS_RANGES["concave"])


def concave_linear_families(max_features=7):
    """Quadratic families mixing concave curves with linear (K = 3) and flat (v <= 0, K = 1) ones."""
    return quadratic_families(max_features=max_features, returns="concave", edge_cases=True)


def with_budget(families):
    """(curves, d) with d from 0 to past N, whole budgets included."""
    return families.flatmap(
        lambda c: st.tuples(
            st.just(c),
            st.one_of(st.floats(0.0, c.n_features + 1.0), st.integers(0, c.n_features + 1).map(float)),
        )
    )


def vertices(n, d):
    """Every vertex of {0 <= C <= 1, sum C <= d} in R^n."""
    k = min(math.floor(d), n)
    for r in range(k + 1):
        for ones in itertools.combinations(range(n), r):
            C = np.zeros(n)
            C[list(ones)] = 1.0
            yield C
    if k < n and d > k:
        for ones in itertools.combinations(range(n), k):
            for j in set(range(n)) - set(ones):
                C = np.zeros(n)
                C[list(ones)] = 1.0
                C[j] = d - k
                yield C


@given(with_budget(st.one_of(concave_linear_families(), linear_autoencoder_families(max_features=7))))
@example((quadratic([2.0, 1.0, 1.0], 2.0), 1.5))
@example((quadratic([1.0, -1.0, 3.0], [2.0, 2.0, 3.0]), 2.5))
@example((quadratic([1.0], [2.0]), 8e-250))  # the fraction's gain is below rounding
def test_matches_brute_force_over_all_vertices(problem):
    curves, d = problem
    result = solve(curves, d, method="vertex")
    best = min(curves.total_loss(C) for C in vertices(curves.n_features, d))
    assert result.loss == pytest.approx(best, rel=EXACT, abs=EXACT)
    # The answer is itself a vertex: 0/1 except at most one feature at the fraction.
    inside = (result.capacities > 0) & (result.capacities < 1)
    assert np.count_nonzero(inside) <= 1
    if inside.any():
        assert result.capacities[inside][0] == pytest.approx(d - math.floor(d), rel=EXACT)
    check_certificate(curves, result)


@given(with_budget(concave_linear_families()), st.randoms())
def test_no_random_feasible_point_does_better(problem, random):
    # Independent of the vertex argument: points drawn inside the polytope, sum C <= d.
    curves, d = problem
    n = curves.n_features
    rng = np.random.default_rng(random.getrandbits(32))
    C = rng.uniform(size=(200, n))
    C *= np.minimum(1.0, d / np.maximum(C.sum(axis=1, keepdims=True), 1e-300))
    assert curves.total_loss(vertex(curves, d).capacities) <= curves.total_loss(C).min() + EXACT


def test_worked_case_is_monosemantic_for_increasing_returns():
    # theory §3: importances 2 and 1 on one neuron at K = 2: C = (1, 0).
    result = solve(quadratic([2.0, 1.0], 2.0), 1.0)
    assert result.method == "vertex"
    np.testing.assert_array_equal(result.capacities, [1.0, 0.0])
    assert [r.value for r in result.regimes] == ["monosemantic", "ignored"]


@pytest.mark.parametrize(
    "d, expected",
    [
        (0.0, [0, 0, 0, 0, 0]),
        (2.0, [1, 0, 0, 0, 1]),
        (2.5, [1, 0, 0.5, 0, 1]),
        (3.0, [1, 0, 1, 0, 1]),
        (7.0, [1, 1, 1, 1, 1]),
    ],
)
def test_linear_autoencoder_keeps_the_most_important_features(d, expected):
    # Constant returns: the d most important (PCA-like); importances 2, 2 taken in index order.
    curves = linear_autoencoder([3.0, 1.0, 2.0, 2.0, 5.0])
    result = solve(curves, d, method="vertex")
    np.testing.assert_array_equal(result.capacities, expected)
    check_certificate(curves, result)


@pytest.mark.parametrize(
    "d, expected",
    [
        (0.5, [0.5, 0, 0, 0]),
        (1.0, [1, 0, 0, 0]),
        (1.5, [1, 0.5, 0, 0]),
        (2.25, [1, 1, 0.25, 0]),
        (4.0, [1, 1, 1, 1]),
    ],
)
def test_ties_between_equal_features_go_to_the_lower_index(d, expected):
    curves = quadratic([1.5, 1.5, 1.5, 1.5], 2.0)
    np.testing.assert_array_equal(vertex(curves, d).capacities, expected)


def test_a_non_integer_budget_puts_its_fraction_on_one_feature():
    # Dense uniform inputs (K = 1.8): the whole dimension to v = 3, the half to v = 2.
    result = solve(quadratic([3.0, 1.0, 2.0], 1.8), 1.5, method="vertex")
    np.testing.assert_array_equal(result.capacities, [1.0, 0.0, 0.5])
    assert result.certificate.how == "vertex enumeration (concave minimum lies at a vertex)"
    assert result.multiplier == pytest.approx(quadratic([2.0], 1.8).marginal([0.5])[0], rel=EXACT)


def test_whole_budget_bound_is_the_chord_relaxation():
    result = solve(quadratic([3.0, 1.0, 2.0], 1.8), 2.0, method="vertex")
    assert result.certificate.how == "chord relaxation (exact at integer budget)"
    assert result.certificate.gap == pytest.approx(0.0, abs=EXACT)


@given(with_budget(concave_linear_families()))
def test_multiplier_is_the_smallest_valid_one(problem):
    curves, d = problem
    solution = vertex(curves, d)
    C, lam = solution.capacities, solution.multiplier
    m = curves.marginal(C)
    inside = (C > 0) & (C < 1)
    if inside.any():
        assert lam == m[inside][0]
    else:
        assert lam == max(0.0, np.max(m[C == 0], initial=0.0))
        if C.sum() < d:
            # Budget left over: lam is 0 up to a gain below rounding (tiny fractions).
            assert lam * (d - C.sum()) <= EXACT * max(1.0, curves.total_loss(C))


@given(with_budget(concave_linear_families()), st.floats(0.0, 3.0))
def test_more_budget_never_increases_the_loss(problem, extra):
    curves, d = problem
    less, more = vertex(curves, d), vertex(curves, d + extra)
    assert curves.total_loss(more.capacities) <= curves.total_loss(less.capacities) + EXACT


@given(importances(6), st.lists(concave_K, min_size=6, max_size=6), st.floats(0.0, 7.0), st.randoms())
def test_permuting_features_keeps_the_loss(v, K, d, random):
    perm = np.array(random.sample(range(6), 6))
    K = np.array(K)
    base = quadratic(v, K)
    permuted = quadratic(v[perm], K[perm])
    loss = base.total_loss(vertex(base, d).capacities)
    permuted_loss = permuted.total_loss(vertex(permuted, d).capacities)
    assert permuted_loss == pytest.approx(loss, rel=EXACT, abs=EXACT)


def test_flat_curves_get_nothing():
    curves = quadratic([-1.0, 2.0, 0.0, 1.0], [2.0, 2.0, 2.0, 1.0])
    np.testing.assert_array_equal(vertex(curves, 3.5).capacities, [0.0, 1.0, 0.0, 0.0])


def test_vertex_is_chosen_automatically_for_concave_families():
    assert solve(quadratic([2.0, 1.0], [2.0, 3.0]), 1.0).method == "vertex"


# --- the kernel against its naive reference ---------------------------------------------

#: Gains with ties, zeros and negatives: the cases the kernel's order rules decide.
tied_gains = st.lists(st.sampled_from([-1.0, 0.0, 0.25, 0.5, 0.5, 1.0, 2.0]), min_size=1, max_size=9)


@given(tied_gains, st.data())
@example(gain=[0.5, 0.5, 0.5], data=None)
def test_the_vertex_kernel_matches_the_naive_exchange(gain, data):
    n = len(gain)
    if data is None:
        k, f, scale = 1, 0.5, [0.5, 0.5, 0.5]
    else:
        k = data.draw(st.integers(0, n), label="k")
        f = 0.0 if k == n else data.draw(st.sampled_from([0.0, 0.25, 0.5, 0.999]), label="f")
        scale = data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=n, max_size=n))
    gain = np.array(gain)
    # A concave curve's partial benefit is at most f times its full one.
    part = np.minimum(f * gain, np.array(scale) * gain)
    C = np.empty(n)
    fractional = kernels.best_vertex(gain, part, np.argsort(-gain, kind="stable"), k, f, C)
    expected, expected_fractional = references.best_vertex(gain, part, k, f)
    assert fractional == expected_fractional
    np.testing.assert_array_equal(C, expected)
