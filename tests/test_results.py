"""Sweep results on disk: netCDF round trip, damaged files, and refusing the wrong output directory."""

import json
import os
import stat

import jax
import numpy as np
import pytest
import xarray as xr

import aejax

CONFIG = aejax.TrainConfig(d=16, n=16, steps=20, batch=32, eval_every=1)
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
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "host_platform_device_count" not in f]
    assert json.loads(attrs["versions"])["XLA_FLAGS"] == " ".join(flags)  # flags change the bits; device count doesn't
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


@pytest.mark.parametrize(
    "change, differs",
    [
        (dict(grid={**GRID, "lr": [0.01, 0.05]}), "runs"),
        (dict(config=aejax.TrainConfig(d=16, n=16, steps=40, batch=32)), "config"),
        (dict(seed=1), "seed"),
    ],
)
def test_different_sweep_in_the_same_out_is_refused(swept, change, differs):
    """Another grid, config or base seed aimed at a finished sweep's directory: ValueError naming what differs."""
    out, _ = swept
    args = {"config": CONFIG, "grid": GRID, **change}
    with pytest.raises(ValueError, match=f"holds a different sweep \\(differs in: {differs}\\)"):
        aejax.sweep(args.pop("config"), args.pop("grid"), out=out, **args, **KW)


def test_unreadable_manifest_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"cannot read .*manifest\.json"):
        aejax.sweep(CONFIG, GRID, out=tmp_path, **KW)


def test_resume_with_nothing_to_resume_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"resume=True but out=.* holds no sweep to resume"):
        aejax.sweep(CONFIG, GRID, out=tmp_path / "empty", resume=True, **KW)


def _fake_records(n_runs, n_steps):
    from aejax import record

    return {
        name: np.arange(n_runs * (n_steps if f.per_step else 1), dtype=np.float32).reshape(
            (n_runs, n_steps) if f.per_step else (n_runs,)
        )
        for f, name in zip(record.FIELDS, record.NAMES, strict=True)
    }


def test_deleted_manifest_does_not_let_another_sweep_reuse_the_chunks(swept, tmp_path):
    """Issue 17.1: sweep A, delete its manifest, sweep B (other lr) into the same directory. B must not
    load A's chunks by run index: they are ignored with a warning naming a file, and B's results
    equal B swept into a fresh directory."""
    _out, _ = swept
    target = tmp_path / "out"
    aejax.sweep(CONFIG, GRID, out=target, **KW)
    (target / "manifest.json").unlink()
    other = {**GRID, "lr": [0.02, 0.04]}
    with pytest.warns(UserWarning, match=r"ignoring chunk file .*chunk-.*\.npz: it belongs to another sweep"):
        b = aejax.sweep(CONFIG, other, out=target, **KW)
    assert b.attrs["reused_runs"] == 0
    fresh = aejax.sweep(CONFIG, other, out=tmp_path / "fresh", **KW)
    for name in ("risk", "loss_trace"):
        np.testing.assert_array_equal(b[name].values, fresh[name].values, err_msg=name)
        np.testing.assert_array_equal(aejax.load_results(target)[name].values, fresh[name].values, err_msg=name)


def test_chunk_of_another_sweep_is_ignored_by_name_and_by_content(tmp_path):
    """A chunk copied from another sweep's directory (its name carries the other fingerprint), or renamed
    to this sweep's fingerprint (the fingerprint stored inside differs): both ignored, naming the file."""
    from aejax.results import RunStore

    with RunStore(tmp_path / "a", {"sweep": "a"}) as a:
        a.save(np.arange(2), _fake_records(2, 3))
    chunk = next((tmp_path / "a" / "chunks").glob("chunk-*.npz"))
    with RunStore(tmp_path / "b", {"sweep": "b"}) as b:
        copied = b.chunks / chunk.name
        copied.write_bytes(chunk.read_bytes())
        with pytest.warns(UserWarning, match=f"ignoring chunk file {copied}: it belongs to another sweep"):
            assert b.load(3) == {}
        renamed = copied.rename(b.chunks / f"chunk-{b.fingerprint}-0000000-x.npz")
        with pytest.warns(UserWarning, match=f"ignoring chunk file {renamed}: its fingerprint .* is not this"):
            assert b.load(3) == {}


