"""Decoders: against theory.multilayer_decode, posterior_mean and the state evolution; training wiring."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import COMPUTE_BOUND

from aejax import theory
from aejax.config import TrainConfig
from aejax.decoders import NonlinearDecoder, denoise, init_denoiser, init_params, shallow_scale
from aejax.model import Architecture, Params, apply, encode, identity_likeness, init, inverse_participation_ratio
from aejax.risk import exact_risk, mc_risk
from aejax.sources import BernoulliGaussian, Gaussian
from aejax.train import make_train


@pytest.mark.parametrize("prior, p, n", [("bg", 0.2, 24), ("sr", 0.4, 64)])
def test_multilayer_at_init_reproduces_theory_decoder(prior, p, n):
    d = 32
    dec = NonlinearDecoder("multilayer", prior, layers=3, p=p)

    @jax.jit  # one compiled program instead of op-by-op dispatch
    def decoded(key0, key1):
        params = init(key0, d, n, kind="orthogonal")
        deep = init_params(dec, params)
        x = BernoulliGaussian(d, p).sample(key1, 5)
        s = encode(deep, x, row_normalize=True)
        return dec.decode_layers(deep, s), apply(deep, x, row_normalize=True, decoder=dec), params.B, s

    layers, out, B, s = decoded(jax.random.key(0), jax.random.key(1))
    ref = theory.multilayer_decode(prior, p, B, s, 3)
    np.testing.assert_allclose(layers, ref, atol=1e-5)
    np.testing.assert_allclose(out, ref[:, -1], atol=1e-5)


def test_posterior_mean_decoder_is_the_theory_denoiser_of_the_shallow_output():
    d, n, p = 16, 8, 0.3
    dec = NonlinearDecoder("posterior_mean", "bg", p=p, rate=n / d)

    @jax.jit  # one compiled program instead of op-by-op dispatch
    def decoded(key0, key1):
        params = init(key0, d, n, kind="orthogonal")
        x = BernoulliGaussian(d, p).sample(key1, 4)
        return apply(init_params(dec, params), x, row_normalize=True, decoder=dec), params.B, x

    out, B, x = (np.asarray(v, np.float64) for v in decoded(jax.random.key(2), jax.random.key(3)))
    s = np.where(x @ B.T >= 0, 1.0, -1.0)
    y = s @ (np.sqrt(2 / np.pi) * B)  # rows are unit: A = sqrt(2/π) B̄ᵀ
    np.testing.assert_allclose(
        out, theory.posterior_mean("bg", p, n / d, jnp.asarray(y, jnp.float32)), rtol=1e-5, atol=1e-6
    )


def test_shallow_scale_is_the_optimal_decoder_of_a_rotation_and_a_tight_frame():
    # Exact risk of A = c B̄ᵀ on Gaussian data equals R_Gauss(r) in the d → ∞ limit. For r ≤ 1 the rows
    # are orthonormal, so the risk does not depend on d (d = 32 suffices); the tight frame r = 2 needs d = 256.
    cases = [(32, 0.5), (32, 1.0), (256, 2.0)]

    @jax.jit  # the three risks in one compiled program
    def risks(key):
        out = []
        for d, r in cases:
            B = init(key, d, int(r * d), kind="orthogonal").B
            arch = Architecture("sign", row_normalize=True)
            out.append(
                exact_risk(Params(shallow_scale(r) * B.T / jnp.linalg.norm(B, axis=1), B), Gaussian(d), arch=arch)
            )
        return out

    for (_, r), risk in zip(cases, risks(jax.random.key(0)), strict=True):
        assert abs(float(risk) - float(theory.gaussian_limit(r))) < (1e-4 if r <= 1 else 5e-3)


def test_learned_denoiser_starts_as_identity_and_is_odd():
    head = init_denoiser(6)._replace(coef=jnp.linspace(-1.0, 1.0, 6))
    y = jnp.linspace(-3.0, 3.0, 11)
    np.testing.assert_allclose(denoise(head, -y), -denoise(head, y), atol=1e-6)
    np.testing.assert_allclose(denoise(init_denoiser(6), y), y)


@pytest.mark.slow  # accuracy at d = 64, 2.8 s: the slow tier
def test_learned_denoiser_approaches_posterior_mean_risk():
    d, p = 64, 0.2
    cfg = TrainConfig(
        d=d,
        n=d,
        steps=300,
        batch=128,
        source="bg",
        init="orthogonal",
        decoder="denoiser",
        trainable="head",
        risk_eval="none",
        schedule="cosine",
    )
    hp = {"lr": 0.02, "p": p}
    params, _ = jax.jit(make_train(cfg), compiler_options=COMPUTE_BOUND)(jax.random.key(0), hp)
    model = cfg.bind(hp)
    dec = NonlinearDecoder("posterior_mean", "bg", p=p, rate=1.0)

    @jax.jit  # the three Monte Carlo risks in one compiled program
    def risks(params, key):
        learned = model.mc_risk(params, key, 20_000)[0]
        reference = mc_risk(
            init_params(dec, params._replace(head=None)),
            model.source,
            key,
            20_000,
            arch=Architecture("sign", row_normalize=True, decoder=dec),
        )[0]
        linear = mc_risk(
            params._replace(head=None), model.source, key, 20_000, arch=Architecture("sign", row_normalize=True)
        )[0]
        return learned, reference, linear

    learned, reference, linear = risks(params, jax.random.key(9))
    assert float(learned) < float(reference) + 0.01 and float(learned) < float(linear) - 0.05


@pytest.mark.parametrize(
    "trainable, moved", [("all", ("A", "B", "head")), ("decoder", ("A", "head")), ("head", ("head",))]
)
def test_trainable_freezes_the_other_parts(trainable, moved):
    cfg = TrainConfig(
        d=16, n=8, steps=10, batch=32, source="bg", decoder="denoiser", trainable=trainable, risk_eval="none"
    )
    hp = {"p": 0.3}
    params, trace = make_train(cfg)(jax.random.key(0), hp)
    k_init = jax.random.split(jax.random.key(0), 4)[0]
    start = cfg.bind(hp).init(k_init)
    for name in ("A", "B", "head"):
        same = jax.tree.all(
            jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), getattr(params, name), getattr(start, name))
        )
        assert same == (name not in moved), name
    assert trace["identity_likeness"].shape == trace["loss"].shape


@pytest.mark.slow  # a multilayer sweep, 3.6 s: the slow tier
def test_multilayer_trains_end_to_end_and_exact_risk_is_nan():
    cfg = TrainConfig(
        d=16,
        n=16,
        steps=20,
        batch=32,
        source="sr",
        init="orthogonal",
        decoder="multilayer",
        layers=2,
        risk_eval="mc",
        trace_samples=256,
    )
    params, trace = jax.jit(make_train(cfg))(jax.random.key(0), {"p": 0.3, "lr": 0.01})
    assert np.all(np.isfinite(trace["risk"])) and not np.array_equal(params.head.log_snr, jnp.zeros(2))
    assert np.isnan(exact_risk(params, Gaussian(16), arch=cfg.bind({"p": 0.3}).arch))


def test_identity_likeness_of_permutation_and_rotation():
    d = 256
    assert float(identity_likeness(-jnp.eye(d)[::-1])) == 1.0
    rotation = jax.jit(lambda k: identity_likeness(init(k, d, d, kind="orthogonal").B))(jax.random.key(0))
    assert 1.0 / d < float(rotation) < 4 * np.log(d) / d
    assert float(identity_likeness(jnp.eye(4), mask=jnp.array([1.0, 1.0, 0.0, 0.0]))) == 1.0


def test_inverse_participation_ratio_of_permutation_flat_and_haar_rows():
    d = 64
    assert float(inverse_participation_ratio(-3.0 * jnp.eye(d)[::-1])) == pytest.approx(1.0)
    flat = np.sign(np.random.default_rng(0).standard_normal((8, d)))
    assert float(inverse_participation_ratio(jnp.asarray(flat))) == pytest.approx(1 / d, rel=1e-6)
    # Haar rows: E Σ_j b_j⁴ = d · 3/(d(d + 2)) (uniform unit vector), averaged over 8 rotations
    haar = jax.jit(  # the 8 rotations in one compiled program
        jax.vmap(lambda k: inverse_participation_ratio(init(jax.random.key(k), d, d, kind="orthogonal").B))
    )(jnp.arange(8))
    assert float(np.mean(haar)) == pytest.approx(3 / (d + 2), rel=0.03)
    mixed = jnp.concatenate([jnp.eye(4), jnp.ones((4, 4))])
    assert float(inverse_participation_ratio(mixed, mask=jnp.array([1.0] * 4 + [0.0] * 4))) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(decoder="mlp"), "unknown decoder 'mlp'"),
        (dict(decoder="denoiser", mode="population"), "has no exact risk"),
        (dict(decoder="denoiser", tied=True), "needs an untied decoder"),
        (dict(trainable="head"), "needs a non-linear decoder"),
        (dict(trainable="encoder"), "unknown trainable 'encoder'"),
        (dict(decoder="posterior_mean", source=BernoulliGaussian(8, 0.5)), "needs prior="),
    ],
)
def test_bad_decoder_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{"d": 8, "n": 8, "steps": 10, **kwargs})


def test_bad_decoder_arguments_raise():
    with pytest.raises(ValueError, match="unknown kind 'linear'"):
        NonlinearDecoder("linear")
    with pytest.raises(ValueError, match="rate must be n/d"):
        make_train(TrainConfig(d=8, n=8, steps=10, decoder="multilayer"))(jax.random.key(0), {"rate": 0.5})
    with pytest.raises(ValueError, match=re.escape("params.head must be a DenoiserHead")):
        apply(init(jax.random.key(0), 8, 8), jnp.ones(8), decoder=NonlinearDecoder("denoiser"))


@pytest.mark.slow
def test_decoders_match_theory_at_d_1024():
    d, p = 1024, 0.1
    params = init(jax.random.key(0), d, d, kind="orthogonal")
    dec = NonlinearDecoder("multilayer", "bg", layers=3, p=p)
    deep = init_params(dec, params)
    x = BernoulliGaussian(d, p).sample(jax.random.key(1), 2048)
    risks = np.asarray(
        jnp.mean((x[:, None] - dec.decode_layers(deep, encode(deep, x, row_normalize=True))) ** 2, axis=(0, 2))
    )
    assert np.all(np.abs(risks - np.asarray(theory.state_evolution("bg", p, 1.0, 3))) < 0.02)
    cfg = TrainConfig(
        d=d,
        n=d,
        steps=300,
        batch=128,
        source="bg",
        init="orthogonal",
        decoder="denoiser",
        trainable="head",
        risk_eval="none",
        schedule="cosine",
    )
    hp = {"lr": 0.01, "p": p}
    trained, _ = jax.jit(make_train(cfg))(jax.random.key(1), hp)
    learned = cfg.bind(hp).mc_risk(trained, jax.random.key(7), 8192)[0]
    assert abs(float(learned) - float(theory.denoiser_risk("bg", p, 1.0))) < 0.01
