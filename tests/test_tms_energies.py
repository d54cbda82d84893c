"""Block energies of the TMS ReLU autoencoder (capopt.tms), against independent routes.

The exact finite sums of ``capopt.tms.losses`` are checked against quadrature of the model's
integrand over the uniforms (conditioned on the active set), against Monte Carlo of the
explicit ReLU model, and their float64 rounding against the same sum in mpmath; the block
energies against brute-force grids; the frames' capacities against ``capopt.capacity`` and
against the reference frames of ``tests/frames.py``; the large-frame model against the exact
sum mixed over sign counts, the alternating sum in mpmath and its own Monte Carlo.
"""

import itertools
import math

import mpmath
import numpy as np
import pytest
import sympy
from scipy import integrate, optimize

from capopt import capacity
from capopt.tms import losses
from capopt.tms.configurations import (
    CONFIGURATIONS,
    TIGHT_HEIGHT,
    Antiprism,
    LargeFrame,
    Polygon,
    group_values,
)
from capopt.tms.energies import block_energy
from capopt.tms.large_frames import frame_energy, frame_loss
from capopt.tms.losses import configuration_loss, embedding_loss, feature_loss, ignored_loss
from derivations import tms as tms_derivation
from frames import polygon, square_antiprism, tetrahedron

SHAPES = [c for c in CONFIGURATIONS.values() if c.dimensions > 0]

#: Quadrature is asked for 1e-12 absolute per conditional integral; the sum of ~8 of them,
#: each a nest of adaptive rules, lands within ~1e-12 of the exact value (measured 9e-13).
ATOL_QUADRATURE = 1e-11

#: Monte Carlo agrees within this many standard errors (a 5-sigma miss: ~1 in 1.7 million).
MC_SIGMAS = 5.0

#: Exact sums of different groupings of the same terms, in float64: a few ulps of terms of
#: size <= 10 (the sum of magnitudes at dense inputs) -- 1e-15 measured.
ATOL_SUMS = 1e-13

#: A grid with spacing h misses a smooth minimum by at most curvature * (h/2)^2 in each
#: coordinate: curvature <= 2 here, h = 2.5e-3, so < 1e-5.
ATOL_GRID = 1e-5

#: Stationarity certificates at a smooth minimum: central differences with step 1e-6 of a
#: function exact to ~1e-16, of a minimiser located to ~1e-9, leave ~1e-8.
STATIONARITY = 1e-6

RNG_SEED = 20240522


# -- independent routes ---------------------------------------------------------------------

def _conditional_by_quadrature(a, b, active, i_active):
    """E[loss | the features with couplings ``active`` on, feature i on or off], by nested
    adaptive quadrature of the model's integrand (kinks passed to the innermost rule)."""
    n = len(active)
    opts = {"epsabs": 1e-12, "epsrel": 0.0, "limit": 200}

    def r_of(us):
        return b + sum(l * u for l, u in zip(active, us))

    if i_active:
        def integrand(*us):
            r = r_of(us)
            kink = -r / a
            return integrate.quad(lambda x: (x - max(a * x + r, 0.0)) ** 2, 0, 1,
                                  points=[kink] if 0 < kink < 1 else None, **opts)[0]
        return integrand() if n == 0 else integrate.nquad(integrand, [(0, 1)] * n,
                                                          opts=[opts] * n)[0]
    if n == 0:
        return max(b, 0.0) ** 2

    def innermost(*outer):
        kink = -(b + sum(l * u for l, u in zip(active[1:], outer))) / active[0]
        return {**opts, "points": [kink]} if 0 < kink < 1 else opts
    return integrate.nquad(lambda *us: max(r_of(us), 0.0) ** 2, [(0, 1)] * n,
                           opts=[innermost] + [opts] * (n - 1))[0]


def loss_by_quadrature(a, b, couplings, p):
    """The feature's loss summed over the 2^n active sets of the others and its own state."""
    total = 0.0
    for on in itertools.product((0, 1), repeat=len(couplings)):
        active = [l for l, s in zip(couplings, on) if s]
        weight = p ** len(active) * (1 - p) ** (len(couplings) - len(active))
        total += weight * (p * _conditional_by_quadrature(a, b, active, True)
                           + (1 - p) * _conditional_by_quadrature(a, b, active, False))
    return total


