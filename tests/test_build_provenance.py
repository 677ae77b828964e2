"""Runs reused from another build are named, not labelled with this process's build (aejax._build).

A chunk file records the build that computed it (packages, XLA_FLAGS, device); a resumed sweep that
reuses runs of another build warns and lists them in ``reused_builds``, with their stored values."""

import json
import warnings
from typing import Any

import jax
import numpy as np
import pytest
import xarray as xr

import aejax
from aejax import _build
from aejax._outer_axes import _merged_builds

CONFIG = aejax.TrainConfig(d=16, n=16, steps=20, batch=32, eval_every=1)  # test_results.py's: shared programs
GRID = {"seed": [0, 1], "rate": [0.875, 1.0], "lr": [0.01, 0.03]}
KW: dict[str, Any] = dict(mc_samples=1024, progress=False, devices=4, chunk=4)


def _rewrite_build(path, build):
    """The chunk file at ``path`` with its build replaced (``None``: removed, as before builds were recorded)."""
    with np.load(path) as z:
        fields = {k: z[k] for k in z.files if k != "build"}
    if build is not None:
        fields["build"] = np.asarray(build)
    with open(path, "wb") as f:
        np.savez(f, **fields)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("provenance")
    return out, aejax.sweep(CONFIG, GRID, out=out, **KW)


def test_runs_reused_from_other_builds_are_named_with_their_stored_values(swept, tmp_path):
    out, plain = swept
    copy = tmp_path / "copy"
    (copy / "chunks").mkdir(parents=True)
    (copy / "manifest.json").write_bytes((out / "manifest.json").read_bytes())
    chunks = sorted((out / "chunks").glob("chunk-*.npz"))
    assert len(chunks) == 2
    for chunk in chunks:
        (copy / "chunks" / chunk.name).write_bytes(chunk.read_bytes())
    first, second = sorted((copy / "chunks").glob("chunk-*.npz"))
    with np.load(first) as z:
        this_build = json.loads(str(z["build"]))
    assert this_build["jax"] == jax.__version__ and this_build["device"] == "cpu: cpu"
    older = {**this_build, "jax": "0.0.1", "XLA_FLAGS": "--xla_backend_optimization_level=3"}
    _rewrite_build(first, json.dumps(older))
    _rewrite_build(second, None)

    with pytest.warns(UserWarning, match=r"8 of the 8 runs reused from .* were computed by another build") as caught:
        resumed = aejax.sweep(CONFIG, GRID, out=copy, resume=True, **KW)
    message = str(caught[0].message)
    assert f"jax: 0.0.1 -> {this_build['jax']}" in message and "unrecorded" in message
    assert "XLA_FLAGS: --xla_backend_optimization_level=3 -> " in message
    reused = json.loads(resumed.attrs["reused_builds"])
    assert sorted(reused, key=lambda e: str(e["build"])) == sorted(
        [{"build": older, "runs": 4}, {"build": "unrecorded", "runs": 4}], key=lambda e: str(e["build"])
    )
    assert resumed.attrs["reused_runs"] == 8
    for name in plain.data_vars:  # the stored values, not recomputed
        xr.testing.assert_identical(resumed[name], plain[name])


def test_a_resume_under_the_same_build_names_no_other_build(swept):
    out, plain = swept
    assert json.loads(plain.attrs["reused_builds"]) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all
        resumed = aejax.sweep(CONFIG, GRID, out=out, resume=True, **KW)
    assert json.loads(resumed.attrs["reused_builds"]) == [] and resumed.attrs["reused_runs"] == 8


def test_the_device_count_is_not_part_of_the_build_and_differences_are_named():
    environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8  --xla_backend_optimization_level=1"}
    assert _build.xla_flags(environ) == "--xla_backend_optimization_level=1"
    assert _build.xla_flags({}) == ""
    a = json.dumps({"jax": "0.10.2", "device": "cpu: cpu", "XLA_FLAGS": ""})
    b = json.dumps({"jax": "0.12.1", "device": "cpu: cpu", "XLA_FLAGS": "", "optax": "0.2.5"})
    assert _build.differences(a, b) == ["jax: 0.10.2 -> 0.12.1", "optax: missing -> 0.2.5"]
    assert _build.differences(a, a) == [] and _build.differences(_build.UNRECORDED, _build.UNRECORDED) == []


def test_outer_axis_parts_merge_their_reused_builds():
    older = {"jax": "0.0.1"}
    unrecorded = {"build": "unrecorded", "runs": 1}
    parts = [
        xr.Dataset(attrs={"reused_builds": json.dumps([{"build": older, "runs": 3}])}),
        xr.Dataset(attrs={"reused_builds": json.dumps([{"build": older, "runs": 2}, unrecorded])}),
        xr.Dataset(attrs={"reused_builds": "[]"}),
    ]
    assert _merged_builds(parts) == [{"build": older, "runs": 5}, {"build": "unrecorded", "runs": 1}]
