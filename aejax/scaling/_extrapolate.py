"""Extrapolation to d → ∞ at every other coordinate, compared with the theory: ``extrapolate``."""

from __future__ import annotations

import json
import math
from typing import Any, cast

import numpy as np
import xarray as xr

from aejax import _validate
from aejax.scaling._data import TRACE_DIMS, _config_activation, _label, _ok, _se_of, _unstack_runs, check_inputs
from aejax.scaling._fit import PowerLawFit, fit_power_law
from aejax.scaling._solvers import _point_stats

_BYTES_PER_DRAW = 4 * 3 * 8  # a fit's (α, C, y∞) per resample, held about four times (fit, Dataset, file, sort)


def extrapolate(
    ds: xr.Dataset,
    var: str = "exact_risk",
    along: str = "d",
    *,
    seeds: str = "seed",
    theory: Any = None,
    activation: str | None = None,
    bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    bootstrap_name: str = "bootstrap",
) -> xr.Dataset:
    """Extrapolate ``var`` to ``along`` → ∞ at every other coordinate (e.g. per rate) and compare with theory.

    At each combination of the remaining coordinates, fits ``var = R∞ + C·along^(−α)`` to the seed mean
    (``fit_power_law`` with ``offset=True``; runs whose ``status`` is not ``ok`` left out; the Monte Carlo
    error ``risk_se`` used for ``risk``, seed scatter otherwise) and compares ``R∞`` with the theory:
    ``theory`` when given, else ``aejax.theory.gaussian_limit(rate, activation)`` at the nominal ``rate``
    coordinate (activation from the results' config unless given), else ``ds["theory"]`` at the largest
    ``along``. A combination that cannot be fitted (e.g. every run failed) gets NaN and is listed in
    the ``skipped`` attribute.

    Args:
        ds: results (``aejax.load_results``) with a dimension ``along``.
        var: the quantity to extrapolate (one value per run).
        along: the size axis.
        seeds: the seed dimension (absent: one run per point, parametric bootstrap).
        theory: the d → ∞ prediction (a number or a DataArray over the remaining coordinates), or ``None``.
        activation: the activation of the Gaussian-limit theory (default: the results' config, else sign).
        bootstrap: bootstrap resamples per fit (see ``fit_power_law``); the draws of every fit are kept, so
            at most what the memory budget (half the available host memory) holds at 96 bytes per resample
            and fit.
        level: confidence level of the intervals.
        seed: random seed of the bootstrap.
        bootstrap_name: how errors call ``bootstrap`` (``--bootstrap`` for the command).

    Returns:
        A Dataset over the remaining coordinates with ``fit_status`` (``"ok"``, the ``FitStatus`` flags, or
        ``"not_fitted"``) and ``fit_note`` (what raised them; a failed fit's intervals are NaN), ``r_inf``,
        ``r_inf_low``, ``r_inf_high``, ``alpha`` (+ ``_low``, ``_high``), ``C`` (+ ``_low``, ``_high``),
        ``chi2_dof``, ``n_points``, ``theory``, ``r_inf_minus_theory``, ``covers`` (whether the interval of
        R∞ contains the theory); the fitted data ``mean`` and ``mean_se`` over ``along``; and the bootstrap
        draws ``draw_alpha``, ``draw_C``, ``draw_r_inf`` over ``draw`` (for bands, ``plot_gap``).

    Examples:
        >>> import numpy as np, xarray as xr
        >>> d, rate, seed = np.array([64, 128, 256, 512]), np.array([0.5, 2.0]), np.arange(4)
        >>> r_gauss = np.array([1 - 1 / np.pi, (np.pi / 2 - 1) / (1 + np.pi / 2)])
        >>> noise = 1e-5 * np.random.default_rng(1).standard_normal((4, 2, 4))
        >>> risk = r_gauss[None, :, None] + 0.05 / d + noise
        >>> ds = xr.Dataset({"exact_risk": (("seed", "rate", "d"), risk)}, coords={"seed": seed, "rate": rate, "d": d})
        >>> out = extrapolate(ds, bootstrap=200)
        >>> out["covers"].values.tolist(), np.round(out["alpha"].values, 1).tolist()
        ([True, True], [1.0, 1.0])
    """
    ds = _unstack_runs(ds, along)
    da, bootstrap = _checked(ds, var, along, seeds, level, bootstrap, bootstrap_name)
    se = _se_of(ds, var)
    has_seeds = seeds in da.dims
    others = [str(dim) for dim in da.dims if dim not in (along, seeds)]
    order = [*others, *([seeds] if has_seeds else []), along]
    da = da.transpose(*order)
    se = None if se is None else se.broadcast_like(da).transpose(*order)
    x = np.asarray(ds[along].values, float)
    coords = {dim: ds[dim].values for dim in others}
    se_values = None if se is None else se.values
    options = {"bootstrap": bootstrap, "level": level, "seed": seed}
    fits, skipped, methods = _fit_all(x, da.values, se_values, has_seeds, others, coords, **options)
    shape = tuple(da.sizes[dim] for dim in others)
    theory_values, source = _theory_values(ds, others, coords, shape, along, seeds, theory, activation)
    result = _assemble(fits, tuple(others), coords, along, x, theory_values)
    for name, text in _long_names(var, along, level, source).items():
        result[name].attrs["long_name"] = text
    result.attrs.update(
        var=var,
        along=along,
        level=level,
        bootstrap=bootstrap,
        seed=seed,
        method="; ".join(sorted(methods)),
        theory_source=source,
        skipped=json.dumps(skipped),
        seeds=int(da.sizes.get(seeds, 1)),
    )
    return result


