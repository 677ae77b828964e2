"""Execute a sweep's plan: train its pending runs chunk by chunk, store each chunk as it finishes.

Every bucket's block program starts compiling in background threads at once
(``aejax.programs.compile_ahead``); bucket k runs as soon as its own program is compiled while
later buckets go on compiling, so compile time hides behind execution. A program that does not fit
the memory budget is narrowed when its bucket's turn comes (``fit_program``; the buckets run
largest d and n first, so the largest program is measured first). How a chunk trains is a
strategy (``aejax._sweep_runners``): whole block programs, or segments with checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from aejax import _build, _validate, record
from aejax._sweep_plan import Bucket, SweepPlan
from aejax._sweep_runners import ChunkRunner, PlainRunner, SegmentedRunner
from aejax.config import TrainConfig
from aejax.programs import Program, compile_ahead, default_runs_per_device
from aejax.progress import ChunkProgress

__all__ = ["Execution", "execute", "fit_program", "memory_plan", "plan_program", "while_compiling"]


@dataclasses.dataclass
class Execution:
    """What the execute stage gives the assemble stage: every owned run's record (reused or computed),
    and how the computing went."""

    records: dict[int, dict[str, np.ndarray]]
    reused: int
    build: str = _build.UNRECORDED  # the build that computes this process's runs (``aejax._build.describe``)
    reused_builds: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # other builds of reused runs
    programs: list[Program] = dataclasses.field(default_factory=list)
    chunk_fill: list[float] = dataclasses.field(default_factory=list)
    memory: dict[str, Any] = dataclasses.field(default_factory=dict)
    computed: int = 0  # runs trained here (the others were in the store)


def execute(plan: SweepPlan, store: Any) -> Execution:
    """Train the runs of ``plan`` that ``store`` (a ``RunStore``/``ShardStore``, or ``None``) does not
    hold, storing each chunk as it finishes.

    Returns:
        ``Execution``: the records of every finished run, the fitted programs, chunk fill and memory.
    """
    n_steps, n_runs = len(plan.config.trace_steps), len(plan.grid.runs)
    done = _share_finished(store.load(n_steps, n_runs) if store else {}, n_runs, n_steps)
    todo = plan.without(done)
    device = plan.mesh.devices.flat[0]
    build = _build.describe(device.platform, device.device_kind)
    result = Execution(dict(done), len(done), build, _other_builds(store, done, build))
    if store:
        store.build = build  # written into each chunk file it saves
    writer = jax.process_index() == 0
    runner: ChunkRunner = SegmentedRunner(todo, writer) if plan.options.checkpointing else PlainRunner(todo)
    lowered = threading.Event()
    if compile_ahead(todo.placements(), lowered=lowered.set):
        lowered.wait()  # a program is traced and lowered: XLA compiles it without Python's lock
    _run_while_compiling()
    fitted = [fit_program(todo, b) for b in todo.buckets] if plan.options.checkpointing else None
    runner.prepare([b for _, b in fitted] if fitted else list(todo.buckets), set(done))
    total = sum(len(b.chunks) for b in todo.buckets)
    with ChunkProgress(total, enabled=plan.options.progress and writer, done_runs=len(done)) as bar:
        for k, bucket in enumerate(todo.buckets):
            program, fit = fitted[k] if fitted else fit_program(todo, bucket)  # waits for this bucket only
            bar.add_chunks(len(fit.chunks) - len(bucket.chunks))
            _run_bucket(program, fit, runner, store, result, bar)
            result.programs.append(program)
    result.memory = memory_plan([(p, None, p.config) for p in result.programs], plan.mesh, plan.budget)
    if plan.options.progress and writer and result.memory:
        print(result.memory["summary"], flush=True)
    return result


_WHILE_COMPILING: ContextVar[tuple[Callable[[], object], ...]] = ContextVar("while_compiling", default=())


@contextlib.contextmanager
def while_compiling(*tasks: Callable[[], object]) -> Iterator[None]:
    """Within the block, each sweep runs ``tasks`` on the thread that called it while XLA compiles its
    first program (after tracing, which needs Python's lock), on a core XLA leaves idle part of the
    time: the ``aejax`` command imports what it draws the figure with (0.3 s). A task that fails is
    ignored (what it prepares fails again, and is reported, where it is used).

    Examples:
        >>> with while_compiling(lambda: None):
        ...     len(_WHILE_COMPILING.get())
        1
    """
    token = _WHILE_COMPILING.set(_WHILE_COMPILING.get() + tasks)
    try:
        yield
    finally:
        _WHILE_COMPILING.reset(token)


def _import_xarray() -> None:
    import xarray  # noqa: F401  (assembling the Dataset needs it: 0.22 s)


def _run_while_compiling() -> None:
    """What the sweep will need later and can prepare while its programs compile: xarray, and the
    tasks of ``while_compiling``."""
    for task in (_import_xarray, *_WHILE_COMPILING.get()):
        with contextlib.suppress(Exception):  # a head start only: the real use raises and reports it
            task()


def _run_bucket(
    program: Program, bucket: Bucket, runner: ChunkRunner, store: Any, result: Execution, bar: ChunkProgress
) -> None:
    """Train the bucket's chunks in order; store each one and add its records to ``result``."""
    for ids in bucket.chunks:
        chunk_records, seconds = runner.run(program, bucket, ids, bar)
        chunk_records["wall_time"] = np.full(len(ids), seconds / len(ids))
        if store:
            store.save(ids, chunk_records)
        for j, run in enumerate(ids.tolist()):
            result.records[run] = {name: chunk_records[name][j] for name in record.NAMES}
        runner.stored(program, bucket, ids, set(result.records))
        width = program.runs_per_device
        result.chunk_fill.append(len(ids) / (width * math.ceil(len(ids) / width)))
        result.computed += len(ids)
        bar.advance(len(ids))


def _other_builds(store: Any, done: dict[int, Any], build: str) -> list[dict[str, Any]]:
    """The builds other than ``build`` that computed runs of ``done`` (from ``store.builds``), each
    with its run count, and a warning naming what differs: their bits are those builds', not this one's."""
    counts: dict[str, int] = {}
    for run in done:
        other = getattr(store, "builds", {}).get(run, build)
        if other != build:
            counts[other] = counts.get(other, 0) + 1
    if not counts:
        return []
    details = "; ".join(f"{n} runs: {', '.join(_build.differences(b, build))}" for b, n in counts.items())
    warnings.warn(
        f"{sum(counts.values())} of the {len(done)} runs reused from {store.out} were computed by another "
        f"build than this process's ({details}); their bits are that build's. The results' attribute "
        "reused_builds names each build and its runs",
        stacklevel=3,
    )
    return [{"runs": n, "build": b if b == _build.UNRECORDED else json.loads(b)} for b, n in counts.items()]


def fit_program(plan: SweepPlan, bucket: Bucket) -> tuple[Program, Bucket]:
    """The bucket's block program, compiled (or taken from ``compile_ahead``) and narrowed until it
    fits the plan's memory budget (``plan_program``), and the bucket at that width."""
    program = plan_program(
        bucket.config,
        plan.samples_at[bucket.config.d],
        plan.mesh,
        len(bucket.members),
        plan.hparam_names,
        plan.options.runs_per_device,
        plan.budget,
    )
    return program, dataclasses.replace(bucket, width=program.runs_per_device)


def plan_program(
    config: TrainConfig,
    mc_samples: int,
    mesh: Mesh,
    bucket_runs: int,
    hparam_names: tuple[str, ...],
    runs_per_device: int | None,
    budget: int,
) -> Program:
    """The bucket's block program, compiled for the mesh's first device of this process, with the
    widest block (at most ``default_runs_per_device(bucket_runs, platform, config)`` runs) whose memory fits ``budget``.

    The width follows from ``bucket_runs``, the bucket's number of runs (finished or not), so a
    resumed sweep runs its remaining runs with the same program as an uninterrupted one, and from
    nothing about the devices, so any device count gives the same bits.

    Raises:
        InputError (a ValueError): when even one run per device does not fit, or a requested
            ``runs_per_device`` does not.
    """
    device = next(dev for dev in mesh.devices.flat if dev.process_index == jax.process_index())
    width = (
        default_runs_per_device(bucket_runs, device.platform, config) if runs_per_device is None else runs_per_device
    )
    program = Program(config, mc_samples, hparam_names, width).measure(device)
    compilations, seconds = program.compilations, program.compile_seconds
    while program.bytes_per_device > budget:
        if runs_per_device is not None or width == 1:
            raise _validate.InputError(
                f"{'one run per device' if runs_per_device is None else f'runs_per_device={width}'} needs "
                f"{_size(program.bytes_per_device)} per device at d={config.d}, n={config.n}, "
                f"batch={config.batch}, mc_samples={mc_samples}, over the memory budget of {_size(budget)} per device; "
                "lower runs_per_device, batch, mc_samples, d or n, or raise memory_budget"
            )
        per_run = program.bytes_per_device / width
        width = max(1, min(width - 1, int(budget / per_run)))
        program = Program(config, mc_samples, hparam_names, width).measure(device)
        compilations, seconds = compilations + program.compilations, seconds + program.compile_seconds
    program.compilations, program.compile_seconds = compilations, seconds
    return program


def memory_plan(plans: list, mesh: Mesh, budget: int) -> dict[str, Any]:
    """What the planned chunk programs need per device (``memory_analysis()`` of each compiled
    program) and, for the largest bucket, the largest d that one run per device would fit at the
    same rate: a run's memory grows as d·n (weights, optimizer state, gradients), so
    ``d_max = d·sqrt(budget / bytes_per_run)`` (``bytes_per_run`` measured, so a lower bound when
    fixed costs dominate)."""
    if not plans:
        return {}
    measured = [(cfg.d, cfg.n, prog.bytes_per_device, prog.runs_per_device) for prog, _, cfg in plans]
    d, n, per_device, runs = max(measured, key=lambda m: m[0] * m[1])
    if per_device <= 0:  # the backend reports no memory
        return {}
    per_run = per_device / max(1, runs)
    d_max = int(d * math.sqrt(budget / per_run))
    return {
        "bytes_per_device": int(max(m[2] for m in measured)),
        "bytes_per_run": int(per_run),
        "budget": int(budget),
        "largest_d": d_max,
        "summary": f"memory: {per_device / 2**20:.1f} MiB per device ({runs} runs) at d={d}, n={n}; budget "
        f"{_size(budget)} per device; one run per device fits up to d ≈ {d_max} at rate {n / d:g}",
    }


def _size(count: float) -> str:
    """A byte count for messages: ``1 B``, ``12.0 KiB``, ``3.5 MiB``, ``1.25 GiB``.

    Examples:
        >>> _size(1), _size(1536), _size(3 * 2**30)
        ('1 B', '1.5 KiB', '3.00 GiB')
    """
    if count < 1024:
        return f"{int(count)} B"
    if count < 2**20:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 2**20:.1f} MiB" if count < 2**30 else f"{count / 2**30:.2f} GiB"


def _share_finished(
    done: dict[int, dict[str, np.ndarray]], n_runs: int, n_steps: int
) -> dict[int, dict[str, np.ndarray]]:
    """With several processes, every process takes process 0's finished runs (only it reads the store)."""
    if jax.process_count() == 1:
        return done
    packed = {"finished": np.zeros(n_runs, np.int32), **record.empty(n_runs, n_steps)}
    for run, values in done.items():
        packed["finished"][run] = 1
        for name in record.NAMES:
            packed[name][run] = values[name]
    packed = jax.tree_util.tree_map(np.asarray, multihost_utils.broadcast_one_to_all(packed))
    return {
        run: {name: packed[name][run] for name in record.NAMES} for run in np.flatnonzero(packed["finished"]).tolist()
    }
