"""Compiled chunk programs and how a chunk of runs is spread over the devices.

A chunk's runs are split into blocks of ``runs_per_device`` runs (the last block padded with copies
of its last run), and block ``b`` runs on device ``b mod D`` of the sweep's ``("runs",)`` mesh. Every
block, on every device of every host, runs the same single-device program on the same per-run
inputs. A run's bits therefore depend on ``runs_per_device`` (and on the platform and the versions),
never on the number of devices or hosts, nor on the chunk size: XLA compiles a sharded program
differently from a single-device one, and a different per-device batch differently again, which
reorders float32 reductions (up to 5e-5 relative after 300 steps, issue 17).

Each device gets its own executable (compiled the first time a block lands on it, and kept, a few
structures at a time), so a later sweep that changes only swept values compiles nothing.

Examples:
    >>> config = TrainConfig(d=32, n=32, steps=10)
    >>> [default_runs_per_device(runs, "gpu", config) for runs in (12, 64, 1000)]
    [12, 16, 125]
    >>> [default_runs_per_device(runs, "cpu", config) for runs in (3, 12, 64, 1000)]
    [3, 6, 16, 125]
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from aejax import program_store
from aejax._threefry import wrap_key_data
from aejax.config import TrainConfig
from aejax.devices import batch_runs, concurrent_cpu_blocks, large_cpu_runs
from aejax.train import make_train, make_trainer

__all__ = [
    "MAX_RUNS_PER_DEVICE",
    "Program",
    "block_shapes",
    "compile_ahead",
    "concatenate",
    "default_runs_per_device",
    "gather_blocks",
    "launch_blocks",
    "local_blocks",
    "make_block",
    "make_run",
    "placements",
    "run_blocks",
    "segment_programs",
    "split",
    "structure_key",
]

MAX_RUNS_PER_DEVICE = 256
MIN_RUNS_PER_DEVICE = 16  # a block narrower than this batches too little work (small runs)
SPREAD = 8  # a large bucket is split into this many blocks, one per device on an 8-accelerator host
CPU_BLOCKS = 2  # a small CPU bucket is split into this many blocks, run at once on threads (2 cores at least)
CPU_MAX_SPLIT_PADDING = 0.125  # ... unless padding its last block would add more than this share of the work
_MAX_PROGRAMS = 16


def default_runs_per_device(bucket_runs: int, platform: str, config: TrainConfig) -> int:
    """Runs per block for a shape bucket of ``bucket_runs`` runs of ``config`` on ``platform``, from
    the grid, the run's shape and the platform alone (not the device count, so the bits do not
    depend on it): the whole bucket up to ``MIN_RUNS_PER_DEVICE`` runs, else ``bucket_runs / SPREAD``
    (at least ``MIN_RUNS_PER_DEVICE``, at most ``MAX_RUNS_PER_DEVICE``).

    On a CPU, a bucket that would be one block is cut into blocks that run at once on threads
    (``aejax.devices.block_threads``), so that every core works, unless one run alone fills the cores
    (``aejax.devices.concurrent_cpu_blocks``): blocks of one run where a block runs its runs one after
    another anyway (``aejax.devices.large_cpu_runs``: the width changes neither the work nor, in
    every case measured, the bits), else ``CPU_BLOCKS`` blocks of equal width where padding the last
    one adds at most ``CPU_MAX_SPLIT_PADDING`` of the work (an even count, or 9 runs and more).

    Examples:
        >>> small, large = TrainConfig(d=32, n=32, steps=10), TrainConfig(d=512, n=512, steps=10)
        >>> default_runs_per_device(4, "gpu", small), default_runs_per_device(4, "cpu", small)
        (4, 2)
        >>> default_runs_per_device(3, "cpu", small), default_runs_per_device(3, "cpu", large)
        (3, 1)
    """
    spread = max(min(bucket_runs, MIN_RUNS_PER_DEVICE), math.ceil(bucket_runs / SPREAD))
    width = max(1, min(MAX_RUNS_PER_DEVICE, spread))
    if platform != "cpu" or width < bucket_runs or not concurrent_cpu_blocks(config):
        return width
    if large_cpu_runs(config):
        return 1
    padding = -bucket_runs % CPU_BLOCKS
    return math.ceil(bucket_runs / CPU_BLOCKS) if padding <= CPU_MAX_SPLIT_PADDING * bucket_runs else width


def make_run(config: TrainConfig, mc_samples: int, data: Any = None):
    """One run as a pure function ``(key_data, hparams) -> record``: train, then ``Model.record``.

    The record's fields are ``aejax.record.FIELDS`` (all but ``wall_time``, which the host fills in).
    ``data`` is the config's data objects (``TrainConfig.data``; ``None``: the config's own), shared
    by every run of a block: the block program takes it as an argument.
    """
    train = make_train(config)

    def run(key_data, hparams):
        key = wrap_key_data(key_data)
        params, trace = train(key, hparams, data)
        return config.bind(hparams, data).record(params, trace, key, mc_samples)

    return run


def make_block(config: TrainConfig, mc_samples: int, platform: str):
    """A block of runs as ``(keys, hparams, data) -> records``: the runs mapped over the leading axis
    of ``keys`` and ``hparams`` (``batch_runs``), the data arrays (``TrainConfig.data``) shared, as
    inputs of the program rather than constants in it."""

    def block(keys, hparams, data):
        return batch_runs(make_run(config, mc_samples, data), config, platform)(keys, hparams)

    return block


def structure_key(config: TrainConfig) -> tuple:
    """What a block program depends on: the config without its data arrays, plus their shapes and
    dtypes, so a sweep on new data of the same shapes reuses the compiled program.

    Examples:
        >>> import numpy as np
        >>> from aejax.sources import Empirical
        >>> rows = np.random.default_rng(0).normal(size=(2, 32, 4))
        >>> a, b = (TrainConfig(d=4, n=4, steps=8, mode="dataset", source=Empirical(r)) for r in rows)
        >>> a == b, structure_key(a) == structure_key(b)
        (False, True)
    """
    data = config.data
    leaves, treedef = jax.tree_util.tree_flatten(data)
    shapes = tuple((np.shape(a), _dtype(a).str) for a in leaves)
    fields = tuple(
        (f.name, getattr(config, f.name))
        for f in dataclasses.fields(config)
        if f.name not in data or data[f.name] is None
    )
    return fields, treedef, shapes


def _dtype(a: Any) -> np.dtype:
    return np.dtype(a.dtype) if hasattr(a, "dtype") else np.result_type(a)


def block_shapes(runs: int, hparam_names: tuple[str, ...]) -> tuple[jax.ShapeDtypeStruct, dict[str, Any]]:
    key_shape = jax.random.key_data(jax.random.key(0)).shape
    keys = jax.ShapeDtypeStruct((runs, *key_shape), np.uint32)
    return keys, {name: jax.ShapeDtypeStruct((runs,), np.float32) for name in hparam_names}


_EXECUTABLES: dict[tuple, Any] = {}  # (structure, device) -> compiled block program
_PENDING: dict[tuple, Future] = {}  # (structure, device) -> (compiled, seconds) being compiled by compile_ahead
_LOCK = threading.Lock()


@dataclasses.dataclass
class Program:
    """The block program of one shape bucket: ``runs_per_device`` runs of ``config``, compiled for a
    device the first time a block lands on it. ``compilations`` and ``compile_seconds`` count this
    object's compilations (0 for executables another sweep already compiled); ``bytes_per_device``
    is the compiled program's ``memory_analysis()`` total (0 where the backend reports none)."""

    config: TrainConfig
    mc_samples: int
    hparam_names: tuple[str, ...]
    runs_per_device: int
    bytes_per_device: int = 0
    compile_seconds: float = 0.0
    compilations: int = 0

    def key(self, device: Any) -> tuple | None:
        """The executable's cache key on ``device`` (``None`` for a config holding unhashable objects)."""
        key = (structure_key(self.config), self.mc_samples, self.hparam_names, self.runs_per_device, device)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def executable(self, device: Any) -> Any:
        """The compiled block program on ``device`` (compiled now if no sweep has compiled it, or
        waited for if ``compile_ahead`` is compiling it; its compilation is counted here)."""
        key = self.key(device)
        with _LOCK:
            cached = _EXECUTABLES.get(key) if key is not None else None
            pending = _PENDING.get(key) if key is not None and cached is None else None
        if cached is not None:
            return cached
        compiled, seconds = pending.result() if pending is not None else self.compile(device)
        self.compile_seconds += seconds
        self.compilations += 1
        if key is not None:
            with _LOCK:
                _PENDING.pop(key, None)
                if len(_EXECUTABLES) >= _MAX_PROGRAMS * 8:
                    del _EXECUTABLES[next(iter(_EXECUTABLES))]
                _EXECUTABLES[key] = compiled
        return compiled

    def compile(self, device: Any, lowered: Callable[[], object] | None = None) -> tuple[Any, float]:
        """Compile the block program for ``device`` (no in-process cache): ``(executable, seconds)``.

        The program is exported (``jax.export``) and its export compiled, so a later process that
        loads it from the program store (``aejax.program_store``, on where the persistent
        compilation cache is) compiles the same program without tracing or lowering it.
        ``lowered`` is called once the program is lowered, as XLA starts (which holds no Python lock)."""
        place = jax.sharding.make_single_device_sharding(device)
        keys, hparams = block_shapes(self.runs_per_device, self.hparam_names)
        keys = jax.ShapeDtypeStruct(keys.shape, keys.dtype, sharding=place)
        hparams = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=place) for k, v in hparams.items()}
        data = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(np.shape(a), _dtype(a), sharding=place), self.config.data
        )
        start = time.perf_counter()
        exported = self.exported(device.platform, (keys, hparams, data))

        def block(keys, hparams, data):  # named so that JAX's cache entries of block programs read jit_block
            return exported.call(keys, hparams, data)

        if exported is None:  # a program jax.export refuses (e.g. a host callback): compiled as is
            block = make_block(self.config, self.mc_samples, device.platform)
        lowering = jax.jit(block).lower(keys, hparams, data)
        if lowered is not None:
            lowered()
        compiled = lowering.compile()
        return compiled, time.perf_counter() - start

    def exported(self, platform: str, shapes: tuple) -> Any:
        """The block program as a ``jax.export.Exported`` for ``platform`` at the argument
        ``shapes``: from the program store, else traced and lowered now (and stored); ``None``
        where ``jax.export`` refuses the program (a host callback, say)."""
        key = program_store.program_key(self.config, self.mc_samples, self.hparam_names, self.runs_per_device, platform)
        exported = program_store.load(key)
        if exported is None:
            block = make_block(self.config, self.mc_samples, platform)
            try:
                exported = jax.export.export(jax.jit(block), platforms=(platform,))(*shapes)
            except Exception:  # not exportable: the caller compiles it directly (an error in it recurs there)
                return None
            program_store.save(key, exported)
        return exported

    def measure(self, device: Any) -> Program:
        """Compile for ``device`` now (if needed) and record its memory; returns ``self``."""
        compiled = self.executable(device)
        self.bytes_per_device = max(self.bytes_per_device, _program_bytes(compiled))
        return self