# The columns of one fit, in the order ``_store`` writes them.
_COLUMNS = (
    "r_inf",
    "r_inf_low",
    "r_inf_high",
    "alpha",
    "alpha_low",
    "alpha_high",
    "C",
    "C_low",
    "C_high",
    "chi2_dof",
    "n_points",
)


def _checked(
    ds: xr.Dataset, var: str, along: str, seeds: str, level: float, bootstrap: int, bootstrap_name: str
) -> tuple[xr.DataArray, int]:
    """``var`` with the failed runs NaN, once the arguments are checked (the draws kept by every fit within
    the memory budget; a final quantity, not a trace), and the bootstrap count."""
    check_inputs(ds, var, along)
    if not 0 < level < 1:
        raise _validate.InputError(f"level must lie in (0, 1), got {level!r}")
    bootstrap = _validate.non_negative_int("bootstrap", bootstrap)
    da = _ok(ds, ds[var])
    fits = math.prod(size for dim, size in da.sizes.items() if dim not in (along, seeds))
    _validate.within_memory(bootstrap_name, bootstrap, _BYTES_PER_DRAW * fits, "resample")
    traced = [dim for dim in da.dims if dim in TRACE_DIMS]
    if traced:
        raise _validate.InputError(
            f"var {var!r} has a trace dimension {traced[0]!r}; extrapolate a final quantity "
            "(e.g. exact_risk or risk), or use collapse for traces"
        )
    return da, bootstrap


def _fit_all(
    x: np.ndarray,
    values: np.ndarray,
    se_values: np.ndarray | None,
    has_seeds: bool,
    others: list[str],
    coords: dict[str, np.ndarray],
    **options: Any,
) -> tuple[dict[str, np.ndarray], list[str], set[str]]:
    """The fit at every combination of ``others`` (``values``: others × [seeds ×] x): the arrays of
    ``_COLUMNS``, the data fitted, the draws and the statuses; what could not be fitted; the methods."""
    shape = values.shape[: len(others)]
    fits: dict[str, np.ndarray] = {name: np.full(shape, np.nan) for name in _COLUMNS}
    fits["mean"] = np.full((*shape, x.size), np.nan)
    fits["mean_se"] = np.full((*shape, x.size), np.nan)
    fits["draws"] = np.full((*shape, options["bootstrap"], 3), np.nan)
    fits["fit_status"] = np.full(shape, "not_fitted", dtype=object)
    fits["fit_note"] = np.full(shape, "", dtype=object)
    skipped, methods = [], set()
    for index in np.ndindex(*shape):
        y = values[index] if has_seeds else values[index][None, :]
        s = None if se_values is None else (se_values[index] if has_seeds else se_values[index][None, :])
        m, sigma = _point_stats(x, np.where(np.isfinite(y), y, np.nan), s)
        fits["mean"][index] = m
        if sigma is not None:
            fits["mean_se"][index] = sigma
        try:
            fit = (
                fit_power_law(x, y, s, offset=True, seeds_axis=0, **options)
                if has_seeds and y.shape[0] > 1
                else fit_power_law(x, y[0], None if s is None else s[0], offset=True, **options)
            )
        except ValueError as err:
            skipped.append(f"{_label(others, coords, index) or 'all'}: {err}")
            continue
        methods.add(fit.method)
        _store(fits, index, fit)
    return fits, skipped, methods


