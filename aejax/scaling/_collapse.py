"""Trajectory collapse: how far each size's training curve lies from the largest size's (``collapse``)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from aejax import _validate
from aejax.scaling._data import TRACE_DIMS, _fmt, _ok, _unstack_runs, check_inputs


def collapse(
    ds: xr.Dataset, var: str = "risk_trace", along: str = "d", time: str = "tau", *, seeds: str = "seed"
) -> xr.DataArray:
    """Trajectory collapse: how far each size's training curve lies from the largest size's.

    For each value of ``along`` (and each other coordinate), the seed mean of ``var`` (runs with status
    ``ok``) is compared with that of the largest ``along`` over the time axis ``time``: the result is the
    largest absolute difference on the shared time grid (both curves linearly interpolated onto the union
    of their time points inside the range both cover; with a common grid, simply their common points).
    Small values mean the curves collapse when time is measured in ``time``. ``time`` may be a dimension
    of ``var`` or a coordinate that varies with ``along`` (e.g. ``tau(d, step)``); when it is absent,
    ``step`` is used and the ``time`` attribute says so.

    Args:
        ds: results with a trace variable over ``along`` and a time axis.
        var: the traced quantity.
        along: the size axis.
        time: the time axis (``tau``: training time per dimension).
        seeds: the seed dimension, averaged over if present.

    Returns:
        A DataArray ``<var>_collapse`` over ``along`` and the other coordinates (0 at the largest size).

    Examples:
        >>> import numpy as np, xarray as xr
        >>> tau = np.linspace(0, 5, 11)
        >>> curves = np.stack([np.exp(-tau) + 0.1 * np.exp(-tau) * (d == 64) for d in (64, 128, 256)])
        >>> ds = xr.Dataset({"risk_trace": (("d", "tau"), curves)}, coords={"d": [64, 128, 256], "tau": tau})
        >>> collapse(ds).values.round(6).tolist()
        [0.1, 0.0, 0.0]
    """
    ds = _unstack_runs(ds, along)
    check_inputs(ds, var, along, minimum=1)
    da = _ok(ds, ds[var])
    time, t, note = _time_of(ds, da, var, time)
    time_dim = time if time in da.dims else next(dim for dim in t.dims if dim in da.dims and dim in TRACE_DIMS)
    mean = da.mean(seeds) if seeds in da.dims else da
    others = [dim for dim in mean.dims if dim not in (along, time_dim)]
    mean = mean.transpose(*others, along, time_dim)
    tt = t.broadcast_like(mean).transpose(*others, along, time_dim)
    mv, tv = np.asarray(mean.values, float), np.asarray(tt.values, float)
    ref = int(np.argmax(ds[along].values))
    out = np.full(mv.shape[:-1], np.nan)
    for index in np.ndindex(*mv.shape[:-2]):
        for j in range(mv.shape[-2]):
            out[(*index, j)] = _max_abs_difference(tv[index][j], mv[index][j], tv[index][ref], mv[index][ref])
    result = xr.DataArray(
        out, dims=(*others, along), coords={dim: mean[dim].values for dim in (*others, along)}, name=f"{var}_collapse"
    )
    result.attrs.update(_attrs(var, along, time, float(ds[along].values[ref])))
    if note:
        result.attrs["note"] = note
    return result


def _time_of(ds: xr.Dataset, da: xr.DataArray, var: str, time: str) -> tuple[str, xr.DataArray, str]:
    """The time axis the curves are compared over: ``time`` (a dimension of ``da``, or a coordinate over a
    trace dimension), else ``step`` with a note saying so."""
    time_coord = (
        time in ds.coords and set(ds[time].dims) <= set(da.dims) and any(dim in TRACE_DIMS for dim in ds[time].dims)
    )
    if time in da.dims or time_coord:
        return time, ds[time], ""
    if "step" in da.dims:
        return "step", ds["step"], f"{time!r} is not in the results: compared at equal optimizer step instead"
    raise _validate.InputError(
        f"time {time!r} is not a dimension or coordinate of {var!r} (dimensions: "
        f"{', '.join(map(str, da.dims))}) and there is no 'step' dimension"
    )


def _attrs(var: str, along: str, time: str, reference: float) -> dict[str, object]:
    return {
        "long_name": f"max over the shared {time} grid of |seed-mean {var}({along}) − seed-mean {var}({along}_max)|",
        "description": (
            f"For each {along}, the largest absolute difference between its seed-mean {var} curve and "
            f"that of the largest {along} ({_fmt(reference)}), over the time points of "
            f"either curve inside the range both cover (linear interpolation between points); runs "
            "whose status is not ok are left out. 0 means a perfect collapse; NaN, no shared time range."
        ),
        "reference": reference,
        "time": time,
        "var": var,
        "along": along,
    }


def _max_abs_difference(t: np.ndarray, y: np.ndarray, t_ref: np.ndarray, y_ref: np.ndarray) -> float:
    ok, ok_ref = np.isfinite(t) & np.isfinite(y), np.isfinite(t_ref) & np.isfinite(y_ref)
    t, y, t_ref, y_ref = t[ok], y[ok], t_ref[ok_ref], y_ref[ok_ref]
    if not t.size or not t_ref.size:
        return float("nan")
    order, order_ref = np.argsort(t), np.argsort(t_ref)
    t, y, t_ref, y_ref = t[order], y[order], t_ref[order_ref], y_ref[order_ref]
    lo, hi = max(t[0], t_ref[0]), min(t[-1], t_ref[-1])
    if lo > hi:
        return float("nan")
    knots = np.unique(np.concatenate([t, t_ref]))
    knots = knots[(knots >= lo) & (knots <= hi)]
    return float(np.max(np.abs(np.interp(knots, t, y) - np.interp(knots, t_ref, y_ref))))
