"""Embedding aejax in research code (issue 22, items 2, 6, 8; issue 24 item 12): risk functions
that never guess the architecture, risks of any callable x ↦ x̂, one ``row_normalize`` default,
and the smaller items (``aejax.scaling``, the sweep docstring, float32 results, short reprs)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import aejax
from aejax import record
from aejax.grid import AXES, Grid
from aejax.model import Architecture, Params, init
from aejax.results import build_dataset
from aejax.risk import dataset_risk
from aejax.sources import Empirical, Gaussian

ROOT = Path(__file__).resolve().parents[1]
D = 16
SOURCE = Gaussian(D)


@functools.cache
def base_params():
    """The module's parameters, built on first use (not while pytest collects, in every xdist worker)."""
    return init(jax.random.key(0), D, D, decoder_scale=1.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: aejax.exact_risk(base_params(), SOURCE),
        lambda: aejax.mc_risk(base_params(), SOURCE, jax.random.key(0), 100),
        lambda: aejax.optimal_decoder(base_params().B, SOURCE),
        lambda: dataset_risk(base_params(), jnp.ones((3, D))),
    ],
    ids=["exact_risk", "mc_risk", "optimal_decoder", "dataset_risk"],
)
def test_risk_functions_refuse_to_guess_the_architecture(call):
    """Without arch= they used sign, raw rows and no mask, silently; now a clear error says what to pass."""
    with pytest.raises(aejax.InputTypeError, match=r"needs arch=: the aejax.Architecture \(or aejax.Model\)"):
        call()


def test_old_keyword_form_is_refused():
    """The partial keyword form (activation=... with row_normalize and mask left to defaults) is gone."""
    with pytest.raises(TypeError, match="activation"):
        aejax.exact_risk(base_params(), SOURCE, activation="tanh")  # pyright: ignore[reportCallIssue]


def _numpy_risk(A, B, mask, activation, x):
    """Independent NumPy risk of x̂ = A (mask · σ(B̄ x)) with unit-norm rows B̄, float64."""
    Bn = B / np.linalg.norm(B, axis=1, keepdims=True)
    s = activation(x @ Bn.T) * mask
    return np.mean((x - s @ A.T) ** 2, axis=1)


@pytest.mark.parametrize("activation", ["tanh", pytest.param("relu", marks=pytest.mark.slow)])
def test_free_risks_given_the_model_agree_with_its_own_and_with_numpy(activation):
    """Issue 22 finding 2: for a tanh run at r = 1/2 the free exact_risk returned 0.9586 where
    model.exact_risk gave 0.5351 (relu: 0.9072 vs 0.6508). Given the Model, the free functions equal
    the Model's risks, and both lie within 4 standard errors of a NumPy Monte Carlo of the run's own
    map (unit rows, half the units masked)."""
    config = aejax.TrainConfig(d=D, n=D, steps=10, batch=32, activation=activation, risk_eval="none")
    model = config.bind({"rate": 0.5, "lr": 0.05})
    params, _ = jax.jit(aejax.make_train(config))(jax.random.key(1), {"rate": 0.5, "lr": 0.05})
    risks = jax.jit(
        lambda p, k: (
            aejax.exact_risk(p, model.source, arch=model),
            aejax.exact_risk(p, model.source, arch=model.arch),
            model.exact_risk(p),
            aejax.mc_risk(p, model.source, k, 1024, arch=model),
            model.mc_risk(p, k, 1024),
        )
    )(params, jax.random.key(2))
    free = float(risks[0])
    np.testing.assert_allclose(risks[1:3], free, rtol=1e-6)
    np.testing.assert_allclose(risks[3], risks[4], rtol=1e-6)
    x = np.random.default_rng(3).normal(size=(100_000, D))
    act = np.tanh if activation == "tanh" else (lambda u: np.maximum(u, 0))
    A, B, mask = (np.asarray(a, np.float64) for a in (params.A, params.B, model.mask))
    losses = _numpy_risk(A, B, mask, act, x)
    assert abs(free - losses.mean()) < 4 * losses.std() / np.sqrt(len(losses))


def test_one_row_normalize_default_everywhere():
    """TrainConfig defaulted to unit rows, Architecture and aejax.nn.Autoencoder to raw rows."""
    config_default = {f.name: f.default for f in dataclasses.fields(aejax.TrainConfig)}["row_normalize"]
    arch_default = {f.name: f.default for f in dataclasses.fields(Architecture)}["row_normalize"]
    nn_default = inspect.signature(aejax.nn.Autoencoder.__init__).parameters["row_normalize"].default
    apply_default = Architecture("sign").row_normalize
    assert config_default is arch_default is nn_default is apply_default is True
    x = SOURCE.sample(jax.random.key(4), 8)
    trained_map = aejax.TrainConfig(d=D, n=D, steps=1).bind().apply(base_params(), x)
    np.testing.assert_allclose(aejax.nn.Autoencoder(D, D, params=base_params())(x), trained_map, rtol=1e-6)


def test_mc_risk_of_a_linear_map_matches_its_closed_form():
    """Issue 22 finding 6: any callable. For x ~ N(0, diag(λ)) and x̂ = M x, the risk is
    tr((I − M) Σ (I − M)ᵀ) / d; the estimate lies within 4 standard errors, and dataset_risk of the
    same map on fixed rows equals NumPy's mean."""
    rng = np.random.default_rng(5)
    spectrum = np.linspace(0.5, 1.5, D)
    M = rng.normal(size=(D, D)) / np.sqrt(D)
    source = Gaussian(D, spectrum=spectrum)
    Mj = jnp.asarray(M, jnp.float32)
    mean, se = aejax.mc_risk(lambda x: x @ Mj.T, source, jax.random.key(6), 50_000)
    residual = np.eye(D) - M
    want = np.trace(residual @ np.diag(spectrum) @ residual.T) / D
    assert abs(float(mean) - want) < 4 * float(se)
    rows = rng.normal(size=(37, D))
    got = dataset_risk(lambda x: x @ Mj.T, jnp.asarray(rows, jnp.float32), block=10)
    assert float(got) == pytest.approx(np.mean((rows - rows @ M.T) ** 2), rel=1e-5)


