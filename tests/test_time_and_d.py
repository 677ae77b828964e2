"""Training time per dimension (``TrainConfig(time=τ)``), the τ-grid trace, and ``d`` as a sweep axis."""

import dataclasses
import json

import chex
import jax
import numpy as np
import pytest

import aejax
from aejax.cli import main
from aejax.config import TrainConfig
from aejax.trace_cost import default_trace_every


def test_time_sets_steps_from_d_and_batch():
    """steps = ceil(τ·d/batch) online; ceil(τ) for GD on the exact risk (a step sees the population)."""
    assert TrainConfig(d=256, n=256, time=10.0, batch=128).total_steps == 20
    assert TrainConfig(d=1000, n=10, time=1.0, batch=128, trace_points=4).total_steps == 8  # 7.8125 rounded up
    assert TrainConfig(d=64, n=64, time=7.5, mode="population", trace_points=4).total_steps == 8
    cfg = TrainConfig(d=64, n=64, time=4.0, batch=32, trace_points=4)
    assert dataclasses.replace(cfg, d=256).total_steps == 4 * dataclasses.replace(cfg, d=64).total_steps


@pytest.mark.parametrize(
    "kw, message",
    [
        ({}, "exactly one of steps"),
        ({"steps": 10, "time": 1.0}, "exactly one of steps"),
        ({"time": -1.0}, "time must be finite and positive"),
        ({"time": 1e30}, "steps must be at most"),
        ({"time": 2.0, "trace_points": 20}, "needs distinct trace steps"),
        ({"time": 0.25, "trace_points": 20}, r"time=0.25 is shorter than one optimizer step .* minimum is time=0.5"),
    ],
)
def test_time_refusals_name_the_argument(kw, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(d=64, n=64, batch=32, **kw)


def test_trace_grid_is_shared_by_every_d():
    """The trace sits at the same τ values at every d; its steps end at the run's last step."""
    taus = {d: TrainConfig(d=d, n=d, time=16.0, batch=16, trace_points=8).trace_taus for d in (16, 64, 256)}
    assert taus[16] == taus[64] == taus[256] == tuple(2.0 * k for k in range(1, 9))
    cfg = TrainConfig(d=256, n=256, time=16.0, batch=16, trace_points=8)
    assert cfg.trace_steps == tuple(32 * k for k in range(1, 9)) and cfg.trace_steps[-1] == cfg.total_steps
    log = TrainConfig(d=64, n=64, steps=4000, trace_spacing="log", trace_points=4)
    assert log.trace_taus[-1] / log.trace_taus[0] == pytest.approx(1000.0)
    assert np.all(np.diff(np.log(log.trace_taus)) == pytest.approx(np.log(10.0)))


def test_default_trace_interval_is_fast_and_divides():
    """The default interval is the largest divisor of steps up to steps/20, found without a linear scan."""
    assert default_trace_every(1000) == 50 and default_trace_every(97) == 1 and default_trace_every(2) == 1
    for steps in (1, 19, 20, 360, 2**31 - 1, 2**30):
        every = default_trace_every(steps)
        assert steps % every == 0 and every <= max(1, steps // 20)
        assert not any(steps % k == 0 for k in range(every + 1, min(max(1, steps // 20), every + 2000) + 1))


def test_uneven_trace_blocks_train_like_even_ones():
    """A τ grid with blocks of different lengths (fori_loop) gives the same final weights as even blocks
    (scan) at the same total steps: the trace schedule does not change the training."""
    key = jax.random.key(3)
    even = TrainConfig(d=16, n=16, steps=60, batch=16, eval_every=20)
    uneven = TrainConfig(d=16, n=16, steps=60, batch=16, trace_spacing="log", trace_points=3)
    assert uneven.trace_steps != even.trace_steps and uneven.trace_steps[-1] == 60
    p_even, t_even = aejax.make_train(even)(key, {})
    p_uneven, t_uneven = aejax.make_train(uneven)(key, {})
    chex.assert_trees_all_close(p_uneven, p_even, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t_uneven["risk"][-1], t_even["risk"][-1], rtol=1e-5)


def test_learning_rate_scales_with_d():
    cfg = TrainConfig(d=512, n=512, steps=10, lr_power=1.0, d_ref=128)
    assert cfg.learning_rate(0.01) == pytest.approx(0.0025)
    assert TrainConfig(d=512, n=512, steps=10).learning_rate(0.01) == 0.01


# both rates in one bucket, one program per d (population mode's padding cost grows as n², so 8 → 16
# units is an overhead of 3)
D_KW = {"mc_samples": 256, "progress": False, "max_padding": 3.0}


@pytest.fixture(scope="module")
def d_sweep():
    config = TrainConfig(d=32, n=32, time=4.0, batch=16, trace_points=4, mode="population")
    return aejax.sweep(config, {"seed": [0, 1], "d": [16, 32], "rate": [0.5, 1.0]}, **D_KW)


def test_d_axis_equals_separate_sweeps(d_sweep):
    """One sweep over d gives, at each d, the runs of a sweep at that d alone, on the shared τ grid;
    theory at each run's actual rate."""
    assert d_sweep["risk_trace"].dims == ("seed", "d", "rate", "tau")
    assert json.loads(d_sweep.attrs["buckets"]) == {"16": {"8": 16, "16": 16}, "32": {"16": 32, "32": 32}}
    np.testing.assert_allclose(d_sweep["tau"], [1.0, 2.0, 3.0, 4.0])
    for d in (16, 32):
        alone = aejax.sweep(
            TrainConfig(d=d, n=d, time=4.0, batch=16, trace_points=4, mode="population"),
            {"seed": [0, 1], "rate": [0.5, 1.0]},
            **D_KW,
        )
        for name in ("exact_risk", "risk", "risk_trace"):
            np.testing.assert_array_equal(d_sweep[name].sel(d=d).values, alone[name].values, err_msg=f"{name} d={d}")
    np.testing.assert_allclose(
        d_sweep["theory"].sel(seed=0, d=16), aejax.theory.gaussian_limit(np.array([0.5, 1.0])), rtol=1e-6
    )


def test_d_axis_refuses_a_fixed_source_object():
    with pytest.raises(ValueError, match="'d' grid axis needs a named source"):
        aejax.sweep(TrainConfig(d=8, n=8, steps=4, source=aejax.sources.Gaussian(8)), {"d": [8, 16]}, progress=False)


@pytest.mark.integration
def test_cli_sweep_over_d_with_time(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "sweep",
            "--d",
            "8,16",
            "--time",
            "2",
            "--batch",
            "8",
            "--trace-points",
            "2",
            "--rates",
            "1",
            "--seeds",
            "0",
            "--mc-samples",
            "64",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    ds = aejax.load_results(out)
    assert ds["risk"].dims == ("seed", "rate", "lr", "d") and list(ds["d"].values) == [8, 16]
    assert list(ds["tau"].values) == [1.0, 2.0]


@pytest.mark.integration
def test_cli_checkpoint_flags_reach_the_sweep(tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "sweep",
            "--d",
            "8",
            "--steps",
            "40",
            "--batch",
            "8",
            "--rates",
            "1",
            "--seeds",
            "0",
            "--mc-samples",
            "64",
            "--quiet",
            "--out",
            str(out),
            "--checkpoint-every",
            "10",
        ]
    )
    assert code == 0
    assert aejax.load_results(out)["status"].item() == "ok"
    assert (out / "checkpoints").is_dir()  # the chunk trained in segments, checkpointing between them
    assert not any((out / "checkpoints").rglob("block-*"))  # finished chunks keep no checkpoint
