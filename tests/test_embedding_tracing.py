"""Embedding aejax in JAX code (issue 22): every public function and method that takes a number
works inside ``jax.jit``, ``jax.vmap`` and ``jax.grad`` whether that number is a Python literal, a
NumPy scalar or a tracer, and gives the eager result; the free risk functions never guess the
architecture; ``mc_risk``/``dataset_risk`` evaluate any callable ``x ↦ x̂``.

Each entry of ``CASES`` is ``f(v)``: one public function or method fed the hyper-parameter ``v``
(scaled into its range). ``_check`` evaluates ``f`` eagerly on a Python float, then in one ``jit``
with ``v`` a Python literal closed over, a NumPy float64 scalar and a traced argument, then
``jit(vmap(f))`` and, where ``f`` is differentiable in ``v``, ``jit(grad)``. ``COVERED`` lists
what the cases exercise; ``test_every_public_name_is_covered_or_host_only`` keeps it complete.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import aejax
from aejax import theory
from aejax.bound import Model
from aejax.model import Architecture, Params, rate_mask
from aejax.risk import dataset_risk
from aejax.sources import BernoulliGaussian, Empirical, Gaussian, SparseRademacher, make_source

D, N = 8, 8
KEY = jax.random.key(0)
X = jax.random.normal(jax.random.key(1), (4, D))
PARAMS = aejax.init(jax.random.key(2), D, N, decoder_scale=1.0)
ROWS = np.random.default_rng(0).normal(size=(40, D))
GAUSS = aejax.TrainConfig(d=D, n=N, steps=1, batch=4, activation="relu", trace_points=1)
BG = aejax.TrainConfig(d=D, n=N, steps=1, batch=4, source="bg", optimizer="sgd", risk_eval="none", trace_points=1)
REAL = aejax.TrainConfig(
    d=D, n=N, steps=2, batch=4, mode="dataset", source=Empirical(ROWS[:30]), test_source=Empirical(ROWS[30:])
)
DENOISER = aejax.TrainConfig(d=D, n=N, steps=2, batch=4, source="bg", decoder="denoiser", trace_points=2)


def _hparams(v):
    """Every swept number from one scalar ``v`` near 1 (a Python float stays a Python float)."""
    return {"lr": 0.05 * v, "slope": 2.0 * v, "margin": 0.1 * v, "rate": 0.5 * v, "p": 0.5 * v}


def _model_outputs(config):
    def f(v):
        model = config.bind(_hparams(v))
        params = model.init(KEY)
        return {
            "mask": model.mask,
            "arch": model.arch,
            "source": model.source.sample(KEY, 4),
            "apply": model.apply(params, X),
            "loss": model.loss(params, X),
            "exact": model.exact_risk(PARAMS),
            "mc": model.mc_risk(PARAMS, KEY, 64),
            "heldout": model.heldout_risk(PARAMS),
            "train": model.train_risk(PARAMS),
            "gaussian_equivalent": model.gaussian_equivalent_risk(PARAMS),
            "learning_rate": config.learning_rate(_hparams(v)["lr"]),
        }

    return f


def _record(v):
    trace = {"loss": jnp.ones(1), "risk": jnp.ones(1), "identity_likeness": jnp.ones(1)}
    return GAUSS.bind(_hparams(v)).record(PARAMS, trace, KEY, 64)


def _decoder(v):
    model = DENOISER.bind(_hparams(v))
    return model.decoder, model.apply(model.init(KEY), X)


def _nn(v):
    ae = aejax.nn.Autoencoder(
        D, N, params=PARAMS, activation="helu", slope=2.0 * v, margin=0.1 * v, mask=rate_mask(0.5 * v, D, N)
    )
    layer = aejax.nn.Sign("tanh", slope=2.0 * v, margin=0.1 * v)
    other = aejax.nn.Autoencoder.from_params(PARAMS, slope=v)
    s = ae.encode(X)
    numbers = {k: w for k, w in ae.model_kw().items() if k in ("slope", "margin", "mask")}
    return ae(X), s, ae.decode(s), ae.to_params(), numbers, ae.arch(), layer(X), other(X)


def _sources(v):
    sources = [
        Gaussian(D, spectrum=v * jnp.ones(D)),
        BernoulliGaussian(D, 0.5 * v),
        SparseRademacher(D, 0.5 * v),
        make_source("bg", D, 0.5 * v),
    ]
    return [(s.sample(KEY, 4), s.covariance(), s.cov_trace()) for s in sources]


def _risks(v):
    arch = Architecture("relu", slope=2.0 * v, margin=0.1 * v, mask=rate_mask(0.5 * v, D, N))
    source = Gaussian(D, spectrum=v * jnp.ones(D))
    scaled = PARAMS._replace(A=v * PARAMS.A)
    A = aejax.optimal_decoder(PARAMS.B, source, arch=arch, ridge=1e-6 * v)
    return (
        aejax.exact_risk(scaled, source, arch=arch),
        aejax.mc_risk(scaled, BernoulliGaussian(D, 0.5 * v), KEY, 64, arch=arch),
        aejax.mc_risk(lambda x: 0.5 * v * x, source, KEY, 64),
        dataset_risk(scaled, X, arch=arch),
        dataset_risk(lambda x: 0.5 * v * x, X),
        A,
    )


def _sample_moments(v):
    arch = Architecture("relu", mask=rate_mask(0.5 * v, D, N))
    return aejax.optimal_decoder(PARAMS.B, BernoulliGaussian(D, 0.5 * v), arch=arch, key=KEY, n_samples=64)


def _functional(v):
    arch = Architecture("helu", "tanh", slope=2.0 * v, margin=0.1 * v, mask=rate_mask(0.5 * v, D, N))
    kw = {"slope": 2.0 * v, "margin": 0.1 * v, "surrogate": "tanh"}
    s = aejax.encode(PARAMS, X, "sign", **kw)
    return (
        aejax.init(KEY, D, N, decoder_scale=v),
        aejax.apply(PARAMS, X, "helu", **kw),
        s,
        aejax.decode(PARAMS, s),
        arch.apply(PARAMS, X),
        arch.loss(PARAMS, X),
        arch.decode(PARAMS, arch.encode(PARAMS, X)),
        Params(v * PARAMS.A, PARAMS.B),
    )


def _activations(v):
    u = jnp.linspace(-1.0, 1.0, 5) * v
    return (
        aejax.sign(u, 2.0 * v, "tanh", 0.1 * v),
        jax.grad(lambda w: jnp.sum(aejax.sign(w, 2.0 * v, "atan", 0.1 * v)))(u),  # the surrogate's slope is live
        aejax.helu(u, 0.1 * v),
        aejax.get_activation("sign", "gauss")(u, slope=2.0 * v, margin=0.1 * v),
        aejax.activations.relu(u),
        aejax.activations.tanh(u),
        aejax.activations.linear(u),
    )


def _theory_r(v):
    r = 0.5 * v
    return (
        theory.gaussian_limit(r),
        theory.gaussian_limit(r, "relu"),
        theory.shannon_limit(r),
        theory.pca_risk(r),
        theory.pca_risk(r, spectrum=v * jnp.linspace(0.5, 1.5, D)),
        theory.rotation_risk(r),
        theory.effective_channel(r),
        theory.finite_d_coefficient(2 * v),
    )


def _theory_prior(v):
    p, r = 0.5 * v, 0.5 * v
    return (
        theory.identity_risk("bg", p, r, "tied"),
        theory.partial_identity_risk("sr", p, r, 0.5 * v),
        theory.kurtosis_correction("bg", p, r, 0.1 * v),
        theory.rotation_excess("bg", p, r, D),
        theory.excess_kurtosis("sr", p),
        theory.denoiser_risk("bg", p, r),
        theory.posterior_mean("bg", p, r, jnp.linspace(-2.0, 2.0, 3) * v),
        theory.mmse("bg", p, 2.0 * v),
        theory.posterior("sr", p, 2.0 * v, jnp.linspace(-2.0, 2.0, 3)),
        theory.sign_channel_mmse(1.0 + v),
        theory.sign_posterior(jnp.ones(3), 0.1 * v, 1.0 + v),
        theory.state_evolution("bg", p, r, 3),
        theory.frame_excess(v * PARAMS.B),
    )


def _theory_loops(v):  # while_loop / argmin inside: no reverse-mode gradient
    p = 0.5 * v
    return (
        theory.best_partial_identity("bg", p),
        theory.state_evolution_fixed_point("bg", p, 0.5 * v, max_layers=50),
        theory.multilayer_decode("bg", p, jnp.eye(D), jnp.sign(X), 2),
    )


def _train(config):
    train = aejax.make_train(config)
    return lambda v: train(KEY, _hparams(v))


def _bind_gradient_path(v):  # TrainConfig.bind and full_hparams with every hyper-parameter
    return GAUSS.bind(_hparams(v)).hparams


# name -> (f, differentiable in v, compared with an eager call); the slow ones (several seconds of
# compiling each) run in the slow tier.
CASES = {
    "make_train": (_train(BG), True, False),
    "TrainConfig.bind": (_bind_gradient_path, True, True),
    "Model methods (gaussian)": (_model_outputs(GAUSS), True, False),
    "Model.record": (_record, False, False),
    "risks": (_risks, True, False),
    "functional model": (_functional, True, True),
    "activations": (_activations, True, True),
    "nn": (_nn, True, True),
    "theory of r": (_theory_r, True, False),
}
SLOW_CASES = {
    "Model methods (bg)": (_model_outputs(BG), False, False),
    "Model methods (real data)": (_model_outputs(REAL), True, False),
    "Model.decoder": (_decoder, True, False),
    "optimal_decoder (sample moments)": (_sample_moments, True, False),
    "sources": (_sources, False, False),
    "theory of priors": (_theory_prior, True, False),
    "theory with loops": (_theory_loops, False, False),
}

COVERED = {
    "aejax": [
        "Architecture", "Model", "Params", "TrainConfig", "activations", "apply", "decode", "encode",
        "exact_risk", "get_activation", "helu", "init", "make_train", "mc_risk", "nn", "optimal_decoder",
        "run_key", "sign", "sources", "theory",
    ],
    "Model": [
        "arch", "apply", "decoder", "exact_risk", "gaussian_equivalent_risk", "heldout_risk", "init", "loss",
        "mask", "mc_risk", "record", "source", "train_risk",
    ],
    "TrainConfig": ["bind", "learning_rate"],
    "Architecture": ["apply", "decode", "encode", "loss"],
    "aejax.nn": ["Autoencoder", "Autoencoder.from_params", "Autoencoder.to_params", "Autoencoder.model_kw",
                 "Autoencoder.arch", "Autoencoder.encode", "Autoencoder.decode", "Autoencoder.__call__",
                 "Sign", "Hyper"],
    "aejax.sources": ["Gaussian", "BernoulliGaussian", "SparseRademacher", "make_source", "Source.sample",
                      "Source.covariance", "Source.cov_trace"],
    "aejax.activations": ["sign", "helu", "get_activation", "relu", "tanh", "linear"],
    "aejax.risk": ["dataset_risk"],
    "aejax.theory": [
        "gaussian_limit", "shannon_limit", "pca_risk", "rotation_risk", "effective_channel",
        "finite_d_coefficient", "identity_risk", "partial_identity_risk", "kurtosis_correction",
        "rotation_excess", "excess_kurtosis", "denoiser_risk", "posterior_mean", "mmse", "posterior",
        "sign_channel_mmse", "sign_posterior", "state_evolution", "frame_excess", "best_partial_identity",
        "state_evolution_fixed_point", "multilayer_decode",
    ],
}  # fmt: skip
# Host-side by design (files, grids of compiled runs, fits of finished results, constants of a static
# argument, exceptions): nothing there is traced.
HOST_ONLY = {
    "aejax": [
        "InputError", "InputTypeError", "default_hparams", "enable_compilation_cache", "initialize_cluster",
        "load_results", "named", "scaling", "sweep", "sweep_shard",
    ],
    "aejax.theory": [
        "BG", "SR", "CONVENTIONS", "Prior", "resolve_prior", "kappa", "fourth_moment", "kurtosis_threshold",
        "critical_sparsity", "activation_moments", "prediction_table", "format_table", "paley_etf",
        "frame_statistics",
    ],
}  # fmt: skip


def _leaves(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return [np.asarray(x) for x in leaves if not jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key)]


def _scalar_sum(tree):
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.floating)]
    return sum(jnp.sum(jnp.where(jnp.isfinite(x), x, 0.0)) for x in leaves)


def _assert_same(got, want, what):
    got_leaves, want_leaves = _leaves(got), _leaves(want)
    assert len(got_leaves) == len(want_leaves), what
    for g, w in zip(got_leaves, want_leaves, strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5, err_msg=what)


def _all_modes(f, v, differentiable):
    """``f`` in one compiled program: ``v`` as a Python literal closed over, a NumPy scalar and a
    tracer; ``vmap`` over ``[v, 0.9 v]``; the gradient of its summed outputs."""

    def run(t, ts):
        out = {"literal": f(v), "numpy scalar": f(np.float64(v)), "tracer": f(t), "vmap": jax.vmap(f)(ts)}
        if differentiable:
            out["grad"] = jax.grad(lambda u: _scalar_sum(f(u)))(t)
        return out

    return jax.jit(run)(v, jnp.asarray([v, 0.9 * v]))


@pytest.mark.parametrize("name", [*CASES, *(pytest.param(name, marks=pytest.mark.slow) for name in SLOW_CASES)])
def test_public_functions_under_jit_vmap_and_grad(name):
    """Eager result == jit with v a Python literal, a NumPy scalar and a tracer == vmap's first
    entry; the gradient of the summed outputs is finite. (Cases whose eager run would dispatch
    thousands of small operations, or compile a training loop again, take the traced run as the
    reference.)"""
    f, differentiable, eager = {**CASES, **SLOW_CASES}[name]
    v = 1.0
    out = _all_modes(f, v, differentiable)
    want = f(v) if eager else out["tracer"]
    for how in ("literal", "numpy scalar", "tracer"):
        _assert_same(out[how], want, f"{name}: {how}")
    _assert_same(jax.tree_util.tree_map(lambda x: x[0], out["vmap"]), want, f"{name}: vmap")
    if differentiable:
        assert np.isfinite(float(out["grad"])), name


def test_every_public_name_is_covered_or_host_only():
    """The lists above hold every name of aejax.__all__ and aejax.theory.__all__, and every public
    method of Model and Architecture (so a new public function joins this test or is named host-only)."""
    assert sorted(COVERED["aejax"] + HOST_ONLY["aejax"]) == sorted(aejax.__all__)
    assert sorted(COVERED["aejax.theory"] + HOST_ONLY["aejax.theory"]) == sorted(theory.__all__)
    for cls, key in ((Model, "Model"), (Architecture, "Architecture")):
        public = {n for n in dir(cls) if not n.startswith("_")} - {f.name for f in dataclasses.fields(cls)}
        assert public <= set(COVERED[key]), (key, public - set(COVERED[key]))


def test_python_literal_hyperparameters_inside_jit():
    """Issue 22 finding 1: a Python-literal rate inside jit raised TracerBoolConversionError from
    hparams._check_rate. Now equal to the eager result; a bad literal rate is still refused inside jit."""
    cfg = aejax.TrainConfig(d=D, n=N, steps=1, batch=4, risk_eval="none")
    train = aejax.make_train(cfg)
    literal, traced = jax.jit(lambda k, r: (train(k, {"rate": 0.5})[0], train(k, {"rate": r})[0]))(KEY, 0.5)
    np.testing.assert_array_equal(literal.A[:, 4:], 0)  # the masked units' decoder columns never move
    np.testing.assert_allclose(literal.B, traced.B, rtol=1e-6)
    mask = jax.jit(lambda: cfg.bind({"rate": 0.5}).mask)()
    np.testing.assert_array_equal(mask, [1, 1, 1, 1, 0, 0, 0, 0])
    with pytest.raises(aejax.InputError, match="rate must give between 1 and n=8"):
        jax.jit(lambda: cfg.bind({"rate": 2.0}).mask)()
    with pytest.raises(aejax.InputError, match="rate must give between 1 and n=8"):
        jax.jit(lambda: cfg.bind({"rate": np.array([0.5, 3.0])}).mask)()


def test_traced_decoder_scale_in_init():
    """init with a traced decoder_scale compared it with a Python bool (TracerBoolConversionError)."""
    A = jax.jit(lambda s: aejax.init(KEY, D, N, decoder_scale=s).A)(2.0)
    np.testing.assert_allclose(A, aejax.init(KEY, D, N, decoder_scale=2.0).A, rtol=1e-6)


def test_run_key_with_a_traced_seed():
    """run_key(base, seed) inside jit and vmap equals the eager key, for int, np.int64 and traced seeds."""
    want = jax.random.key_data(aejax.run_key(0, 3))
    for got in (
        jax.jit(lambda: aejax.run_key(0, 3))(),
        jax.jit(lambda: aejax.run_key(0, np.int64(3)))(),  # pyright: ignore[reportArgumentType]
        jax.jit(lambda s: aejax.run_key(0, s))(3),
    ):
        np.testing.assert_array_equal(jax.random.key_data(got), want)
    keys = jax.vmap(lambda s: aejax.run_key(0, s))(jnp.arange(4))
    np.testing.assert_array_equal(jax.random.key_data(keys[3]), want)


def test_nn_modules_inside_nnx_jit_with_traced_hyper_variables():
    """Changing a Hyper (slope) of an Autoencoder between calls of an nnx.jit function gives the
    eager output and no retrace."""
    ae = aejax.nn.Autoencoder(D, N, params=PARAMS, surrogate="tanh")
    traces = []

    @nnx.jit
    def grad_of_input(ae, x):
        traces.append(1)
        return jax.grad(lambda x: jnp.sum(ae(x)))(x)

    first = grad_of_input(ae, X)
    ae.slope[...] = 3.0
    second = grad_of_input(ae, X)
    np.testing.assert_allclose(second, jax.grad(lambda x: jnp.sum(ae(x)))(X), rtol=1e-5, atol=1e-6)
    assert len(traces) == 1 and not np.allclose(first, second)
