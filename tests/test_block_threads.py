"""Every core by default on a CPU (issue 25): a small CPU bucket is cut into two blocks, which run at
once on threads of one device with one compiled program; the bits do not depend on the thread count."""

from __future__ import annotations

import json
import threading

import jax
import numpy as np
import pytest

import aejax
from aejax import _sweep_plan, devices, programs
from aejax.config import TrainConfig
from aejax.devices import block_threads, default_devices, make_mesh
from aejax.programs import default_runs_per_device, launch_blocks, local_blocks
from aejax.sweep_options import SweepOptions

CONFIG = TrainConfig(d=8, n=8, steps=8, batch=8)
GRID = {"seed": [0, 1, 2, 3], "lr": [0.01]}  # one bucket of 4 runs: two CPU blocks of 2
COMPARED = ("risk", "risk_se", "exact_risk", "loss_trace", "risk_trace")
KW = dict(mc_samples=64, progress=False, devices=1)


@pytest.mark.parametrize(
    ("runs", "small", "large", "accelerator"),
    [
        (1, 1, 1, 1),
        (2, 1, 1, 2),
        (3, 3, 1, 3),  # two blocks of 2 would pad a third of the work
        (4, 2, 1, 4),
        (9, 5, 1, 9),  # padding 1 of 9 runs
        (16, 8, 1, 16),
        (17, 16, 16, 16),
        (1000, 125, 125, 125),
    ],
)
def test_cpu_width_cuts_a_one_block_bucket(runs, small, large, accelerator):
    """A bucket that is one block elsewhere (up to 16 runs) is, on a CPU, blocks of one run where runs
    are run one after another anyway (large runs), else two blocks of equal width unless padding
    would add over an eighth of the work; larger buckets keep the spread rule on every platform, and
    so do runs that fill the cores alone."""
    large_config, huge = TrainConfig(d=512, n=512, steps=10), TrainConfig(d=2048, n=2048, steps=10)
    assert default_runs_per_device(runs, "cpu", CONFIG) == small
    assert default_runs_per_device(runs, "cpu", large_config) == large
    assert default_runs_per_device(runs, "gpu", CONFIG) == default_runs_per_device(runs, "tpu", CONFIG) == accelerator
    assert default_runs_per_device(runs, "cpu", huge) == accelerator


def test_blocks_on_one_device_run_at_the_same_time():
    """With two threads, the two blocks of one device are running together: each waits at a barrier
    for the other (one after another, the first would wait until the barrier's timeout)."""
    barrier = threading.Barrier(2, timeout=60)
    placed = local_blocks(2, make_mesh(1))

    def launch(b, device):
        barrier.wait()
        return jax.device_put(np.float32(b), device)

    outputs = launch_blocks(placed, launch, threads=2)
    assert [float(outputs[b]) for b in range(2)] == [0.0, 1.0]
    assert not barrier.broken


def test_block_threads_are_the_cores_per_device_within_the_memory_budget(monkeypatch):
    monkeypatch.setattr(devices, "cpu_cores", lambda: 8)
    one, two = make_mesh(1), make_mesh(2)
    assert block_threads(one, CONFIG, bytes_per_block=0, budget=1) == 8  # memory not measured yet
    assert block_threads(two, CONFIG, bytes_per_block=0, budget=1) == 4  # the cores shared by 2 devices
    assert block_threads(one, CONFIG, bytes_per_block=300, budget=1000) == 3  # three blocks fit the budget
    assert block_threads(one, CONFIG, bytes_per_block=2000, budget=1000) == 1  # at least one
    assert block_threads(one, TrainConfig(d=2048, n=2048, steps=10), 0, 1) == 1  # one run fills the cores
    monkeypatch.setattr(devices, "cpu_cores", lambda: 1)
    assert block_threads(two, CONFIG, bytes_per_block=0, budget=1) == 1


def test_a_cpu_sweep_uses_one_device_by_default():
    """Threads, not more CPU devices: a second device would compile every program again."""
    assert default_devices() == 1
    assert _sweep_plan.plan(CONFIG, GRID, SweepOptions(progress=False)).mesh.devices.size == 1


@pytest.mark.parametrize("checkpoints", [False, True])
def test_threads_do_not_change_the_bits(monkeypatch, tmp_path, checkpoints):
    """The bucket's two blocks on two threads and on one (dispatched from the sweep's thread) give the
    same bits, whole or in checkpointed segments; both compile the one program once."""
    monkeypatch.setattr(programs, "_EXECUTABLES", {})
    options = dict(out=str(tmp_path / "x"), checkpoint_every=4) if checkpoints else {}
    results = {}
    for threads in (2, 1):
        monkeypatch.setattr(_sweep_plan, "block_threads", lambda mesh, config, bytes_per_block, budget, t=threads: t)
        ds = aejax.sweep(CONFIG, GRID, **KW, **{k: (v + str(threads) if k == "out" else v) for k, v in options.items()})
        assert ds.attrs["chunks"] == 3 - threads  # a chunk holds the blocks that run at once
        assert json.loads(ds.attrs["blocks_at_once"]) == [threads]  # the results say how they ran
        results[threads] = ds
    assert results[2].attrs["compilations"] == 1 and results[1].attrs["compilations"] == 0
    for name in COMPARED:
        np.testing.assert_array_equal(results[2][name].values, results[1][name].values, err_msg=name)


@pytest.mark.slow  # batch 4096 at d = 35 on both paths, 4 s: the slow tier
def test_large_runs_in_blocks_of_one_equal_one_block_of_all():
    """Runs large enough to be run one after another inside a block (``large_cpu_runs``) are blocks of
    one run on a CPU; their records equal those of the three runs as one block."""
    config = TrainConfig(d=35, n=35, steps=4, batch=4096)  # 10·b·d·n = 5.02e7 FLOPs per step
    assert default_runs_per_device(3, "cpu", config) == 1
    alone = aejax.sweep(config, {"seed": [0, 1, 2]}, **KW)
    together = aejax.sweep(config, {"seed": [0, 1, 2]}, runs_per_device=3, **KW)
    assert (json.loads(alone.attrs["runs_per_device"]), json.loads(together.attrs["runs_per_device"])) == ([1], [3])
    for name in COMPARED:
        np.testing.assert_array_equal(alone[name].values, together[name].values, err_msg=name)
