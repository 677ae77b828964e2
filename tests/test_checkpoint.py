"""Checkpoints inside long runs (aejax.checkpoint): a chunk killed mid-run continues from its last
checkpoint and ends bit-identical to an uninterrupted run with the same checkpoint settings."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import aejax
from aejax.checkpoint import ChunkCheckpoints
from aejax.sweeping import segment_blocks

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"d": 16, "n": 16, "steps": 4000, "batch": 16, "eval_every": 40}
GRID = {"seed": [0, 1], "rate": [0.5, 1.0]}
SWEEP = {"mc_samples": 256, "progress": False, "devices": 1, "checkpoint_every": 400}
COMPARED = ("risk", "risk_se", "exact_risk", "identity_likeness", "loss_trace", "risk_trace")


def test_segments_follow_the_requested_interval():
    config = aejax.TrainConfig(d=8, n=8, steps=1000)  # 20 trace blocks of 50 steps
    assert segment_blocks(config, 200) == 4 and segment_blocks(config, 10) == 1 and segment_blocks(config, 10**6) == 20
    assert segment_blocks(config, None) == 1


def test_checkpoint_store_keeps_only_the_newest(tmp_path):
    store = ChunkCheckpoints(tmp_path, "c")
    assert store.restore({"w": np.zeros(2)}) is None
    store.save(2, {"w": np.ones(2)})
    store.save(5, {"w": np.full(2, 3.0)})
    assert [p.name for p in store.path.iterdir()] == ["block-000000005.npz"]
    block, state = store.restore({"w": np.zeros(2)})
    assert block == 5 and state["w"].tolist() == [3.0, 3.0]
    store.clear()
    assert not store.path.exists()


def test_checkpointing_needs_out():
    with pytest.raises(ValueError, match="need out="):
        aejax.sweep(aejax.TrainConfig(d=8, n=8, steps=10), {"seed": [0]}, checkpoint_every=5, progress=False)


def test_checkpointed_run_agrees_with_a_plain_run(tmp_path):
    """Training in segments changes the compiled programs, not the computation: the results agree
    with an unsegmented sweep to float32 rounding. (max_padding=1: both rates in one bucket, so one
    program of each kind is compiled instead of one per rate.)"""
    # tests/test_checkpoint_proof.py's config and segmented sweep: the segment programs are compiled
    # once for both files through the session's compilation cache
    config = aejax.TrainConfig(d=16, n=16, steps=240, batch=16, eval_every=20)  # checkpoint_every=40: 6 segments
    assert segment_blocks(config, 40) < len(config.trace_steps)
    plain = aejax.sweep(config, GRID, mc_samples=256, progress=False, devices=1, max_padding=1.0)
    segmented = aejax.sweep(config, GRID, out=tmp_path, **{**SWEEP, "checkpoint_every": 40, "max_padding": 1.0})
    assert json.loads(plain.attrs["buckets"]) == json.loads(segmented.attrs["buckets"]) == {"8": 16, "16": 16}
    for name in COMPARED:
        np.testing.assert_allclose(segmented[name].values, plain[name].values, rtol=2e-6, atol=2e-6, err_msg=name)
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


@pytest.mark.skipif(sys.platform != "linux", reason="uses SIGKILL on a subprocess")
@pytest.mark.integration
def test_kill_mid_run_then_resume_is_bit_identical(tmp_path):
    """kill -9 while a chunk trains (after its first checkpoint), rerun: identical to an uninterrupted run."""
    spec = {"config": CONFIG, "grid": GRID, "sweep": {**SWEEP, "out": str(tmp_path / "out")}, "devices": 1}
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # the child sets its own device count; it keeps the rest, such as the tests' backend optimization level
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    helper = [sys.executable, str(ROOT / "tests" / "helpers" / "run_sweep.py"), str(spec_path)]
    process = subprocess.Popen(helper, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoints = tmp_path / "out" / "checkpoints"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoints.exists() and any(checkpoints.rglob("block-*")):
            break
        time.sleep(0.05)
    assert process.poll() is None, (
        "the sweep ended before a checkpoint could be seen: " + process.stderr.read().decode()[-2000:]
    )
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = sorted(p.name for p in checkpoints.rglob("block-*"))
    assert saved, "no checkpoint was left by the killed run"
    done = subprocess.run(helper, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = aejax.load_results(tmp_path / "out")
    uninterrupted = aejax.sweep(aejax.TrainConfig(**CONFIG), GRID, out=tmp_path / "fresh", **SWEEP)
    for name in COMPARED:
        np.testing.assert_array_equal(resumed[name].values, uninterrupted[name].values, err_msg=name)
    assert not any(checkpoints.rglob("block-*")), "finished chunks keep no checkpoint"
