"""Multi-layer VAMP decoder and its state evolution, against sampled runs and scipy references."""

import json

import jax
import numpy as np
import pytest
from _theory_helpers import haar_rows, harmonic_frame, sample_sparse, shallow_gain, sign
from scipy import stats

from aejax import theory

pytestmark = pytest.mark.usefixtures("x64")


def test_sign_posterior_vs_scipy_truncnorm():
    rng = np.random.default_rng(0)
    w, s, prec = rng.normal(size=50), rng.choice([-1.0, 1.0], 50), rng.uniform(0.5, 20, 50)
    sd = 1 / np.sqrt(prec)
    lo, hi = np.where(s > 0, -w / sd, -np.inf), np.where(s > 0, np.inf, -w / sd)
    mean, var = theory.sign_posterior(s, w, prec)
    np.testing.assert_allclose(mean, stats.truncnorm.mean(lo, hi, loc=w, scale=sd), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(var, stats.truncnorm.var(lo, hi, loc=w, scale=sd), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("prec", [1.0, 3.0, 50.0])
def test_sign_channel_mmse_vs_monte_carlo(prec):
    rng = np.random.default_rng(1)
    tau = 1 / prec
    w = rng.normal(0, np.sqrt(1 - tau), 400_000)
    z = w + np.sqrt(tau) * rng.normal(size=w.size)
    s = sign(z)
    a = s * w / np.sqrt(tau)  # truncated-normal mean via scipy's normal pdf/cdf (checked vs truncnorm above)
    err = (z - (w + s * np.sqrt(tau) * stats.norm.pdf(a) / stats.norm.cdf(a))) ** 2
    assert abs(err.mean() - float(theory.sign_channel_mmse(prec))) < 3 * err.std() / np.sqrt(w.size)


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
def test_first_layer_is_shallow_decoder_plus_denoiser():
    grid_p, grid_r = np.meshgrid([0.1, 0.5, 1.0], [0.3, 1.0, 2.5])
    for prior in ("bg", "sr"):
        np.testing.assert_allclose(
            theory.state_evolution(prior, grid_p, grid_r, 1)[..., 0],
            theory.denoiser_risk(prior, grid_p, grid_r),
            rtol=1e-9,
        )
    rng = np.random.default_rng(2)
    for r, B in [(0.5, haar_rows(rng, 100, 200)), (2.0, harmonic_frame(rng, 400, 200))]:
        x = sample_sparse(rng, "bg", 0.2, (3, 200))
        s = sign(x @ B.T)
        first = np.asarray(theory.multilayer_decode("bg", 0.2, B, s, 2))[:, 0]
        shallow = shallow_gain(r) * s @ B
        np.testing.assert_allclose(first, theory.posterior_mean("bg", 0.2, r, shallow), atol=1e-9)


def test_gaussian_data_gains_only_above_rate_one():
    low = np.asarray(theory.state_evolution("bg", 1.0, 0.7, 4))
    np.testing.assert_allclose(low, 1 - 1.4 / np.pi, rtol=1e-9)  # linear decoding optimal for r <= 1
    high = np.asarray(theory.state_evolution("bg", 1.0, 2.0, 4))
    assert np.all(np.diff(high) < 0) and high[-1] < float(theory.gaussian_limit(2.0)) - 0.015


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
@pytest.mark.parametrize("prior, p, r", [("bg", 0.3, 0.5), ("sr", 0.3, 2.0), ("bg", 1.0, 2.0)])
def test_state_evolution_vs_decoder_on_samples(prior, p, r):
    """d = 2000, 4 layers: mean squared error of the decoder's output within 0.01 of the SE."""
    d, layers = 2000, 4
    samples = 160 if prior == "bg" and p < 1 else 40  # BG(p) errors are heavy-tailed: more samples
    rng = np.random.default_rng(3)
    n = int(r * d)
    B = haar_rows(rng, n, d) if r <= 1 else harmonic_frame(rng, n, d)
    x = sample_sparse(rng, prior, p, (samples, d)) if p < 1 else rng.standard_normal((samples, d))
    xs = np.asarray(theory.multilayer_decode(prior, p, B, sign(x @ B.T), layers))
    err = np.mean((xs - x[:, None, :]) ** 2, axis=2)
    se = np.asarray(theory.state_evolution(prior, p, r, layers))
    assert np.all(np.abs(err.mean(0) - se) < 0.01), (err.mean(0), se)
    assert np.all(err.std(0) / np.sqrt(samples) < 0.004)


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
def test_fixed_point_is_the_limit_of_the_layers():
    many = np.asarray(theory.state_evolution("sr", [0.1, 0.5], [0.5, 2.0], 300))[:, -1]
    fixed = np.asarray(theory.state_evolution_fixed_point("sr", [0.1, 0.5], [0.5, 2.0], tol=1e-10))
    np.testing.assert_allclose(fixed, many, atol=1e-7)
    assert np.all(fixed <= np.asarray(theory.state_evolution("sr", [0.1, 0.5], [0.5, 2.0], 3))[:, -1])


def test_decoder_is_jittable_with_traced_sparsity():
    rng = np.random.default_rng(4)
    B = haar_rows(rng, 32, 64)
    s = sign(sample_sparse(rng, "sr", 0.2, (2, 64)) @ B.T)
    traced = jax.jit(lambda p: theory.multilayer_decode("sr", p, B, s, 3))(0.2)
    np.testing.assert_allclose(traced, theory.multilayer_decode("sr", 0.2, B, s, 3), atol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: theory.state_evolution("bg", 0.5, 1.0, 0), "layers must be a positive integer"),
        (lambda: theory.state_evolution("bg", 0.0, 1.0, 2), "p must lie in"),
        (lambda: theory.state_evolution("bg", 0.5, np.nan, 2), "r must be finite"),
        (lambda: theory.state_evolution_fixed_point("xx", 0.5, 1.0), "unknown prior 'xx'"),
        (
            lambda: theory.multilayer_decode("bg", 0.5, np.random.default_rng(0).normal(size=(20, 40)), np.ones(20), 2),
            "orthonormal rows",
        ),
        (lambda: theory.sign_channel_mmse(0.5), "precision must be >= 1"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
def test_prediction_table_rows():
    rows = theory.prediction_table(ps=[0.3, 1.0], rates=[0.5, 2.0])
    assert len(rows) == 8 and {row["prior"] for row in rows} == {"bg", "sr"}
    json.dumps(rows)
    row = next(r for r in rows if r["prior"] == "sr" and r["r"] == 0.5 and r["p"] == 0.3)
    assert row["identity_tied"] == pytest.approx(1 - 0.5 * 0.3)
    assert row["se_1"] == pytest.approx(row["denoiser"]) and row["se_fixed_point"] <= row["se_3"] + 1e-12
    assert all(r["identity_tied"] is None and r["partial_identity"] is None for r in rows if r["r"] > 1)
    # r = 0.5, p = 0.3 < 1/3: the best partial identity is the rotation; at p = 1 the identity (risk 1 − r)
    assert row["partial_identity"] == pytest.approx(row["rotation"]) and row["p_kurtosis"] == pytest.approx(1 / 3)
    lossless = next(r for r in rows if r["prior"] == "sr" and r["r"] == 0.5 and r["p"] == 1.0)
    assert lossless["partial_identity"] == pytest.approx(0.5)
    assert theory.format_table(rows).count("\n") == 8
