"""The sweep engine: thousands of training runs as one compiled program per shape bucket.

Runs are grouped by hidden-unit count into shape buckets (a rate is a mask over the bucket's
``n``), split into chunks sized to a memory budget read from the compiled program's
``memory_analysis()``, and sharded over a ``("runs",)`` mesh of every device (and every host, after
``jax.distributed.initialize``). Run ``i`` trains with the key ``fold_in(key(seed), run seed)``, so
its result does not depend on which other runs, chunks or devices share the sweep. Finished chunks
are written as the sweep goes; rerunning the same sweep into the same ``out`` directory computes
only what is missing. Compiled chunk programs are kept (a few, by structure), so a later sweep
that changes only swept values does not recompile.

Examples:
    >>> from aejax.train import TrainConfig
    >>> cfg = TrainConfig(d=32, n=32, steps=200, mode="population")
    >>> ds = sweep(cfg, {"seed": [0, 1], "rate": [0.5, 1.0]}, progress=False)
    >>> ds["risk"].dims, ds.sizes["step"]
    (('seed', 'rate'), 20)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from aejax import _outer_axes, _validate, record, theory
from aejax.checkpoint import ChunkCheckpoints, read_proof
from aejax.checkpoint import remove as remove_checkpoint
from aejax.config import MAX_STEPS, TrainConfig
from aejax.devices import default_devices, make_mesh, memory_budget_bytes
from aejax.grid import Grid, bucket_sizes, units
from aejax.hparams import default_hparams
from aejax.identity import describe
from aejax.programs import (
    MAX_RUNS_PER_DEVICE,
    Program,
    block_shapes,
    compile_ahead,
    concatenate,
    default_runs_per_device,
    gather_blocks,
    local_blocks,
    placements,
    run_blocks,
    segment_programs,
    split,
)
from aejax.progress import ChunkProgress
from aejax.results import RunStore, build_dataset, fingerprint, save_results
from aejax.shards import Shard, ShardReport, ShardStore, check_shard, owned_runs
from aejax.sources import Source
from aejax.train import run_key

if TYPE_CHECKING:  # the Dataset is built in aejax.results, which imports xarray when it does
    import xarray as xr

__all__ = ["config_description", "plan_program", "sweep", "sweep_shard"]

DEFAULT_MC_SAMPLES = 16384  # Monte Carlo samples of each run's final risk at d <= MC_REF_D
MC_REF_D = 128
MIN_MC_SAMPLES = 1024


def default_mc_samples(d: int) -> int:
    """Monte Carlo samples of a run's final risk by default: 16384 up to d = 128, then 16384·128/d,
    at least 1024. A sample's error ||x − x̂||²/d has a variance that falls as 1/d, so the standard
    error stays about the same at every d while the cost per run grows as n, not n·d.

    Examples:
        >>> default_mc_samples(64), default_mc_samples(512), default_mc_samples(8192)
        (16384, 4096, 1024)
    """
    return max(MIN_MC_SAMPLES, min(DEFAULT_MC_SAMPLES, DEFAULT_MC_SAMPLES * MC_REF_D // d))


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
    widest block (at most ``default_runs_per_device(bucket_runs)`` runs) whose memory fits ``budget``.

    The width follows from ``bucket_runs``, the bucket's number of runs (finished or not), so a
    resumed sweep runs its remaining runs with the same program as an uninterrupted one, and from
    nothing about the devices, so any device count gives the same bits.

    Raises:
        InputError (a ValueError): when even one run per device does not fit, or a requested
            ``runs_per_device`` does not.
    """
    device = next(dev for dev in mesh.devices.flat if dev.process_index == jax.process_index())
    width = default_runs_per_device(bucket_runs) if runs_per_device is None else runs_per_device
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


def _ahead(todo: list, samples_at: dict[int, int], names: tuple[str, ...], width: int | None, mesh: Mesh, chunk):
    """The block programs of the pending buckets ``todo`` at their default width, on the devices
    that will run them, in the order the sweep runs them (for ``compile_ahead``)."""
    jobs = []
    for config, members, pending in todo:
        program = Program(config, samples_at[config.d], names, width or default_runs_per_device(len(members)))
        jobs += placements(program, mesh, len(pending), chunk)
    return jobs


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


def _device_description(mesh: Mesh) -> dict[str, Any]:
    first = mesh.devices.flat[0]
    return {
        "platform": first.platform,
        "device_kind": first.device_kind,
        "devices": int(mesh.devices.size),
        "processes": jax.process_count(),
        "host": platform.node(),
    }


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    names = ("aejax", "jax", "jaxlib", "numpy", "optax", "flax", "xarray")
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "missing"
    return out


