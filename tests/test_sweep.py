"""The sweep engine against independent references: runs trained one at a time, other device
counts, other grids and chunkings, two processes joined by jax.distributed, and kill -9."""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import aejax
from aejax import programs
from aejax.grid import units
from aejax.model import Architecture, identity_likeness, inverse_participation_ratio, rate_mask
from aejax.record import EVAL_FOLD
from aejax.results import RunStore
from aejax.sources import Gaussian

ROOT = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).parent / "helpers" / "run_sweep.py"
SUBPROCESS_TIMEOUT = 300

# tests/test_results.py's config, grid and mc_samples: ``base`` is its sweep's program, compiled once
# for both files through the session's compilation cache
CONFIG = aejax.TrainConfig(d=16, n=16, steps=20, batch=32, eval_every=1)
GRID = {"seed": [0, 1], "rate": [0.875, 1.0], "lr": [0.01, 0.03]}  # 14 and 16 units: one bucket of 16
MC = 1024
KW = dict(mc_samples=MC, progress=False)
COMPARED = (
    "risk",
    "risk_se",
    "exact_risk",
    "identity_likeness",
    "inverse_participation_ratio",
    "loss_trace",
    "risk_trace",
    "identity_likeness_trace",
)


@pytest.fixture(scope="module")
def base():
    """GRID on the 4 fake CPU devices, in one chunk."""
    assert len(jax.devices()) == 4, "conftest.py should give 4 fake CPU devices"
    return aejax.sweep(CONFIG, GRID, devices=4, **KW)


@pytest.fixture(scope="module")
def chunked():
    """GRID on 4 devices in two chunks of 4 runs."""
    return aejax.sweep(CONFIG, GRID, devices=4, chunk=4, **KW)


def assert_same_runs(actual, expected, rtol=0.0):
    """Every compared variable of ``actual`` equals ``expected`` at ``expected``'s coordinates."""
    for name in COMPARED:
        got = actual[name].sel({dim: expected[dim] for dim in expected[name].dims if dim != "step"})
        if rtol:
            np.testing.assert_allclose(got.values, expected[name].values, rtol=rtol, err_msg=name)
        else:
            np.testing.assert_array_equal(got.values, expected[name].values, err_msg=name)


def test_sweep_equals_runs_trained_one_at_a_time(base):
    """Reference: make_train at the run's exact n (no vmap, mask, padding or sharding), then the final
    risks with an architecture built by hand (not through the run's Model) and the sweep's documented
    Monte Carlo key fold_in(run key, EVAL_FOLD)."""

    def reference(config, seed, hparams):
        key = aejax.run_key(0, seed)
        params, trace = aejax.make_train(config)(key, hparams)
        arch = Architecture("sign", "clip", row_normalize=True, mask=rate_mask(hparams["rate"], config.d, config.n))
        source = Gaussian(config.d)
        risk, risk_se = aejax.mc_risk(params, source, jax.random.fold_in(key, EVAL_FOLD), MC, arch=arch)
        exact = aejax.exact_risk(params, source, arch=arch)
        return {
            "risk": risk,
            "risk_se": risk_se,
            "exact_risk": exact,
            "loss_trace": trace["loss"],
            "risk_trace": trace["risk"],
            "identity_likeness": identity_likeness(params.B),
            "inverse_participation_ratio": inverse_participation_ratio(params.B),
            "identity_likeness_trace": trace["identity_likeness"],
        }

    reference = jax.jit(reference, static_argnums=0)
    for seed in GRID["seed"]:
        for rate in GRID["rate"]:
            for lr in GRID["lr"]:
                config = dataclasses.replace(CONFIG, n=units(rate, CONFIG.d))
                expected = reference(config, seed, {"rate": rate, "lr": lr})
                run = base.sel(seed=seed, rate=rate, lr=lr)
                for name in COMPARED:
                    np.testing.assert_allclose(
                        run[name].values,
                        expected[name],
                        rtol=1e-6,
                        atol=1e-6,
                        err_msg=f"{name} at seed={seed} rate={rate} lr={lr}",
                    )
    assert set(base["status"].values.ravel()) == {"ok"}


@pytest.mark.parametrize("devices", [1, 2])
def test_any_device_count_gives_the_same_bits(base, devices):
    """The same sweep on 1 and 2 devices equals the 4-device ``base`` bit for bit: every device runs
    the same single-device block program (issue 17; before, 1 device differed by up to 5e-5)."""
    other = aejax.sweep(CONFIG, GRID, devices=devices, **KW)
    assert (json.loads(other.attrs["device"])["devices"], json.loads(base.attrs["device"])["devices"]) == (devices, 4)
    assert_same_runs(other, base)


