"""Sweeps on a cluster (issue 25): shards of a sweep written into one directory by independent
processes and assembled by a final plain sweep, bit for bit a one-process sweep; ``--shard auto``
from simulated SLURM job-array variables; the shard store's locks; ``--cluster auto`` through
``jax.distributed.initialize()`` with no arguments."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

import aejax
from aejax import cli, shards
from aejax.results import RunStore
from aejax.shards import Shard, ShardStore, check_shard, owned_runs, parse_shard

ROOT = Path(__file__).resolve().parents[1]
CONFIG = aejax.TrainConfig(d=8, n=8, steps=20, batch=16)
# rates 0.5 and 1 (4 and 8 units) form two buckets of 6 runs; seeds in grid order are innermost
GRID = {"seed": [0, 1, 2], "rate": [0.5, 1.0], "lr": [0.01, 0.03]}
KW: dict[str, Any] = dict(mc_samples=64, progress=False)
COMPARED = ("risk", "risk_se", "exact_risk", "identity_likeness", "loss_trace", "risk_trace", "status")
CLI_FLAGS = ["--d", "8", "--steps", "20", "--batch", "16", "--mc-samples", "64", "--rates", "0.5,1", "--seeds"]
CLI_FLAGS += ["0,1,2", "--quiet"]


@pytest.fixture(scope="module")
def one_process():
    """The reference: the whole grid in one in-memory sweep."""
    return aejax.sweep(CONFIG, GRID, **KW)


def assert_same_bits(actual, expected):
    for name in COMPARED:
        np.testing.assert_array_equal(actual[name].values, expected[name].values, err_msg=name)


def bucket_positions():
    """Each run's position within its bucket, computed from the grid by hand: the product's runs in
    order (seed slowest, lr fastest), grouped by rate (the bucket)."""
    runs = [(s, r, lr) for s in GRID["seed"] for r in GRID["rate"] for lr in GRID["lr"]]
    position = {}
    for rate in GRID["rate"]:
        members = [i for i, run in enumerate(runs) if run[1] == rate]
        position |= {runs[i]: p for p, i in enumerate(members)}
    return runs, position


def test_two_shards_then_a_plain_sweep_equal_one_process(one_process, tmp_path):
    """Shards 0/2 and 1/2 each compute their runs (positions p mod 2 in each bucket) and assemble
    nothing; a plain sweep into the same directory computes nothing and equals the one-process sweep."""
    reports = [aejax.sweep_shard(CONFIG, GRID, (k, 2), out=tmp_path, **KW) for k in (0, 1)]
    assert not (tmp_path / "results.nc").exists()
    assert [(r.owned, r.computed, r.reused) for r in reports] == [(6, 6, 0), (6, 6, 0)]
    runs, position = bucket_positions()
    by_shard = [set(), set()]
    for file in tmp_path.glob("chunks/chunk-*.npz"):
        with np.load(file) as z:
            ids = z["run_ids"].tolist()
        shard = {position[runs[i]] % 2 for i in ids}
        assert len(shard) == 1, f"{file.name} mixes the shards' runs {ids}"
        by_shard[shard.pop()] |= set(ids)
    assert by_shard[0] | by_shard[1] == set(range(12)) and not by_shard[0] & by_shard[1]
    assembled = aejax.sweep(CONFIG, GRID, out=tmp_path, **KW)
    assert (assembled.attrs["reused_runs"], assembled.attrs["chunks"], assembled.attrs["compilations"]) == (12, 0, 0)
    assert_same_bits(assembled, one_process)
    assert_same_bits(aejax.load_results(tmp_path), one_process)


def test_a_shard_rerun_reuses_and_a_missing_shard_is_computed_by_the_final_sweep(one_process, tmp_path):
    """Shard 1/3 run twice: the second time it reuses its runs. With shards 0 and 2 never run, the
    final sweep computes their runs itself and still equals the one-process sweep."""
    first = aejax.sweep_shard(CONFIG, GRID, "1/3", out=tmp_path, **KW)
    again = aejax.sweep_shard(CONFIG, GRID, Shard(1, 3), out=tmp_path, **KW)
    assert (first.owned, first.computed, again.computed, again.reused) == (4, 4, 0, 4)  # positions 1, 4 per bucket
    assembled = aejax.sweep(CONFIG, GRID, out=tmp_path, **KW)
    assert assembled.attrs["reused_runs"] == 4
    assert_same_bits(assembled, one_process)


def test_shards_of_another_sweep_are_refused(tmp_path):
    """A shard of a different grid into the same directory is refused by the manifest check."""
    aejax.sweep_shard(CONFIG, GRID, (0, 2), out=tmp_path, **KW)
    with pytest.raises(aejax.InputError, match="holds a different sweep"):
        aejax.sweep_shard(CONFIG, {**GRID, "seed": [5]}, (1, 2), out=tmp_path, **KW)


def test_owned_runs_take_every_nth_position():
    assert owned_runs(range(7), Shard(2, 3)) == [2, 5]
    assert owned_runs([4, 9], Shard(3, 4)) == []
    shares = [owned_runs(range(10), Shard(k, 3)) for k in range(3)]
    assert sorted(run for share in shares for run in share) == list(range(10))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0/1", Shard(0, 1)), ("3/4", Shard(3, 4)), (" 1/2 ", Shard(1, 2))],
)
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2/2", r"shard index K must be in \[0, N\) = \[0, 2\), got shard 2/2"),
        ("-1/2", r"shard index K must be in \[0, N\)"),
        ("0/0", "shard count N must be at least 1, got shard 0/0"),
        ("1", "shard must be K/N"),
        ("a/b", "shard must be K/N"),
        ("1/2/3", "shard must be K/N"),
        ("", "shard must be K/N"),
    ],
)
def test_bad_shards_are_refused(text, message):
    with pytest.raises(aejax.InputError, match=message):
        parse_shard(text)


@pytest.mark.parametrize("shard", [(1.5, 2), ("0", 2), (True, 2), (0, 1, 2), 3])
def test_bad_shard_types_are_refused(shard):
    with pytest.raises(aejax.InputTypeError, match="shard"):
        check_shard(shard)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard(3, 4)),  # --array=0-3
        ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "10", "SLURM_ARRAY_TASK_MIN": "1"}, Shard(0, 10)),
        (
            {
                "SLURM_ARRAY_TASK_ID": "6",
                "SLURM_ARRAY_TASK_COUNT": "5",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_STEP": "2",
            },
            Shard(3, 5),
        ),  # --array=0-8:2: tasks 0, 2, 4, 6, 8
    ],
)
def test_shard_auto_reads_the_slurm_job_array(environ, expected, monkeypatch):
    assert parse_shard("auto", environ) == expected
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert parse_shard("auto") == expected


def test_shard_auto_outside_a_job_array_is_refused(monkeypatch):
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(aejax.InputError, match="SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set"):
        parse_shard("auto")
    with pytest.raises(aejax.InputError, match=r"SLURM_ARRAY_TASK_ID must be an integer, got 'x'"):
        parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"})
    with pytest.raises(aejax.InputError, match=r"shard index K must be in \[0, N\)"):
        parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "2"})


def test_shard_stores_share_the_directory_but_not_with_a_plain_sweep(tmp_path):
    """Two shards hold the directory at once; the same shard twice is refused; a plain sweep's store is
    refused while a shard runs, and a shard while a plain sweep runs; a shard leaves another writer's
    temporary file alone, which the next plain store removes."""
    manifest = {"config": "x"}
    tmp = tmp_path / "chunks" / ".chunk-x.npz.123.tmp"
    with ShardStore(tmp_path, manifest, Shard(0, 2)), ShardStore(tmp_path, manifest, Shard(1, 2)):
        with pytest.raises(aejax.InputError, match="in use by another sweep"):
            ShardStore(tmp_path, manifest, Shard(1, 2))
        with pytest.raises(aejax.InputError, match="in use by another sweep"):
            RunStore(tmp_path, manifest)
        tmp.write_bytes(b"half a chunk")
        with ShardStore(tmp_path, manifest, Shard(0, 3)):
            assert tmp.exists()
    with RunStore(tmp_path, manifest):
        assert not tmp.exists()
        with pytest.raises(aejax.InputError, match="in use by a sweep that is not a shard"):
            ShardStore(tmp_path, manifest, Shard(0, 2))
    with ShardStore(tmp_path, manifest, Shard(1, 2)):  # every lock was released
        pass


def test_sweep_shard_refuses_unknown_options(tmp_path):
    with pytest.raises(aejax.InputTypeError, match=r"unknown options \['chunks'\]"):
        aejax.sweep_shard(CONFIG, GRID, (0, 2), out=tmp_path, chunks=4)


def run_cli(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def no_cache(monkeypatch):
    """The command without JAX's persistent compilation cache (it would write to ~/.cache)."""
    monkeypatch.setattr(cli, "use_compilation_cache", lambda: None)


