"""How the execute stage trains one chunk of runs: two strategies behind one small interface.

``PlainRunner`` runs a chunk as whole block programs (``aejax.programs.run_blocks``).
``SegmentedRunner`` trains it in segments of trace blocks with a checkpoint between them under
``out/checkpoints`` (``aejax.checkpoint``), and continues an interrupted chunk from its newest
checkpoint bit-identically. Both give the same records for the same runs and width.

Examples:
    >>> segment_blocks(TrainConfig(d=8, n=8, steps=1000), 200)  # 20 blocks of 50 steps
    4
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from aejax.checkpoint import ChunkCheckpoints, read_proof
from aejax.checkpoint import remove as remove_checkpoint
from aejax.config import TrainConfig
from aejax.grid import Grid
from aejax.programs import (
    Program,
    block_shapes,
    concatenate,
    gather_blocks,
    launch_blocks,
    local_blocks,
    run_blocks,
    segment_programs,
    split,
)
from aejax.progress import ChunkProgress
from aejax.train import run_key_data

if TYPE_CHECKING:
    from aejax._sweep_plan import Bucket, SweepPlan

__all__ = ["ChunkRunner", "PlainRunner", "SegmentedRunner", "chunk_checkpoints", "segment_blocks", "tidy_checkpoints"]


class ChunkRunner(Protocol):
    """Trains chunks for the execute stage: ``prepare`` once with every bucket at its final width,
    ``run`` each chunk (records of its runs, seconds), ``stored`` after its records are in the store."""

    def prepare(self, buckets: list[Bucket], finished: set[int]) -> None: ...

    def run(self, program: Program, bucket: Bucket, ids: np.ndarray, bar: ChunkProgress) -> tuple[dict, float]: ...

    def stored(self, program: Program, bucket: Bucket, ids: np.ndarray, finished: set[int]) -> None: ...


@dataclasses.dataclass
class PlainRunner:
    """Each chunk as whole block programs, one block per device at a time."""

    plan: SweepPlan

    def prepare(self, buckets: list[Bucket], finished: set[int]) -> None:
        """Nothing to prepare."""

    def run(self, program: Program, bucket: Bucket, ids: np.ndarray, bar: ChunkProgress) -> tuple[dict, float]:
        """The chunk's records and its seconds (``run_chunk``)."""
        p = self.plan
        return run_chunk(program, p.mesh, p.grid, ids, p.options.seed, p.hparam_names, p.block_threads(program))

    def stored(self, program: Program, bucket: Bucket, ids: np.ndarray, finished: set[int]) -> None:
        """Nothing to clean up."""


@dataclasses.dataclass
class SegmentedRunner:
    """Each chunk in segments with checkpoints (``checkpoint_every`` / ``checkpoint_seconds``) that
    only the writing process (process 0) reads and writes."""

    plan: SweepPlan
    writer: bool
    expected: list[ChunkCheckpoints] = dataclasses.field(default_factory=list)

    @property
    def root(self) -> str:
        return os.path.join(self.plan.options.out or "", "checkpoints")

    @property
    def needs_store(self) -> bool:
        return self.writer and self.plan.options.out is not None

    def checkpoints(self, program: Program, bucket: Bucket, ids: np.ndarray) -> ChunkCheckpoints | None:
        """The chunk's checkpoint store (``None`` on processes that do not write)."""
        if not self.needs_store:
            return None
        options = self.plan.options
        settings = {"checkpoint_every": options.checkpoint_every, "checkpoint_seconds": options.checkpoint_seconds}
        return chunk_checkpoints(self.root, self.plan.fingerprint, program, bucket.config, ids, settings)

    def prepare(self, buckets: list[Bucket], finished: set[int]) -> None:
        """Know every chunk's checkpoint, and remove or announce those no chunk will restore."""
        if not self.needs_store:
            return
        for bucket in buckets:
            program = Program(
                bucket.config, self.plan.samples_at[bucket.config.d], self.plan.hparam_names, bucket.width
            )
            self.expected += [c for ids in bucket.chunks if (c := self.checkpoints(program, bucket, ids))]
        tidy_checkpoints(self.root, self.expected, finished, announce=True)

    def run(self, program: Program, bucket: Bucket, ids: np.ndarray, bar: ChunkProgress) -> tuple[dict, float]:
        """The chunk's records and its seconds, continued from its newest checkpoint."""
        p = self.plan
        inputs = _chunk_inputs(program.runs_per_device, p.grid, ids, p.options.seed, p.hparam_names)
        checkpoints = self.checkpoints(program, bucket, ids)
        threads = p.block_threads(program)
        return run_in_segments(program, p.mesh, inputs, len(ids), p.options, checkpoints, bar, threads)

    def stored(self, program: Program, bucket: Bucket, ids: np.ndarray, finished: set[int]) -> None:
        """Remove the chunk's checkpoints, and those of other settings whose runs are now all stored."""
        checkpoints = self.checkpoints(program, bucket, ids)
        if checkpoints is not None:
            checkpoints.clear()
            tidy_checkpoints(self.root, self.expected, finished, announce=False)


