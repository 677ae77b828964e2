"""Sparse-source predictions (docs/theory.md §4) against Monte Carlo with fitted linear decoders.

The fitted-decoder brackets are rigorous for the finite-d optimum R*_d of a linear decoder: the
in-sample risk of the least-squares fit is below R*_d in expectation (it minimises the empirical
risk, which for A* averages to R*_d), and the held-out risk of the fit is above R*_d (A* is the
population optimum). So theory must lie in [train − 3 SE − δ_d, test + 3 SE + δ_d], where δ_d is the
finite-size gap |R*_d − R*_∞| (bounded per test below). The bracket width is about 2 R n/N ≈ 0.04
here, far below the differences between conventions (> 0.1), so the tests can fail.
"""

import functools
import math

import jax
import numpy as np
import pytest
from _theory_helpers import haar_rows, sample_sparse, sign
from scipy import integrate, stats

from aejax import theory

D, R, N_TRAIN, N_TEST, CHUNK = 500, 0.5, 10_000, 4_000, 2_000  # n/N_TRAIN (the bracket width) as at d = 1000


pytestmark = pytest.mark.usefixtures("x64")


def _fit_and_bracket(encode, prior, p, seed):
    """Least-squares decoder on N_TRAIN samples: (in-sample risk, held-out risk, held-out SE)."""
    rng = np.random.default_rng(seed)
    n = int(R * D)
    c_ss, c_xs, sq = np.zeros((n, n)), np.zeros((D, n)), 0.0
    for _ in range(N_TRAIN // CHUNK):
        x = sample_sparse(rng, prior, p, (CHUNK, D))
        s = encode(x, rng)
        c_ss += s.T @ s
        c_xs += x.T @ s
        sq += np.sum(x**2)
    A = np.linalg.solve(c_ss, c_xs.T).T
    train = (sq - np.sum(A * c_xs)) / (N_TRAIN * D)  # min over A of the empirical risk
    errors = []
    for _ in range(N_TEST // CHUNK):
        x = sample_sparse(rng, prior, p, (CHUNK, D))
        errors.append(np.mean((x - encode(x, rng) @ A.T) ** 2, axis=1))
    errors = np.concatenate(errors)
    return train, errors.mean(), errors.std() / np.sqrt(errors.size)


def _assert_bracketed(value, bracket, finite_size):
    train, test, se = bracket
    assert train - 3 * se - finite_size <= value <= test + 3 * se + finite_size, (train, value, test, se)


@pytest.mark.parametrize("prior, p", [("sr", 0.3)])
def test_identity_tied_random_tie_break(prior, p):
    n = int(R * D)

    def encode(x, rng):  # identity rows, sign(0) broken by a fair coin
        u = x[:, :n]
        return np.where(u == 0, rng.choice([-1.0, 1.0], u.shape), sign(u))

    # δ_d = 0: the bits are independent with mean 0, so R*_d equals the d → ∞ value exactly
    _assert_bracketed(float(theory.identity_risk(prior, p, R, "tied")), _fit_and_bracket(encode, prior, p, 0), 0.0)


def test_identity_tied_decoder_with_plus_convention():
    """sign(0) = +1 but a weight-tied decoder A = c Bᵀ: one fitted scalar, no overfitting."""
    rng = np.random.default_rng(1)
    n, p = int(R * D), 0.3
    x = sample_sparse(rng, "sr", p, (4000, D))
    s = sign(x[:, :n])
    c = np.sum(x[:, :n] * s) / np.sum(s * s)
    errors = np.mean((x - np.pad(c * s, ((0, 0), (0, D - n)))) ** 2, axis=1)
    se = errors.std() / np.sqrt(errors.size)
    assert abs(errors.mean() - float(theory.identity_risk("sr", p, R, "tied"))) < 3 * se + 2e-3


@pytest.mark.parametrize("prior, p", [("sr", 0.3), ("bg", 0.5)])
def test_identity_plus_untied(prior, p):
    n = int(R * D)
    # δ_d: with C_ss = p(2−p) I + (1−p)² 11ᵀ the exact finite-d risk exceeds the limit by
    # κ/((2−p) d) ≤ 1/d (the mean direction costs one dimension)
    _assert_bracketed(
        float(theory.identity_risk(prior, p, R, "plus_untied")),
        _fit_and_bracket(lambda x, rng: sign(x[:, :n]), prior, p, 2),
        1 / D,
    )


@pytest.mark.parametrize("prior, p", [("bg", 0.3)])
def test_rotation_ignores_sparsity(prior, p):
    B = haar_rows(np.random.default_rng(3), int(R * D), D)
    # δ_d: given x, u = b·x is ≈ N(0, ||x||²/d); the scale mixture lowers (E|u|)² by about
    # Var(||x||²/d)/4 = (E x⁴ − 1)/(4d), so R*_d exceeds the limit by ≈ r (2/π) (E x⁴ − 1)/(4d)
    # (E x⁴ = 3/p for bg, 1/p for sr); doubled for safety
    fourth = 3 / p if prior == "bg" else 1 / p
    delta = 2 * R * (2 / np.pi) * (fourth - 1) / (4 * D)
    _assert_bracketed(
        float(theory.rotation_risk(R)), _fit_and_bracket(lambda x, rng: sign(x @ B.T), prior, p, 4), delta
    )


def test_kappa_vs_quadrature_for_a_custom_prior():
    prior = theory.Prior.mixture(means=(-1.0, 1.0), stds=(0.5, 0.5), weights=(1.0, 1.0))
    scale = math.sqrt(1.25)
    pdf = lambda v: 0.5 * (stats.norm.pdf(v, -1 / scale, 0.5 / scale) + stats.norm.pdf(v, 1 / scale, 0.5 / scale))  # noqa: E731
    abs_mean = 2 * integrate.quad(lambda v: v * pdf(v), 0, np.inf)[0]
    second = integrate.quad(lambda v: v * v * pdf(v), -np.inf, np.inf)[0]
    assert theory.kappa(prior) == pytest.approx(abs_mean**2 / second, rel=1e-8)
    assert theory.kappa("bg") == pytest.approx(2 / np.pi) and theory.kappa("sr") == 1.0


def test_critical_sparsity_values_and_meaning():
    assert theory.critical_sparsity("sr", "tied") == pytest.approx(2 / np.pi)
    assert theory.critical_sparsity("sr", "plus_untied") == pytest.approx(2 - np.pi / 2)
    assert theory.critical_sparsity("bg", "tied") == pytest.approx(1.0)
    for convention in theory.CONVENTIONS:
        p_c = theory.critical_sparsity("sr", convention)
        risks = theory.identity_risk("sr", np.array([p_c - 0.05, p_c, p_c + 0.05]), 0.7, convention)
        rot = float(theory.rotation_risk(0.7))
        assert risks[0] > rot and risks[2] < rot and float(risks[1]) == pytest.approx(rot)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: theory.identity_risk("sr", 0.0, 0.5, "tied"), "p must lie in"),
        (lambda: theory.identity_risk("sr", 0.5, 1.5, "tied"), "r must be <= 1"),
        (lambda: theory.identity_risk("sr", 0.5, 0.5, "untied"), "unknown convention 'untied'"),
        (lambda: theory.identity_risk("laplace", 0.5, 0.5, "tied"), "unknown prior 'laplace'"),
        (lambda: theory.critical_sparsity("bg", "tie"), "unknown convention"),
        (lambda: theory.partial_identity_risk("sr", 0.5, 1.0, 1.2), "a must lie in"),
        (lambda: theory.partial_identity_risk("sr", 0.5, 2.0, 0.5), r"r in \(0, 1\]"),
        (lambda: theory.best_partial_identity("sr", 1.5), "p must lie in"),
        (lambda: theory.Prior("x", (0.5,), (0.0,), (1.0,)), "E ξ² = 1"),
        (lambda: theory.Prior.discrete((1.0, 2.0), (0.5, 0.5)), "symmetric"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_traced_arguments_skip_eager_checks():
    f = jax.jit(lambda p: theory.identity_risk("sr", p, 0.5, "plus_untied"))
    assert float(f(0.5)) == pytest.approx(1 - 0.5 / 1.5)


@functools.cache
def _antisymmetric_orthogonal(seed, d):
    """M = Q J Qᵀ: orthogonal, antisymmetric (zero diagonal), entries O(1/√d); with the state of the
    generator after drawing Q (so the cases of one seed share M and draw the same samples after it)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    j = np.zeros((d, d))
    even = np.arange(0, d, 2)
    j[even, even + 1], j[even + 1, even] = 1.0, -1.0
    return q @ j @ q.T, rng.bit_generator.state


@pytest.mark.parametrize("p, a", [(0.5, 0.72), (0.4, 0.44), (0.7, 0.92), (0.25, 0.5)])
def test_partial_identity_risk_vs_monte_carlo(p, a):
    """Brute force at d = 1000: orthogonal B̄ = √a I + √(1−a) M, tied decoder with a fitted scalar."""
    d = 1000
    M, state = _antisymmetric_orthogonal(5, d)
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    B = np.sqrt(a) * np.eye(d) + np.sqrt(1 - a) * M
    np.testing.assert_allclose(B @ B.T, np.eye(d), atol=1e-12)
    x = sample_sparse(rng, "sr", p, (4000, d))
    decoded = sign(x @ B.T) @ B
    c = np.sum(x * decoded) / np.sum(decoded**2)
    errors = np.mean((x - c * decoded) ** 2, axis=1)
    se = errors.std() / np.sqrt(errors.size)
    # allowance: one fitted scalar (≈ 1/N) and the O(1/d) non-Gaussianity of the delocalised part
    assert abs(errors.mean() - float(theory.partial_identity_risk("sr", p, 1.0, a))) < 3 * se + 2e-3


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
def test_partial_identity_interpolates_and_beats_both_pure_encoders():
    p = np.array([0.2, 0.5, 0.9])
    np.testing.assert_allclose(theory.partial_identity_risk("sr", p, 0.7, 0.0), theory.rotation_risk(0.7), atol=1e-12)
    np.testing.assert_allclose(
        theory.partial_identity_risk("sr", p, 0.7, 1.0), theory.identity_risk("sr", p, 0.7, "tied"), atol=1e-12
    )
    np.testing.assert_allclose(
        theory.partial_identity_risk("bg", p, 0.7, 1.0), theory.identity_risk("bg", p, 0.7, "tied"), atol=1e-12
    )
    threshold = theory.kurtosis_threshold("sr")
    assert theory.best_partial_identity("sr", threshold - 0.01)[0] == 0.0
    for sparsity in (threshold + 0.02, 0.5, 0.6, 0.8):
        a, gain = theory.best_partial_identity("sr", sparsity)
        assert 0 < a < 1
        assert 1 - gain < min(
            float(theory.rotation_risk(1.0)), float(theory.identity_risk("sr", sparsity, 1.0, "tied"))
        )
    for sparsity in (0.1, 0.5, 0.95):  # Bernoulli–Gaussian: the rotation always wins
        assert theory.best_partial_identity("bg", sparsity)[0] == 0.0


def test_kurtosis_vs_monte_carlo_and_quadrature():
    rng = np.random.default_rng(6)
    for prior, p in (("sr", 0.3), ("bg", 0.4)):
        x = sample_sparse(rng, prior, p, (400_000,))
        kurt = np.mean(x**4) - 3
        se = np.std(x**4) / np.sqrt(x.size)
        assert abs(kurt - float(theory.excess_kurtosis(prior, p))) < 4 * se
    prior = theory.Prior.mixture(means=(-1.0, 1.0), stds=(0.5, 0.5), weights=(1.0, 1.0))
    scale = math.sqrt(1.25)
    pdf = lambda v: 0.5 * (stats.norm.pdf(v, -1 / scale, 0.5 / scale) + stats.norm.pdf(v, 1 / scale, 0.5 / scale))  # noqa: E731
    assert theory.fourth_moment(prior) == pytest.approx(
        integrate.quad(lambda v: v**4 * pdf(v), -np.inf, np.inf)[0], rel=1e-8
    )
    assert theory.kurtosis_threshold("sr") == pytest.approx(1 / 3) and theory.kurtosis_threshold("bg") == 1.0


@pytest.mark.parametrize("prior, p", [("bg", 0.05), ("bg", 0.1), ("sr", 0.1)])
def test_rotation_finite_size_excess_vs_monte_carlo(prior, p):
    """Haar rows at d = 500, r = 1/2, tied decoder (R = 1 − r (E|u|)² exactly for orthonormal rows)."""
    rng, d, n = np.random.default_rng(7), 500, 250
    B = haar_rows(rng, n, d)
    abs_u = np.concatenate([np.abs(sample_sparse(rng, prior, p, (4000, d)) @ B.T).mean(axis=1) for _ in range(8)])
    risk = 1 - n / d * abs_u.mean() ** 2
    se = 2 * n / d * abs_u.mean() * abs_u.std() / np.sqrt(abs_u.size)
    excess = float(theory.rotation_excess(prior, p, n / d, d))
    assert excess > 4 * se  # the effect is resolved
    # allowance: the next order in Var(‖x‖²/d), ≈ excess² / (1 − R)
    assert abs(risk - (float(theory.rotation_risk(n / d)) + excess)) < 3 * se + 2 * excess**2 / (1 - risk)


@pytest.mark.parametrize("p", [0.25, 0.3, 0.36, 0.5, 1.0])
def test_partial_identity_near_the_rotation_matches_the_edgeworth_series(p):
    """For small a the closed form must follow the kurtosis term of the Edgeworth expansion,
    E|u| ≈ sqrt(2/π)(1 − k4 a²/24), i.e. R(a) − R(0) ≈ r (2/π) k4 a² / 12 (the sign flips at p = 1/3)."""
    a, r = 0.03, 0.8
    k4 = 1 / p - 3  # sparse Rademacher, independent of theory.excess_kurtosis
    change = float(theory.partial_identity_risk("sr", p, r, a) - theory.partial_identity_risk("sr", p, r, 0.0))
    assert change == pytest.approx(r * (2 / np.pi) * k4 * a**2 / 12, rel=0.1)


def test_kurtosis_correction_for_flat_rows_vs_monte_carlo():
    """Brute force: n = 256 rows of a Sylvester Hadamard matrix / √512 (orthonormal, IPR = 1/d exactly)
    on Bernoulli–Gaussian data, tied decoder; the excess over R_Gauss is a third of a Haar frame's."""
    from scipy.linalg import hadamard

    rng, d, n, p = np.random.default_rng(8), 512, 256, 0.05
    B = hadamard(d)[rng.choice(d, n, replace=False)] / np.sqrt(d)
    abs_u = np.concatenate([np.abs(sample_sparse(rng, "bg", p, (4000, d)) @ B.T).mean(axis=1) for _ in range(16)])
    risk = 1 - n / d * abs_u.mean() ** 2
    se = 2 * n / d * abs_u.mean() * abs_u.std() / np.sqrt(abs_u.size)
    excess = float(theory.kurtosis_correction("bg", p, n / d, 1 / d))
    assert excess == pytest.approx(float(theory.rotation_excess("bg", p, n / d, d)) / 3)
    assert abs(risk - (float(theory.rotation_risk(n / d)) + excess)) < 3 * se + 2 * excess**2 / (1 - risk)