def config_description(config: TrainConfig, strict: bool = True) -> dict[str, Any]:
    """JSON-able description of a config that is the same in every process: users' objects by
    their stable identity (``aejax.identity.describe``: a source by type, static fields and content
    hash; an ``aejax.named`` object by its name; a top-level function by ``module:qualname``),
    ``eval_every`` as resolved (``config.trace_every``).

    Raises:
        InputError: with ``strict``, a field holds an object without a stable identity (the message
            says to pass ``aejax.named(obj, "name")``); without, such objects are described by
            their ``repr`` (a sweep kept in memory, whose fingerprint never leaves the process).

    Examples:
        >>> import optax, aejax
        >>> config = TrainConfig(d=8, n=8, steps=10, optimizer=aejax.named(optax.adam(1.0), "adam"))
        >>> config_description(config)["optimizer"]
        {'name': 'adam'}
    """
    out = {f.name: describe(f.name, getattr(config, f.name), strict) for f in dataclasses.fields(config)}
    out["eval_every"] = config.trace_every
    return out


def sweep(
    config: TrainConfig,
    grid: dict[str, Any] | list[dict[str, Any]],
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    devices: int | Sequence[jax.Device] | None = None,  # pyright: ignore[reportInvalidTypeForm] (alias of a compiled class)
    chunk: int | None = None,
    runs_per_device: int | None = None,
    seed: int = 0,
    mc_samples: int | None = None,
    max_padding: float = 0.25,
    memory_budget: int | None = None,
    progress: bool = True,
    checkpoint_every: int | None = None,
    checkpoint_seconds: float | None = None,
) -> xr.Dataset:
    """Train every run of ``grid`` and collect final risks, traces and theory in a Dataset.

    Args:
        config: static structure of each run; its ``n`` sets the rate of runs whose grid has no
            ``rate`` axis (otherwise ``n`` per bucket is ``max round(rate·d)`` over its runs).
        grid: ``{axis: values}`` (full product) or a list of ``{axis: value}`` runs; axes are
            ``seed``, ``d``, ``lr``, ``slope``, ``margin``, ``rate`` and ``p`` (``aejax.grid.AXES``), and
            in a product grid any other ``TrainConfig`` field except ``n`` (``time``, ``surrogate``,
            ``optimizer``, ...: one sweep per value, stacked along a leading dimension labelled with the
            values run; ``aejax/_outer_axes.py``).
        out: directory for chunk files, ``manifest.json`` and ``results.nc``; ``None`` keeps
            everything in memory. Locked while the sweep runs: a second sweep into it is refused.
            Shards of the sweep (``sweep_shard``, a job array) may fill it first; this then assembles.
        resume: require an earlier sweep in ``out`` and continue it (finished runs of a matching
            sweep in ``out`` are reused in any case; a different sweep there is refused).
        devices: number of devices, a list of devices, or ``None`` for ``default_devices(config)``.
        chunk: runs per chunk, the unit written to ``out`` and resumed (default: one block per
            device). A chunk is split into blocks of ``runs_per_device`` runs, one per device.
        runs_per_device: runs per block, the width of the compiled program that every device runs
            (default: ``aejax.programs.default_runs_per_device`` of the bucket's size, lowered to fit
            the memory budget). A run's bits depend on this width, not on the device count, the
            host count or ``chunk`` (``aejax.programs``).
        seed: base seed; run keys are ``fold_in(key(seed), run seed)``.
        mc_samples: Monte Carlo samples for each run's final risk (``None``: ``default_mc_samples(d)``).
        max_padding: largest padded-work fraction allowed when grouping rates into buckets.
        memory_budget: bytes per device (default: ``memory_budget_bytes``).
        progress: show a progress bar with ETA over chunks (and steps within a checkpointed chunk).
        checkpoint_every: save each chunk's training state every this many steps (rounded to whole
            trace blocks) under ``out/checkpoints``; a rerun continues an interrupted chunk from its
            last checkpoint, bit-identically (``aejax.checkpoint``). Needs ``out``.
        checkpoint_seconds: save it when this many seconds have passed since the last save (checked
            after every trace block); may be combined with ``checkpoint_every``.

    Returns:
        ``xarray.Dataset`` with one dimension per swept axis (or ``run``), plus the traces' axis:
        ``step``, or ``tau`` (τ = samples seen per input dimension, with ``step`` as a coordinate
        where it is the same for every d) when the config is given ``time=``
        (``trace_coordinates``); variables (``aejax.record.FIELDS``) ``risk``, ``risk_se``,
        ``exact_risk``, ``identity_likeness``, ``inverse_participation_ratio``, ``heldout_risk``,
        ``train_risk``, ``gaussian_equivalent_risk`` (real data; NaN otherwise), ``coherence``,
        ``wall_time``, ``loss_trace``, ``risk_trace``, ``identity_likeness_trace``, and ``theory``
        and ``status``. Every numeric variable is float32, the precision the runs compute in
        (``theory``, ``aejax.theory.gaussian_limit`` at each run's rate, included).

    Examples:
        >>> cfg = TrainConfig(d=16, n=16, steps=20, mode="population")
        >>> sweep(cfg, {"seed": [0, 1]}, mc_samples=256, progress=False)["status"].values.tolist()
        ['ok', 'ok']
    """
    return cast("xr.Dataset", _sweep(config, grid, None, **_options(locals())))