class _Composite(nnx.Module):
    """A learned linear preprocessing layer in front of aejax.nn.Autoencoder."""

    def __init__(self, rngs):
        self.pre = nnx.Linear(D, D, use_bias=False, rngs=rngs)
        self.ae = aejax.nn.Autoencoder(D, D, rngs=rngs, decoder_scale=1.0, activation="tanh")

    def __call__(self, x):
        return self.ae(self.pre(x))


def test_mc_risk_of_an_nnx_composite_equals_the_model_folded_by_hand():
    """The composite x ↦ A tanh(B̄ W x) evaluated as a callable equals the Params (A, B̄ W) with raw rows
    (folded by hand) on the same samples; nnx.grad of the risk flows into both layers."""
    net = _Composite(nnx.Rngs(0))
    key = jax.random.key(7)
    got = aejax.mc_risk(net, SOURCE, key, 512)
    W = net.pre.kernel[...].T  # nnx.Linear computes x @ kernel
    B = net.ae.B[...] / jnp.linalg.norm(net.ae.B[...], axis=1, keepdims=True)
    folded = aejax.mc_risk(
        Params(net.ae.A[...], B @ W), SOURCE, key, 512, arch=Architecture("tanh", row_normalize=False)
    )
    np.testing.assert_allclose(got, folded, rtol=1e-5)
    grads = nnx.grad(lambda m: aejax.mc_risk(m, SOURCE, key, 256)[0])(net)
    assert float(jnp.abs(grads.pre.kernel[...]).sum()) > 0 and float(jnp.abs(grads.ae.B[...]).sum()) > 0


def test_callable_with_arch_or_wrong_shape_is_refused():
    with pytest.raises(aejax.InputTypeError, match="pass no arch"):
        aejax.mc_risk(lambda x: x, SOURCE, jax.random.key(0), 10, arch=Architecture())
    with pytest.raises(aejax.InputError, match=r"its input's shape \(10, 16\).*got shape \(10, 4\)"):
        aejax.mc_risk(lambda x: x[:, :4], SOURCE, jax.random.key(0), 10)


@pytest.mark.parametrize("n", [2**31, 2**40])
def test_mc_risk_sample_count_is_bounded(n):
    """Issue 24 item 12: n ≥ 2³¹ raised JAX's OverflowError; now a clear InputError, for the free
    function and the Model's method (nothing is compiled)."""
    with pytest.raises(aejax.InputError, match=r"n_samples must be at most 2147483647 \(2\*\*31 - 1\)"):
        aejax.mc_risk(base_params(), SOURCE, jax.random.key(0), n, arch=Architecture())
    model = aejax.TrainConfig(d=D, n=D, steps=1).bind()
    with pytest.raises(aejax.InputError, match="n_samples must be at most 2147483647"):
        model.mc_risk(base_params(), jax.random.key(0), n)


def test_mc_risk_at_the_largest_count_keeps_int32_indices():
    """The partial last chunk's mask uses ``arange(chunk) < n − i·chunk``: no int32 index beyond n, so
    a count just below 2³¹ keeps only its samples (checked on the mask function itself)."""
    from aejax.risk import _kept

    total, size = 2**31 - 1, 4096
    last = total // size  # the last, partial chunk
    np.testing.assert_array_equal(np.flatnonzero(_kept(jnp.int32(last), size, total)), np.arange(total % size))


def test_scaling_is_reachable_after_import_and_loaded_lazily():
    """aejax.scaling was an AttributeError after ``import aejax``; it is now imported on first use."""
    code = "import sys, aejax; assert 'aejax.scaling' not in sys.modules; print(aejax.scaling.__name__)"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "aejax.scaling"


def test_sweep_docstring_names_every_axis_variable_and_the_tau_traces():
    doc = aejax.sweep.__doc__ or ""
    for name in (*AXES, *(field.name for field in record.FIELDS), "theory", "status"):
        assert f"``{name}``" in doc, name
    assert "``tau``" in doc and "time=" in doc


def test_results_hold_float32_throughout():
    """theory was float64 beside float32 risks; every numeric variable is now float32."""
    grid = Grid.from_spec({"rate": [0.5, 1.0]}, 8)
    ds = build_dataset(grid, record.empty(2, 3), {"step": np.arange(1, 4)}, np.array([0.68, 0.6]), {})
    numeric = [name for name in ds.data_vars if ds[name].dtype.kind == "f"]
    assert "theory" in numeric and {str(ds[name].dtype) for name in numeric} == {"float32"}


def test_config_repr_and_errors_never_print_whole_arrays():
    rows = Empirical(np.random.default_rng(0).normal(size=(1000, 8)))
    text = repr(aejax.TrainConfig(d=8, n=8, steps=10, source=rows, test_source=rows))
    assert len(text) < 1000 and "source=Empirical(data=float32[1000, 8], d=8)" in text
    with pytest.raises(aejax.InputError) as err:
        aejax.TrainConfig(d=8, n=8, steps=10, mode="population", source=rows)
    assert len(str(err.value)) < 200 and "Empirical(data=float32[1000, 8], d=8)" in str(err.value)