@pytest.mark.parametrize("shard", ["2/2", "0/0", "x", "auto"])
def test_cli_refuses_a_bad_shard_in_one_line(shard, capsys, monkeypatch, no_cache, tmp_path):
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    status, _, err = run_cli(["sweep", *CLI_FLAGS, "--out", str(tmp_path), "--shard", shard], capsys)
    assert status == 2 and err.count("\n") == 1 and err.startswith("aejax: error: shard"), err
    assert not list(tmp_path.iterdir())


def test_initialize_cluster_calls_jax_without_arguments(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append((a, k)))
    shards.initialize_cluster()
    assert calls == [((), {})]


def test_cluster_auto_without_a_cluster_is_explained(monkeypatch, capsys, no_cache, tmp_path):
    """JAX's own error when it detects no cluster (what jax.distributed.initialize() raises then)
    becomes one line naming the environments and the explicit flags; nothing runs."""

    def no_cluster(*args, **kwargs):
        raise ValueError("coordinator_address should be defined.")

    monkeypatch.setattr(jax.distributed, "initialize", no_cluster)
    status, _, err = run_cli(["sweep", *CLI_FLAGS, "--out", str(tmp_path), "--cluster", "auto"], capsys)
    assert status == 2 and err.count("\n") == 1, err
    for part in ("no cluster environment", "SLURM", "Open MPI", "Kubernetes", "Cloud TPU", "--coordinator"):
        assert part in err
    assert not (tmp_path / "chunks").exists()


