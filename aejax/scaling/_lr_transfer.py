"""Does a learning-rate rule transfer across d? The best learning rate at each d, with an interval.

A sweep over ``lr`` × ``d`` (under ``lr_power = p``, so the ``lr`` coordinate is the rate at ``d_ref`` and
the rate applied is ``lr·(d_ref/d)^p``) gives, at each d, the seed-mean risk against lr. Its minimum is
located by the parabola in log lr through the best grid point and its two neighbours; the interval is the
percentile interval of that vertex over seeds resampled with replacement at every lr. If the rule
transfers, the best ``lr`` does not move with d; if it moves as ``d^s``, the exponent that would have
held it still is ``p − s`` (``lr_optimum(...).attrs`` / ``exponent``).

Examples:
    >>> import numpy as np, xarray as xr
    >>> lr = np.array([0.00125, 0.0025, 0.005, 0.01, 0.02])
    >>> risk = 0.4 + 0.01 * np.log(lr / 0.006) ** 2
    >>> ds = xr.Dataset({"exact_risk": (("lr",), risk)}, coords={"lr": lr})
    >>> round(float(lr_optimum(ds, bootstrap=0)["lr_best"]), 6)
    0.006
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from aejax import _validate
from aejax.report import markdown_table

TRANSFER_HEADER = ["rate", "d", "best lr·(d/128) [CI]", "exponent p (lr ∝ d^(−p)) [CI]"]


def _vertex(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``y`` against ``x`` (ascending): the parabola vertex through the minimum and its neighbours,
    clipped to their span, and whether the minimum sits at an end of the grid."""
    i = np.nanargmin(np.where(np.isfinite(y), y, np.inf), axis=-1)
    edge = (i == 0) | (i == x.size - 1)
    j = np.clip(i, 1, x.size - 2)
    rows = np.arange(y.shape[0])
    x0, x1, x2 = x[j - 1], x[j], x[j + 1]
    y0, y1, y2 = y[rows, j - 1], y[rows, j], y[rows, j + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
        den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
        v = x1 - 0.5 * num / den
    v = np.where(np.isfinite(v), np.clip(v, x0, x2), x1)
    return np.where(edge, x[i], v), edge


def lr_optimum(
    ds: xr.Dataset,
    var: str = "exact_risk",
    *,
    lr: str = "lr",
    along: str = "d",
    bootstrap: int = 1000,
    level: float = 0.95,
    rng: int = 0,
) -> xr.Dataset:
    """The best learning rate at each value of the other coordinates (d, rate, ...), with its interval.

    Args:
        ds: results with an ``lr`` dimension of at least 3 values (and optionally ``seed``, ``d``, ``rate``).
        var: the risk to minimise.
        lr: the learning-rate dimension (its values are the base rate ``lr`` of ``lr·(d_ref/d)^lr_power``).
        along: the size dimension for the exponent fit (skipped when absent or with fewer than 2 values).
        bootstrap: resamples of the seeds (0: no intervals).
        level: confidence level.
        rng: seed of the bootstrap.

    Returns:
        A Dataset over the other coordinates: ``lr_best``, ``lr_low``, ``lr_high`` (NaN when the minimum is
        at an end of the grid: ``at_edge`` is 1 there, and the optimum lies beyond), and, when ``along``
        varies, ``slope`` (d log lr_best / d log d, with ``slope_low``/``slope_high``) over the other
        coordinates but ``along``.
    """
    da = _checked(ds, var, lr, bootstrap, level)
    x = np.log(np.asarray(da[lr], float))
    seeded = "seed" in da.dims
    others = [str(dim) for dim in da.dims if dim not in (lr, "seed")]
    da = da.transpose(*others, *(["seed"] if seeded else []), lr)
    values = np.asarray(da.values, float).reshape(-1, *(da.shape[len(others) :]))
    if not seeded:
        values = values[:, None, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, 1)
    best, edge = _vertex(x, mean)
    tail = 50 * (1 - level)
    draws, low, high = _bootstrap(x, values, mean, edge, bootstrap, tail, np.random.default_rng(rng))
    shape = tuple(da.sizes[o] for o in others)
    coords = {o: da[o].values for o in others}
    out = xr.Dataset(
        {
            "lr_best": (others, np.exp(best).reshape(shape)),
            "lr_low": (others, np.exp(low).reshape(shape)),
            "lr_high": (others, np.exp(high).reshape(shape)),
            "at_edge": (others, edge.reshape(shape).astype(float)),
        },
        coords=coords,
    )
    if along in others and len(coords[along]) >= 2 and bootstrap and values.shape[1] >= 2:
        out = out.merge(_slope(out, draws.reshape(*shape, bootstrap), along, others, tail))
    out.attrs.update(lr_min=float(np.exp(x[0])), lr_max=float(np.exp(x[-1])))
    out.attrs.update(
        var=var,
        lr=lr,
        level=level,
        bootstrap=bootstrap,
        method="parabola in log lr through the "
        "best grid point and its neighbours; percentile intervals over seeds resampled at every lr",
    )
    return out


def _checked(ds: xr.Dataset, var: str, lr: str, bootstrap: int, level: float) -> xr.DataArray:
    """``var`` sorted by ``lr``, with the failed runs NaN, once the arguments are checked."""
    if var not in ds:
        raise _validate.InputError(f"var {var!r} is not in the results; allowed: {', '.join(map(str, ds.data_vars))}")
    da = ds[var]
    if lr not in da.dims or da.sizes[lr] < 3:
        raise _validate.InputError(f"lr_optimum needs a dimension {lr!r} with at least 3 values in {var}")
    _validate.non_negative_int("bootstrap", bootstrap)
    if not 0 < level < 1:
        raise _validate.InputError(f"level must be in (0, 1), got {level!r}")
    if "status" in ds:
        da = da.where(ds["status"] == "ok")
    return da.sortby(lr)


def _bootstrap(
    x: np.ndarray,
    values: np.ndarray,
    mean: np.ndarray,
    edge: np.ndarray,
    bootstrap: int,
    tail: float,
    gen: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vertex over seeds resampled at every lr (spread widened by √(k/(k−1))), per combination
    (``values``: combinations × seeds × lr), and its percentile interval where it is not at an edge."""
    k = values.shape[1]
    low = np.full(mean.shape[0], np.nan)
    high = np.full(mean.shape[0], np.nan)
    draws = np.full((mean.shape[0], bootstrap), np.nan)
    if not bootstrap or k < 2:
        return draws, low, high
    widen = math.sqrt(k / (k - 1))
    for c in range(mean.shape[0]):
        pick = gen.integers(0, k, size=(bootstrap, k, x.size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            resampled = np.nanmean(np.take_along_axis(np.broadcast_to(values[c], (bootstrap, k, x.size)), pick, 1), 1)
        draws[c] = _vertex(x, mean[c] + widen * (resampled - mean[c]))[0]
        if not edge[c]:
            low[c], high[c] = np.percentile(draws[c], [tail, 100 - tail])
    return draws, low, high


def _slope(out: xr.Dataset, draws: np.ndarray, along: str, others: list[str], tail: float) -> xr.Dataset:
    """d log lr_best / d log ``along`` by least squares over the values of ``along`` not at an edge."""
    axis = others.index(along)
    logd = np.log(np.asarray(out[along], float))
    best = np.moveaxis(np.log(out["lr_best"].values), axis, -1)
    edge = np.moveaxis(out["at_edge"].values, axis, -1) > 0
    samples = np.moveaxis(draws, axis, -2)  # (..., d, bootstrap)
    rest = [o for o in others if o != along]
    slope, low, high = (np.full(best.shape[:-1], np.nan) for _ in range(3))
    for index in np.ndindex(*best.shape[:-1]):
        ok = ~edge[index]
        if ok.sum() < 2:
            continue
        slope[index] = np.polyfit(logd[ok], best[index][ok], 1)[0]
        fits = np.polyfit(logd[ok], samples[index][ok], 1)[0]
        low[index], high[index] = np.percentile(fits, [tail, 100 - tail])
    return xr.Dataset(
        {"slope": (rest, slope), "slope_low": (rest, low), "slope_high": (rest, high)},
        coords={o: out[o].values for o in rest},
    )


def transfer_table(result: xr.Dataset, lr_power: float = 1.0) -> str:
    """Markdown: the best ``lr`` (the base rate, i.e. the applied rate × (d/d_ref)^lr_power) per d and
    rate, and the exponent ``lr_power − slope`` that would hold it still.

    Examples:
        >>> lr = np.array([0.00125, 0.0025, 0.005, 0.01, 0.02])
        >>> ds = xr.Dataset({"exact_risk": (("lr",), 0.4 + 0.01 * np.log(lr / 0.006) ** 2)}, coords={"lr": lr})
        >>> print(transfer_table(lr_optimum(ds, bootstrap=0)))
        | rate | d | best lr·(d/128) [CI] | exponent p (lr ∝ d^(−p)) [CI] |
        |---|---|---|---|
        | — | — | 0.0060 [nan, nan] |  |
    """
    rows = []
    rates = result["rate"].values if "rate" in result.dims else [None]
    for r in rates:
        sub = result.sel(rate=r) if r is not None else result
        p = ""
        if "slope" in sub:
            s, lo, hi = (float(sub[v]) for v in ("slope", "slope_low", "slope_high"))
            p = f"{lr_power - s:.2f} [{lr_power - hi:.2f}, {lr_power - lo:.2f}]"
        for i, d in enumerate(sub["d"].values if "d" in sub.dims else [None]):
            row = sub.sel(d=d) if d is not None else sub
            if float(row["at_edge"]):
                side = "≥" if float(row["lr_best"]) >= result.attrs["lr_max"] else "≤"
                cell = f"{side} {float(row['lr_best']):.4g} (the grid's end)"
            else:
                cell = f"{float(row['lr_best']):.4f} [{float(row['lr_low']):.4f}, {float(row['lr_high']):.4f}]"
            rows.append([str(r if r is not None else "—"), str(d if d is not None else "—"), cell, p if i == 0 else ""])
    return markdown_table(TRANSFER_HEADER, rows)