def compile_ahead(
    jobs: Sequence[tuple[Program, Any]], workers: int | None = None, lowered: Callable[[], object] | None = None
) -> int:
    """Start compiling the block programs ``(program, device)`` in background threads, at most
    ``workers`` at a time (default: one per CPU core), in the order given; returns how many were
    started (those not compiled or being compiled already). ``lowered`` is called once per started
    program, from its compiling thread, when the program is lowered and XLA takes over (or when it
    failed before that).

    XLA compiles with Python's lock released, so independent programs compile on idle cores at the
    same time and while the sweep runs. ``Program.executable`` takes a program from here when it is
    ready (waiting if it is not) and counts its compilation; the executable is the one it would
    have compiled itself, so no result depends on whether it was compiled ahead. A failed compile
    raises where ``Program.executable`` asks for it.

    Examples:
        >>> cfg = TrainConfig(d=8, n=8, steps=10, mode="population")
        >>> program = Program(cfg, 64, ("lr",), 2)
        >>> compile_ahead([(program, jax.devices()[0])]) in (0, 1)
        True
        >>> program.executable(jax.devices()[0]) is not None, program.compilations in (0, 1)
        (True, True)
    """
    started = []
    with _LOCK:
        for program, device in jobs:
            key = program.key(device)
            if key is None or key in _EXECUTABLES or key in _PENDING:
                continue
            _PENDING[key] = Future()
            started.append((key, program, device))
    if not started:
        return 0
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(started), workers or os.cpu_count() or 1)))
    for key, program, device in started:
        pool.submit(_compile_into, _PENDING[key], program, device, lowered)
    pool.shutdown(wait=False)  # the threads finish their queue and exit
    return len(started)