def test_blocks_spread_over_devices_give_the_same_bits(base):
    """Two runs per device: 4 blocks in two chunks, one block on each of 2 devices or two blocks at once
    (on threads) on 1 device, equal bit for bit; within 1e-5 of ``base``, whose 4-run blocks are
    another program. (2 devices prove what 4 would, at half the compilations: a block program is
    compiled once per device it runs on.)"""
    spread = aejax.sweep(CONFIG, GRID, devices=2, runs_per_device=2, chunk=4, **KW)
    single = aejax.sweep(CONFIG, GRID, devices=1, runs_per_device=2, chunk=4, **KW)
    assert (spread.attrs["chunks"], single.attrs["chunks"]) == (2, 2)
    assert json.loads(spread.attrs["runs_per_device"]) == [2]
    assert json.loads(base.attrs["runs_per_device"]) == [4]  # a CPU bucket of 8 runs: two blocks
    assert_same_runs(single, spread)
    assert_same_runs(spread, base, rtol=1e-5)


def test_result_unchanged_when_seeds_and_rates_are_added(base):
    """Adding seed 2 and rate 1.125 (18 units) moves the 16-unit runs into a padded 18-unit bucket and
    the 14-unit runs into their own; their results stay within 1e-5 relative of ``base`` (not bitwise:
    the compiled shapes differ, so XLA may order float reductions differently)."""
    grown = aejax.sweep(CONFIG, {"seed": [0, 1, 2], "rate": [0.875, 1.0, 1.125], "lr": GRID["lr"]}, devices=1, **KW)
    assert json.loads(grown.attrs["buckets"]) == {"14": 14, "16": 18, "18": 18}
    assert grown.attrs["padding_overhead"] == pytest.approx((14 + 18 + 18) / (14 + 16 + 18) - 1)
    assert_same_runs(grown, base, rtol=1e-5)


def test_result_unchanged_when_chunk_size_changes(base, chunked):
    """Chunks of 4 instead of 8: bit for bit (a chunk is cut into blocks of the same width, padded)."""
    assert (base.attrs["chunks"], chunked.attrs["chunks"]) == (1, 2)
    assert_same_runs(chunked, base)


def test_changing_swept_values_does_not_recompile(monkeypatch, fresh_compilation_cache):
    """Counts traces of the run function: one for a sweep of two chunks, none for a second sweep with
    other seeds, rates (same bucket) and learning rates. (An empty cache: a warm one holds the program
    store's copy, and the first sweep would trace nothing.)"""
    traces = []
    make_run = programs.make_run

    def counting_make_run(*args):
        run = make_run(*args)

        def traced_run(key_data, hparams):
            traces.append(1)
            return run(key_data, hparams)

        return traced_run

    monkeypatch.setattr(programs, "make_run", counting_make_run)
    config = dataclasses.replace(CONFIG, batch=24)  # a structure no other test compiles
    first = aejax.sweep(config, {"seed": [0, 1, 2, 3], "rate": [0.875, 1.0], "lr": [0.01]}, chunk=4, **KW)
    assert (len(traces), first.attrs["compilations"], first.attrs["chunks"]) == (1, 1, 2)
    second = aejax.sweep(config, {"seed": [5, 6], "rate": [0.9375, 1.0], "lr": [0.02, 0.05]}, chunk=4, **KW)
    assert (len(traces), second.attrs["compilations"], second.attrs["chunks"]) == (1, 0, 2)


def test_diverged_run_is_marked_and_others_in_its_chunk_finish(base):
    """lr = 1e30 overflows; the lr = 0.01 runs sharing its chunk are bit-identical to ``base``."""
    ds = aejax.sweep(CONFIG, {**GRID, "lr": [0.01, 1e30]}, devices=4, **KW)
    assert ds.attrs["chunks"] == 1
    assert set(ds["status"].sel(lr=1e30).values.ravel()) == {"overflow"}  # its loss trace reaches inf
    assert not np.isfinite(ds["risk"].sel(lr=1e30).values).any()
    assert set(ds["status"].sel(lr=0.01).values.ravel()) == {"ok"}
    assert_same_runs(ds.sel(lr=[0.01]), base.sel(lr=[0.01]))