def sweep_shard(
    config: TrainConfig,
    grid: dict[str, Any] | list[dict[str, Any]],
    shard: Shard | tuple[int, int] | str,
    *,
    out: str | os.PathLike,
    **options: Any,
) -> ShardReport:
    """Compute one shard's share of a sweep into ``out``, for independent tasks such as a SLURM job
    array (``aejax.shards``): no coordinator, nothing assembled. Every task runs the same sweep with
    its own shard; a final ``sweep(config, grid, out=out, ...)`` with the same options finds every
    run done and returns the Dataset, bit for bit the one-process sweep's (runs a task did not finish
    are computed then).

    Args:
        config: as for ``sweep`` (the same in every task).
        grid: as for ``sweep`` (the same in every task).
        shard: ``(K, N)``, ``"K/N"`` or ``"auto"`` (the SLURM job array's task): in each shape bucket
            the runs at positions ``p mod N == K``.
        out: the directory every task shares (required).
        **options: ``sweep``'s other options, the same in every task and in the final sweep.

    Returns:
        ``ShardReport``: the shard's runs, how many it computed and how many were already in ``out``.

    Examples:
        >>> import tempfile
        >>> cfg, grid, out = TrainConfig(d=8, n=8, steps=10), {"seed": [0, 1, 2]}, tempfile.mkdtemp()
        >>> [sweep_shard(cfg, grid, (k, 2), out=out, mc_samples=64, progress=False).computed for k in (0, 1)]
        [2, 1]
        >>> sweep(cfg, grid, out=out, mc_samples=64, progress=False).attrs["reused_runs"]
        3
    """
    allowed = _options({})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise _validate.InputTypeError(f"sweep_shard got unknown options {unknown}; sweep's are {sorted(allowed)}")
    if out is None:
        raise _validate.InputError("sweep_shard needs out=, the directory every shard writes into")
    return cast(ShardReport, _sweep(config, grid, check_shard(shard), **{**allowed, **options, "out": out}))