def test_chunk_with_the_wrong_trace_length_is_ignored_and_recomputed(swept, tmp_path):
    """Issue 17.11: a chunk that loads but does not fit the schema (traces of another length) is ignored
    with a warning naming the file and its field; the sweep finishes and equals the undamaged one."""
    from aejax import record

    _, ds = swept
    out = tmp_path / "out"
    aejax.sweep(CONFIG, GRID, out=out, **KW)
    damaged = sorted(out.glob("chunks/chunk-*.npz"))[1]
    with np.load(damaged) as z:
        content = {k: z[k] for k in z.files}
    for field in record.FIELDS:
        if field.per_step:
            content[field.name] = content[field.name][:, :5]
    with open(damaged, "wb") as f:
        np.savez(f, **content)
    with pytest.warns(
        UserWarning, match=f"ignoring chunk file {damaged}: field .* has shape \\(4, 5\\), expected \\(4, 20\\)"
    ):
        again = aejax.sweep(CONFIG, GRID, out=out, **KW)
    assert (again.attrs["reused_runs"], again.attrs["chunks"]) == (4, 1)
    for name in ("risk", "loss_trace"):
        np.testing.assert_array_equal(again[name].values, ds[name].values, err_msg=name)


def test_manifest_that_is_not_a_json_object_is_refused_by_name(tmp_path):
    """Issue 17.10: ``[]`` is valid JSON but no manifest: a clear InputError, not an AttributeError."""
    (tmp_path / "manifest.json").write_text("[]")
    with pytest.raises(aejax.InputError, match=r"manifest\.json is not a sweep manifest .*JSON list"):
        aejax.sweep(CONFIG, GRID, out=tmp_path, **KW)


def test_temporary_files_of_a_killed_writer_are_removed_at_the_next_start(tmp_path):
    """A kill during the final write leaves ``.results.nc.<random>.tmp``: the next store removes it
    (under the lock), and leaves every other file alone."""
    from aejax.results import RunStore

    (tmp_path / "chunks").mkdir()
    stale = [tmp_path / ".results.nc.abc123.tmp", tmp_path / "chunks" / ".chunk-1.npz.xyz.tmp"]
    kept = [tmp_path / "results.nc", tmp_path / "notes.tmp"]
    for path in stale + kept:
        path.write_text("x")
    with RunStore(tmp_path, {"sweep": 1}):
        pass
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_too_sparse_monte_carlo_estimate_is_marked_unreliable():
    """Issue 17.3: at p = 1e-6 the 256 Monte Carlo samples of d = 16 hold no non-zero coordinate, so the
    risk reads 0 ± 0 (the truth is about 1): status ``unreliable``, while p = 0.5 (2048 expected
    non-zero coordinates, above results.MIN_EXPECTED_NONZERO) stays ``ok``."""
    from aejax.results import MIN_EXPECTED_NONZERO

    config = aejax.TrainConfig(d=16, n=16, steps=20, batch=16, source="bg")
    ds = aejax.sweep(config, {"seed": [0, 1], "rate": [1.0], "p": [1e-6, 0.5]}, mc_samples=256, progress=False)
    assert 256 * 16 * 1e-6 < MIN_EXPECTED_NONZERO < 256 * 16 * 0.5
    assert float(ds["risk"].sel(p=1e-6).max()) == 0.0  # the estimate that cannot be trusted
    assert ds["status"].sel(p=1e-6).values.ravel().tolist() == ["unreliable"] * 2
    assert ds["status"].sel(p=0.5).values.ravel().tolist() == ["ok"] * 2