def monte_carlo(W, bias, p, draws, rng, chunk=200_000):
    """Mean over draws and features of (x - ReLU(W^T W x + b))^2, and its standard error
    (from the per-draw means over features, which are independent across draws)."""
    G = W.T @ W
    means = []
    for start in range(0, draws, chunk):
        n = min(chunk, draws - start)
        x = (rng.random((n, G.shape[0])) < p) * rng.random((n, G.shape[0]))
        out = np.maximum(x @ G + bias, 0.0)
        means.append(np.mean((x - out) ** 2, axis=1))
    per_draw = np.concatenate(means)
    return per_draw.mean(), per_draw.std(ddof=1) / math.sqrt(draws)


# -- the derivation ---------------------------------------------------------------------------

def test_truncated_power_coefficients_are_the_derived_ones():
    formulas = tms_derivation.formulas()  # asserts every step of the derivation
    a = sympy.Symbol("a", positive=True)
    for value in (0.3, 1.0, 1.7):
        derived = [(s, q, float(g.subs(tms_derivation.a, value)))
                   for s, q, g in tms_derivation.ACTIVE_TERMS]
        used = losses._active_coefficients(value)
        assert [(s, q) for s, q, _ in derived] == [(s, q) for s, q, _ in used]
        assert [g for _, _, g in derived] == pytest.approx([g for _, _, g in used], rel=1e-15)
    assert sympy.simplify(formulas["tms_active_square_coefficient"].expr.subs(tms_derivation.a, a)
                          + a) == 0


def test_active_loss_formula_matches_quadrature_of_its_integral():
    F = sympy.lambdify((tms_derivation.r, tms_derivation.a),
                       tms_derivation.formulas()["tms_active_loss"].expr)
    for r, a in [(0.3, 0.7), (-0.2, 0.9), (-1.5, 1.0), (-0.05, 2.0)]:
        kink = -r / a
        expected = integrate.quad(lambda u: (u - max(a * u + r, 0.0)) ** 2, 0, 1, epsabs=1e-14,
                                  points=[kink] if 0 < kink < 1 else None)[0]
        assert F(r, a) == pytest.approx(expected, abs=1e-14)


# -- exact losses -----------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, couplings, p", [
    (1.0, -0.1, [-1.0], 0.3),              # digon
    (1.06, -0.05, [-0.53, -0.53], 0.7),    # triangle
    (0.9, -0.2, [0.3, -0.8], 0.2),         # couplings of both signs
    (0.8, 0.1, [0.25, -0.6], 0.5),         # positive bias
    (1.1, -0.3, [0.4], 1.0),               # dense
])
def test_feature_loss_matches_quadrature_over_active_sets(a, b, couplings, p):
    assert feature_loss(a, b, couplings, p) == pytest.approx(
        loss_by_quadrature(a, b, couplings, p), abs=ATOL_QUADRATURE)


@pytest.mark.parametrize("name, a, b, p", [
    ("tetrahedron", 1.0, -0.05, 0.85),
    ("pentagon", 1.07, -0.13, 0.21),
    ("square antiprism", 1.03, -0.14, 0.15),
    ("icosahedron", 0.67, -0.09, 0.5),
])
def test_configuration_loss_matches_monte_carlo_of_the_relu_model(name, a, b, p):
    config = CONFIGURATIONS[name]
    mean, se = monte_carlo(config.weights(a), b, p, 400_000, np.random.default_rng(RNG_SEED))
    assert abs(configuration_loss(config, a, b, p) - mean) < MC_SIGMAS * se


def test_embedding_loss_of_an_arbitrary_embedding_matches_monte_carlo():
    rng = np.random.default_rng(RNG_SEED)
    W = rng.normal(size=(2, 4)) / math.sqrt(2)
    b = rng.uniform(-0.4, 0.0, size=4)
    exact = embedding_loss(W, b, 0.4)
    mean, se = monte_carlo(W, b, 0.4, 400_000, rng)
    assert abs(exact.mean() - mean) < MC_SIGMAS * se


def test_blocks_in_orthogonal_subspaces_do_not_interact():
    """A digon, a triangle and an ignored feature side by side: each feature loses what its
    block alone gives it, and the ignored one (at its best bias p/2) p/3 - p^2/4."""
    p = 0.3
    W = np.zeros((3, 6))
    W[:1, :2] = CONFIGURATIONS["digon"].weights(0.9)
    W[1:, 2:5] = CONFIGURATIONS["triangle"].weights(1.1)
    b = np.array([-0.1, -0.1, -0.2, -0.2, -0.2, p / 2])
    expected = [configuration_loss(CONFIGURATIONS["digon"], 0.9, -0.1, p)] * 2 + \
        [configuration_loss(CONFIGURATIONS["triangle"], 1.1, -0.2, p)] * 3 + [ignored_loss(p)]
    np.testing.assert_allclose(embedding_loss(W, b, p), expected, rtol=0, atol=ATOL_SUMS)


