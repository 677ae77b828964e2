"""Assemble a sweep's Dataset from its plan and its records: the stacked records, the trace
coordinates, the theory column (``aejax._sweep_theory``), the run status and the attributes.

``assemble`` is pure (it writes nothing): ``aejax.sweep`` writes ``results.nc`` once, after it.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from typing import TYPE_CHECKING, Any, cast

import jax
import numpy as np
from jax.sharding import Mesh

from aejax import _build, record
from aejax._sweep_execute import Execution
from aejax._sweep_plan import SweepPlan
from aejax._sweep_theory import DESCRIPTIONS, theory_column
from aejax.config import TrainConfig
from aejax.grid import Grid
from aejax.results import build_dataset

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["assemble", "trace_coordinates"]


def assemble(plan: SweepPlan, execution: Execution, attrs: dict[str, Any] | None = None) -> xr.Dataset:
    """The Dataset of a finished sweep: every run of ``plan`` from ``execution.records``.

    Args:
        plan: the sweep's plan (``aejax._sweep_plan.plan``).
        execution: its records (every run of the grid) and how they were computed.
        attrs: more attributes (e.g. the CLI's description of a data file), added last.

    Returns:
        The ``xarray.Dataset`` that ``aejax.sweep`` returns.
    """
    runs = plan.grid.runs
    stacked = {name: np.stack([execution.records[i][name] for i in range(len(runs))]) for name in record.NAMES}
    rates = [n / d for n, d in zip(plan.n_units, plan.run_dims, strict=True)]
    values, kind = theory_column(plan.config, runs, rates)
    ds = build_dataset(
        plan.grid,
        stacked,
        trace_coordinates(plan.config, set(plan.run_dims), plan.grid),
        values,
        {**_attrs(plan, execution), "theory_kind": kind, **(attrs or {})},
        _expected_nonzero(plan.config, plan.grid, plan.samples_at),
    )
    ds["theory"].attrs.update(long_name=f"theory value ({DESCRIPTIONS[kind]})", theory=kind)
    return ds


def _attrs(plan: SweepPlan, execution: Execution) -> dict[str, Any]:
    """The Dataset's attributes: what was swept, with what, on what, and how it went."""
    programs, samples = execution.programs, plan.samples_at
    fill = execution.chunk_fill
    return {
        "config": plan.manifest["config"],
        "seed": plan.options.seed,
        "mc_samples": next(iter(set(samples.values())))
        if len(set(samples.values())) == 1
        else json.dumps({str(d): m for d, m in sorted(samples.items())}),
        "versions": _build.versions(),
        "reused_builds": execution.reused_builds,  # [] unless runs were reused from another build
        "device": _device_description(plan.mesh),
        **_bucket_attrs(plan),
        "compilations": sum(p.compilations for p in programs),
        "compile_seconds": sum(p.compile_seconds for p in programs),
        "runs_per_device": sorted({p.runs_per_device for p in programs}),
        "blocks_at_once": sorted({plan.block_threads(p) for p in programs}),  # per device (threads on a CPU)
        "chunks": len(fill),
        "reused_runs": execution.reused,
        "mean_chunk_fill": float(np.mean(fill)) if fill else 1.0,
        "memory": execution.memory,
    }


def _bucket_attrs(plan: SweepPlan) -> dict[str, Any]:
    """``buckets`` (n -> compiled n, per d when several) and ``padding_overhead`` (over every d)."""
    sizes, d, power = plan.sizes, plan.config.d, plan.cost_power
    buckets = (
        {str(k): v for k, v in sizes[d].items()}
        if list(sizes) == [d]
        else {str(dd): {str(k): v for k, v in b.items()} for dd, b in sizes.items()}
    )
    padded = sum(sizes[dd][n] ** power for n, dd in zip(plan.n_units, plan.run_dims, strict=True))
    overhead = padded / sum(n**power for n in plan.n_units) - 1  # grid.padding_overhead, over every d
    return {"buckets": buckets, "padding_overhead": overhead}


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


def _device_description(mesh: Mesh) -> dict[str, Any]:
    first = mesh.devices.flat[0]
    return {
        "platform": first.platform,
        "device_kind": first.device_kind,
        "devices": int(mesh.devices.size),
        "processes": jax.process_count(),
        "host": platform.node(),
    }
