"""Sweep grids: the list of runs, their coordinates, and shape buckets for rates.

A grid is either a dict ``{axis: values}`` (the full product, one result dimension per axis) or
a list of dicts (explicit runs, indexed by a ``run`` dimension). Axes are ``seed`` and the swept
hyper-parameters of ``aejax.config.HPARAMS``.

Examples:
    >>> g = Grid.from_spec({"seed": [0, 1], "rate": [0.5, 1.0]}, d=64)
    >>> len(g.runs), g.dims
    (4, ('seed', 'rate'))
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

from aejax import _validate
from aejax.hparams import HPARAMS

AXES = ("seed", "d", *HPARAMS)
MAX_D = 2**24  # a larger input dimension does not fit any device


@dataclasses.dataclass(frozen=True)
class Grid:
    """Expanded runs of a sweep.

    Attributes:
        runs: one dict of coordinates per run (every dict has the same keys).
        dims: result dimensions: the swept axes for a product grid, ``("run",)`` for a list.
        coords: values along each dimension (for a list: the run index).
    """

    runs: tuple[dict[str, float], ...]
    dims: tuple[str, ...]
    coords: dict[str, tuple]

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | list[dict[str, Any]], d: int) -> Grid:
        """Validate and expand a grid specification (see module docstring)."""
        if isinstance(spec, dict):
            if not spec:
                raise _validate.InputError("grid must name at least one axis, got an empty dict")
            axes = {name: _axis_values(name, values) for name, values in spec.items()}
            runs = tuple(dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values()))
            grid = cls(runs, tuple(axes), {k: tuple(v) for k, v in axes.items()})
        elif isinstance(spec, (list, tuple)):
            if not spec or not all(isinstance(run, dict) for run in spec):
                raise _validate.InputError("grid as a list must be a non-empty list of dicts {axis: value}")
            keys = set(spec[0])
            for i, run in enumerate(spec):
                if set(run) != keys:
                    raise _validate.InputError(
                        f"grid run {i} has axes {sorted(run)} but run 0 has {sorted(keys)}; "
                        "every run must name the same axes"
                    )
            runs = tuple({k: _axis_values(k, [v])[0] for k, v in run.items()} for run in spec)
            seen = {}
            for i, run in enumerate(runs):
                key = tuple(sorted(run.items()))
                if key in seen:
                    raise _validate.InputError(f"grid runs {seen[key]} and {i} are duplicates: {run}")
                seen[key] = i
            grid = cls(runs, ("run",), {"run": tuple(range(len(runs)))})
        else:
            raise _validate.InputTypeError(
                f"grid must be a dict of axis values or a list of run dicts, got {type(spec).__name__}"
            )
        for run in grid.runs:
            run_d = run.get("d", d)
            if "rate" in run and not round(run["rate"] * run_d) >= 1:
                raise _validate.InputError(
                    f"rate {run['rate']} gives no hidden unit at d={run_d}; rates must be >= {0.5 / run_d:.4g}"
                )
        return grid

    @property
    def shape(self) -> tuple[int, ...]:
        """Result array shape (without the trace's step dimension)."""
        return tuple(len(self.coords[dim]) for dim in self.dims)


def _dimensions(values: list) -> list[int]:
    """The ``d`` axis: distinct integers in [1, MAX_D]."""
    for v in values:
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, np.integer, float))
            or not float(v).is_integer()
            or not 1 <= v <= MAX_D
        ):
            raise _validate.InputError(f"grid axis 'd' must hold integers in [1, {MAX_D}], got {v!r}")
    return [int(v) for v in values]


MAX_RATE = 1e6
"""Largest rate a grid accepts: round(rate·d) hidden units must stay a sane integer."""