def _rows_of(config):
    groups = [(v, n) for v, n in config.cosines if v != 0]
    return losses._rows(tuple(n for _, n in groups)), np.array([v for v, _ in groups])


@pytest.mark.parametrize("name", ["cube", "icosahedron", "hexagon", "square antiprism"])
@pytest.mark.parametrize("precision", ["float64", "longdouble"])
def test_rounding_error_bound_holds_against_mpmath(name, precision):
    rows, c = _rows_of(CONFIGURATIONS[name])
    rng = np.random.default_rng(RNG_SEED)
    for a, b, p in zip(rng.uniform(0.2, 2.0, 8), rng.uniform(-1.0, 0.5, 8), rng.uniform(0, 1, 8)):
        value, bound = losses._evaluate(rows, a, b, c, p, precision)
        exact, _ = losses._evaluate(rows, a, b, c, p, "mpmath", digits=60)
        assert abs(value - exact) <= bound


@pytest.mark.parametrize("a, b, p", [(0.25, 0.5, 0.9), (0.02, 0.3, 0.5)])
def test_losses_beyond_float64_are_recomputed_to_the_budget(a, b, p):
    """Small a or large b makes the alternating sum lose digits: the bound sees it and the
    answer comes from long double (the first case) or mpmath (the second)."""
    config = CONFIGURATIONS["icosahedron"]
    rows, c = _rows_of(config)
    assert losses._evaluate(rows, a, b, c, p, "float64")[1] > losses.FLOAT64_BUDGET
    exact, _ = losses._evaluate(rows, a, b, c, p, "mpmath", digits=80)
    assert configuration_loss(config, a, b, p) == pytest.approx(exact,
                                                               abs=losses.FLOAT64_BUDGET)


def test_feature_with_no_norm_loses_its_bias_only():
    p, b = 0.4, 0.2
    expected = p * integrate.quad(lambda u: (u - b) ** 2, 0, 1)[0] + (1 - p) * b * b
    assert feature_loss(0.0, b, [0.0, 0.0], p) == pytest.approx(expected, abs=1e-15)
    assert feature_loss(0.0, 0.0, [], p) == pytest.approx(p / 3, abs=1e-16)


@pytest.mark.parametrize("call, message", [
    (lambda: feature_loss(1.0, 0.0, [0.5], 1.5), "density must be in \\[0, 1\\], got 1.5"),
    (lambda: feature_loss(0.0, 0.0, [0.5], 0.5), "couplings must be 0 when norm_squared is 0"),
    (lambda: feature_loss(-1.0, 0.0, [], 0.5), "norm_squared must be finite and >= 0"),
    (lambda: feature_loss(1.0, 0.0, np.linspace(0.01, 0.3, 40), 0.5), "rows, more than"),
    (lambda: Antiprism(4, height=1.2), "height must be in \\(0, 1\\)"),
    (lambda: LargeFrame(10, 10), "dimensions < size"),
])
def test_bad_inputs_are_rejected_with_their_requirement(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- configurations ---------------------------------------------------------------------------

@pytest.mark.parametrize("config", SHAPES, ids=lambda c: c.name)
def test_frames_are_unit_vectors_every_vertex_seeing_the_same_cosines(config):
    V = config.frame
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-15)
    for i in range(config.size):
        row = np.delete(V @ V[i], i)
        seen = group_values(row)
        assert [n for _, n in seen] == [n for _, n in config.cosines]
        np.testing.assert_allclose([c for c, _ in seen], [c for c, _ in config.cosines],
                                   atol=1e-13)


@pytest.mark.parametrize("config", SHAPES, ids=lambda c: c.name)
def test_capacity_of_the_weights_is_the_frames_and_m_over_k_when_tight(config):
    C = capacity(config.weights(0.7))
    np.testing.assert_allclose(C, config.capacity, atol=1e-14)
    tight = np.allclose(config.frame.T @ config.frame, config.size / config.dimensions * np.eye(
        config.dimensions), atol=1e-13)
    assert tight  # every named configuration is a tight frame
    np.testing.assert_allclose(C, config.dimensions / config.size, atol=1e-14)