def _options(given: dict[str, Any]) -> dict[str, Any]:
    """``sweep``'s keyword options taken from ``given`` (its locals), each missing one at its default."""
    params = inspect.signature(sweep).parameters.values()
    return {p.name: given.get(p.name, p.default) for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _sweep(
    config: TrainConfig,
    grid: dict[str, Any] | list[dict[str, Any]],
    shard: Shard | None,
    *,
    out: str | os.PathLike | None,
    resume: bool,
    devices: int | Sequence[jax.Device] | None,  # pyright: ignore[reportInvalidTypeForm] (alias of a compiled class)
    chunk: int | None,
    runs_per_device: int | None,
    seed: int,
    mc_samples: int | None,
    max_padding: float,
    memory_budget: int | None,
    progress: bool,
    checkpoint_every: int | None,
    checkpoint_seconds: float | None,
) -> xr.Dataset | ShardReport:
    """``sweep``; with a ``shard``, only the shard's runs, into ``out``, and its ``ShardReport``."""
    if not isinstance(config, TrainConfig):
        raise _validate.InputTypeError(f"config must be an aejax.TrainConfig, got {type(config).__name__}")
    if _outer_axes.in_grid(grid):  # static fields (surrogate, time, ...) as axes: one sweep per value, stacked
        options = {k: v for k, v in locals().items() if k not in ("config", "grid", "out", "shard")}
        return _outer_axes.sweep_outer(_sweep, config, grid, shard, out=out, **options)
    if mc_samples is not None:
        _validate.positive_int("mc_samples", mc_samples, minimum=2, maximum=MAX_STEPS)  # 2 for a standard error
    if chunk is not None:
        _validate.positive_int("chunk", chunk, maximum=MAX_STEPS)
    if runs_per_device is not None:
        _validate.positive_int("runs_per_device", runs_per_device, maximum=MAX_RUNS_PER_DEVICE)
    _validate.non_negative_int("seed", seed)
    if seed >= 2**63:
        raise _validate.InputError(f"seed must be below 2**63, got {seed}")
    if out is not None:
        _validate.path("out", out)
    _validate.boolean("resume", resume)
    _validate.boolean("progress", progress)
    if checkpoint_every is not None:
        _validate.positive_int("checkpoint_every", checkpoint_every)
    if checkpoint_seconds is not None:
        _validate.positive_number("checkpoint_seconds", checkpoint_seconds, scalar=True)
    checkpointing = checkpoint_every is not None or checkpoint_seconds is not None
    if checkpointing and out is None:
        raise _validate.InputError(
            "checkpoint_every/checkpoint_seconds need out= (checkpoints are saved under out/checkpoints)"
        )
    spec = Grid.from_spec(grid, config.d)
    if "d" in spec.runs[0] and isinstance(config.source, Source):
        raise _validate.InputError(
            f"a 'd' grid axis needs a named source (the config's source object has d={config.source.d}); "
            "sweep d with source='gaussian', 'bg' or 'sr'"
        )
    _check_axes_have_effect(config, spec)
    mesh = make_mesh(default_devices(config) if devices is None else devices)
    budget = (
        memory_budget_bytes(mesh) if memory_budget is None else _validate.positive_int("memory_budget", memory_budget)
    )
    run_dims = [cast(int, run.get("d", config.d)) for run in spec.runs]  # Grid makes every d an int
    check_time_at_every_d(config.time, config.batch, config.mode, run_dims)
    n_units = [_units_of(run, d, config) for run, d in zip(spec.runs, run_dims, strict=True)]
    cost_power = 2.0 if config.mode == "population" else 1.0
    buckets = {
        d: bucket_sizes([n for n, dd in zip(n_units, run_dims, strict=True) if dd == d], max_padding, cost_power)
        for d in sorted(set(run_dims), reverse=True)
    }
    manifest = {
        "config": config_description(
            config, strict=out is not None
        ),  # as given: a resume may add a d that changes the trace
        "runs": list(spec.runs),
        "dims": list(spec.dims),
        "seed": seed,
        "mc_samples": mc_samples,
    }
    given, config = config, _shared_trace_points(config)
    _check_trace_at_every_d(given, config, sorted(set(run_dims)))
    samples_at = {d: default_mc_samples(d) if mc_samples is None else mc_samples for d in buckets}
    is_writer = jax.process_index() == 0
    with (
        _open_store(out, manifest, resume, shard)
        if out is not None and is_writer
        else contextlib.nullcontext() as store
    ):
        n_steps = len(config.trace_steps)
        done = _share_finished(store.load(n_steps, len(spec.runs)) if store else {}, len(spec.runs), n_steps)
        records: dict[int, dict[str, np.ndarray]] = dict(done)
        hparam_names = tuple(k for k in spec.runs[0] if k not in ("seed", "d"))
        stats: dict[str, Any] = {"chunks": 0, "chunk_fill": []}

        todo, owned = [], 0  # owned: the runs this sweep (or shard) computes or reuses
        for d, d_buckets in buckets.items():
            for bucket_n in sorted(set(d_buckets.values()), reverse=True):
                members = [
                    i
                    for i, (n, dd) in enumerate(zip(n_units, run_dims, strict=True))
                    if dd == d and d_buckets[n] == bucket_n
                ]
                share = owned_runs(members, shard)
                owned += len(share)
                pending = [i for i in share if i not in records]
                if pending:
                    todo.append((dataclasses.replace(config, d=d, n=bucket_n), members, pending))
        compile_ahead(_ahead(todo, samples_at, hparam_names, runs_per_device, mesh, chunk))
        plans = []
        for bucket_config, members, pending in todo:
            program = plan_program(
                bucket_config,
                samples_at[bucket_config.d],
                mesh,
                len(members),
                hparam_names,
                runs_per_device,
                budget,
            )
            plans.append((program, pending, bucket_config))

        memory = memory_plan(plans, mesh, budget)
        if progress and is_writer and memory:
            print(memory["summary"], flush=True)
        chunk_runs = {id(prog): chunk or prog.runs_per_device * mesh.devices.size for prog, _, _ in plans}
        total_chunks = sum(math.ceil(len(p) / chunk_runs[id(prog)]) for prog, p, _ in plans)
        sweep_fingerprint = fingerprint(manifest)  # the chunk files' tag: a checkpoint belongs to this sweep only
        checkpoint_root = os.path.join(out, "checkpoints") if out is not None else ""
        settings = {"checkpoint_every": checkpoint_every, "checkpoint_seconds": checkpoint_seconds}

        def checkpoints_of(program: Program, bucket_config: TrainConfig, ids: np.ndarray) -> ChunkCheckpoints:
            return chunk_checkpoints(checkpoint_root, sweep_fingerprint, program, bucket_config, ids, settings)

        expected: list[ChunkCheckpoints] = []
        if checkpointing and is_writer and out is not None:
            expected = [
                checkpoints_of(program, bucket_config, np.asarray(pending[start : start + chunk_runs[id(program)]]))
                for program, pending, bucket_config in plans
                for start in range(0, len(pending), chunk_runs[id(program)])
            ]
            tidy_checkpoints(checkpoint_root, expected, set(records), announce=True)
        with ChunkProgress(total_chunks, enabled=progress and is_writer, done_runs=len(done)) as bar:
            for program, pending, bucket_config in plans:
                size = chunk_runs[id(program)]
                for start in range(0, len(pending), size):
                    ids = np.asarray(pending[start : start + size])
                    checkpoints = None
                    if checkpointing and is_writer and out is not None:  # out is set whenever checkpointing
                        checkpoints = checkpoints_of(program, bucket_config, ids)
                    if checkpointing:
                        chunk_records, seconds = _run_chunk_in_segments(
                            program,
                            mesh,
                            spec,
                            ids,
                            seed,
                            hparam_names,
                            checkpoint_every,
                            checkpoint_seconds,
                            checkpoints,
                            bar,
                        )
                    else:
                        chunk_records, seconds = _run_chunk(program, mesh, spec, ids, seed, hparam_names)
                    chunk_records["wall_time"] = np.full(len(ids), seconds / len(ids))
                    if store:
                        store.save(ids, chunk_records)
                    for j, run in enumerate(ids.tolist()):
                        records[run] = {name: chunk_records[name][j] for name in record.NAMES}
                    if checkpoints is not None:  # also those of other settings whose runs are now all stored
                        checkpoints.clear()
                        tidy_checkpoints(checkpoint_root, expected, set(records), announce=False)
                    stats["chunks"] += 1
                    width = program.runs_per_device
                    stats["chunk_fill"].append(len(ids) / (width * math.ceil(len(ids) / width)))
                    bar.advance(len(ids))

        if shard is not None:  # no Dataset: the final sweep assembles
            computed = sum(len(p) for _, p, _ in plans)
            return ShardReport(shard, owned, computed, owned - computed)
        stacked = {name: np.stack([records[i][name] for i in range(len(spec.runs))]) for name in record.NAMES}
        rates = np.asarray([n / d for n, d in zip(n_units, run_dims, strict=True)])
        bucket_attr = (
            {str(k): v for k, v in buckets[config.d].items()}
            if list(buckets) == [config.d]
            else {str(d): {str(k): v for k, v in b.items()} for d, b in buckets.items()}
        )
        overhead = (
            sum(buckets[d][n] ** cost_power for n, d in zip(n_units, run_dims, strict=True))
            / sum(n**cost_power for n in n_units)
            - 1
        )  # grid.padding_overhead, over every d
        attrs = {
            "config": manifest["config"],
            "seed": seed,
            "mc_samples": next(iter(set(samples_at.values())))
            if len(set(samples_at.values())) == 1
            else json.dumps({str(d): m for d, m in sorted(samples_at.items())}),
            "versions": _versions(),
            "device": _device_description(mesh),
            "buckets": bucket_attr,
            "padding_overhead": overhead,
            "compilations": sum(prog.compilations for prog, _, _ in plans),
            "compile_seconds": sum(prog.compile_seconds for prog, _, _ in plans),
            "runs_per_device": sorted({prog.runs_per_device for prog, _, _ in plans}),
            "chunks": stats["chunks"],
            "reused_runs": len(done),
            "mean_chunk_fill": float(np.mean(stats["chunk_fill"])) if stats["chunk_fill"] else 1.0,
            "memory": memory,
        }
        theory_values = np.asarray(theory.gaussian_limit(rates, config.activation))
        ds = build_dataset(
            spec,
            stacked,
            trace_coordinates(config, set(run_dims), spec),
            theory_values,
            attrs,
            _expected_nonzero(config, spec, samples_at),
        )
        if out is not None and is_writer:
            save_results(ds, os.path.join(out, "results.nc"))
        return ds


def _open_store(out: str | os.PathLike, manifest: dict[str, Any], resume: bool, shard: Shard | None) -> RunStore:
    """The chunk store of ``out``: ``RunStore``, or ``ShardStore`` for one of several shards."""
    return RunStore(out, manifest, resume) if shard is None else ShardStore(out, manifest, shard, resume)


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


def _units_of(run: dict[str, Any], d: int, config: TrainConfig) -> int:
    """Hidden units of a run at dimension ``d``: ``round(rate·d)``, or the config's rate n/d."""
    return units(run["rate"] if "rate" in run else config.n / config.d, d)


def _shared_trace_points(config: TrainConfig) -> TrainConfig:
    """``config`` with its default trace resolved at the config as given (``TrainConfig.trace_count``
    and ``trace_every`` at its ``d`` and ``n``), so that every run of the sweep is traced at the same
    points whatever else the grid holds."""
    if config.trace_points is None:
        config = dataclasses.replace(config, trace_points=config.trace_count)
    if config.eval_every is None and not config.traced_by_time:
        config = dataclasses.replace(config, eval_every=config.trace_every)
    return config


def check_time_at_every_d(time: Any, batch: Any, mode: Any, dims: Sequence[int]) -> None:
    """Refuse a ``time`` shorter than one optimizer step at the smallest of ``dims`` (one line naming
    the value and the minimum, batch/d there): such a run would train a whole step, more than the τ
    its results would carry. Values of the wrong type are left to ``TrainConfig``'s checks."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (time, batch))
    if not numbers or mode == "population" or not dims or batch <= 0:
        return
    d = min(int(v) for v in dims)
    minimum = batch / d
    if 0 < time < minimum * (1 - 1e-12):
        raise _validate.InputError(
            f"time={time:g} is shorter than one optimizer step at d={d}, the sweep's smallest d "
            f"(one step trains τ = batch/d = {batch}/{d} = {minimum:g}); the minimum is time={minimum:g}"
        )


def _check_trace_at_every_d(given: TrainConfig, config: TrainConfig, dims: list[int]) -> None:
    """Every d of the sweep must have distinct trace steps. When the trace points were not given (the
    default resolved at the config's d), say so and name the most that every d allows."""
    for d in dims:
        try:
            dataclasses.replace(config, d=d)
        except _validate.InputError:
            if given.trace_points is not None or config.trace_points is None:
                raise
            fits = [
                k for k in range(config.trace_points - 1, 0, -1) if _trace_fits(config, k, dims)
            ]  # the largest first
            hint = f"set trace_points to at most {fits[0]}" if fits else "set trace_points lower"
            at_d = dataclasses.replace(config, d=d, trace_points=1)
            raise _validate.InputError(
                f"the default trace of {config.trace_points} points (resolved at d={config.d}) needs distinct "
                f"trace steps at every d, but d={d} trains only {at_d.total_steps} steps (batch={config.batch}"
                + (f", time={config.time:g}" if config.time is not None else "")
                + f"); {hint}, or train longer"
            ) from None


def _trace_fits(config: TrainConfig, points: int, dims: list[int]) -> bool:
    try:
        for d in dims:
            dataclasses.replace(config, d=d, trace_points=points)
    except _validate.InputError:
        return False
    return True


def trace_coordinates(config: TrainConfig, dims: set[int], grid: Grid | None = None) -> dict[str, Any]:
    """Coordinates of the results' trace dimension: ``tau`` for runs given a ``time``, else ``step``.

    With one d, the other one is a coordinate, and ``tau`` holds the τ each point actually trained
    (its step·batch/d, which an early log-spaced point or a rounded step can put above the grid's
    value). With several d, ``tau`` is the τ grid they share and the truth is kept per d: coordinates
    ``step`` and ``tau_trained`` over (``d``, ``tau``), or (``run``, ``tau``) for a list of runs (given
    the sweep's ``grid``).

    Examples:
        >>> list(trace_coordinates(TrainConfig(d=64, n=64, time=4.0, batch=16, trace_points=4), {64, 128}))
        ['tau']
        >>> log = TrainConfig(d=64, n=64, time=64.0, batch=16, trace_points=4, trace_spacing="log")
        >>> [round(t, 3) for t in log.trace_taus]  # the grid: its first point is less than one step (0.25)
        [0.064, 0.64, 6.4, 64.0]
        >>> trace_coordinates(log, {64})["tau"].tolist()  # labels: the τ of the steps trained
        [0.25, 0.75, 6.5, 64.0]
    """
    if config.time is not None:
        if len(dims) == 1:
            at_d = dataclasses.replace(config, d=next(iter(dims)))
            steps = np.asarray(at_d.trace_steps)
            return {"tau": steps * at_d.tau_per_step, "step": ("tau", steps)}
        coords: dict[str, Any] = {"tau": np.asarray(config.trace_taus)}
        if grid is not None:
            coords.update(_trained_per_run(config, grid))
        return coords
    coords = {"step": np.asarray(config.trace_steps)}
    if len(dims) == 1:
        d = next(iter(dims))
        coords["tau"] = ("step", coords["step"] * dataclasses.replace(config, d=d).tau_per_step)
    return coords


def _trained_per_run(config: TrainConfig, grid: Grid) -> dict[str, Any]:
    """``step`` and ``tau_trained`` of every trace point at each d of ``grid`` (over ``d`` when it is a
    grid dimension, else over ``run``), for a sweep on a shared τ grid."""
    by_d = {d: dataclasses.replace(config, d=d) for d in {int(run.get("d", config.d)) for run in grid.runs}}
    if "d" in grid.dims:
        order = [int(d) for d in grid.coords["d"]]
        dim = "d"
    else:
        order = [int(run.get("d", config.d)) for run in grid.runs]
        dim = "run"
    steps = np.asarray([by_d[d].trace_steps for d in order])
    taus = steps * np.asarray([by_d[d].tau_per_step for d in order])[:, None]
    return {"step": ((dim, "tau"), steps), "tau_trained": ((dim, "tau"), taus)}


def _chunk_inputs(
    width: int, grid: Grid, ids: np.ndarray, seed: int, hparam_names: tuple[str, ...]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run keys and swept values of the runs ``ids``, padded with copies of the last one to whole
    blocks of ``width`` runs."""
    padded = np.concatenate([ids, np.full(-len(ids) % width, ids[-1])])
    chosen = [grid.runs[i] for i in padded.tolist()]
    keys = np.stack([np.asarray(jax.random.key_data(run_key(seed, run.get("seed", 0)))) for run in chosen])
    return keys, {name: np.asarray([run[name] for run in chosen], np.float32) for name in hparam_names}


def _ineffective_axes(config: TrainConfig) -> dict[str, str]:
    """Swept axes that change nothing for ``config``, with the reason."""
    sign_surrogate = config.activation == "sign" and config.surrogate != "ste"
    out = {}
    if not sign_surrogate:
        out["slope"] = (
            f"the surrogate slope only acts on activation 'sign' with a surrogate other than 'ste' "
            f"(here activation={config.activation!r}, surrogate={config.surrogate!r})"
        )
    if not (sign_surrogate or config.activation == "helu"):
        out["margin"] = (
            f"the margin only acts on activation 'helu', or 'sign' with a surrogate other than 'ste' "
            f"(here activation={config.activation!r}, surrogate={config.surrogate!r})"
        )
    if not (isinstance(config.source, str) and not config.is_gaussian) and config.decoder == "linear":
        source = config.source if isinstance(config.source, str) else type(config.source).__name__
        out["p"] = (
            f"the sparsity p only acts on a named sparse source ('bg', 'sr') or a non-linear decoder "
            f"(here source={source!r}, decoder={config.decoder!r})"
        )
    return out


def _check_axes_have_effect(config: TrainConfig, grid: Grid) -> None:
    """Refuse a swept axis that changes nothing (several values would give identical copies); warn about a
    single such value unless it is the default (it is ignored)."""
    defaults = default_hparams(config)
    for axis, reason in _ineffective_axes(config).items():
        values = sorted({run[axis] for run in grid.runs if axis in run})
        if len(values) > 1:
            raise _validate.InputError(
                f"grid axis {axis!r} has no effect: {reason}; its values {values} would give identical runs"
            )
        if values and values[0] != defaults[axis]:
            warnings.warn(f"grid axis {axis!r} = {values[0]} is ignored: {reason}", UserWarning, stacklevel=3)


def _expected_nonzero(config: TrainConfig, grid: Grid, samples_at: dict[int, int]) -> np.ndarray | None:
    """Per run, mc_samples·d·p: the non-zero input coordinates expected over the final risk's Monte
    Carlo samples of a sparse source (``None`` for other sources; see ``results.run_status``);
    ``samples_at`` maps each d to its Monte Carlo sample count."""
    if config.is_gaussian:
        return None
    dims = [cast(int, run.get("d", config.d)) for run in grid.runs]
    if isinstance(config.source, str):  # a named sparse source takes the swept p (default 1)
        return np.asarray(
            [samples_at[d] * d * float(run.get("p", 1.0)) for run, d in zip(grid.runs, dims, strict=True)]
        )
    p = getattr(config.source, "p", None)
    if p is None:  # a Source object without a sparsity (e.g. Empirical data)
        return None
    return np.asarray([samples_at[d] * d * float(p) for d in dims])


def _run_chunk(
    program: Program, mesh: Mesh, grid: Grid, ids: np.ndarray, seed: int, hparam_names: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], float]:
    """Run the runs ``ids`` in blocks of the program's width, one block per device at a time."""
    keys, hparams = _chunk_inputs(program.runs_per_device, grid, ids, seed, hparam_names)
    start = time.perf_counter()
    host = run_blocks(program, mesh, keys, hparams)
    seconds = time.perf_counter() - start
    return {name: np.asarray(value)[: len(ids)] for name, value in host.items()}, seconds


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


def _run_chunk_in_segments(
    program: Program,
    mesh: Mesh,
    grid: Grid,
    ids: np.ndarray,
    seed: int,
    hparam_names: tuple[str, ...],
    checkpoint_every: int | None,
    checkpoint_seconds: float | None,
    checkpoints: ChunkCheckpoints | None,
    bar: ChunkProgress,
) -> tuple[dict[str, np.ndarray], float]:
    """Like ``_run_chunk``, in segments of trace blocks with a checkpoint between them; continues
    from the chunk's newest checkpoint when there is one (only process 0 reads and writes them)."""
    config, width = program.config, program.runs_per_device
    trainer, start_fn, advance, finish = segment_programs(config, program.mc_samples, mesh.devices.flat[0].platform)
    keys, hparams = _chunk_inputs(width, grid, ids, seed, hparam_names)
    n_blocks = len(keys) // width
    placed = local_blocks(n_blocks, mesh)
    inputs = {
        b: jax.device_put(
            (keys[b * width : (b + 1) * width], {k: v[b * width : (b + 1) * width] for k, v in hparams.items()}), dev
        )
        for b, dev in placed
    }

    def like():
        return jax.eval_shape(start_fn, *block_shapes(width, hparam_names))

    def chunk_state(states):
        return concatenate(gather_blocks(states, n_blocks, mesh, like))

    started = time.perf_counter()
    states = {b: start_fn(*inputs[b]) for b, _ in placed}
    first = 0
    restored = checkpoints.restore(chunk_state(states)) if checkpoints is not None else None
    if jax.process_count() > 1:
        restored = _broadcast_restored(restored, chunk_state(states))
    if restored is not None:
        first, host_state = restored
        blocks = split(jax.tree_util.tree_map(np.asarray, host_state), width)
        states = {b: jax.device_put(blocks[b], dev) for b, dev in placed}
    last_save = time.perf_counter()
    steps = config.trace_steps
    segment = segment_blocks(config, checkpoint_every)
    while first < trainer.blocks:
        count = min(segment, trainer.blocks - first)
        states = {b: advance(count)(states[b], *inputs[b], jnp.int32(first)) for b, _ in placed}
        first += count
        bar.steps(steps[first - 1], config.total_steps)
        due = checkpoint_every is not None or time.perf_counter() - last_save >= (checkpoint_seconds or 0.0)
        if first < trainer.blocks and due:
            host_state = chunk_state(states)  # every process takes part in the gather; process 0 writes
            if checkpoints is not None:
                checkpoints.save(first, host_state)
            last_save = time.perf_counter()
    records = {b: finish(states[b], *inputs[b]) for b, _ in placed}

    def record_like():
        return jax.eval_shape(finish, like(), *block_shapes(width, hparam_names))

    host = concatenate(gather_blocks(records, n_blocks, mesh, record_like))
    seconds = time.perf_counter() - started
    return {name: np.asarray(value)[: len(ids)] for name, value in host.items()}, seconds


def _broadcast_restored(restored: tuple[int, Any] | None, like: Any) -> tuple[int, Any] | None:
    """Process 0's restored checkpoint (or none), on every process."""
    block, state = restored if restored is not None else (-1, like)
    block, state = multihost_utils.broadcast_one_to_all((np.int64(block), state))
    return None if int(block) < 0 else (int(block), state)


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
