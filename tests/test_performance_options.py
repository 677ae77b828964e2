"""Performance options: the trace's cost budget, matrix-product precision, the optimizer state's
dtype and the CLI's persistent compilation cache."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aejax import TrainConfig, sweep
from aejax.model import init
from aejax.optim import with_state_dtype
from aejax.trace_cost import TRACE_BUDGET, affordable_trace_points, trace_point_cost
from aejax.train import make_train


def _xla_flops(fn, *args) -> float:
    analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis["flops"])


@pytest.mark.parametrize("mode", ["online", "population"])
def test_trace_cost_model_matches_xla_flop_counts(mode):
    """The FLOP model behind the default trace, against XLA's own count of the compiled programs."""
    d = n = 256
    config = TrainConfig(d=d, n=n, steps=10, mode=mode)
    model = config.bind({"lr": 0.01})
    params = init(jax.random.key(0), d, n)
    x = jnp.zeros((config.batch, d))
    risk = _xla_flops(model.exact_risk, params)
    if mode == "online":
        step = _xla_flops(jax.value_and_grad(model.loss), params, x)
    else:
        step = _xla_flops(jax.value_and_grad(model.exact_risk), params)
    assert trace_point_cost(config) == pytest.approx(risk / step, rel=0.35)


@pytest.mark.parametrize("d", [128, 512, 1024, 2048, 4096])
@pytest.mark.parametrize("steps", [1000, 997, 3000])
def test_default_trace_stays_within_its_budget(d, steps):
    config = TrainConfig(d=d, n=d, steps=steps)
    points = len(config.trace_steps)
    assert config.trace_steps[-1] == steps
    assert (points - 1) * trace_point_cost(config) <= TRACE_BUDGET * steps
    assert points <= max(20, affordable_trace_points(config))
    assert len(set(np.diff((0, *config.trace_steps)))) == 1  # evenly spaced


def test_default_trace_keeps_twenty_points_where_they_are_cheap():
    assert len(TrainConfig(d=64, n=64, steps=1000).trace_steps) == 20
    assert len(TrainConfig(d=64, n=64, steps=1000, trace_points=5).trace_steps) == 5
    assert len(TrainConfig(d=2048, n=2048, steps=1000, risk_eval="none").trace_steps) == 20


@pytest.mark.slow  # two sweeps at d = 256, 4 s: the slow tier
def test_a_sweeps_default_trace_is_that_of_its_config_whatever_the_grid():
    """The default trace is resolved at the config as given, so adding a d or a rate to the grid does
    not change the trace of the runs already there."""
    config = TrainConfig(d=256, n=256, steps=40, batch=16)
    points = len(config.trace_steps)
    assert points < len(TrainConfig(d=16, n=16, steps=40, batch=16).trace_steps)
    small = sweep(config, {"d": [16], "seed": [0]}, mc_samples=64, progress=False)
    both = sweep(config, {"d": [16, 256], "seed": [0]}, mc_samples=64, progress=False)
    assert small.sizes["step"] == both.sizes["step"] == points
    np.testing.assert_array_equal(small["risk_trace"].sel(d=16).values, both["risk_trace"].sel(d=16).values)


def test_bfloat16_optimizer_state_is_stored_in_bfloat16_and_still_trains():
    config = TrainConfig(d=32, n=32, steps=200, opt_state_dtype="bfloat16")
    params, trace = jax.jit(make_train(config))(jax.random.key(0), {"lr": 0.01})
    assert trace["risk"][-1] < 0.4  # from 1 at A = 0; the Gaussian limit at rate 1 is 1 - 2/π = 0.36
    state = with_state_dtype(optax.adam(1.0), "bfloat16").init(params)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(state) if leaf.ndim} == {jnp.dtype(jnp.bfloat16)}


def test_float32_optimizer_state_is_the_optimizer_itself():
    adam = optax.adam(1.0)
    assert with_state_dtype(adam, "float32") is adam


@pytest.mark.parametrize(("precision", "marker"), [("highest", "HIGHEST"), ("bfloat16", "lhs_precision_type = bf16")])
def test_matmul_precision_reaches_every_product_of_the_compiled_run(precision, marker):
    config = TrainConfig(d=16, n=16, steps=4, matmul_precision=precision)
    text = jax.jit(make_train(config)).lower(jax.random.key(0), {"lr": 0.01}).as_text()
    dots = [line for line in text.splitlines() if "stablehlo.dot_general" in line]
    assert dots and all(marker in line for line in dots)


def test_bad_precision_and_dtype_are_refused_by_name():
    with pytest.raises(ValueError, match="matmul_precision"):
        TrainConfig(d=8, n=8, steps=1, matmul_precision="fp8")
    with pytest.raises(ValueError, match="opt_state_dtype"):
        TrainConfig(d=8, n=8, steps=1, opt_state_dtype="float16")


@pytest.mark.slow  # two fresh interpreters
def test_second_identical_cli_sweep_finds_its_programs_in_the_cache_and_gives_the_same_bits(tmp_path):
    """The CLI's persistent compilation cache: the second process adds no cache entry (every program
    it compiles is a cache hit) and its results equal the first's bit for bit."""
    import xarray as xr

    cache = tmp_path / "cache"
    env = {**os.environ, "AEJAX_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # the test session's own cache (conftest.py) would win
    argv = ["--d", "16", "--steps", "20", "--batch", "16", "--rates", "1", "--seeds", "0,1", "--quiet"]
    argv += ["--mc-samples", "256"]

    def run(out):
        command = [sys.executable, "-m", "aejax", "sweep", *argv, "--out", str(tmp_path / out)]
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
        files = {str(p.relative_to(cache)) for p in cache.rglob("*")}
        return files, xr.load_dataset(tmp_path / out / "results.nc")

    files, first = run("first")
    assert any(name.startswith("jit_block") for name in files)  # the block program (programs.make_block)
    again, second = run("second")
    assert again == files
    for name in ("risk", "exact_risk", "risk_trace"):
        np.testing.assert_array_equal(first[name].values, second[name].values)
