"""Static ``TrainConfig`` fields as sweep axes: ``grid={"surrogate": ["clip", "ste"], "time": [4, 8], ...}``.

A static field (surrogate, optimizer, activation, schedule, source, batch, mode, the training time τ,
...) is structure: changing it changes the compiled program, like ``d`` changes the shape buckets. So
each combination of the grid's static values is its own sweep, of ``dataclasses.replace(config,
field=value)`` over the grid's other axes (seed, d and the traced hyper-parameters), and the parts are
stacked along one leading dimension per static axis, in the grid's order. A time axis is the run
trained for each τ with the config's schedule, not a point read off a longer run's trace (a cosine
schedule's trace at τ/2 is not a run trained for τ/2; docs/scaling.md, "Why τ is an axis"); a trace
keeps its own ``tau`` grid, NaN at the τ points of other parts.

Coordinates are the values as given: numbers for numeric fields, otherwise strings (names, an
``aejax.named`` object's name, a top-level function's ``module:qualname``); ``attrs["parts"]``
records each part's config. With ``out``, each part writes into ``out/<axis>=<value>/...`` (resumable
on its own) and the stacked results go to ``out/results.nc``.

Examples:
    >>> import aejax
    >>> cfg = aejax.TrainConfig(d=16, n=16, time=8.0, batch=8, mode="population", trace_points=4)
    >>> ds = aejax.sweep(cfg, {"seed": [0], "time": [4.0, 8.0]}, mc_samples=256, progress=False)
    >>> ds["exact_risk"].dims, ds["time"].values.tolist()
    (('time', 'seed'), [4.0, 8.0])
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aejax import _validate
from aejax.config import TrainConfig
from aejax.grid import AXES
from aejax.identity import Named, describe

if TYPE_CHECKING:
    import xarray as xr

TIME_AXIS = "time"
STATIC_AXES = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("d", "n"))
"""TrainConfig's fields that a grid may sweep as outer axes (``d`` is an inner axis; ``n`` follows ``rate``)."""
CLOCKS = {"time": "steps", "steps": "time"}  # a part given one clock drops the other
SUMMED_ATTRS = ("compile_seconds", "compilations", "chunks", "reused_runs")


@dataclasses.dataclass(frozen=True)
class OuterAxis:
    """One static axis: the values each part's config gets and their coordinate labels."""

    name: str
    values: tuple
    labels: tuple

    def changes(self, i: int) -> dict[str, Any]:
        """The config fields of the axis's ``i``-th part (a clock clears the other clock)."""
        return {self.name: self.values[i], **({CLOCKS[self.name]: None} if self.name in CLOCKS else {})}

    def folder(self, i: int) -> str:
        """The part's directory under ``out``: ``<axis>=<label>``, made safe for every file system."""
        label = self.labels[i]
        text = f"{label:g}" if isinstance(label, float) else str(label)
        safe = re.sub(r"[^A-Za-z0-9._+-]", "_", text)
        if safe != text or not safe.strip("."):  # unique even where two labels map to one safe name
            safe = f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
        return f"{self.name}={safe}"

    def coordinate(self) -> np.ndarray:
        """The labels as one coordinate: integers, numbers, or (any other mix) strings."""
        labels = self.labels
        if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
            return np.asarray(labels, dtype=np.int64)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels):
            return np.asarray(labels, dtype=np.float64)
        return np.asarray([str(v) for v in labels])


def axis_names(grid: Any) -> tuple[str, ...]:
    """The static axes a grid names, in its order; an unknown axis is refused naming every allowed one.

    Examples:
        >>> axis_names({"seed": [0], "surrogate": ["clip", "ste"]})
        ('surrogate',)
    """
    runs = [grid] if isinstance(grid, dict) else list(grid) if isinstance(grid, (list, tuple)) else []
    names: list[str] = []
    for run in runs:
        for key in run if isinstance(run, dict) else ():
            if key not in AXES:
                _validate.choice("grid axis", key, (*AXES, *STATIC_AXES))
                if key not in names:
                    names.append(key)
    return tuple(names)


def in_grid(grid: Any) -> bool:
    """Whether a grid specification sweeps a static field (an outer axis such as ``surrogate`` or ``time``)."""
    return bool(axis_names(grid))


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


def outer_axis(name: str, values: Any) -> OuterAxis:
    """A static axis's values and labels; refused: no values, duplicates, objects without a stable identity.

    Examples:
        >>> outer_axis("surrogate", ["clip", "ste"]).labels
        ('clip', 'ste')
    """
    if name == TIME_AXIS:
        times = time_values(values)
        return OuterAxis(name, tuple(times), tuple(times))
    if isinstance(values, np.ndarray):
        values = values.tolist()
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if not values:
        raise _validate.InputError(f"grid axis {name!r} has no values")
    labels = [_label(name, v) for v in values]
    if len({str(v) for v in labels}) != len(labels):
        raise _validate.InputError(f"grid axis {name!r} has duplicate values: {labels}")
    return OuterAxis(name, tuple(v.item() if isinstance(v, np.generic) else v for v in values), tuple(labels))