def placements(program: Program, mesh: Mesh, runs: int, chunk: int | None = None) -> list[tuple[Program, Any]]:
    """``(program, device)`` for each device of this process that runs a block when ``runs`` runs
    are run in chunks of ``chunk`` runs (default: one block per device), as ``compile_ahead`` takes them.

    Examples:
        >>> mesh = Mesh(np.asarray(jax.devices()[:1]), ("runs",))
        >>> program = Program(TrainConfig(d=8, n=8, steps=10), 64, ("lr",), 4)
        >>> len(placements(program, mesh, runs=12))
        1
    """
    per_chunk = min(runs, chunk or program.runs_per_device * mesh.devices.size)
    blocks = math.ceil(per_chunk / program.runs_per_device)
    return [(program, device) for _, device in local_blocks(min(blocks, mesh.devices.size), mesh)]


def _compile_into(future: Future, program: Program, device: Any, lowered: Callable[[], object] | None) -> None:
    told = False

    def tell() -> None:  # ``lowered`` once: when XLA starts, or when the program failed before it
        nonlocal told
        if lowered is not None and not told:
            told = True
            lowered()

    try:
        future.set_result(program.compile(device, tell))
    except BaseException as err:  # handed to the thread that asks for the executable
        future.set_exception(err)
    finally:
        tell()


