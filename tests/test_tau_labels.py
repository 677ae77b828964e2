"""Every τ label in the results is a τ that was trained (issue 24, item 4): a time shorter than one
optimizer step is refused; log-spaced trace points carry the τ of the step they were taken at; with
several d the results keep each d's steps and trained τ. Also the default-trace refusal names the
default (not trace_points the user never set), and a tiny memory budget is printed in bytes."""

import numpy as np
import pytest

import aejax
from aejax.cli import main

KW = {"mc_samples": 64, "progress": False, "devices": 1}


def test_time_below_one_step_is_refused_naming_the_minimum():
    with pytest.raises(ValueError, match=r"time=1e-06 is shorter than one optimizer step at d=16.*minimum is time=1$"):
        aejax.TrainConfig(d=16, n=16, time=1e-6, batch=16)
    config = aejax.TrainConfig(d=64, n=64, time=0.5, batch=16)  # two steps at d=64
    with pytest.raises(ValueError, match=r"time=0.5 is shorter than one optimizer step at d=16, the sweep's smallest"):
        aejax.sweep(config, {"d": [16, 32, 64], "seed": [0]}, **KW)


def test_cli_refuses_time_below_one_step_at_the_smallest_d(tmp_path, capsys):
    status = main(f"sweep --d 16,32,64 --time 1e-6 --rates 1 --seeds 0 --batch 16 --quiet --out {tmp_path}".split())
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.count("\n") == 0
    assert "time=1e-06" in err and "d=16" in err and "minimum is time=1" in err


def test_default_trace_refusal_names_the_default_and_what_fits(tmp_path, capsys):
    status = main(f"sweep --d 16,32,64 --time 2 --rates 1 --seeds 0 --batch 16 --quiet --out {tmp_path}".split())
    err = capsys.readouterr().err
    assert status == 2
    assert "lower trace_points" not in err and "default trace of 4 points" in err and "at most 2" in err


def test_log_spaced_labels_are_the_tau_of_the_steps_trained():
    """d = 16, batch 16: one step is τ = 1. The log grid's first point (τ = 0.256) is trained as one step."""
    config = aejax.TrainConfig(d=16, n=16, time=256.0, batch=16, trace_points=4, trace_spacing="log")
    ds = aejax.sweep(config, {"seed": [0]}, **KW)
    steps = ds["step"].values
    independent = [max(1, int(np.ceil(t * 16 / 16 - 1e-9))) for t in (0.256, 2.56, 25.6)] + [256]
    assert independent == [1, 3, 26, 256]
    np.testing.assert_array_equal(steps, independent)
    np.testing.assert_allclose(ds["tau"].values, np.asarray(independent) * 16 / 16)


def test_several_d_keep_each_ds_steps_and_trained_tau():
    config = aejax.TrainConfig(d=32, n=32, time=256.0, batch=16, trace_points=4, trace_spacing="log")
    ds = aejax.sweep(config, {"d": [16, 32], "seed": [0]}, **KW)
    assert ds["step"].dims == ("d", "tau") and ds["tau_trained"].dims == ("d", "tau")
    for d in (16, 32):
        per_step = 16 / d
        steps = [int(np.ceil(t / per_step - 1e-9)) for t in ds["tau"].values]
        np.testing.assert_array_equal(ds["step"].sel(d=d).values, steps)
        np.testing.assert_allclose(ds["tau_trained"].sel(d=d).values, np.asarray(steps) * per_step)
    assert (ds["tau_trained"].values >= ds["tau"].values - 1e-12).all()


def test_tiny_memory_budget_is_printed_in_bytes():
    with pytest.raises(ValueError, match=r"over the memory budget of 1 B per device"):
        aejax.sweep(aejax.TrainConfig(d=8, n=8, steps=4), {"seed": [0]}, memory_budget=1, **KW)