def _label(name: str, value: Any) -> Any:
    """A value's coordinate label: the value itself (numbers, strings), a ``Named`` object's name, a
    function's ``module:qualname``, else the type and a digest of its stable description."""
    try:
        description = describe(name, value, strict=True)
    except _validate.InputError as err:
        raise _validate.InputError(f"grid axis {name!r}: {err}") from None
    if isinstance(value, Named):
        return value.name
    if isinstance(description, (bool, type(None))):
        return str(description)
    if isinstance(description, (int, float, str)):
        return description
    if isinstance(description, dict) and set(description) == {"function"}:
        return description["function"]
    digest = hashlib.sha1(json.dumps(description, sort_keys=True).encode()).hexdigest()[:8]
    return f"{type(value).__name__}-{digest}"


def part_configs(config: TrainConfig, axes: list[OuterAxis]) -> dict[tuple[int, ...], TrainConfig]:
    """Every part's config, checked before anything runs by ``TrainConfig``'s own checks: a bad value
    is named with its axis, a bad combination with every value in it.

    Examples:
        >>> cfg = TrainConfig(d=8, n=8, steps=10)
        >>> [c.surrogate for c in part_configs(cfg, [outer_axis("surrogate", ["clip", "ste"])]).values()]
        ['clip', 'ste']
    """
    if {a.name for a in axes} >= set(CLOCKS):
        raise _validate.InputError("grid axes 'time' and 'steps' both set the run's length: sweep one of them")
    configs = {}
    for index in itertools.product(*(range(len(axis.values)) for axis in axes)):
        changes = {k: v for axis, i in zip(axes, index, strict=True) for k, v in axis.changes(i).items()}
        try:
            configs[index] = dataclasses.replace(config, **changes)
        except (_validate.InputError, _validate.InputTypeError) as err:
            raise _part_error(config, axes, index, err) from None
    return configs


def _part_error(config: TrainConfig, axes: list[OuterAxis], index: tuple[int, ...], err: Exception) -> Exception:
    """The error of a refused part: its one value where that value alone fails the same way, else the combination."""
    for axis, i in zip(axes, index, strict=True):
        try:
            dataclasses.replace(config, **axis.changes(i))
        except (_validate.InputError, _validate.InputTypeError) as alone:
            if str(alone) == str(err):
                return type(err)(f"grid axis {axis.name!r} value {axis.labels[i]!r}: {err}")
    values = ", ".join(f"{axis.name}={axis.labels[i]!r}" for axis, i in zip(axes, index, strict=True))
    return type(err)(f"grid values {values} do not go together: {err}")


