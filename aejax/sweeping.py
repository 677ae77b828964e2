"""The sweep engine: thousands of training runs as one compiled program per shape bucket.

Runs are grouped by hidden-unit count into shape buckets (a rate is a mask over the bucket's
``n``), split into chunks sized to a memory budget read from the compiled program's
``memory_analysis()``, and sharded over a ``("runs",)`` mesh of every device (and every host, after
``jax.distributed.initialize``). Run ``i`` trains with the key ``fold_in(key(seed), run seed)``, so
its result does not depend on which other runs, chunks or devices share the sweep. Finished chunks
are written as the sweep goes; rerunning the same sweep into the same ``out`` directory computes
only what is missing. Compiled chunk programs are kept (a few, by structure), so a later sweep
that changes only swept values does not recompile.

A sweep is a pipeline (``run_sweep``): ``aejax._sweep_plan.plan`` (buckets, widths, chunks, manifest
and fingerprint; nothing compiled), ``aejax._sweep_execute.execute`` (each bucket runs as soon as its
program is compiled, while later buckets compile in the background; chunks train whole or in
checkpointed segments, ``aejax._sweep_runners``), ``aejax._sweep_assemble.assemble`` (the Dataset),
then ``results.nc`` is written once. Its options are one frozen ``aejax.sweep_options.SweepOptions``,
the CLI's TOML ``[sweep]`` table field for field.

Examples:
    >>> from aejax.train import TrainConfig
    >>> cfg = TrainConfig(d=8, n=8, steps=10)
    >>> ds = sweep(cfg, {"seed": [0, 1], "rate": [0.5, 1.0]}, mc_samples=64, progress=False)
    >>> ds["risk"].dims, ds.sizes["step"]
    (('seed', 'rate'), 10)
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import jax

from aejax import _outer_axes, _validate
from aejax._sweep_assemble import assemble, trace_coordinates
from aejax._sweep_execute import execute, memory_plan, plan_program
from aejax._sweep_plan import (
    SweepPlan,
    check_time_at_every_d,
    config_description,
    default_mc_samples,
    plan,
)
from aejax._sweep_runners import chunk_checkpoints, segment_blocks, tidy_checkpoints
from aejax.config import TrainConfig
from aejax.results import RunStore, save_results
from aejax.shards import Shard, ShardReport, ShardStore, check_shard
from aejax.sweep_options import SweepOptions

if TYPE_CHECKING:  # the Dataset is built in aejax.results, which imports xarray when it does
    import xarray as xr

__all__ = [
    "SweepOptions",
    "check_time_at_every_d",
    "chunk_checkpoints",
    "config_description",
    "default_mc_samples",
    "memory_plan",
    "plan_program",
    "run_sweep",
    "segment_blocks",
    "sweep",
    "sweep_shard",
    "tidy_checkpoints",
    "trace_coordinates",
]


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
            ``seed``, ``d``, ``time`` (τ: one sweep per value, stacked along ``time``), ``lr``, ``slope``,
            ``margin``, ``rate`` and ``p`` (``aejax.grid.AXES``).
        out: directory for chunk files, ``manifest.json`` and ``results.nc``; ``None`` keeps
            everything in memory. Locked while the sweep runs: a second sweep into it is refused.
            Shards of the sweep (``sweep_shard``, a job array) may fill it first; this then assembles.
        resume: require an earlier sweep in ``out`` and continue it (finished runs of a matching
            sweep in ``out`` are reused in any case; a different sweep there is refused).
        devices: number of devices, a list of devices, or ``None`` for ``default_devices()``.
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
        ``exact_tie_fraction`` (pre-activations exactly 0 on fixed probe samples), ``wall_time``,
        ``loss_trace``, ``risk_trace``, ``identity_likeness_trace``, and ``theory`` and ``status``.
        Every numeric variable is float32, the precision the runs compute in.
        ``theory`` is the theory of each run's source at its rate, NaN where none applies
        (``attrs["theory_kind"]`` names it: ``aejax._sweep_theory``).

    Examples:
        >>> cfg = TrainConfig(d=8, n=8, steps=10)
        >>> sweep(cfg, {"seed": [0, 1]}, mc_samples=64, progress=False)["status"].values.tolist()
        ['ok', 'ok']
    """
    return cast("xr.Dataset", run_sweep(config, grid, _options(locals())))


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
    unknown = sorted(set(options) - set(SweepOptions.names()))
    if unknown:
        raise _validate.InputTypeError(
            f"sweep_shard got unknown options {unknown}; sweep's are {sorted(SweepOptions.names())}"
        )
    if out is None:
        raise _validate.InputError("sweep_shard needs out=, the directory every shard writes into")
    return cast(ShardReport, run_sweep(config, grid, {**options, "out": out}, check_shard(shard)))


