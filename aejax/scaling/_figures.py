"""The figures of ``aejax scaling``: the gap against the size with its fit, and the training curves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aejax import _validate
from aejax.scaling._data import TRACE_DIMS, _failed, _fmt, _ok, _points, _unstack_runs, check_inputs
from aejax.scaling._joint_solver import PARAMETERS, _surface


def _save(fig: Any, path: str | os.PathLike, command: str | None) -> Path:
    """``aejax.plot.save_figure`` into a folder made if missing; the pyplot figure is closed after."""
    from aejax.plot import pyplot, save_figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, command=command)
    pyplot().close(fig)
    return path


def plot_gap(result: xr.Dataset, path: str | os.PathLike, *, command: str | None = None) -> Path:
    """Log–log figure of the gap ``var − R∞`` against ``along``, one colour per remaining coordinate (rate):
    the data (seed mean ± standard error; hollow markers: negative gaps, drawn as |gap|), the fitted line
    ``C·along^(−α)`` and its bootstrap band.

    Args:
        result: the Dataset of ``extrapolate``.
        path: image path (written atomically).
        command: the command that made it, recorded in a PNG's metadata (``aejax.plot.save_figure``).

    Returns:
        The path written.

    Examples:
        >>> import numpy as np, pathlib, tempfile, xarray as xr
        >>> from aejax.scaling import extrapolate
        >>> d = np.array([64, 128, 256, 512])
        >>> y = 0.36 + 0.03 / d + 1e-6 * np.random.default_rng(0).standard_normal((3, 4))
        >>> ds = xr.Dataset({"exact_risk": (("seed", "d"), y)}, coords={"seed": [0, 1, 2], "d": d})
        >>> plot_gap(extrapolate(ds, bootstrap=50), pathlib.Path(tempfile.mkdtemp()) / "gap.png").exists()
        True
    """
    from aejax.plot import pyplot

    plt = pyplot()
    along, var = result.attrs.get("along", "d"), result.attrs.get("var", "risk")
    dims = [str(dim) for dim in result["r_inf"].dims]
    x = result[along].values.astype(float)
    fine = np.geomspace(x.min(), x.max(), 100)
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=110)
    level = float(result.attrs.get("level", 0.95))
    for i, point in enumerate(_points(result, dims)):
        sel = result.sel(point) if point else result
        if np.isfinite(float(sel["r_inf"])):
            label = ", ".join(f"{k}={_fmt(v)}" for k, v in point.items()) or var
            _draw_gap(ax, sel, label, x, fine, f"C{i % 10}", level)
    ax.set(xscale="log", yscale="log", xlabel=along, ylabel=f"{var} − R∞ (fitted)")
    ax.set_title(f"{var} → R∞ + C·{along}^(−α); bands: {level:.0%} bootstrap", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path, command)


def _draw_gap(ax: Any, sel: xr.Dataset, label: str, x: np.ndarray, fine: np.ndarray, color: str, level: float) -> None:
    """One combination of ``plot_gap``: its data (hollow: negative gaps as |gap|), fitted line and band."""
    gap = sel["mean"].values - float(sel["r_inf"])
    se = sel["mean_se"].values
    failed = _failed(sel)
    label += (
        f": α={float(sel['alpha']):.2f} (fit failed: {sel['fit_status'].item()})"
        if failed
        else f": α={float(sel['alpha']):.2f} [{float(sel['alpha_low']):.2f}, {float(sel['alpha_high']):.2f}]"
    )
    pos = gap > 0
    yerr = np.where(np.isfinite(se), se, 0)[pos]
    ax.errorbar(x[pos], gap[pos], yerr=yerr, fmt="o", color=color, ms=4, capsize=2, label=label)
    if (~pos).any():
        ax.plot(x[~pos], np.abs(gap[~pos]), "o", mfc="none", color=color, ms=4)
    ax.plot(fine, float(sel["C"]) * fine ** -float(sel["alpha"]), "-", color=color, lw=1.2)
    draws = np.stack([sel["draw_alpha"].values, sel["draw_C"].values], axis=1)
    draws = draws[np.isfinite(draws).all(axis=1)]
    if len(draws) and not failed:
        curves = draws[:, 1:2] * fine[None, :] ** -draws[:, 0:1]
        tail = 50 * (1 - level)
        low, high = np.percentile(curves, [tail, 100 - tail], axis=0)
        ax.fill_between(fine, low, high, color=color, alpha=0.2, lw=0)


def plot_trajectories(
    ds: xr.Dataset,
    path: str | os.PathLike,
    var: str = "risk_trace",
    along: str = "d",
    time: str = "tau",
    *,
    seeds: str = "seed",
    panels: str = "rate",
    command: str | None = None,
) -> Path:
    """Seed-mean ``var`` against ``time`` for every value of ``along``, one panel per value of ``panels``
    (other coordinates: their first value), with the theory (``ds["theory"]``) as a dashed line. Without
    ``time`` in the results, ``step`` is the time axis.

    Args:
        ds: results with a trace variable.
        path: image path (written atomically).
        var: the traced quantity.
        along: one line per value of this axis.
        time: the time axis (``tau``, else ``step``).
        seeds: averaged over.
        panels: one panel per value of this axis (if present).
        command: the command that made it, recorded in a PNG's metadata (``aejax.plot.save_figure``).

    Returns:
        The path written.

    Examples:
        >>> import numpy as np, pathlib, tempfile, xarray as xr
        >>> step = np.arange(1, 6)
        >>> ds = xr.Dataset({"risk_trace": (("d", "step"), [np.exp(-step), np.exp(-step / 2)])},
        ...                 coords={"d": [64, 128], "step": step})
        >>> plot_trajectories(ds, pathlib.Path(tempfile.mkdtemp()) / "t.png").exists()
        True
    """
    from aejax.plot import pyplot

    ds = _unstack_runs(ds, along)
    mean, t, time, rest = _traces(ds, var, along, time, seeds, panels)
    values = ds[panels].values if panels in mean.dims else [None]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(values), figsize=(3.6 * len(values) + 0.6, 3.4), dpi=100, squeeze=False)
    for ax, value in zip(axes[0], values, strict=True):
        m = mean.sel({panels: value}) if value is not None else mean
        tv = t.sel({panels: value}) if value is not None else t
        for k, size in enumerate(ds[along].values):
            ax.plot(
                tv.sel({along: size}).values,
                m.sel({along: size}).values,
                "-",
                lw=1.2,
                color=plt.cm.viridis(k / max(1, ds.sizes[along] - 1)),
                label=f"{along}={_fmt(size)}",
            )
        if "theory" in ds.data_vars:
            _draw_theory(
                ax,
                ds["theory"].isel({d: 0 for d in ds["theory"].dims if d in rest or d == seeds}),
                ds[along].max(),
                along,
                panels,
                value,
            )
        ax.set(xlabel=time, title=f"{panels}={_fmt(value)}" if value is not None else var)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"seed-mean {var}")
    axes[0][0].legend(fontsize=7)
    note = "" if time != "step" else " (no tau in the results: against step)"
    fig.suptitle(f"{var} against {time} for every {along}{note}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path, command)


def _traces(
    ds: xr.Dataset, var: str, along: str, time: str, seeds: str, panels: str
) -> tuple[xr.DataArray, xr.DataArray, str, list[str]]:
    """The seed-mean traces and their times (at the first value of the coordinates other than ``along``
    and ``panels``), the time axis (``step`` without ``time``), and those other coordinates."""
    check_inputs(ds, var, along, minimum=1)
    da = _ok(ds, ds[var])
    if time not in da.dims and not (time in ds.coords and set(ds[time].dims) <= set(da.dims)):
        time = "step"
    if time not in da.dims and time not in ds.coords:
        raise _validate.InputError(f"time {time!r} is not a dimension or coordinate of {var!r}")
    mean = da.mean(seeds) if seeds in da.dims else da
    t = ds[time].broadcast_like(mean)
    rest = [str(dim) for dim in mean.dims if dim not in (along, panels) and dim not in TRACE_DIMS]
    first = {dim: 0 for dim in rest}
    return mean.isel(first), t.isel(first), time, rest


def _draw_theory(ax: Any, th: xr.DataArray, largest: Any, along: str, panels: str, value: Any) -> None:
    """The theory at the largest ``along`` (and this panel's value) as a dashed line, if it is one number."""
    th = th.sel({along: largest})
    if value is not None and panels in th.dims:
        th = th.sel({panels: value})
    if th.size == 1:
        ax.axhline(float(th), color="k", ls="--", lw=1, label="theory")


def plot_joint(
    ds: xr.Dataset,
    result: xr.Dataset,
    var: str,
    along: tuple[str, str],
    path: str | os.PathLike,
    *,
    command: str | None = None,
) -> Path:
    """The gap ``R − R∞`` against τ, one colour per d, one panel per combination of the other coordinates,
    with the fitted surface of ``extrapolate_joint`` as lines (``command``: recorded in a PNG's metadata)."""
    from matplotlib.ticker import NullFormatter

    from aejax.plot import pyplot

    plt = pyplot()
    size, time = along
    da = ds[var].where(ds["status"] == "ok") if "status" in ds else ds[var]
    mean = da.mean("seed") if "seed" in da.dims else da
    others = list(result.dims)
    combos = list(np.ndindex(*[result.sizes[o] for o in others])) or [()]
    fig, axes = plt.subplots(1, len(combos), figsize=(3.4 * len(combos), 3.0), squeeze=False, dpi=80)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, ds.sizes[size]))
    taus = np.asarray(ds[time], float)
    fine = np.geomspace(taus.min(), taus.max(), 50)
    for ax, index in zip(axes[0], combos, strict=True):
        where = dict(zip(others, index, strict=True))
        fit = result.isel(where)
        m = mean.isel(where) if where else mean
        r_inf = float(fit["r_inf"])
        params = [float(fit[p]) for p in PARAMETERS]
        for colour, dval in zip(colours, np.asarray(ds[size], float), strict=True):
            gap = np.asarray(m.sel({size: dval}).transpose(time).values, float) - r_inf
            ax.loglog(taus, np.where(gap > 0, gap, np.nan), "o", color=colour, ms=4, label=f"d={dval:g}")
            ax.loglog(fine, _surface(*params, dval, fine) - r_inf, "-", color=colour, lw=1)
        title = ", ".join(f"{o}={result[o].values[i]:g}" for o, i in zip(others, index, strict=True))
        ax.set_title(f"{title}\nR∞={r_inf:.5f} ({fit['fit_status'].item()})", fontsize=8)
        ax.set_xlabel("τ (samples / d)", fontsize=8)
        ax.set_xticks(taus, [f"{t:g}" for t in taus], minor=False)
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlapped the τ values
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel(f"{var} − R∞", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, path, command)