def run_chunk(
    program: Program,
    mesh: Any,
    grid: Grid,
    ids: np.ndarray,
    seed: int,
    hparam_names: tuple[str, ...],
    threads: int = 1,
) -> tuple[dict[str, np.ndarray], float]:
    """Run the runs ``ids`` in blocks of the program's width, ``threads`` blocks per device at a time."""
    keys, hparams = _chunk_inputs(program.runs_per_device, grid, ids, seed, hparam_names)
    start = time.perf_counter()
    host = run_blocks(program, mesh, keys, hparams, threads)
    seconds = time.perf_counter() - start
    return {name: np.asarray(value)[: len(ids)] for name, value in host.items()}, seconds


def _chunk_inputs(
    width: int, grid: Grid, ids: np.ndarray, seed: int, hparam_names: tuple[str, ...]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run keys and swept values of the runs ``ids``, padded with copies of the last one to whole
    blocks of ``width`` runs."""
    padded = np.concatenate([ids, np.full(-len(ids) % width, ids[-1])])
    chosen = [grid.runs[i] for i in padded.tolist()]
    keys = run_key_data(seed, [run.get("seed", 0) for run in chosen])
    return keys, {name: np.asarray([run[name] for run in chosen], np.float32) for name in hparam_names}


@dataclasses.dataclass
class _Blocks:
    """A chunk's blocks on this process's devices, with the segment programs that train them."""

    program: Program
    mesh: Any
    n_blocks: int
    placed: list[tuple[int, Any]]
    inputs: dict[int, Any]
    threads: int = 1  # blocks each device runs at once (``aejax.programs.launch_blocks``)

    @property
    def functions(self) -> tuple[Any, Any, Any, Any]:
        """``(trainer, start, advance, finish)`` of ``aejax.programs.segment_programs``."""
        p = self.program
        return segment_programs(p.config, p.mc_samples, self.mesh.devices.flat[0].platform)

    def like(self) -> Any:
        shapes = block_shapes(self.program.runs_per_device, self.program.hparam_names)
        return jax.eval_shape(self.functions[1], *shapes)

    def record_like(self) -> Any:
        shapes = block_shapes(self.program.runs_per_device, self.program.hparam_names)
        return jax.eval_shape(self.functions[3], self.like(), *shapes)

    def advance(self, states: dict[int, Any], count: int, first: int) -> dict[int, Any]:
        """Every local block's state after ``count`` more trace blocks from trace block ``first``."""
        step, at = self.functions[2](count), jnp.int32(first)
        return launch_blocks(self.placed, lambda b, _: step(states[b], *self.inputs[b], at), self.threads)

    def gather(self, states: dict[int, Any]) -> Any:
        """Every block's state on the host, as one chunk state (every process takes part)."""
        return concatenate(gather_blocks(states, self.n_blocks, self.mesh, self.like))


def run_in_segments(
    program: Program,
    mesh: Any,
    inputs: tuple[np.ndarray, dict[str, np.ndarray]],
    n_runs: int,
    options: Any,
    checkpoints: ChunkCheckpoints | None,
    bar: ChunkProgress,
    threads: int = 1,
) -> tuple[dict[str, np.ndarray], float]:
    """Train a chunk (its padded ``inputs``, of which the first ``n_runs`` are its runs) in segments of
    trace blocks with a checkpoint between them, ``threads`` blocks per device at a time; continue
    from the chunk's newest checkpoint when there is one (only process 0 reads and writes them).
    Returns its records and seconds."""
    width = program.runs_per_device
    keys, hparams = inputs
    n_blocks = len(keys) // width
    placed = local_blocks(n_blocks, mesh)
    on_device = {
        b: jax.device_put(
            (keys[b * width : (b + 1) * width], {k: v[b * width : (b + 1) * width] for k, v in hparams.items()}), dev
        )
        for b, dev in placed
    }
    blocks = _Blocks(program, mesh, n_blocks, placed, on_device, threads)
    started = time.perf_counter()
    first, states = _start(blocks, checkpoints)
    states = _train(blocks, states, first, options, checkpoints, bar)
    finish = blocks.functions[3]
    records = {b: finish(states[b], *on_device[b]) for b, _ in placed}
    host = concatenate(gather_blocks(records, n_blocks, mesh, blocks.record_like))
    seconds = time.perf_counter() - started
    return {name: np.asarray(value)[:n_runs] for name, value in host.items()}, seconds


def _start(blocks: _Blocks, checkpoints: ChunkCheckpoints | None) -> tuple[int, dict[int, Any]]:
    """The first trace block to train and every local block's state: fresh, or restored from the
    chunk's newest checkpoint (process 0's, broadcast to the others)."""
    start_fn = blocks.functions[1]
    states = {b: start_fn(*blocks.inputs[b]) for b, _ in blocks.placed}
    restored = checkpoints.restore(blocks.gather(states)) if checkpoints is not None else None
    if jax.process_count() > 1:
        restored = _broadcast_restored(restored, blocks.gather(states))
    if restored is None:
        return 0, states
    first, host_state = restored
    parts = split(jax.tree_util.tree_map(np.asarray, host_state), blocks.program.runs_per_device)
    return first, {b: jax.device_put(parts[b], dev) for b, dev in blocks.placed}


def _train(
    blocks: _Blocks,
    states: dict[int, Any],
    first: int,
    options: Any,
    checkpoints: ChunkCheckpoints | None,
    bar: ChunkProgress,
) -> dict[int, Any]:
    """Advance every block from trace block ``first`` to the end, saving a checkpoint when due."""
    trainer = blocks.functions[0]
    config = blocks.program.config
    steps, segment = config.trace_steps, segment_blocks(config, options.checkpoint_every)
    last_save = time.perf_counter()
    while first < trainer.blocks:
        count = min(segment, trainer.blocks - first)
        states = blocks.advance(states, count, first)
        first += count
        bar.steps(steps[first - 1], config.total_steps)
        due = options.checkpoint_every is not None or time.perf_counter() - last_save >= (
            options.checkpoint_seconds or 0.0
        )
        if first < trainer.blocks and due:
            host_state = blocks.gather(states)  # every process takes part in the gather; process 0 writes
            if checkpoints is not None:
                checkpoints.save(first, host_state)
            last_save = time.perf_counter()
    return states


def segment_blocks(config: TrainConfig, checkpoint_every: int | None) -> int:
    """Trace blocks per training segment of a checkpointed chunk: about ``checkpoint_every`` steps
    (at least one block), or one block when checkpoints are timed by seconds only.

    Examples:
        >>> segment_blocks(TrainConfig(d=8, n=8, steps=1000), 200)  # 20 blocks of 50 steps
        4
    """
    if checkpoint_every is None:
        return 1
    blocks = len(config.trace_steps)
    return max(1, min(blocks, round(checkpoint_every * blocks / config.total_steps)))


def chunk_checkpoints(
    root: str,
    sweep_fingerprint: str,
    program: Program,
    config: TrainConfig,
    ids: np.ndarray,
    settings: dict[str, Any],
) -> ChunkCheckpoints:
    """The checkpoint store of the chunk of runs ``ids``: tagged by what determines its bits (the
    sweep, its runs, the segment length and the program's width) and told the trace steps, so that
    a restore checks the step a checkpoint reached."""
    segment = segment_blocks(config, settings.get("checkpoint_every"))
    identity = {
        "fingerprint": sweep_fingerprint,
        "runs": [int(i) for i in ids.tolist()],
        "segment_blocks": segment,
        "runs_per_device": program.runs_per_device,
        "total_steps": config.total_steps,
        **settings,
    }
    key = f"{sweep_fingerprint}/{identity['runs']}/{segment}/{program.runs_per_device}"
    tag = f"chunk-{int(ids[0]):07d}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    return ChunkCheckpoints(root, tag, steps=config.trace_steps, identity=identity)


def tidy_checkpoints(root: str, expected: list[ChunkCheckpoints], finished: set[int], announce: bool) -> None:
    """Remove the checkpoints under ``root`` that no chunk in ``expected`` will restore: silently
    those whose runs are all ``finished`` (a kill after the chunk was stored, before its checkpoint
    was removed), with a warning those that cannot be read. With ``announce``, warn about a
    checkpoint of unfinished runs saved with other settings (e.g. another ``checkpoint_every``): its
    progress is not used, and it is kept until its runs are finished, so a rerun with its settings
    can still continue it."""
    folder = Path(root)
    if not folder.is_dir():
        return
    wanted = {store.tag: store for store in expected}
    for entry in sorted(folder.iterdir()):
        if entry.name in wanted:
            continue
        proof = read_proof(entry)
        runs = set(proof["identity"].get("runs", [])) if proof and isinstance(proof.get("identity"), dict) else set()
        if proof is None or not runs:
            warnings.warn(f"removing checkpoint {entry}: it holds no readable proof of its content", stacklevel=3)
            remove_checkpoint(entry)
        elif runs <= finished:
            remove_checkpoint(entry)
        elif announce:
            warnings.warn(_unusable_message(entry, proof, expected), stacklevel=3)


def _unusable_message(entry: Path, proof: dict[str, Any], expected: list[ChunkCheckpoints]) -> str:
    """Why a checkpoint of unfinished runs cannot continue in this sweep, naming the settings that differ."""
    old = proof["identity"]
    runs = sorted(old["runs"])
    mine = next((s.identity for s in expected if set(s.identity["runs"]) & set(runs)), {})
    keys = ("checkpoint_every", "checkpoint_seconds", "segment_blocks", "runs_per_device", "runs", "fingerprint")
    differ = [k for k in keys if old.get(k) != mine.get(k)]

    def describe(identity: dict[str, Any]) -> str:
        return ", ".join(f"{k}={_short(identity.get(k))}" for k in differ)

    return (
        f"checkpoint {entry} (runs {runs[0]}..{runs[-1]}, step {proof.get('step')} of {old.get('total_steps')}) "
        f"cannot be continued bit-identically by this sweep: it was saved with {describe(old)}, this sweep has "
        f"{describe(mine)}; those runs start again (the checkpoint is kept until they finish: rerun with "
        "its settings to continue it instead)"
    )


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > 4:
        return f"[{value[0]}..{value[-1]}] ({len(value)} runs)"
    return repr(value)


def _broadcast_restored(restored: tuple[int, Any] | None, like: Any) -> tuple[int, Any] | None:
    """Process 0's restored checkpoint (or none), on every process."""
    block, state = restored if restored is not None else (-1, like)
    block, state = multihost_utils.broadcast_one_to_all((np.int64(block), state))
    return None if int(block) < 0 else (int(block), state)