def _program_bytes(compiled) -> int:
    try:
        mem = compiled.memory_analysis()
    except Exception:  # some backends do not report memory
        return 0
    if mem is None:
        return 0
    return int(
        mem.temp_size_in_bytes
        + mem.argument_size_in_bytes
        + mem.output_size_in_bytes
        + getattr(mem, "generated_code_size_in_bytes", 0)
    )


def local_blocks(n_blocks: int, mesh: Mesh) -> list[tuple[int, Any]]:
    """``(block, device)`` for the blocks that run on this process: block ``b`` on device ``b mod D``.

    Examples:
        >>> mesh = Mesh(np.asarray(jax.devices()[:1]), ("runs",))
        >>> [b for b, _ in local_blocks(3, mesh)]
        [0, 1, 2]
    """
    devices = list(mesh.devices.flat)
    here = jax.process_index()
    placed = [(b, devices[b % len(devices)]) for b in range(n_blocks)]
    return [(b, dev) for b, dev in placed if dev.process_index == here]


def gather_blocks(local: dict[int, Any], n_blocks: int, mesh: Mesh, like: Callable[[], Any]) -> list[Any]:
    """Every block's outputs on the host, in block order, on every process.

    ``local`` maps this process's blocks (``local_blocks``) to their outputs (pytrees of arrays);
    ``like()`` gives one block's outputs as ``jax.ShapeDtypeStruct``s (``jax.eval_shape``), used to pad
    the processes that hold fewer blocks than others in the multi-host gather.
    """
    if jax.process_count() == 1:
        return jax.device_get([local[b] for b in range(n_blocks)])
    devices = list(mesh.devices.flat)
    owner = [devices[b % len(devices)].process_index for b in range(n_blocks)]
    owned = {p: [b for b in range(n_blocks) if owner[b] == p] for p in range(jax.process_count())}
    slots = max(len(blocks) for blocks in owned.values())
    slot_of = [owned[owner[b]].index(b) for b in range(n_blocks)]
    empty = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), like())
    mine = [jax.device_get(local[b]) for b in owned[jax.process_index()]]
    mine += [empty] * (slots - len(mine))
    stacked = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *mine)
    gathered = multihost_utils.process_allgather(stacked, tiled=False)  # (processes, slots, ...)
    return [
        jax.tree_util.tree_map(lambda a, p=owner[b], s=slot: np.asarray(a[p, s]), gathered)
        for b, slot in enumerate(slot_of)
    ]