def test_memory_budget_too_small_is_refused_before_running(tmp_path):
    """A 1 kB budget cannot hold one run per device: ValueError, and no chunk was run or written.
    (tests/test_tau_labels.py's one-run sweep: its one-run program is compiled once for both files.)"""
    config = aejax.TrainConfig(d=8, n=8, steps=4)
    with pytest.raises(ValueError, match=r"one run per device needs .* [KMG]?i?B per device .* over the memory budget"):
        aejax.sweep(config, {"seed": [0]}, out=tmp_path, memory_budget=1000, mc_samples=64, progress=False, devices=1)
    assert not list(tmp_path.glob("chunks/*"))


def test_resume_after_interruption_runs_the_same_program_as_an_uninterrupted_sweep(monkeypatch, tmp_path):
    """With at most 2 runs per device on 2 devices, 12 runs take three chunks of 4 (the 2-run block
    program of ``test_blocks_spread_over_devices_give_the_same_bits``). A crash after the first chunk,
    then a rerun: bit-identical to the uninterrupted sweep, first chunk reused."""
    monkeypatch.setattr(programs, "MAX_RUNS_PER_DEVICE", 2)
    grid = {**GRID, "seed": [0, 1, 2]}
    uninterrupted = aejax.sweep(CONFIG, grid, devices=2, **KW)
    assert uninterrupted.attrs["chunks"] == 3
    save = RunStore.save

    def save_then_crash(self, run_ids, records):
        save(self, run_ids, records)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        aejax.sweep(CONFIG, grid, devices=2, out=tmp_path, **KW)
    monkeypatch.setattr(RunStore, "save", save)
    resumed = aejax.sweep(CONFIG, grid, devices=2, out=tmp_path, resume=True, **KW)
    assert (resumed.attrs["reused_runs"], resumed.attrs["chunks"]) == (4, 2)
    assert_same_runs(resumed, uninterrupted)


def _spec(tmp_path, **fields):
    spec = {"config": dataclasses.asdict(CONFIG), "grid": GRID, **fields}
    path = tmp_path / f"spec-{len(list(tmp_path.glob('spec-*')))}.json"
    path.write_text(json.dumps(spec))
    return path


def _launch(spec_path, process_id=0):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # the child sets its own device count; it keeps the rest, such as the tests' backend optimization level
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(spec_path), str(process_id)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(processes):
    """Wait for every process (SUBPROCESS_TIMEOUT in all); return their outputs, killing all on a timeout."""
    outputs = []
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    try:
        for p in processes:
            outputs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(processes, outputs, strict=True):
        assert p.returncode == 0, out[-4000:]
    return outputs


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_two_processes_equal_one_process(base, tmp_path):
    """Two processes with 2 fake CPU devices each, joined by jax.distributed on loopback: both return
    ``base`` bit for bit (same 4-device program), process 0 writes it, and a rerun reuses every run."""
    out = tmp_path / "out"
    for attempt in ("first", "rerun"):
        spec = _spec(
            tmp_path,
            sweep={"out": str(out), **KW},
            devices=2,
            num_processes=2,
            coordinator=f"127.0.0.1:{_free_port()}",
            result=str(tmp_path / f"{attempt}-{{process}}.nc"),
        )
        _finish([_launch(spec, i) for i in range(2)])
        for ds in [aejax.load_results(tmp_path / f"{attempt}-{i}.nc") for i in range(2)] + [aejax.load_results(out)]:
            assert json.loads(ds.attrs["device"])["processes"] == 2
            assert ds.attrs["reused_runs"] == (0 if attempt == "first" else 8)
            assert_same_runs(ds, base)


@pytest.mark.integration
def test_kill_9_then_resume_equals_uninterrupted_sweep(chunked, tmp_path):
    """A subprocess sweep in chunks of 4 is killed with SIGKILL after its first chunk file; rerunning
    it computes only the second chunk and gives ``chunked`` (same chunking) bit for bit."""
    out = tmp_path / "out"
    spec = _spec(tmp_path, sweep={"out": str(out), "chunk": 4, "devices": 4, **KW}, devices=4, pause_after_chunk=600)
    process = _launch(spec)
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while not list(out.glob("chunks/chunk-*.npz")):
            assert process.poll() is None, process.communicate()[0][-4000:]
            assert time.monotonic() < deadline, "no chunk file appeared"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert process.returncode == -signal.SIGKILL
    assert len(list(out.glob("chunks/chunk-*.npz"))) == 1 and not (out / "results.nc").exists()
    resumed = aejax.sweep(CONFIG, GRID, out=out, resume=True, chunk=4, devices=4, **KW)
    assert (resumed.attrs["reused_runs"], resumed.attrs["chunks"]) == (4, 1)
    assert_same_runs(resumed, chunked)
    assert_same_runs(aejax.load_results(out), chunked)
