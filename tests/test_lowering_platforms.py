"""Every compiled program lowers for GPUs and TPUs as well as the CPU (issue 25), without one.

``jax.export`` lowers a jitted function for a platform the machine does not have (the public,
stable API for cross-platform lowering) and refuses a custom call that has no stable lowering
there; the test also looks at the StableHLO for host callbacks and CPU-only custom calls (LAPACK,
``cpu_*``), which a GPU or TPU run could not execute. Programs: the sweep's block program (training
chunk, trace and record), the segment programs of a checkpointed sweep (start, advance, finish),
the exact risk (the trace's evaluation: arcsin moments, solve) and the record alone.
"""

from __future__ import annotations

import re

import jax
import pytest
from jax import export

from aejax.config import TrainConfig
from aejax.devices import batch_runs, large_cpu_runs
from aejax.programs import block_shapes, make_run, segment_programs
from aejax.train import make_trainer

PLATFORMS = ("cpu", "cuda", "tpu")
CONFIGS = {
    "online-sign": TrainConfig(d=8, n=8, steps=8, batch=4, trace_points=2),
    "time-tanh": TrainConfig(d=8, n=4, time=4.0, batch=4, activation="tanh", trace_points=2),
}
NAMES = ("rate",)
WIDTH = 2
CPU_ONLY = re.compile(r"lapack_|@cpu_|xla_python_cpu_callback|xla_ffi_python_cpu_callback|host_callback")


def programs_of(config: TrainConfig, platform: str) -> dict[str, tuple]:
    """Each program, batched as the sweep batches it on ``platform``, with its argument shapes."""
    keys, hparams = block_shapes(WIDTH, NAMES)
    wrap = jax.random.wrap_key_data
    trainer = make_trainer(config)
    _, start, advance, finish = segment_programs(config, 64, platform)
    state = jax.eval_shape(start, keys, hparams)
    first = jax.ShapeDtypeStruct((), "int32")
    return {
        "block": (batch_runs(make_run(config, 64), config, platform), keys, hparams),
        "segment_start": (start, keys, hparams),
        "segment_advance": (advance(trainer.blocks), state, keys, hparams, first),
        "segment_finish": (finish, state, keys, hparams),
        "exact_risk": (batch_runs(lambda s, h: config.bind(h).exact_risk(s.params), config, platform), state, hparams),
        "record": (
            batch_runs(lambda s, k, h: config.bind(h).record(s.params, s.trace, wrap(k), 64), config, platform),
            state,
            keys,
            hparams,
        ),
    }


_JITTED: dict[tuple[str, bool], dict[str, tuple]] = {}


def jitted_programs_of(config_name: str, platform: str) -> dict[str, tuple]:
    """``programs_of``, each jitted once and shared by the platforms that batch a block alike (the
    platform enters the programs only through ``batch_runs``: ``lax.map`` for large runs on a CPU,
    else ``vmap``), so a program is traced once and lowered for each platform."""
    config = CONFIGS[config_name]
    key = (config_name, platform == "cpu" and large_cpu_runs(config))
    if key not in _JITTED:
        programs = programs_of(config, platform)
        _JITTED[key] = {
            n: (fn if hasattr(fn, "trace") else jax.jit(fn), *shapes) for n, (fn, *shapes) in programs.items()
        }
    return _JITTED[key]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_every_program_lowers_for_the_platform(config_name, platform):
    for name, (fn, *shapes) in jitted_programs_of(config_name, platform).items():
        exported = export.export(fn, platforms=(platform,))(*shapes)
        text = exported.mlir_module()
        assert exported.platforms == (platform,), name
        if platform != "cpu":
            assert not CPU_ONLY.findall(text), f"{name} on {platform}: {sorted(set(CPU_ONLY.findall(text)))}"


def test_the_check_sees_cpu_only_programs():
    """The test can fail: a CPU lowering of a solve calls LAPACK, which the pattern finds, and a host
    callback does not lower for a GPU here at all."""
    shape = jax.ShapeDtypeStruct((3, 3), "float32")
    solve = jax.jit(lambda a: jax.numpy.linalg.solve(a, a))
    assert CPU_ONLY.findall(export.export(solve, platforms=("cpu",))(shape).mlir_module())

    def with_callback(x):
        return jax.pure_callback(lambda v: v, jax.ShapeDtypeStruct((3, 3), "float32"), x)

    with pytest.raises(ValueError, match=r"(?i)callback|platform"):
        export.export(jax.jit(with_callback), platforms=("cuda",))(shape)