def run_blocks(
    program: Program, mesh: Mesh, keys: np.ndarray, hparams: dict[str, np.ndarray], threads: int = 1
) -> dict[str, Any]:
    """Train ``keys``/``hparams`` (a whole number of blocks of ``program.runs_per_device`` runs) and
    return every run's record on the host, in order; each device runs up to ``threads`` blocks at once
    (``launch_blocks``)."""
    width = program.runs_per_device
    n_blocks = len(keys) // width
    placed = local_blocks(n_blocks, mesh)
    executables = {device: program.executable(device) for _, device in placed}  # compiled here, not on the threads

    def launch(b: int, device: Any) -> Any:
        part = slice(b * width, (b + 1) * width)
        args = jax.device_put((keys[part], {k: v[part] for k, v in hparams.items()}, program.config.data), device)
        return executables[device](*args)

    def like():
        block = make_block(program.config, program.mc_samples, mesh.devices.flat[0].platform)
        return jax.eval_shape(block, *block_shapes(width, program.hparam_names), program.config.data)

    return concatenate(gather_blocks(launch_blocks(placed, launch, threads), n_blocks, mesh, like))


def launch_blocks(placed: list[tuple[int, Any]], launch: Callable[[int, Any], Any], threads: int = 1) -> dict[int, Any]:
    """``launch(b, device)`` for each placed block (``local_blocks``): each block's outputs.

    With one thread, the blocks are dispatched asynchronously from this thread, and each device runs
    its blocks one after another. With ``threads`` > 1, up to that many blocks per device run at
    once, each launched and waited for on a thread of its own (XLA:CPU runs programs called from
    different threads on one device at the same time). The outputs are the same either way.

    Examples:
        >>> placed = local_blocks(3, Mesh(np.asarray(jax.devices()[:1]), ("runs",)))
        >>> outputs = launch_blocks(placed, lambda b, device: jax.device_put(b, device), threads=2)
        >>> [int(outputs[b]) for b in range(3)]
        [0, 1, 2]
    """
    if threads <= 1 or len(placed) <= 1:
        return {b: launch(b, device) for b, device in placed}
    workers = min(len(placed), threads * len({device for _, device in placed}))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {b: pool.submit(lambda b=b, dev=dev: jax.block_until_ready(launch(b, dev))) for b, dev in placed}
        return {b: future.result() for b, future in futures.items()}


def concatenate(blocks: list[Any]) -> Any:
    """Join per-block pytrees of host arrays along their leading runs axis."""
    return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts), *blocks)


def split(tree: Any, width: int) -> list[Any]:
    """Cut a pytree of host arrays along its leading runs axis into blocks of ``width`` runs."""
    n_blocks = len(jax.tree_util.tree_leaves(tree)[0]) // width
    return [jax.tree_util.tree_map(lambda a, b=b: a[b * width : (b + 1) * width], tree) for b in range(n_blocks)]


_SEGMENT_PROGRAMS: dict[tuple, Any] = {}


def segment_programs(
    config: TrainConfig, mc_samples: int, platform: str
) -> tuple[Any, Callable, Callable[[int], Callable], Callable]:
    """Jitted ``start``, ``advance(count)`` and ``finish`` of a block trained in segments, for one
    platform (jit compiles them per device of the inputs; cached by structure). The state is
    donated to ``advance``, so a segment holds one copy of it."""
    key = (config, mc_samples, platform)
    if key in _SEGMENT_PROGRAMS:
        return _SEGMENT_PROGRAMS[key]
    trainer = make_trainer(config)

    start = jax.jit(batch_runs(lambda k, h: trainer.start(wrap_key_data(k), h), config, platform))
    finish = jax.jit(
        batch_runs(
            lambda s, k, h: config.bind(h).record(s.params, s.trace, wrap_key_data(k), mc_samples), config, platform
        )
    )
    advances: dict[int, Any] = {}

    def advance(count: int):
        if count not in advances:

            def one_segment(state, keys, hparams, first):
                step = batch_runs(
                    lambda s, k, h: trainer.advance(s, wrap_key_data(k), h, first, count), config, platform
                )
                return step(state, keys, hparams)

            advances[count] = jax.jit(one_segment, donate_argnums=0)
        return advances[count]

    _SEGMENT_PROGRAMS[key] = programs = (trainer, start, advance, finish)
    if len(_SEGMENT_PROGRAMS) > _MAX_PROGRAMS:
        del _SEGMENT_PROGRAMS[next(iter(_SEGMENT_PROGRAMS))]
    return programs
