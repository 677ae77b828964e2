"""Crash safety of a sweep's output directory: damaged chunk files at every byte, the lock against
concurrent writers, and a sweep killed with SIGKILL at random moments, then resumed."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import aejax
from aejax.record import NAMES as RECORD_FIELDS
from aejax.results import RunStore

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "tests" / "helpers" / "run_sweep.py"
CONFIG = dict(d=16, n=16, steps=20, batch=32)
GRID = {"seed": [0, 1, 2, 3], "rate": [0.875, 1.0], "lr": [0.01, 0.03]}  # 16 runs: 4 chunks of 4
KW = dict(mc_samples=1024, progress=False, devices=4, chunk=4)
COMPARED = ("risk", "risk_se", "exact_risk", "loss_trace", "risk_trace")
TIMEOUT = 300


def run_sweep(**kw):
    return aejax.sweep(aejax.TrainConfig(**CONFIG), GRID, **{**KW, **kw})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(out directory, Dataset) of the uninterrupted sweep."""
    out = tmp_path_factory.mktemp("reference")
    return out, run_sweep(out=out)


def assert_identical(actual, expected):
    for name in COMPARED:
        np.testing.assert_array_equal(actual[name].values, expected[name].values, err_msg=name)


# Every byte in the integration tier (a load per byte: thousands); every 29th byte in the fast tier.
EVERY_BYTE = [pytest.param(1, marks=pytest.mark.integration, id="every-byte"), pytest.param(29, id="every-29th-byte")]


@pytest.mark.parametrize("stride", EVERY_BYTE)
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_chunk_damaged_at_every_byte_is_reported_or_harmless(reference, tmp_path, damage, stride):
    """The first chunk file cut at every length, or with any one byte inverted: load() either warns
    and drops exactly that chunk's runs, or (a byte no reader uses, e.g. a zip timestamp) returns the
    original records: never wrong values (the zip CRC-32 catches every changed value byte)."""
    out, _ = reference
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / ".lock").unlink(missing_ok=True)
    with RunStore(copy, json.loads((out / "manifest.json").read_text())) as store:
        original = store.load()
        target = sorted(store.chunks.glob("chunk-*.npz"))[0]
        good = target.read_bytes()
        with np.load(target) as z:
            lost = set(z["run_ids"].tolist())
        assert len(original) == 16 and len(lost) == 4
        reported = 0
        offsets = range(0, len(good), stride)
        for offset in offsets:
            bad = (
                good[:offset]
                if damage == "truncate"
                else good[:offset] + bytes([good[offset] ^ 0xFF]) + good[offset + 1 :]
            )
            target.write_bytes(bad)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                done = store.load()
            if caught:
                reported += 1
                # unreadable, or read but failing the fingerprint/shape checks (a flipped header byte)
                assert str(caught[0].message).startswith("ignoring") and target.name in str(caught[0].message)
                assert set(done) == set(original) - lost
            else:
                assert set(done) == set(original)
                for run in lost:
                    for name in RECORD_FIELDS:
                        np.testing.assert_array_equal(done[run][name], original[run][name])
    # Every cut is reported. About 19% of single bytes are never read (local zip headers: version,
    # time, a CRC and sizes repeated in the central directory, zip64 extras), the rest are reported.
    assert reported == len(offsets) if damage == "truncate" else reported > 0.75 * len(offsets)


def test_second_writer_is_refused_and_the_lock_is_released_on_exit_and_error(reference, tmp_path, monkeypatch):
    """While a store holds out/.lock, a sweep into out raises ValueError naming the directory; the
    lock is released at the end of the sweep and when the sweep fails."""
    out = tmp_path / "out"
    manifest = json.loads((reference[0] / "manifest.json").read_text())
    in_use = re.escape(f"out='{out}' is in use by another sweep (process {os.getpid()} holds")
    with RunStore(out, manifest), pytest.raises(ValueError, match=in_use):
        run_sweep(out=out)
    save = RunStore.save

    def save_then_fail(self, run_ids, records):
        save(self, run_ids, records)
        raise RuntimeError("disk full")

    monkeypatch.setattr(RunStore, "save", save_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        run_sweep(out=out)
    monkeypatch.setattr(RunStore, "save", save)
    resumed = run_sweep(out=out, resume=True)  # the failed sweep left the lock free
    assert resumed.attrs["reused_runs"] == 4
    assert_identical(resumed, reference[1])
    with RunStore(out, manifest):  # and so did the finished one
        pass


def launch(spec_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # the child sets its own device count; it keeps the rest, such as the tests' backend optimization level
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(spec_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def chunk_files(out):
    return len(list(out.glob("chunks/chunk-*.npz")))


@pytest.mark.integration
def test_sigkill_at_random_moments_then_resume_is_bit_identical(reference, tmp_path):
    """Four subprocess sweeps into one out directory, each killed with SIGKILL at a random moment:
    during start-up and compilation, or a random delay after its k-th new chunk file (k random,
    delay up to the 0.3 s pause after a chunk, so also while the next chunk runs or is written).
    While the first is alive, a second writer is refused; each later launch starts despite the
    killed one's lock (the kernel dropped it). An in-process rerun then equals ``reference`` bit for
    bit, reusing every chunk that was finished."""
    _, expected = reference
    out = tmp_path / "out"
    spec = {"config": CONFIG, "grid": GRID, "sweep": {**KW, "out": str(out)}, "devices": 4, "pause_after_chunk": 0.3}
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    rng = random.Random(8)
    history = []
    for attempt in range(4):
        before = chunk_files(out)
        process = launch(spec_path)
        try:
            wanted = rng.choice([0, 1, 1, 2])  # new chunk files to wait for (0: kill during start-up)
            deadline = time.monotonic() + TIMEOUT
            if wanted == 0:
                time.sleep(rng.uniform(0.2, 3.0))
            while wanted and chunk_files(out) < min(before + wanted, 4) and process.poll() is None:
                assert time.monotonic() < deadline, "no chunk file appeared"
                time.sleep(0.02)
            if attempt == 0 and wanted and process.poll() is None:
                with pytest.raises(ValueError, match="is in use by another sweep"):
                    run_sweep(out=out)
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            process.send_signal(signal.SIGKILL)
            output = process.communicate(timeout=TIMEOUT)[0]
        assert process.returncode in (-signal.SIGKILL, 0), output[-3000:]
        history.append((wanted, chunk_files(out)))
    assert any(0 < files < 4 for _, files in history), history  # some kill landed mid-sweep
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no chunk file may be damaged
        resumed = run_sweep(out=out)
    assert resumed.attrs["reused_runs"] == 4 * history[-1][1]
    assert_identical(resumed, expected)
    assert_identical(aejax.load_results(out), expected)