def run_sweep(
    config: TrainConfig,
    grid: dict[str, Any] | list[dict[str, Any]],
    options: SweepOptions | dict[str, Any],
    shard: Shard | None = None,
    attrs: dict[str, Any] | None = None,
) -> xr.Dataset | ShardReport:
    """``sweep`` as a pipeline: plan (no compiling), execute into the store, assemble, and write
    ``results.nc`` once. With a ``shard``, only the shard's runs into ``out`` and its ``ShardReport``;
    ``attrs`` are added to the Dataset before it is written (the CLI's description of a data file).

    Examples:
        >>> cfg = TrainConfig(d=8, n=8, steps=10)
        >>> run_sweep(cfg, {"seed": [0, 1]}, SweepOptions(mc_samples=64, progress=False)).sizes["seed"]
        2
    """
    if not isinstance(config, TrainConfig):
        raise _validate.InputTypeError(f"config must be an aejax.TrainConfig, got {type(config).__name__}")
    options = options if isinstance(options, SweepOptions) else SweepOptions(**options)
    if _outer_axes.in_grid(grid):  # static fields (surrogate, time, ...) as axes: one sweep per value, stacked
        return _outer(config, grid, options, shard, attrs)
    the_plan = plan(config, grid, options, shard)
    writer = jax.process_index() == 0
    with _open_store(the_plan) if options.out is not None and writer else contextlib.nullcontext() as store:
        execution = execute(the_plan, store)
        if shard is not None:  # no Dataset: the final sweep assembles
            return ShardReport(shard, the_plan.owned, execution.computed, the_plan.owned - execution.computed)
        ds = assemble(the_plan, execution, attrs)
        if options.out is not None and writer:
            save_results(ds, os.path.join(options.out, "results.nc"))
        return ds


def _outer(config: TrainConfig, grid: Any, options: SweepOptions, shard: Shard | None, attrs: Any) -> Any:
    """A grid with static axes (``time``, ``surrogate``, ...): one pipeline per combination of their
    values, stacked along one dimension per axis (``aejax._outer_axes``)."""

    def part(part_config: TrainConfig, part_grid: Any, part_shard: Shard | None, *, out: Any, **rest: Any) -> Any:
        return run_sweep(part_config, part_grid, {**rest, "out": out}, part_shard)

    return _outer_axes.sweep_outer(part, config, grid, shard, attrs=attrs, **options.as_dict())


def _options(given: dict[str, Any]) -> dict[str, Any]:
    """``sweep``'s keyword options taken from ``given`` (its locals), each missing one at its default."""
    params = inspect.signature(sweep).parameters.values()
    return {p.name: given.get(p.name, p.default) for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _open_store(the_plan: SweepPlan) -> RunStore:
    """The chunk store of the plan's ``out``: ``RunStore``, or ``ShardStore`` for one of several shards."""
    options, manifest = the_plan.options, the_plan.manifest
    out = cast(str, options.out)
    if the_plan.shard is None:
        return RunStore(out, manifest, options.resume)
    return ShardStore(out, manifest, the_plan.shard, options.resume)
