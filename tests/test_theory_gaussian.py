"""Gaussian baselines (docs/theory.md §3) against closed forms, quadrature and exact finite-d risks."""

import math

import jax
import numpy as np
import pytest
from _theory_helpers import exact_sign_risk, haar_rows, haar_tight_frame
from scipy import integrate, stats

from aejax import theory
from aejax.optimum import finite_d_optimum

pytestmark = pytest.mark.usefixtures("x64")


def _moments_by_quad(f):
    mu1 = integrate.quad(lambda g: g * f(g) * stats.norm.pdf(g), -np.inf, np.inf)[0]
    mean = integrate.quad(lambda g: f(g) * stats.norm.pdf(g), -np.inf, np.inf)[0]
    second = integrate.quad(lambda g: f(g) ** 2 * stats.norm.pdf(g), -np.inf, np.inf)[0]
    return mu1, second - mean**2


def test_sign_limit_matches_theory_formulas_and_is_continuous():
    r = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 4.0])
    expected = np.where(r <= 1, 1 - 2 * r / np.pi, (np.pi / 2 - 1) / (r + np.pi / 2 - 1))
    got = np.asarray(theory.gaussian_limit(r))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(theory.gaussian_limit(1 + 1e-9), 1 - 2 / np.pi, atol=1e-8)


@pytest.mark.parametrize("name, f", [("relu", lambda u: max(u, 0.0)), ("tanh", math.tanh), ("linear", lambda u: u)])
def test_activation_moments_vs_scipy_quad(name, f):
    np.testing.assert_allclose(theory.activation_moments(name), _moments_by_quad(f), rtol=1e-7)


def test_callable_activation_and_relu_structure_value():
    softplus = lambda u: np.logaddexp(u, 0.0)  # noqa: E731
    np.testing.assert_allclose(
        theory.activation_moments(lambda u: jax.numpy.logaddexp(u, 0.0)), _moments_by_quad(softplus), rtol=1e-7
    )
    # docs/theory.md §3: relu at r <= 1 gives 1 − 0.7335 r (measured by GD at d = 128)
    np.testing.assert_allclose(theory.gaussian_limit(0.5, "relu"), 1 - 0.5 * 0.7335, atol=1e-4)


def test_r_below_one_is_exact_at_finite_d():
    rng = np.random.default_rng(0)
    for d, n in [(20, 5), (30, 30)]:
        assert exact_sign_risk(haar_rows(rng, n, d)) == pytest.approx(float(theory.gaussian_limit(n / d)), abs=1e-10)


def test_tight_frame_risk_approaches_limit_from_above():
    rng = np.random.default_rng(1)
    limit = float(theory.gaussian_limit(2.0))
    gaps = [
        np.mean([exact_sign_risk(haar_tight_frame(rng, 2 * d, d)) for _ in range(3)]) - limit for d in (16, 64, 256)
    ]
    assert all(g > 0 for g in gaps)
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.01


def test_shannon_and_pca():
    np.testing.assert_allclose(theory.shannon_limit([0.5, 2.0]), [0.5, 1 / 16])
    np.testing.assert_allclose(theory.pca_risk([0.5, 1.0, 1.5]), [0.5, 0.0, 0.0])
    spectrum = np.random.default_rng(2).exponential(size=40)
    for r in (0.1, 0.5, 0.9):
        n = round(r * 40)
        assert float(theory.pca_risk(r, spectrum)) == pytest.approx(np.sort(spectrum)[: 40 - n].sum() / 40)


def test_vectorised_under_jit_and_vmap():
    f = jax.jit(jax.vmap(theory.gaussian_limit))
    np.testing.assert_allclose(f(np.array([0.5, 2.0])), theory.gaussian_limit(np.array([0.5, 2.0])))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: theory.gaussian_limit(0.0), "r must be finite and positive"),
        (lambda: theory.gaussian_limit(np.inf), "r must be finite"),
        (lambda: theory.gaussian_limit(1.0, "softsign"), "unknown activation 'softsign'"),
        (lambda: theory.pca_risk(-1.0), "r must be"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
def test_finite_d_optimum_small_d():
    key = jax.random.key(3)
    low = finite_d_optimum(0.5, d=8, restarts=2, steps=300, key=key)
    assert float(low.risk) == pytest.approx(1 - 1 / np.pi, abs=2e-3)
    high = finite_d_optimum(2.0, d=8, restarts=2, steps=300, key=key)
    frames = [exact_sign_risk(haar_tight_frame(np.random.default_rng(s), 16, 8)) for s in range(3)]
    assert float(theory.shannon_limit(2.0)) < float(high.risk) <= min(frames) + 1e-6
    assert float(high.risk) == pytest.approx(exact_sign_risk(np.asarray(high.encoder)), abs=1e-5)
