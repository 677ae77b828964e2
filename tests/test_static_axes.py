"""Static ``TrainConfig`` fields as sweep axes (issue 23, item 2): ``grid={"surrogate": [...], ...}``,
``--surrogate clip,ste`` and ``[grid] surrogate = [...]``: one sweep per value, stacked along a dimension
whose labels are the values run. The independent computation is one ordinary sweep per value."""

import dataclasses
import json

import jax
import numpy as np
import optax
import pytest

import aejax
from aejax._outer_axes import outer_axis
from aejax.cli import main

CONFIG = aejax.TrainConfig(d=16, n=16, time=4.0, batch=8, trace_points=4)  # online: the surrogate acts
SURROGATES = ["clip", "ste"]
REST = {"d": [8], "rate": [0.5, 1.0], "lr": [0.01], "seed": [0, 1]}  # one d: the axis is surrogate, not d
KW = {"mc_samples": 64, "progress": False, "max_padding": 1.0}  # one program per d and surrogate
RUNS = 2 * 1 * 2 * 2


@pytest.fixture(scope="module")
def separate():
    """The independent computation: one ordinary sweep per surrogate."""
    return {s: aejax.sweep(dataclasses.replace(CONFIG, surrogate=s), REST, **KW) for s in SURROGATES}


@pytest.fixture(scope="module")
def combined(tmp_path_factory):
    out = tmp_path_factory.mktemp("static") / "out"
    return aejax.sweep(CONFIG, {"surrogate": SURROGATES, **REST}, out=out, **KW), out


def assert_same_runs(ds, part):
    """Every variable of ``part`` equals ``ds``'s, bit for bit (the wall time aside)."""
    for name in part.data_vars:
        if name != "wall_time":
            np.testing.assert_array_equal(ds[name].transpose(*part[name].dims).values, part[name].values, err_msg=name)


def test_surrogate_axis_equals_one_sweep_per_surrogate(combined, separate):
    ds, out = combined
    assert ds["exact_risk"].dims == ("surrogate", "d", "rate", "lr", "seed")
    assert ds["surrogate"].values.tolist() == SURROGATES
    for s in SURROGATES:
        assert_same_runs(ds.sel(surrogate=s), separate[s])
    assert not np.array_equal(separate["clip"]["exact_risk"].values, separate["ste"]["exact_risk"].values)
    # attrs: every value of the axis, and each part's own config
    assert json.loads(ds.attrs["config"])["surrogate"] == SURROGATES
    parts = json.loads(ds.attrs["parts"])
    assert [p["coords"] for p in parts] == [{"surrogate": s} for s in SURROGATES]
    assert [p["config"]["surrogate"] for p in parts] == SURROGATES
    # each part in its own folder, the whole Dataset in out/results.nc
    for s in SURROGATES:
        assert (out / f"surrogate={s}" / "results.nc").exists()
    saved = aejax.load_results(out)
    assert saved["surrogate"].values.tolist() == SURROGATES
    np.testing.assert_array_equal(saved["exact_risk"].values, ds["exact_risk"].values)


def test_rerun_into_the_same_out_reuses_every_run(combined):
    ds, out = combined
    again = aejax.sweep(CONFIG, {"surrogate": SURROGATES, **REST}, out=out, **KW)
    assert again.attrs["reused_runs"] == RUNS and again.attrs["chunks"] == 0
    np.testing.assert_array_equal(again["risk"].values, ds["risk"].values)


def test_shards_of_a_static_axis_assemble_to_the_same_results(combined, tmp_path):
    ds, _ = combined
    grid = {"surrogate": SURROGATES, **REST}
    reports = [aejax.sweep_shard(CONFIG, grid, (k, 2), out=tmp_path, **KW) for k in (0, 1)]
    assert sum(r.owned for r in reports) == sum(r.computed for r in reports) == RUNS
    final = aejax.sweep(CONFIG, grid, out=tmp_path, **KW)
    assert final.attrs["reused_runs"] == RUNS
    np.testing.assert_array_equal(final["exact_risk"].values, ds["exact_risk"].values)


def test_static_axes_nest_in_grid_order(combined):
    """time × surrogate: one dimension each, the static axes first in the grid's order (one τ: the parts are
    the surrogate sweep's, so nothing compiles again)."""
    ds = aejax.sweep(CONFIG, {"time": [4.0], "surrogate": SURROGATES, **REST}, **KW)
    assert ds["risk"].dims == ("time", "surrogate", "d", "rate", "lr", "seed")
    assert_same_runs(ds.sel(time=4.0), combined[0])
    parts = json.loads(ds.attrs["parts"])
    assert [p["coords"] for p in parts] == [{"time": 4.0, "surrogate": s} for s in SURROGATES]
    assert json.loads(ds.attrs["config"])["time"] == [4.0]


@pytest.mark.slow
def test_two_static_axes_of_several_values():
    """schedule × surrogate, each cell its own sweep."""
    rest = {"seed": [0], "rate": [1.0], "d": [8]}
    grid = {"schedule": ["cosine", "constant"], "surrogate": SURROGATES, **rest}
    ds = aejax.sweep(CONFIG, grid, **KW)
    assert ds["risk"].dims == ("schedule", "surrogate", "seed", "rate", "d")
    for schedule in grid["schedule"]:
        for s in SURROGATES:
            part = aejax.sweep(dataclasses.replace(CONFIG, schedule=schedule, surrogate=s), rest, **KW)
            assert_same_runs(ds.sel(schedule=schedule, surrogate=s), part)
    parts = json.loads(ds.attrs["parts"])
    assert [(p["coords"]["schedule"], p["config"]["surrogate"]) for p in parts] == [
        ("cosine", "clip"),
        ("cosine", "ste"),
        ("constant", "clip"),
        ("constant", "ste"),
    ]


