"""Bucket programs compiled ahead in background threads (issue 25): the same executables, counted
once, errors raised where the program is asked for, and a sweep's bits unchanged."""

from __future__ import annotations

import threading

import jax
import numpy as np
import pytest

import aejax
from aejax import _sweep_execute, programs
from aejax.config import TrainConfig
from aejax.programs import Program, compile_ahead, placements

# the config, grid and Monte Carlo samples of tests/test_sweep_pipeline.py's bucket test: the same block
# programs, so the suite's shared compilation cache compiles them once for both files
CONFIG = TrainConfig(d=8, n=8, steps=8, batch=8)
GRID = {"seed": [0, 1], "rate": [0.5, 1.0]}  # two buckets: 4 and 8 hidden units
MC = 64


@pytest.fixture(autouse=True)
def empty_caches(monkeypatch):
    monkeypatch.setattr(programs, "_EXECUTABLES", {})
    monkeypatch.setattr(programs, "_PENDING", {})


def test_program_compiled_ahead_is_taken_once_and_counted():
    device = jax.devices()[0]
    program = Program(CONFIG, MC, ("rate",), 2)
    assert compile_ahead([(program, device)]) == 1
    assert compile_ahead([(Program(CONFIG, MC, ("rate",), 2), device)]) == 0  # already under way
    compiled = program.executable(device)
    assert (program.compilations, program.compile_seconds > 0) == (1, True)
    again = Program(CONFIG, MC, ("rate",), 2)
    assert again.executable(device) is compiled and again.compilations == 0
    assert programs._PENDING == {}


def test_compile_error_is_raised_by_executable(monkeypatch):
    def broken(self, device, lowered=None):
        raise RuntimeError("no compiler today")

    monkeypatch.setattr(Program, "compile", broken)
    program = Program(CONFIG, MC, ("rate",), 2)
    lowered = threading.Event()
    compile_ahead([(program, jax.devices()[0])], lowered=lowered.set)
    with pytest.raises(RuntimeError, match="no compiler today"):
        program.executable(jax.devices()[0])
    assert lowered.wait(10)  # a failed program still lets the sweep's thread go on


def test_lowered_is_called_before_xla_compiles(monkeypatch):
    """``compile_ahead``'s ``lowered`` fires once the program is lowered, before XLA's compile ends."""
    order = []
    compile_lowered = jax.stages.Lowered.compile

    def logged_compile(self, *args, **kwargs):
        order.append("xla")
        return compile_lowered(self, *args, **kwargs)

    monkeypatch.setattr(jax.stages.Lowered, "compile", logged_compile)
    monkeypatch.setattr(programs, "_EXECUTABLES", {})
    program = Program(CONFIG, MC, ("rate",), 2)  # the program of the first test: XLA finds it in the cache
    assert compile_ahead([(program, jax.devices()[0])], lowered=lambda: order.append("lowered")) == 1
    program.executable(jax.devices()[0])
    assert order == ["lowered", "xla"]  # once, before XLA


def test_while_compiling_tasks_run_once_per_sweep_and_a_failing_one_is_harmless():
    ran = []

    def failing():
        raise ImportError("not installed")

    with _sweep_execute.while_compiling(lambda: ran.append(True), failing):
        ds = aejax.sweep(CONFIG, {"seed": [0, 1, 2, 3]}, mc_samples=MC, progress=False, devices=1)
    aejax.sweep(CONFIG, {"seed": [4, 5, 6, 7]}, mc_samples=MC, progress=False, devices=1)  # outside: not run
    assert ran == [True] and ds.sizes["seed"] == 4


def test_placements_one_per_device_that_gets_a_block():
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:2]), ("runs",))
    program = Program(CONFIG, MC, ("rate",), 4)
    assert len(placements(program, mesh, runs=4)) == 1  # one block
    assert len(placements(program, mesh, runs=5)) == min(2, mesh.devices.size)
    assert len(placements(program, mesh, runs=100, chunk=4)) == 1  # chunks of one block


@pytest.mark.slow  # every program compiled twice, 4.5 s: the slow tier
def test_sweep_bits_do_not_depend_on_compiling_ahead(monkeypatch):
    ahead = aejax.sweep(CONFIG, GRID, mc_samples=MC, progress=False, devices=1)
    assert ahead.attrs["compilations"] == 2
    monkeypatch.setattr(programs, "_EXECUTABLES", {})
    monkeypatch.setattr(_sweep_execute, "compile_ahead", lambda jobs, lowered=None: 0)  # compiled when planned
    inline = aejax.sweep(CONFIG, GRID, mc_samples=MC, progress=False, devices=1)
    assert inline.attrs["compilations"] == 2
    for name in ("risk", "risk_se", "exact_risk", "loss_trace", "risk_trace"):
        np.testing.assert_array_equal(ahead[name].values, inline[name].values, err_msg=name)
