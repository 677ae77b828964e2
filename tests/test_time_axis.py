"""Training time τ as a sweep axis: ``grid={"time": [...]}``, ``--time a,b`` and ``[grid] time``."""

import dataclasses
import json

import numpy as np
import pytest

import aejax
from aejax.cli import main
from aejax.scaling import stack_times

# at τ = 4, the config, grid and options of tests/test_time_and_d.py's sweep at d = 16 alone: its
# program is compiled once for both files through the session's compilation cache
CONFIG = aejax.TrainConfig(d=16, n=16, time=8.0, batch=16, mode="population", trace_points=4)
GRID = {"seed": [0, 1], "rate": [0.5, 1.0]}
# both rates in one bucket, one program per τ (population mode's padding cost grows as n², so 8 → 16
# units is an overhead of 3)
KW = {"mc_samples": 256, "progress": False, "max_padding": 3.0}


@pytest.fixture(scope="module")
def separate():
    """The independent computation: one ordinary sweep per τ."""
    return {t: aejax.sweep(dataclasses.replace(CONFIG, time=t), GRID, **KW) for t in (4.0, 8.0)}


def test_time_axis_equals_one_sweep_per_time(separate, tmp_path):
    """Each τ of the axis is the run trained for τ (its own program), not a point of a longer run's trace;
    the results are stacked along `time` and written per τ and stacked."""
    ds = aejax.sweep(CONFIG, {**GRID, "time": [4.0, 8.0]}, out=tmp_path / "out", **KW)
    assert ds["exact_risk"].dims == ("time", "seed", "rate")
    assert json.loads(ds.attrs["buckets"]) == {"8": 16, "16": 16}
    assert ds["time"].values.tolist() == [4.0, 8.0]
    for t, part in separate.items():
        np.testing.assert_array_equal(ds["exact_risk"].sel(time=t).values, part["exact_risk"].values)
        np.testing.assert_array_equal(ds["risk"].sel(time=t).values, part["risk"].values)
    # a trace keeps its own τ grid, NaN at the other τ's points
    trace = ds["risk_trace"].sel(time=4.0, seed=0, rate=1.0)
    np.testing.assert_array_equal(
        trace.sel(tau=separate[4.0]["tau"].values).values, separate[4.0]["risk_trace"].sel(seed=0, rate=1.0).values
    )
    assert np.isnan(trace.sel(tau=8.0))
    saved = aejax.load_results(tmp_path / "out")
    np.testing.assert_array_equal(saved["exact_risk"].values, ds["exact_risk"].values)
    assert (tmp_path / "out" / "time=4" / "results.nc").exists()
    # results of separate sweeps stack the same way
    stacked = stack_times([separate[8.0], separate[4.0]])
    np.testing.assert_array_equal(stacked["exact_risk"].values, ds["exact_risk"].values)


@pytest.mark.slow  # two more schedules' sweeps, 3.3 s: the slow tier
def test_cosine_trace_at_half_time_is_not_the_shorter_run(separate):
    """Why τ is an axis: under a cosine schedule the run trained for τ = 8 passes τ = 4 at a high learning
    rate, so its trace there is not the run trained for τ = 4 (which has annealed); under a constant
    schedule (population mode: a deterministic trajectory) the two are the same run."""
    long_trace = separate[8.0]["risk_trace"].sel(tau=4.0)
    short_end = separate[4.0]["risk_trace"].sel(tau=4.0)
    assert float(np.max(np.abs(long_trace - short_end))) > 1e-3
    const = {
        t: aejax.sweep(
            dataclasses.replace(CONFIG, time=t, schedule="constant"),
            {"seed": [0], "rate": [1.0]},
            **KW,
        )
        for t in (4.0, 8.0)
    }
    np.testing.assert_allclose(
        const[8.0]["risk_trace"].sel(tau=4.0).values, const[4.0]["risk_trace"].sel(tau=4.0).values, rtol=1e-5
    )


@pytest.mark.integration  # the command line end to end; the time axis itself is tested above, in-process
def test_cli_time_list_and_toml_grid_time(tmp_path, separate):
    """`--time 4,8` and `[grid] time = [4, 8]` give the time axis; each τ's numbers are its own sweep's."""
    flags = ["--d", "16", "--batch", "16", "--mode", "population", "--trace-points", "4", "--rates", "0.5,1"]
    flags += ["--seeds", "0,1", "--lr", "0.01", "--mc-samples", "256", "--quiet"]
    options = tmp_path / "options.toml"
    options.write_text("[sweep]\nmax_padding = 3.0\n")  # as ``separate``
    flags += ["--config", str(options)]
    out = tmp_path / "flags"
    assert main(["sweep", *flags, "--time", "4,8", "--out", str(out)]) == 0
    ds = aejax.load_results(out)
    assert ds["time"].values.tolist() == [4.0, 8.0]
    np.testing.assert_array_equal(
        ds["exact_risk"].sel(time=4.0).squeeze("lr").values, separate[4.0]["exact_risk"].values
    )
    config = tmp_path / "sweep.toml"
    config.write_text(
        "[train]\nd = 16\nbatch = 16\nmode = 'population'\ntrace_points = 4\n"
        "[grid]\nseed = [0, 1]\nrate = [0.5, 1.0]\nlr = [0.01]\ntime = [4, 8]\n"
        "[sweep]\nmc_samples = 256\nmax_padding = 3.0\n"
    )
    out2 = tmp_path / "toml"
    assert main(["sweep", "--config", str(config), "--out", str(out2), "--quiet"]) == 0
    np.testing.assert_array_equal(aejax.load_results(out2)["exact_risk"].values, ds["exact_risk"].values)


@pytest.mark.parametrize(
    ("times", "message"),
    [([4.0, -1.0], "time"), ([4.0, 4.0], "duplicate"), (["a"], "time"), ([], "no values"), ([True], "time")],
)
def test_bad_time_axis_is_refused(times, message):
    with pytest.raises(aejax.InputError, match=message):
        aejax.sweep(CONFIG, {"seed": [0], "time": times}, progress=False)


def test_time_in_a_list_grid_is_refused():
    with pytest.raises(aejax.InputError, match="product grid"):
        aejax.sweep(CONFIG, [{"seed": 0, "time": 4.0}], progress=False)
