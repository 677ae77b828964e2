"""Sweep results on disk: netCDF round trip, damaged files, and refusing the wrong output directory."""

import json
import os
import stat

import jax
import numpy as np
import pytest
import xarray as xr

import aejax

CONFIG = aejax.TrainConfig(d=16, n=16, steps=20, batch=32)
GRID = {"seed": [0, 1], "rate": [0.875, 1.0], "lr": [0.01, 0.03]}
KW = dict(mc_samples=1024, progress=False, devices=4, chunk=4)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """(out directory, returned Dataset) of GRID in two chunks of 4 runs."""
    out = tmp_path_factory.mktemp("sweep")
    return out, aejax.sweep(CONFIG, GRID, out=out, **KW)


def test_results_file_round_trips_values_dims_and_attrs(swept):
    """load_results (of the directory or the file) gives back the returned Dataset exactly, with the
    config, package versions and device in its attributes; the file has ordinary permissions."""
    out, ds = swept
    for loaded in (aejax.load_results(out), aejax.load_results(out / "results.nc")):
        xr.testing.assert_identical(loaded, ds)
    assert ds["risk"].dims == ("seed", "rate", "lr")
    assert ds["loss_trace"].dims == ("seed", "rate", "lr", "step")
    assert list(ds["step"].values) == list(range(1, 21))
    attrs = aejax.load_results(out).attrs
    assert json.loads(attrs["config"])["d"] == 16 and json.loads(attrs["config"])["steps"] == 20
    assert json.loads(attrs["versions"])["jax"] == jax.__version__
    assert json.loads(attrs["device"])["platform"] == "cpu" and json.loads(attrs["device"])["devices"] == 4
    plain = out / "plain"
    plain.write_text("")  # the permissions of a file created the ordinary way (umask applied)
    assert stat.S_IMODE(os.stat(out / "results.nc").st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
    plain.unlink()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_results_file_is_a_value_error(swept, tmp_path, damage):
    out, _ = swept
    data = (out / "results.nc").read_bytes()
    path = tmp_path / "results.nc"
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not netCDF" * 100)
    with pytest.raises(ValueError, match="truncated or not a netCDF file"):
        aejax.load_results(path)


def test_missing_results_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        aejax.load_results(tmp_path)


def test_unreadable_chunk_is_warned_about_and_recomputed(swept, tmp_path):
    """A chunk file cut short is reported and its 4 runs recomputed; the other chunk is reused; the
    result equals the undamaged sweep bit for bit (same chunking)."""
    _, ds = swept
    out = tmp_path / "out"
    aejax.sweep(CONFIG, GRID, out=out, **KW)
    damaged = sorted(out.glob("chunks/chunk-*.npz"))[1]
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable chunk file .* will be recomputed"):
        again = aejax.sweep(CONFIG, GRID, out=out, **KW)
    assert (again.attrs["reused_runs"], again.attrs["chunks"]) == (4, 1)
    for name in ("risk", "risk_se", "exact_risk", "loss_trace", "risk_trace"):
        np.testing.assert_array_equal(again[name].values, ds[name].values, err_msg=name)


@pytest.mark.parametrize("change, differs", [
    (dict(grid={**GRID, "lr": [0.01, 0.05]}), "runs"),
    (dict(config=aejax.TrainConfig(d=16, n=16, steps=40, batch=32)), "config"),
    (dict(seed=1), "seed"),
])
def test_different_sweep_in_the_same_out_is_refused(swept, change, differs):
    """Another grid, config or base seed aimed at a finished sweep's directory: ValueError naming what differs."""
    out, _ = swept
    args = {"config": CONFIG, "grid": GRID, **change}
    with pytest.raises(ValueError, match=f"holds a different sweep \\(differs in: {differs}\\)"):
        aejax.sweep(args.pop("config"), args.pop("grid"), out=out, **args, **KW)


def test_unreadable_manifest_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read .*manifest.json"):
        aejax.sweep(CONFIG, GRID, out=tmp_path, **KW)


def test_resume_with_nothing_to_resume_is_refused(tmp_path):
    with pytest.raises(ValueError, match="resume=True but out=.* holds no sweep to resume"):
        aejax.sweep(CONFIG, GRID, out=tmp_path / "empty", resume=True, **KW)
