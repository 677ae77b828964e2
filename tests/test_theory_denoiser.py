"""Effective channel and posterior-mean denoiser (docs/theory.md §4) against independent numpy/scipy code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _theory_helpers import haar_rows, harmonic_frame, sample_sparse, shallow_gain, sign
from scipy import integrate, stats

from aejax import theory

pytestmark = pytest.mark.usefixtures("x64")


def _channel(r):
    mu = 2 * r / np.pi if r <= 1 else r / (r + np.pi / 2 - 1)
    return mu, np.sqrt(mu * (1 - mu))


def _bg_denoiser(y, p, mu, sigma):
    """docs/theory.md §4 closed form for BG."""
    v1 = mu**2 / p + sigma**2
    on = p * stats.norm.pdf(y, 0, np.sqrt(v1))
    off = (1 - p) * stats.norm.pdf(y, 0, sigma)
    return on / (on + off) * (mu / p) / v1 * y


def _sr_denoiser(y, p, mu, sigma):
    a = mu / np.sqrt(p)
    plus, minus = (p / 2 * stats.norm.pdf(y, s * a, sigma) for s in (1, -1))
    zero = (1 - p) * stats.norm.pdf(y, 0, sigma)
    return (plus - minus) / (plus + minus + zero) / np.sqrt(p)


_REFERENCE = {"bg": _bg_denoiser, "sr": _sr_denoiser}


@pytest.mark.parametrize("prior", ["bg", "sr"])
@pytest.mark.parametrize("r", [0.5, 2.0])
def test_posterior_mean_matches_closed_form(prior, r):
    mu, sigma = _channel(r)
    y = np.linspace(-3, 3, 41)
    np.testing.assert_allclose(
        theory.posterior_mean(prior, 0.3, r, y), _REFERENCE[prior](y, 0.3, mu, sigma), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(theory.effective_channel(r), (mu, mu / (1 - mu)), rtol=1e-12)


@pytest.mark.parametrize("prior, p, r", [("bg", 0.1, 0.5), ("sr", 0.3, 1.0), ("sr", 0.1, 2.0)])
def test_mmse_quadrature_vs_scipy_quad_and_scalar_monte_carlo(prior, p, r):
    mu, sigma = _channel(r)
    f = _REFERENCE[prior]
    if prior == "bg":

        def density(y):
            return p * stats.norm.pdf(y, 0, np.sqrt(mu**2 / p + sigma**2)) + (1 - p) * stats.norm.pdf(y, 0, sigma)

    else:
        a = mu / np.sqrt(p)

        def density(y):
            return p / 2 * (stats.norm.pdf(y, a, sigma) + stats.norm.pdf(y, -a, sigma)) + (1 - p) * stats.norm.pdf(
                y, 0, sigma
            )

    # beyond ±half the density is below e^-50 (and the reference formulas would underflow to 0/0)
    half = 12 * np.sqrt(mu**2 / p + sigma**2) if prior == "bg" else mu / np.sqrt(p) + 10 * sigma
    by_quad = (
        1
        - integrate.quad(
            lambda y: f(y, p, mu, sigma) ** 2 * density(y),
            -half,
            half,
            limit=400,
            points=[-mu / np.sqrt(p), 0.0, mu / np.sqrt(p)],
        )[0]
    )
    got = float(theory.denoiser_risk(prior, p, r))
    assert got == pytest.approx(by_quad, abs=1e-8)
    rng = np.random.default_rng(0)
    x = sample_sparse(rng, prior, p, 400_000)
    err = (x - f(mu * x + sigma * rng.standard_normal(x.size), p, mu, sigma)) ** 2
    assert abs(err.mean() - got) < 3 * err.std() / np.sqrt(x.size)


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
def test_mmse_gaussian_prior_and_general_snr():
    snr = np.array([0.1, 1.0, 10.0, 1000.0])
    np.testing.assert_allclose(theory.mmse("bg", 1.0, snr), 1 / (1 + snr), rtol=1e-9)
    assert float(theory.denoiser_risk("bg", 1.0, 2.0)) == pytest.approx(float(theory.gaussian_limit(2.0)), rel=1e-9)
    assert np.all(
        np.asarray(theory.denoiser_risk("sr", np.array([0.1, 0.5, 0.9]), 0.5)) < float(theory.gaussian_limit(0.5))
    )


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
@pytest.mark.parametrize("prior, p, r", [("bg", 0.3, 0.5), ("sr", 0.3, 2.0), ("bg", 0.1, 2.0)])
def test_denoised_reconstruction_monte_carlo(prior, p, r):
    """Actual pipeline at d = 2000: x → sign(B̄x) → c B̄ᵀ s → posterior_mean, within 0.01."""
    d, samples = 2000, 150
    rng = np.random.default_rng(1)
    n = int(r * d)
    B = haar_rows(rng, n, d) if r <= 1 else harmonic_frame(rng, n, d)
    x = sample_sparse(rng, prior, p, (samples, d))
    y = shallow_gain(r) * sign(x @ B.T) @ B
    err = np.mean((x - np.asarray(theory.posterior_mean(prior, p, r, y))) ** 2, axis=1)
    assert abs(err.mean() - float(theory.denoiser_risk(prior, p, r))) < 0.01
    assert err.std() / np.sqrt(samples) < 0.004  # the tolerance is not swamped by noise


def test_posterior_mean_jit_vmap_and_dtypes():
    f = jax.jit(jax.vmap(lambda y, p: theory.posterior_mean("sr", p, 1.0, y)))
    out = f(jnp.ones(3), jnp.array([0.1, 0.5, 1.0]))
    assert out.dtype == jnp.float64 and out.shape == (3,)
    with jax.enable_x64(False) if hasattr(jax, "enable_x64") else jax.experimental.enable_x64(False):
        assert theory.posterior_mean("bg", 0.3, 0.5, jnp.ones(2, jnp.float32)).dtype == jnp.float32


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: theory.posterior_mean("bg", 1.5, 0.5, 0.0), "p must lie in"),
        (lambda: theory.denoiser_risk("bg", 0.5, -1.0), "r must be finite and positive"),
        (lambda: theory.denoiser_risk("gauss", 0.5, 1.0), "unknown prior 'gauss'"),
        (lambda: theory.mmse("sr", 0.5, 0.0), "snr must be finite and positive"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