def test_max_min_angle_square_antiprism_is_not_tight():
    # Equal nearest cosines within a ring (h^2) and across (r^2/sqrt2 - h^2).
    h = 1 / math.sqrt(2 * math.sqrt(2) + 1)
    config = Antiprism(4, height=h)
    assert capacity(config.weights(1.0)) == pytest.approx(np.full(8, 0.366), abs=5e-4)
    assert abs(config.capacity - 3 / 8) > 5e-3


@pytest.mark.parametrize("name, reference", [
    ("pentagon", polygon(5)), ("hexagon", polygon(6)), ("tetrahedron", tetrahedron()),
    ("square antiprism", square_antiprism()),
])
def test_cosines_agree_with_the_reference_constructions(name, reference):
    V = reference / np.linalg.norm(reference, axis=0)
    seen = group_values(V[:, 1:].T @ V[:, 0])
    expected = CONFIGURATIONS[name].cosines
    assert [n for _, n in seen] == [n for _, n in expected]
    np.testing.assert_allclose([c for c, _ in seen], [c for c, _ in expected], atol=1e-13)


def test_known_cosines():
    cos = {name: [round(c, 12) for c, _ in CONFIGURATIONS[name].cosines] for name in
           ("digon", "triangle", "tetrahedron", "5-cell", "pentagon", "icosahedron")}
    assert cos["digon"] == [-1.0] and cos["triangle"] == [-0.5]
    assert cos["tetrahedron"] == [round(-1 / 3, 12)] and cos["5-cell"] == [-0.25]
    assert cos["pentagon"] == [round(math.cos(2 * math.pi / 5), 12),
                               round(math.cos(4 * math.pi / 5), 12)]
    assert cos["icosahedron"] == [round(1 / math.sqrt(5), 12), round(-1 / math.sqrt(5), 12), -1.0]


# -- block energies ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, p", [("digon", 0.3), ("pentagon", 0.21), ("tetrahedron", 0.85)])
def test_block_energy_is_the_minimum_of_a_brute_force_grid(name, p):
    config = CONFIGURATIONS[name]
    result = block_energy(config, p)
    assert result.stationarity < STATIONARITY
    coarse = [configuration_loss(config, a, b, p) for a, b in
              itertools.product(np.linspace(0.05, 2.5, 25), np.linspace(-1.0, 0.5, 16))]
    assert result.energy <= min(coarse) + 1e-15
    around = np.linspace(-0.05, 0.05, 41)
    fine = [configuration_loss(config, a, b, p) for a, b in itertools.product(
        result.norm_squared + around, result.bias + around)]
    assert result.energy <= min(fine) + 1e-15
    assert min(fine) - result.energy < ATOL_GRID


def test_ignored_feature_outputs_its_mean_and_a_dedicated_one_reconstructs_exactly():
    p = 0.3
    by_quadrature = optimize.minimize_scalar(
        lambda b: p * integrate.quad(lambda u: (u - max(b, 0.0)) ** 2, 0, 1)[0]
        + (1 - p) * max(b, 0.0) ** 2, bounds=(-0.5, 0.5), method="bounded",
        options={"xatol": 1e-10})
    ignored = block_energy(CONFIGURATIONS["ignored"], p)
    assert ignored.energy == pytest.approx(by_quadrature.fun, abs=1e-15)
    assert ignored.bias == pytest.approx(by_quadrature.x, abs=1e-8)
    assert ignored.energy == pytest.approx(p / 3 - p * p / 4, abs=1e-16)
    dedicated = block_energy(CONFIGURATIONS["dedicated"], 0.3)
    assert dedicated.energy == pytest.approx(0.0, abs=1e-14)
    assert dedicated.norm_squared == pytest.approx(1.0, abs=1e-6)


def test_optimised_antiprism_height_beats_every_fixed_height():
    p = 0.18
    best = block_energy(CONFIGURATIONS["square antiprism"], p)
    for h in (0.45, 0.5, TIGHT_HEIGHT, 0.62, 0.7):
        fixed = block_energy(Antiprism(4, height=h), p, optimise_shape=False)
        assert best.energy <= fixed.energy + 1e-15
    assert best.stationarity < STATIONARITY