def _store(fits: dict[str, np.ndarray], index: tuple[int, ...], fit: PowerLawFit) -> None:
    fits["fit_status"][index] = str(fit.status)
    fits["fit_note"][index] = "" if fit.status.ok else fit.status.describe()
    row = [
        fit.offset,
        *cast(tuple[float, float], fit.offset_ci),
        fit.alpha,
        *fit.alpha_ci,
        fit.C,
        *fit.C_ci,
        fit.chi2_dof,
        fit.n,
    ]
    for name, value in zip(_COLUMNS, row, strict=True):
        fits[name][index] = value
    if len(fit.draws):
        fits["draws"][index][: len(fit.draws)] = fit.draws


def _assemble(
    fits: dict[str, np.ndarray],
    dims: tuple[str, ...],
    coords: dict[str, np.ndarray],
    along: str,
    x: np.ndarray,
    theory_values: np.ndarray,
) -> xr.Dataset:
    """The fits as a Dataset over ``dims``, with the theory, the data fitted and the draws."""
    result = xr.Dataset({name: (dims, fits[name]) for name in _COLUMNS}, coords=coords)
    result["fit_status"] = (dims, fits["fit_status"].astype(str))
    result["fit_note"] = (dims, fits["fit_note"].astype(str))
    result["theory"] = (dims, theory_values)
    result["r_inf_minus_theory"] = result["r_inf"] - result["theory"]
    result["covers"] = (result["r_inf_low"] <= result["theory"]) & (result["theory"] <= result["r_inf_high"])
    result["mean"] = ((*dims, along), fits["mean"])
    result["mean_se"] = ((*dims, along), fits["mean_se"])
    result = result.assign_coords({along: x})
    for i, name in enumerate(("draw_alpha", "draw_C", "draw_r_inf")):
        result[name] = ((*dims, "draw"), fits["draws"][..., i])
    return result


def _long_names(var: str, along: str, level: float, source: str) -> dict[str, str]:
    """What each variable of the result holds (its ``long_name``)."""
    return {
        "r_inf": f"fitted limit of {var} as {along} → ∞",
        "r_inf_low": f"lower end of the {level:.0%} interval of r_inf",
        "r_inf_high": f"upper end of the {level:.0%} interval of r_inf",
        "alpha": f"exponent α of {var} − r_inf ∝ {along}^(−α)",
        "alpha_low": f"lower end of the {level:.0%} interval of alpha",
        "alpha_high": f"upper end of the {level:.0%} interval of alpha",
        "C": f"amplitude C of {var} − r_inf = C·{along}^(−α)",
        "C_low": f"lower end of the {level:.0%} interval of C",
        "C_high": f"upper end of the {level:.0%} interval of C",
        "chi2_dof": "weighted χ² per degree of freedom of the fit",
        "fit_status": "ok, or the flags the fit raised (aejax.scaling.FIT_FLAGS; failures have no interval)",
        "fit_note": "what raised the fit's flags",
        "n_points": f"values of {along} fitted",
        "theory": source,
        "r_inf_minus_theory": "r_inf − theory",
        "covers": "whether [r_inf_low, r_inf_high] contains theory",
        "mean": f"seed mean of {var} (runs with status ok)",
        "mean_se": "standard error of mean (the fit's weights are 1/mean_se²)",
        "draw_alpha": "bootstrap estimates of alpha",
        "draw_C": "bootstrap estimates of C",
        "draw_r_inf": "bootstrap estimates of r_inf",
    }


def _theory_values(ds, others, coords, shape, along, seeds, theory, activation) -> tuple[np.ndarray, str]:
    if theory is not None:
        if isinstance(theory, xr.DataArray):
            return np.broadcast_to(
                theory.broadcast_like(xr.DataArray(np.zeros(shape), coords=coords, dims=others))
                .transpose(*others)
                .values,
                shape,
            ).astype(float), "theory given by the caller"
        return np.broadcast_to(np.asarray(theory, float), shape).copy(), "theory given by the caller"
    if "rate" in others:
        from aejax.theory import gaussian_limit

        act = activation or _config_activation(ds)
        try:
            limit = np.asarray(gaussian_limit(np.asarray(coords["rate"], float), act), float)
        except (ValueError, TypeError):
            limit = None
        if limit is not None:
            axis = others.index("rate")
            values = np.broadcast_to(np.expand_dims(limit, [i for i in range(len(others)) if i != axis]), shape)
            return values.copy(), f"R_Gauss: aejax.theory.gaussian_limit(rate, {act!r}) at the nominal rate"
    if "theory" in ds.data_vars:
        th = ds["theory"].sel({along: ds[along].max()})
        if seeds in th.dims:
            th = th.median(seeds)
        th = th.broadcast_like(xr.DataArray(np.zeros(shape), coords=coords, dims=others)).transpose(*others)
        return np.asarray(th.values, float), f"the results' theory variable at the largest {along}"
    return np.full(shape, np.nan), "no theory available"
