"""Sparse-source predictions (THEORY §4) against Monte Carlo with fitted linear decoders.

The fitted-decoder brackets are rigorous for the finite-d optimum R*_d of a linear decoder: the
in-sample risk of the least-squares fit is below R*_d in expectation (it minimises the empirical
risk, which for A* averages to R*_d), and the held-out risk of the fit is above R*_d (A* is the
population optimum). So theory must lie in [train − 3 SE − δ_d, test + 3 SE + δ_d], where δ_d is the
finite-size gap |R*_d − R*_∞| (bounded per test below). The bracket width is about 2 R n/N ≈ 0.04
here, far below the differences between conventions (> 0.1), so the tests can fail.
"""

import math

import jax
import numpy as np
import pytest
from scipy import integrate, stats

from _theory_helpers import haar_rows, sample_sparse, sign
from aejax import theory

D, R, N_TRAIN, N_TEST, CHUNK = 1000, 0.5, 20_000, 4_000, 4_000


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
    _assert_bracketed(float(theory.identity_risk(p, R, prior, "tied")), _fit_and_bracket(encode, prior, p, 0), 0.0)


def test_identity_tied_decoder_with_plus_convention():
    """sign(0) = +1 but a weight-tied decoder A = c Bᵀ: one fitted scalar, no overfitting."""
    rng = np.random.default_rng(1)
    n, p = int(R * D), 0.3
    x = sample_sparse(rng, "sr", p, (4000, D))
    s = sign(x[:, :n])
    c = np.sum(x[:, :n] * s) / np.sum(s * s)
    errors = np.mean((x - np.pad(c * s, ((0, 0), (0, D - n)))) ** 2, axis=1)
    se = errors.std() / np.sqrt(errors.size)
    assert abs(errors.mean() - float(theory.identity_risk(p, R, "sr", "tied"))) < 3 * se + 2e-3


@pytest.mark.parametrize("prior, p", [("sr", 0.3), ("bg", 0.5)])
def test_identity_plus_untied(prior, p):
    n = int(R * D)
    # δ_d: with C_ss = p(2−p) I + (1−p)² 11ᵀ the exact finite-d risk exceeds the limit by
    # κ/((2−p) d) ≤ 1/d (the mean direction costs one dimension)
    _assert_bracketed(float(theory.identity_risk(p, R, prior, "plus_untied")),
                      _fit_and_bracket(lambda x, rng: sign(x[:, :n]), prior, p, 2), 1 / D)


@pytest.mark.parametrize("prior, p", [("bg", 0.3)])
def test_rotation_ignores_sparsity(prior, p):
    B = haar_rows(np.random.default_rng(3), int(R * D), D)
    # δ_d: given x, u = b·x is ≈ N(0, ||x||²/d); the scale mixture lowers (E|u|)² by about
    # Var(||x||²/d)/4 = (E x⁴ − 1)/(4d), so R*_d exceeds the limit by ≈ r (2/π) (E x⁴ − 1)/(4d)
    # (E x⁴ = 3/p for bg, 1/p for sr); doubled for safety
    fourth = 3 / p if prior == "bg" else 1 / p
    delta = 2 * R * (2 / np.pi) * (fourth - 1) / (4 * D)
    _assert_bracketed(float(theory.rotation_risk(R)), _fit_and_bracket(lambda x, rng: sign(x @ B.T), prior, p, 4), delta)


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
        risks = theory.identity_risk(np.array([p_c - 0.05, p_c, p_c + 0.05]), 0.7, "sr", convention)
        rot = float(theory.rotation_risk(0.7))
        assert risks[0] > rot and risks[2] < rot and float(risks[1]) == pytest.approx(rot)


@pytest.mark.parametrize("call, match", [
    (lambda: theory.identity_risk(0.0, 0.5, "sr", "tied"), "p must lie in"),
    (lambda: theory.identity_risk(0.5, 1.5, "sr", "tied"), "r must be <= 1"),
    (lambda: theory.identity_risk(0.5, 0.5, "sr", "untied"), "unknown convention 'untied'"),
    (lambda: theory.identity_risk(0.5, 0.5, "laplace", "tied"), "unknown prior 'laplace'"),
    (lambda: theory.critical_sparsity("bg", "tie"), "unknown convention"),
    (lambda: theory.Prior("x", (0.5,), (0.0,), (1.0,)), "E ξ² = 1"),
    (lambda: theory.Prior.discrete((1.0, 2.0), (0.5, 0.5)), "symmetric"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_traced_arguments_skip_eager_checks():
    f = jax.jit(lambda p: theory.identity_risk(p, 0.5, "sr", "plus_untied"))
    assert float(f(0.5)) == pytest.approx(1 - 0.5 / 1.5)