@pytest.mark.parametrize("name, p", [("pentagon", 0.21), ("square antiprism", 0.17)])
def test_realised_block_loses_its_energy_per_feature(name, p):
    result = block_energy(CONFIGURATIONS[name], p)
    config = result.configuration
    W = config.weights(result.norm_squared)
    exact = embedding_loss(W, result.bias, p)
    assert exact.sum() == pytest.approx(config.size * result.energy, abs=ATOL_SUMS)
    mean, se = monte_carlo(W, result.bias, p, 200_000, np.random.default_rng(RNG_SEED))
    assert abs(mean - result.energy) < MC_SIGMAS * se


# -- the large-frame model --------------------------------------------------------------------

@pytest.mark.parametrize("k, m", [(8, 3), (12, 4)])
@pytest.mark.parametrize("p", [0.1, 0.6, 1.0])
def test_frame_loss_is_the_exact_loss_mixed_over_sign_counts(k, m, p):
    frame = LargeFrame(k, m)
    a, b = 0.9, -0.15
    lam = a * frame.coherence
    mixed = sum(math.comb(k - 1, plus) / 2 ** (k - 1)
                * feature_loss(a, b, [lam] * plus + [-lam] * (k - 1 - plus), p)
                for plus in range(k))
    assert frame_loss(frame, a, b, p) == pytest.approx(mixed, abs=ATOL_SUMS)


def _sign_model_in_mpmath(k, m, a, b, p, digits):
    """The sign model's loss as the alternating sum of one centred uniform group per count j."""
    with mpmath.workdps(digits):
        mp = mpmath.mpf
        a, b, p = mp(a), mp(b), mp(p)
        lam = a * mpmath.sqrt(mp(k - m) / (m * (k - 1)))

        def moment(beta, Q, j):  # E (beta + lam sum_{l<=j} V_l)_+^Q, V ~ U[-1, 1]
            if j == 0:
                return max(beta, 0) ** Q
            s = sum((-1) ** (j - t) * mpmath.binomial(j, t) * (beta - j * lam + 2 * lam * t) **
                    (Q + j) for t in range(j + 1) if beta - j * lam + 2 * lam * t > 0)
            return s * mpmath.factorial(Q) / mpmath.factorial(Q + j) / (2 * lam) ** j

        total = mp(0)
        for j in range(k):
            pj = mpmath.binomial(k - 1, j) * p**j * (1 - p) ** (k - 1 - j)
            F = mp(1) / 3 - moment(b + a, 2, j) / a + (1 + a) / (3 * a * a) * (
                moment(b + a, 3, j) - moment(b, 3, j))
            total += pj * (p * F + (1 - p) * moment(b, 2, j))
        return float(total)


@pytest.mark.parametrize("k, m, a, b, p", [(60, 10, 1.0, -0.2, 0.2), (60, 10, 0.8, -0.3, 1.0)])
def test_frame_loss_matches_the_alternating_sum_in_mpmath(k, m, a, b, p):
    """Many active features (j up to 59, beyond the Gauss rule's exactness at 2 x 24 nodes)."""
    assert frame_loss(LargeFrame(k, m), a, b, p) == pytest.approx(
        _sign_model_in_mpmath(k, m, a, b, p, digits=120), abs=1e-14)


def test_frame_loss_matches_monte_carlo_of_the_sign_model():
    frame, a, b, p = LargeFrame(80, 20), 0.7, -0.2, 0.1
    rng = np.random.default_rng(RNG_SEED)
    draws, k = 200_000, frame.size
    x = (rng.random((draws, k)) < p) * rng.random((draws, k))
    signs = rng.choice([-1.0, 1.0], size=(draws, k - 1))
    z = a * x[:, 0] + a * frame.coherence * np.sum(signs * x[:, 1:], axis=1) + b
    sample = (x[:, 0] - np.maximum(z, 0.0)) ** 2
    se = sample.std(ddof=1) / math.sqrt(draws)
    assert abs(frame_loss(frame, a, b, p) - sample.mean()) < MC_SIGMAS * se


def test_frame_energy_is_a_certified_minimum_below_ignoring():
    result = frame_energy(LargeFrame(100, 20), 0.1)
    assert result.energy < 0.1 / 3 and result.stationarity < STATIONARITY
    assert result.energy <= frame_loss(result.configuration, result.norm_squared * 1.01,
                                       result.bias, 0.1)


def test_polygon_rejects_fewer_than_three_sides():
    with pytest.raises(ValueError, match="sides must be an int >= 3"):
        Polygon(2)