def _axis_values(name: str, values: Any) -> list:
    _validate.choice("grid axis", name, AXES)
    values = list(np.atleast_1d(np.asarray(values)).tolist()) if not isinstance(values, list) else values
    if not values:
        raise _validate.InputError(f"grid axis {name!r} has no values")
    if name == "seed":
        for v in values:
            if not _is_integer(v) or not 0 <= v < 2**31:
                raise _validate.InputError(
                    f"grid axis 'seed' must hold integers in [0, 2**31), got {v!r}"
                    f"{f' ({type(v).__name__})' if not _is_integer(v) else ''}"
                )
        values = [int(v) for v in values]
    else:
        for v in values:
            _check_float32(name, v)
    if len(set(values)) != len(values):
        raise _validate.InputError(f"grid axis {name!r} has duplicate values: {values}")
    if name == "d":
        return _dimensions(values)
    if name == "seed":
        return values
    out = [float(v) for v in values]
    if name == "p":
        _validate.probability("grid axis 'p'", out)
    elif name == "margin":
        _validate.positive_number("grid axis 'margin'", out, allow_zero=True)
    else:
        _validate.positive_number(f"grid axis {name!r}", out)
    if name == "rate" and max(out) > MAX_RATE:
        raise _validate.InputError(
            f"grid axis 'rate' must be at most {MAX_RATE:g} (round(rate·d) hidden units), got {max(out)!r}"
        )
    return out


def _is_integer(v: Any) -> bool:
    """An int, a numpy integer or an integral float (never a bool or a string)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    return float(v).is_integer()


def _check_float32(name: str, v: Any) -> None:
    """Refuse non-numbers (bool, str, None, ...) and finite values that float32 turns into 0 or inf.

    Training runs in float32 by default, so 1e-50 would silently become 0 and 1e40 inf.
    """
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise _validate.InputError(
            f"grid axis {name!r} must hold numbers (int or float), got {v!r} ({type(v).__name__})"
        )
    v = float(v)
    if not np.isfinite(v):
        return  # reported with the axis's own range below
    with np.errstate(over="ignore", under="ignore"):
        single = np.float32(v)
    if np.isinf(single):
        raise _validate.InputError(
            f"grid axis {name!r} value {v!r} overflows float32 (max {float(np.finfo(np.float32).max):.4g}); "
            "allowed: finite numbers of float32 range"
        )
    if v != 0 and single == 0:
        raise _validate.InputError(
            f"grid axis {name!r} value {v!r} becomes 0 in float32 (smallest positive "
            f"{float(np.finfo(np.float32).smallest_subnormal):.4g}); allowed: numbers of float32 range"
        )


def units(rate: float, d: int) -> int:
    """Hidden units used at ``rate``: ``round(rate·d)``. Example: ``units(0.3, 10)`` -> 3."""
    return int(round(rate * d))  # noqa: RUF046 -- rate may be a JAX/NumPy 0-d array; int() keeps the result an int


def bucket_sizes(n_values: list[int], max_padding: float, cost_power: float = 1.0) -> dict[int, int]:
    """Group hidden-unit counts into shape buckets: map each ``n`` to the compiled size of its bucket.

    Greedy from the largest ``n``: a bucket of compiled size ``N`` takes every smaller ``n`` whose
    padded cost ``(N/n)^cost_power`` is at most ``1 + max_padding``. ``max_padding = 0`` gives one
    exact shape per distinct ``n``.

    Examples:
        >>> bucket_sizes([64, 60, 32], max_padding=0.25)
        {64: 64, 60: 64, 32: 32}
    """
    _validate.positive_number("max_padding", max_padding, allow_zero=True, scalar=True)
    mapping: dict[int, int] = {}
    top = None
    for n in sorted(set(n_values), reverse=True):
        if top is None or (top / n) ** cost_power > 1 + max_padding:
            top = n
        mapping[n] = top
    return {n: mapping[n] for n in n_values}


def padding_overhead(n_values: list[int], buckets: dict[int, int], cost_power: float = 1.0) -> float:
    """Padded work over useful work, minus one, for runs with hidden-unit counts ``n_values``.

    Examples:
        >>> round(padding_overhead([32, 64], {32: 64, 64: 64}), 6)
        0.333333
    """
    useful = sum(n**cost_power for n in n_values)
    return sum(buckets[n] ** cost_power for n in n_values) / useful - 1