def test_labels_are_the_values_run():
    """Names as given, an aejax.named object's name, a function's module:qualname; numbers stay numbers,
    any other mix becomes strings; a label unsafe as a folder name gets a safe, unique folder."""
    sgd = aejax.named(optax.sgd(1.0), "sgd/lr=1")
    axis = outer_axis("optimizer", [sgd, "adam"])
    assert axis.labels == ("sgd/lr=1", "adam") and axis.values[0] is sgd
    assert axis.folder(0).startswith("optimizer=sgd_lr_1-") and axis.folder(1) == "optimizer=adam"
    assert outer_axis("activation", [jax.nn.relu]).labels == ("jax._src.nn.functions:relu",)
    assert outer_axis("batch", [8, 16]).coordinate().tolist() == [8, 16]
    assert outer_axis("row_normalize", [True, False]).coordinate().tolist() == ["True", "False"]
    assert outer_axis("time", [4, 8.0]).folder(0) == "time=4"


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (
            {"surrogate": ["clip", "nope"]},
            r"grid axis 'surrogate' value 'nope': unknown surrogate 'nope'; allowed: .*ste",
        ),
        ({"surogate": ["clip"]}, r"unknown grid axis 'surogate'; allowed: .*schedule, seed, slope, source, steps"),
        ({"n": [8]}, r"unknown grid axis 'n'; allowed"),
        ({"optimizer": ["adam", optax.adam(1.0)]}, r"grid axis 'optimizer': .*aejax\.named"),
        ({"surrogate": ["clip", "clip"]}, r"grid axis 'surrogate' has duplicate values"),
        ({"surrogate": []}, r"grid axis 'surrogate' has no values"),
        ({"batch": [8, 0]}, r"grid axis 'batch' value 0: batch must be a positive integer"),
        ({"risk_eval": ["exact"], "source": ["gaussian", "bg"]}, r"grid values risk_eval='exact', source='bg' do not"),
        ({"time": [4.0], "steps": [10]}, r"'time' and 'steps' both"),
        ([{"seed": 0, "surrogate": "clip"}], r"grid axis 'surrogate' .*needs a product grid"),
    ],
)
def test_bad_static_axes_are_refused_before_anything_runs(grid, message):
    with pytest.raises(aejax.InputError, match=message):
        aejax.sweep(CONFIG, grid, progress=False)


def test_a_value_refused_alone_is_named_alone():
    population = dataclasses.replace(CONFIG, mode="population")
    with pytest.raises(aejax.InputError, match=r"grid axis 'source' value 'bg': mode 'population' needs a Gaussian"):
        aejax.sweep(population, {"source": ["gaussian", "bg"]}, progress=False)


FLAGS = ["--d", "8", "--time", "4", "--batch", "8", "--trace-points", "4"]
FLAGS += ["--rates", "0.5,1", "--seeds", "0,1", "--lr", "0.01", "--mc-samples", "64", "--quiet"]


@pytest.mark.integration  # the command line end to end; the axis itself is tested above, in-process
def test_cli_comma_list_and_toml_grid(combined, tmp_path, capsys):
    """`--surrogate clip,ste` and `[grid] surrogate = [...]` give the surrogate axis, each value its own
    sweep's numbers; the printed table has a surrogate column."""
    ds, _ = combined
    options = tmp_path / "options.toml"
    options.write_text("[sweep]\nmax_padding = 1.0\n")
    out = tmp_path / "flags"
    assert main(["sweep", *FLAGS, "--surrogate", "clip,ste", "--config", str(options), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if "theory" in line)
    assert "surrogate" in header and "clip" in table and "ste" in table
    flags = aejax.load_results(out)
    assert flags["surrogate"].values.tolist() == SURROGATES
    expected = ds["exact_risk"].squeeze(drop=True)  # one d (the command line keeps no axis of one d) and one lr
    np.testing.assert_array_equal(
        flags["exact_risk"].squeeze(drop=True).transpose(*expected.dims).values, expected.values
    )
    config = tmp_path / "sweep.toml"
    config.write_text(
        "[train]\nbatch = 8\ntrace_points = 4\ntime = 4\n"
        "[grid]\nseed = [0, 1]\nrate = [0.5, 1.0]\nlr = [0.01]\nd = [8]\nsurrogate = ['clip', 'ste']\n"
        "[sweep]\nmc_samples = 64\nmax_padding = 1.0\n"
    )
    assert main(["sweep", "--config", str(config), "--out", str(tmp_path / "toml"), "--quiet"]) == 0
    toml = aejax.load_results(tmp_path / "toml")["exact_risk"].squeeze(drop=True)
    np.testing.assert_array_equal(toml.transpose(*expected.dims).values, expected.values)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--surrogate", "clip,nope"], "grid axis 'surrogate' value 'nope'"),
        (["--mode", "online,bogus"], "invalid choice 'bogus'"),
        (["--batch", "8,x"], "comma-separated integers"),
    ],
)
def test_cli_bad_static_values_exit_2_with_one_line(argv, message, tmp_path, capsys):
    try:
        status = main(["sweep", "--d", "8", "--steps", "4", "--quiet", "--out", str(tmp_path), *argv])
    except SystemExit as stop:  # argparse's own refusal
        status = stop.code
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.count("\n") == 0 and message in err


def test_toml_grid_static_values_must_be_flat(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[grid]\nsurrogate = [['clip']]\n")
    assert main(["sweep", "--config", str(config), "--quiet", "--out", str(tmp_path)]) == 2
    assert "[grid] surrogate must be a value or a flat list" in capsys.readouterr().err