def test_cli_cluster_auto_initializes_before_the_sweep(monkeypatch, capsys, no_cache, tmp_path):
    """``--cluster auto`` calls jax.distributed.initialize() with no arguments before the sweep starts
    (the fake initialize records the call, then stops the command as Ctrl-C would: nothing was written)."""
    calls = []

    def initialize(*args, **kwargs):
        calls.append((args, kwargs))
        raise KeyboardInterrupt

    monkeypatch.setattr(jax.distributed, "initialize", initialize)
    status, _, err = run_cli(["sweep", *CLI_FLAGS, "--out", str(tmp_path), "--cluster", "auto"], capsys)
    assert (status, calls) == (130, [((), {})]), err
    assert not list(tmp_path.iterdir())


def test_cli_cluster_auto_and_explicit_flags_are_exclusive(capsys, no_cache, tmp_path):
    argv = ["sweep", *CLI_FLAGS, "--out", str(tmp_path), "--cluster", "auto", "--coordinator", "localhost:1234"]
    argv += ["--num-processes", "2", "--process-id", "0"]
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and "either --cluster auto or --coordinator" in err


def _launch_shard(out: Path, shard: str, env_extra: dict[str, str]):
    env = {**os.environ, **env_extra, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # the child sets its own device count; it keeps the rest, such as the tests' backend optimization level
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    env["AEJAX_CACHE_DIR"] = str(out.parent / "cache")
    argv = [sys.executable, "-m", "aejax", "sweep", *CLI_FLAGS, "--out", str(out), "--shard", shard]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_shard_processes_then_the_plain_command_equal_one_process(capsys, no_cache, tmp_path):
    """Two ``aejax sweep`` processes at once into one directory, one ``--shard 0/2``, the other
    ``--shard auto`` in a simulated SLURM array task (ID 1 of 2); then the same command without
    ``--shard`` assembles results.nc, equal bit for bit to the command run in one process."""
    out = tmp_path / "shared"
    processes = [
        _launch_shard(out, "0/2", {}),
        _launch_shard(out, "auto", {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}),
    ]
    deadline = time.monotonic() + 600
    outputs = []
    try:
        for p in processes:
            outputs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, text in zip(processes, outputs, strict=True):
        assert p.returncode == 0, text[-3000:]
    # 3 seeds x 2 rates, buckets of 3 runs: shard 0 takes positions 0 and 2 of each, shard 1 position 1
    assert "shard 0/2: 4 runs (4 computed" in outputs[0] and "shard 1/2: 2 runs (2 computed" in outputs[1]
    assert not (out / "results.nc").exists()
    assert run_cli(["sweep", *CLI_FLAGS, "--out", str(out)], capsys)[0] == 0
    assert run_cli(["sweep", *CLI_FLAGS, "--out", str(tmp_path / "one")], capsys)[0] == 0
    assembled, one = aejax.load_results(out), aejax.load_results(tmp_path / "one")
    assert (assembled.attrs["reused_runs"], one.attrs["reused_runs"]) == (6, 0)
    assert json.loads(assembled.attrs["device"])["processes"] == 1
    assert_same_bits(assembled, one)
