"""Bucket programs compiled ahead in background threads (issue 25): the same executables, counted
once, errors raised where the program is asked for, and a sweep's bits unchanged."""

from __future__ import annotations

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
    def broken(self, device):
        raise RuntimeError("no compiler today")

    monkeypatch.setattr(Program, "compile", broken)
    program = Program(CONFIG, MC, ("rate",), 2)
    compile_ahead([(program, jax.devices()[0])])
    with pytest.raises(RuntimeError, match="no compiler today"):
        program.executable(jax.devices()[0])


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
    monkeypatch.setattr(_sweep_execute, "compile_ahead", lambda jobs: 0)  # each program compiled when planned
    inline = aejax.sweep(CONFIG, GRID, mc_samples=MC, progress=False, devices=1)
    assert inline.attrs["compilations"] == 2
    for name in ("risk", "risk_se", "exact_risk", "loss_trace", "risk_trace"):
        np.testing.assert_array_equal(ahead[name].values, inline[name].values, err_msg=name)
