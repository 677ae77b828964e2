"""Results Datasets for the fits: checking the inputs, unstacking irregular grids, leaving failed runs out,
and labelling the combinations fitted."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from aejax import _validate
from aejax.scaling._status import FIT_FAILURES

TRACE_DIMS = ("step", "tau")


def _failed(sel: xr.Dataset) -> bool:
    """Whether the ``fit_status`` of one ``extrapolate`` combination holds a failure flag."""
    return "fit_status" in sel and bool(FIT_FAILURES & set(str(sel["fit_status"].item()).split(",")))


def _config_activation(ds: xr.Dataset) -> str:
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except (TypeError, json.JSONDecodeError):
        return "sign"
    activation = config.get("activation", "sign") if isinstance(config, dict) else "sign"
    return activation if isinstance(activation, str) else "sign"


def _unstack_runs(ds: xr.Dataset, along: str) -> xr.Dataset:
    """Results of an irregular grid (one ``run`` dimension, axes as coordinates) as one dimension per axis."""
    if "run" in ds.dims and along not in ds.dims and along in ds.coords and ds[along].dims == ("run",):
        axes = [name for name, coord in ds.coords.items() if coord.dims == ("run",) and name != "run"]
        ds = ds.drop_vars("run", errors="ignore").set_index(run=axes).unstack("run")
    return ds


def _ok(ds: xr.Dataset, da: xr.DataArray) -> xr.DataArray:
    """``da`` with the runs whose ``status`` is not ``ok`` set to NaN."""
    if "status" in ds:
        da = da.where(ds["status"] == "ok")
    return da


def check_inputs(
    ds: xr.Dataset, var: str, along: str, *, names: dict[str, str] | None = None, minimum: int = 3
) -> None:
    """Raise a ``ValueError`` naming the argument when ``var`` is not a numeric variable of ``ds``, ``along`` is
    not one of its dimensions or coordinates, or ``along`` has fewer than ``minimum`` positive values.

    Args:
        ds: results.
        var: variable name.
        along: scaling axis.
        names: how the errors call the arguments (e.g. ``{"var": "--var", "along": "--along"}``).
        minimum: points needed along the axis.

    Examples:
        >>> import xarray as xr
        >>> check_inputs(xr.Dataset({"risk": ("d", [1.0, 0.5])}, coords={"d": [8, 16]}), "risk", "d")
        Traceback (most recent call last):
        ...
        aejax.InputError: along 'd' has 2 values (8, 16); a scaling fit needs at least 3
    """
    names = {"var": "var", "along": "along", **(names or {})}
    if var not in ds.data_vars:
        raise _validate.InputError(
            f"{names['var']} {var!r} is not a variable of the results; available: "
            f"{', '.join(sorted(map(str, ds.data_vars)))}"
        )
    if ds[var].dtype.kind not in "biuf":
        numeric = sorted(str(name) for name, v in ds.data_vars.items() if v.dtype.kind in "biuf" and along in v.dims)
        raise _validate.InputError(
            f"{names['var']} {var!r} is not numeric (dtype {ds[var].dtype}); a scaling fit needs a numeric "
            f"variable over {along!r}: {', '.join(numeric) or 'the results have none'}"
        )
    if along not in ds[var].dims:
        raise _validate.InputError(
            f"{names['along']} {along!r} is not a dimension of {var!r}; its dimensions: "
            f"{', '.join(map(str, ds[var].dims))}"
        )
    values = np.asarray(ds[along].values)
    if values.dtype.kind not in "iuf" or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise _validate.InputError(
            f"{names['along']} {along!r} must have positive numeric values, got {values.tolist()}"
        )
    if values.size < minimum:
        raise _validate.InputError(
            f"{names['along']} {along!r} has {values.size} values "
            f"({', '.join(f'{v:g}' for v in values)}); a scaling fit needs at least {minimum}"
        )


def _se_of(ds: xr.Dataset, var: str) -> xr.DataArray | None:
    """The Monte Carlo standard error of ``var`` (``risk_se`` for ``risk``, ``<var>_se`` in general)."""
    name = "risk_se" if var == "risk" else f"{var}_se"
    return ds[name] if name in ds.data_vars else None


def _label(others: list[str], coords: dict[str, np.ndarray], index: tuple[int, ...]) -> str:
    return ", ".join(f"{dim}={_fmt(coords[dim][i])}" for dim, i in zip(others, index, strict=True))


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float, np.integer, np.floating)) else str(value)


def _points(result: xr.Dataset, dims: list[str]) -> list[dict[str, Any]]:
    if not dims:
        return [{}]
    stacked = result[dims[0]].values if len(dims) == 1 else None
    if stacked is not None:
        return [{dims[0]: v} for v in stacked]
    grids = np.meshgrid(*[result[dim].values for dim in dims], indexing="ij")
    return [dict(zip(dims, values, strict=True)) for values in zip(*(g.ravel() for g in grids), strict=True)]