def sweep_outer(
    run: Callable[..., Any],
    config: TrainConfig,
    grid: dict[str, Any] | list[dict[str, Any]],
    shard: Any,
    *,
    out: str | os.PathLike | None,
    attrs: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """One sweep per combination of the grid's static axes, stacked along one dimension per axis.

    Args:
        run: the engine, ``run(config, grid, shard, out=..., **options)`` (``aejax.sweeping._sweep``,
            passed in so this module does not import it).
        config: the ``TrainConfig``; each part runs ``dataclasses.replace(config, field=value, ...)``.
        grid: a product grid (dict); its other axes (seed, d, hyper-parameters) are each part's grid.
        shard: ``None``, or a ``Shard``: each part computes the shard's share of its runs into its folder.
        out: the output directory, or ``None``: each part writes into ``out/<axis>=<value>/`` (resumable
            on its own) and the stacked results go to ``out/results.nc``.
        attrs: more attributes of the stacked results, set before they are written (once).
        **options: the other keyword arguments of ``sweep``.

    Returns:
        The results with one leading dimension per static axis, or (with a shard) the shards' report
        summed over the parts.
    """
    names = axis_names(grid)
    if not isinstance(grid, dict):
        raise _validate.InputError(
            f"grid axis {names[0]!r} (a TrainConfig field: one sweep per value) needs a product grid "
            "{axis: values}; a list of runs cannot vary it (sweep each value separately)"
        )
    axes = [outer_axis(name, grid[name]) for name in names]
    configs = part_configs(config, axes)
    rest = {k: v for k, v in grid.items() if k not in names} or {"seed": [0]}
    result = _level(run, configs, axes, (), rest, shard, out, options)
    if shard is None:
        result.attrs.update(attrs or {})
    if shard is None and out is not None and _is_writer():
        from aejax.results import save_results

        save_results(result, Path(out) / "results.nc")
    return result


def _level(run, configs, axes: list[OuterAxis], index: tuple[int, ...], rest, shard, out, options) -> Any:
    """The parts below ``index`` (run at the last axis), stacked along the next axis."""
    if len(index) == len(axes):
        if options.get("progress") and len(configs) > 1 and _is_writer():
            where = ", ".join(f"{a.name}={a.labels[i]}" for a, i in zip(axes, index, strict=True))
            print(f"part {list(configs).index(index) + 1}/{len(configs)}: {where}", flush=True)
        return run(configs[index], rest, shard, out=out, **options)
    axis = axes[len(index)]
    folders = [None if out is None else Path(out) / axis.folder(i) for i in range(len(axis.values))]
    parts = [_level(run, configs, axes, (*index, i), rest, shard, folders[i], options) for i in range(len(folders))]
    if shard is not None:  # ShardReports: one shard's share of every part
        return parts[0]._replace(**{k: sum(getattr(p, k) for p in parts) for k in ("owned", "computed", "reused")})
    return stack(parts, axis)


def _is_writer() -> bool:
    import jax

    return jax.process_index() == 0


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
    return stack([loaded[i] for i in order], outer_axis(TIME_AXIS, [times[i] for i in order]))


def stack(parts: list[xr.Dataset], axis: OuterAxis) -> xr.Dataset:
    """Results of one sweep per value of ``axis`` as one Dataset with a leading dimension ``axis.name``.

    Variables without a trace dimension are stacked as they are; traces keep their ``tau`` (or ``step``)
    dimension over the union of the parts' grids, NaN where a part has no point (a trace coordinate that
    differs between the parts, such as each τ's steps, is dropped). ``attrs`` are the first part's, with
    ``config`` recording every value of the axis, ``parts`` each part's config, and the compile and chunk
    counts summed.
    """
    import xarray as xr

    trace_coords = [
        c
        for c in ("step", "tau")
        if any(c in p.coords and p[c].dims != (c,) for p in parts)
        and not all(c in p.coords and p[c].identical(parts[0][c]) for p in parts)
    ]
    cleaned = [p.drop_vars(trace_coords, errors="ignore") for p in parts]  # per-part maps cannot share one dimension
    ds = xr.concat(
        cleaned, dim=xr.Variable(axis.name, axis.coordinate()), join="outer", combine_attrs="override"
    ).transpose(axis.name, ...)
    if axis.name == TIME_AXIS:
        ds[axis.name].attrs.update(long_name="training time per input dimension τ (a sweep axis)", units="samples / d")
    else:
        ds[axis.name].attrs.update(long_name=f"TrainConfig.{axis.name} (a sweep axis: one sweep per value)")
    ds.attrs = _stacked_attrs(parts, axis)
    return ds


def _merged_builds(parts: list[xr.Dataset]) -> list[dict[str, Any]]:
    """Every part's ``reused_builds`` (runs reused from another build), one entry per build."""
    runs: dict[str, int] = {}
    for part in parts:
        for entry in json.loads(part.attrs.get("reused_builds", "[]")):
            key = json.dumps(entry["build"], sort_keys=True)
            runs[key] = runs.get(key, 0) + entry["runs"]
    return [{"build": json.loads(key), "runs": n} for key, n in runs.items()]


def _stacked_attrs(parts: list[xr.Dataset], axis: OuterAxis) -> dict[str, Any]:
    """The first part's attrs, with the axis's values in ``config``, every part's config in ``parts``."""
    attrs = dict(parts[0].attrs)
    try:
        config = json.loads(attrs.get("config", "{}"))
    except (TypeError, json.JSONDecodeError):
        config = None
    if isinstance(config, dict):
        config[axis.name] = [describe(axis.name, v, strict=False) for v in axis.values]
        if axis.name in CLOCKS:
            config.pop(CLOCKS[axis.name], None)
        attrs["config"] = json.dumps(config, sort_keys=True)
    for key in SUMMED_ATTRS:
        values = [p.attrs[key] for p in parts if isinstance(p.attrs.get(key), (int, float))]
        if len(values) == len(parts):
            attrs[key] = sum(values)
    if any("reused_builds" in p.attrs for p in parts):
        attrs["reused_builds"] = json.dumps(_merged_builds(parts), sort_keys=True)
    records = []
    for label, part in zip(axis.labels, parts, strict=True):
        try:
            inner = json.loads(part.attrs.get("parts", "null")) or [
                {"coords": {}, "config": json.loads(part.attrs.get("config", "null"))}
            ]
        except (TypeError, json.JSONDecodeError):
            inner = [{"coords": {}, "config": None}]
        records += [{"coords": {axis.name: label, **p["coords"]}, "config": p["config"]} for p in inner]
    attrs["parts"] = json.dumps(records, sort_keys=True)
    if axis.name == TIME_AXIS:
        attrs["times"] = json.dumps(list(axis.values))
    return attrs
