"""Training time τ as a sweep axis: ``grid={"time": [125, 250, ...], ...}``.

τ = samples seen per input dimension is structure (it sets the step count, so the compiled program and
the trace's τ grid), so each value is its own sweep, like each d its own shape buckets: a run trained
for τ with the config's schedule, not a point read off a longer run's trace (a cosine schedule's trace
at τ/2 is not a run trained for τ/2; docs/scaling.md, "Why τ is an axis"). The results of the sweeps
are stacked along a ``time`` dimension (the traces' own ``tau`` dimension keeps each run's τ grid; a
trace is NaN at the τ points of other times).

Examples:
    >>> import aejax
    >>> cfg = aejax.TrainConfig(d=16, n=16, time=8.0, batch=8, mode="population", trace_points=4)
    >>> ds = aejax.sweep(cfg, {"seed": [0], "time": [4.0, 8.0]}, mc_samples=256, progress=False)
    >>> ds["exact_risk"].dims, ds["time"].values.tolist()
    (('time', 'seed'), [4.0, 8.0])
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aejax import _validate

if TYPE_CHECKING:
    import xarray as xr

TIME_AXIS = "time"


def in_grid(grid: Any) -> bool:
    """Whether a grid specification sweeps the training time τ (a ``time`` axis)."""
    if isinstance(grid, dict):
        return TIME_AXIS in grid
    return isinstance(grid, (list, tuple)) and any(isinstance(run, dict) and TIME_AXIS in run for run in grid)


def time_values(values: Any) -> list[float]:
    """The ``time`` axis's values: distinct positive finite numbers, in the order given.

    Examples:
        >>> time_values([125, 250.0])
        [125.0, 250.0]
    """
    values = list(np.atleast_1d(np.asarray(values, dtype=object)).tolist()) if not isinstance(values, list) else values
    if not values:
        raise _validate.InputError("grid axis 'time' has no values")
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise _validate.InputError(f"grid axis 'time' must hold positive numbers (τ), got {v!r}")
    out = [float(v) for v in values]
    _validate.positive_number("grid axis 'time'", out)
    if len(set(out)) != len(out):
        raise _validate.InputError(f"grid axis 'time' has duplicate values: {out}")
    return out


def sweep_times(
    sweep: Callable[..., xr.Dataset],
    config: Any,
    grid: dict[str, Any] | list[dict[str, Any]],
    *,
    out: str | os.PathLike | None,
    attrs: dict[str, Any] | None = None,
    **options: Any,
) -> xr.Dataset:
    """One ``sweep`` per value of the grid's ``time`` axis, stacked along a ``time`` dimension.

    Args:
        sweep: ``aejax.sweep`` (passed in, so this module does not import the engine).
        config: the ``TrainConfig``; each sweep runs ``dataclasses.replace(config, time=τ, steps=None)``.
        grid: a product grid (dict) with a ``time`` axis; the other axes as ``sweep`` takes them.
        out: the output directory, or ``None``: each τ writes into ``out/time=<τ>/`` (resumable on its
            own) and the stacked results go to ``out/results.nc``.
        attrs: more attributes of the stacked results, set before they are written (once).
        **options: the other keyword arguments of ``sweep``.

    Returns:
        The results with a leading ``time`` dimension; ``attrs["times"]`` lists the values.
    """
    if not isinstance(grid, dict):
        raise _validate.InputError(
            "a 'time' grid axis needs a product grid {axis: values}; a list of runs cannot vary τ "
            "(sweep each τ separately)"
        )
    times = time_values(grid[TIME_AXIS])
    rest = {k: v for k, v in grid.items() if k != TIME_AXIS}
    if not rest:
        rest = {"seed": [0]}
    parts = []
    for tau in times:
        where = None if out is None else Path(out) / f"{TIME_AXIS}={tau:g}"
        config_tau = dataclasses.replace(config, time=tau, steps=None)
        parts.append(sweep(config_tau, rest, out=where, **options))
    ds = stack(parts, times)
    ds.attrs.update(attrs or {})
    if out is not None:
        from aejax.results import save_results

        save_results(ds, Path(out) / "results.nc")
    return ds


def stack_times(parts: list[Any], times: list[float] | None = None) -> xr.Dataset:
    """Results of separate sweeps at different τ (Datasets or results files) as one Dataset with a
    ``time`` dimension, as ``aejax.sweep(..., grid={"time": [...]})`` gives it (re-exported by
    ``aejax.scaling``).

    Args:
        parts: the results, one per τ (each with the same other dimensions).
        times: their τ (default: each config's ``time``).

    Examples:
        >>> import dataclasses, aejax
        >>> cfg = aejax.TrainConfig(d=16, n=16, time=8.0, batch=8, mode="population", trace_points=4)
        >>> runs = [aejax.sweep(dataclasses.replace(cfg, time=t), {"seed": [0]}, mc_samples=256, progress=False)
        ...         for t in (8.0, 4.0)]
        >>> stack_times(runs)["exact_risk"].dims
        ('time', 'seed')
    """
    import xarray as xr

    from aejax.results import load_results

    loaded = [p if isinstance(p, xr.Dataset) else load_results(p) for p in parts]
    if times is None:
        times = []
        for i, part in enumerate(loaded):
            try:
                value = json.loads(part.attrs.get("config", "{}")).get("time")
            except (TypeError, AttributeError, json.JSONDecodeError):
                value = None
            if not isinstance(value, (int, float)):
                raise _validate.InputError(f"results {i} have no single config time; give times=[...]")
            times.append(float(value))
    times = time_values(list(times))
    if len(times) != len(loaded):
        raise _validate.InputError(f"times has {len(times)} values for {len(loaded)} results")
    order = np.argsort(times)
    return stack([loaded[i] for i in order], [times[i] for i in order])


def stack(parts: list[xr.Dataset], times: list[float]) -> xr.Dataset:
    """Results of one sweep per τ as one Dataset with a leading ``time`` dimension.

    Variables without a trace dimension are stacked as they are; traces keep their ``tau`` (or ``step``)
    dimension over the union of the parts' grids, NaN where a part has no point. ``attrs`` are the first
    part's, with ``config`` recording every τ and ``times`` the axis.
    """
    trace_coords = [c for c in ("step", "tau") if any(c in p.coords and p[c].dims != (c,) for p in parts)]
    cleaned = [p.drop_vars(trace_coords) for p in parts]  # per-τ step↔τ maps cannot share one dimension
    import xarray as xr

    ds = xr.concat(
        cleaned, dim=xr.Variable(TIME_AXIS, np.asarray(times, float)), join="outer", combine_attrs="override"
    )
    ds = ds.transpose(TIME_AXIS, ...)
    ds[TIME_AXIS].attrs.update(long_name="training time per input dimension τ (a sweep axis)", units="samples / d")
    attrs = dict(parts[0].attrs)
    try:
        config = json.loads(attrs.get("config", "{}"))
    except (TypeError, json.JSONDecodeError):
        config = None
    if isinstance(config, dict):
        config["time"] = times
        config.pop("steps", None)
        attrs["config"] = json.dumps(config, sort_keys=True)
    for key in ("compile_seconds", "chunks", "reused_runs"):
        values = [p.attrs[key] for p in parts if isinstance(p.attrs.get(key), (int, float))]
        if len(values) == len(parts):
            attrs[key] = sum(values)
    attrs["times"] = json.dumps(times)
    ds.attrs = attrs
    return ds
