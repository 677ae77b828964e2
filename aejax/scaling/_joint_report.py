"""The joint law on results Datasets (``extrapolate_joint``) and its report, ``report_joint``
(``aejax scaling RESULTS --along d,time``)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aejax import _validate
from aejax.report import markdown_table
from aejax.results import atomic_write, load_results, save_results
from aejax.scaling._data import _config_activation
from aejax.scaling._figures import plot_joint
from aejax.scaling._joint import FLAGS, JointFit, fit_joint
from aejax.scaling._joint_solver import PARAMETERS


def extrapolate_joint(
    ds: xr.Dataset,
    var: str = "exact_risk",
    along: tuple[str, str] = ("d", "time"),
    *,
    bootstrap: int = 1000,
    level: float = 0.95,
    interaction: bool | str = "auto",
    theory: Any = None,
    rng: int = 0,
) -> xr.Dataset:
    """The joint law at each value of the other swept axes (rate, ...), with R∞ against the theory.

    Args:
        ds: results with dimensions ``along`` (e.g. from ``aejax.sweep(..., grid={"d": ..., "time": ...})``)
            and optionally ``seed``; runs whose ``status`` is not ``ok`` are left out.
        var: the risk variable (``exact_risk`` or ``risk``, weighted by ``risk_se`` as a floor).
        along: the size and time dimensions.
        bootstrap: resamples for the intervals (as ``fit_joint``).
        level: confidence level of the intervals.
        interaction: ``"auto"``, ``True`` or ``False`` (as ``fit_joint``).
        theory: the limit to compare with, per combination (default ``R_Gauss`` at the nominal rate,
            ``aejax.theory.gaussian_limit`` with the results' activation; NaN without a ``rate``).
        rng: seed of the bootstrap.

    Returns:
        A Dataset over the other coordinates: ``r_inf``, ``A``, ``alpha``, ``B``, ``beta``, ``E`` with
        ``*_low``/``*_high`` intervals, ``chi2_dof``, ``n_points``, ``theory``, ``r_inf_minus_theory``,
        ``covers``, ``width``, ``terms``, ``fit_status``, ``notes``, and ``p_d``, ``p_time``,
        ``p_interaction`` (the nested F-tests).

    Examples:
        >>> d, t = np.array([64, 128, 256]), np.array([125.0, 250.0, 500.0, 1000.0])
        >>> risk = 0.3634 + 0.5 / d[:, None] + 0.2 * t[None, :] ** -0.7
        >>> ds = xr.Dataset({"exact_risk": (("d", "time"), risk)}, coords={"d": d, "time": t})
        >>> out = extrapolate_joint(ds, bootstrap=0)
        >>> round(float(out["r_inf"]), 6), str(out["fit_status"].values)
        (0.3634, 'ok')
    """
    da = _checked(ds, var, along)
    se = ds["risk_se"] if var == "risk" and "risk_se" in ds else None
    seeded = "seed" in da.dims
    others = [dim for dim in da.dims if dim not in (*along, "seed")]
    order = [*others, *(["seed"] if seeded else []), *along]
    da = da.transpose(*order)
    if se is not None:
        se = se.transpose(*order)
    shape = tuple(da.sizes[o] for o in others)
    sizes, times = np.meshgrid(np.asarray(ds[along[0]], float), np.asarray(ds[along[1]], float), indexing="ij")
    activation = _config_activation(ds)
    options = {"bootstrap": bootstrap, "level": level, "interaction": interaction, "rng": rng}
    results: dict[str, Any] = {}
    for index in np.ndindex(*shape):
        values = np.asarray(da.values[index], float)
        values = values.reshape(values.shape[0], -1) if seeded else values.reshape(-1)
        errors = None if se is None else np.asarray(se.values[index], float).reshape(values.shape)
        fit = fit_joint(sizes.ravel(), times.ravel(), values, errors, seeds_axis=0 if seeded else None, **options)
        coords = {o: ds[o].values[i] for o, i in zip(others, index, strict=True)}
        for key, value in _row(fit, _limit(theory, index, coords, activation)).items():
            results.setdefault(key, np.empty(shape, dtype=object if isinstance(value, str) else float))[index] = value
    out = xr.Dataset(
        {key: (tuple(others), value) for key, value in results.items()},
        coords={o: ds[o].values for o in others},
    )
    out.attrs.update(
        var=var,
        along=",".join(along),
        level=level,
        bootstrap=bootstrap,
        law="R = R∞ + A·d^(−α) + B·τ^(−β) [+ E·d^(−α)·τ^(−β) when the data demand it]",
        activation=activation,
    )
    return out


def _checked(ds: xr.Dataset, var: str, along: tuple[str, str]) -> xr.DataArray:
    """``var`` with the failed runs NaN, once the arguments are checked (errors name the command's options)."""
    if not isinstance(ds, xr.Dataset):
        raise _validate.InputTypeError(f"ds must be an xarray Dataset, got {type(ds).__name__}")
    if var not in ds:
        raise _validate.InputError(f"--var {var!r} is not in the results; allowed: {', '.join(map(str, ds.data_vars))}")
    if len(tuple(along)) != 2 or along[0] == along[1]:
        raise _validate.InputError(f"--along must name two dimensions (size, time), got {','.join(along)!r}")
    da = ds[var]
    for dim in along:
        if dim not in da.dims:
            raise _validate.InputError(
                f"--along {dim!r} is not a dimension of {var} (dimensions: {', '.join(map(str, da.dims))}); "
                f"a joint fit needs a sweep over both {along[0]} and {along[1]}"
            )
    traced = [dim for dim in da.dims if dim in ("tau", "step")]
    if traced:
        raise _validate.InputError(f"--var {var!r} is a trace (dimension {traced[0]}); give a final value")
    return da.where(ds["status"] == "ok") if "status" in ds else da


def _limit(theory: Any, index: tuple[int, ...], coords: dict[Any, Any], activation: str) -> float:
    """The limit one combination is compared with: ``theory`` as given, else R_Gauss at its rate, else NaN."""
    if theory is not None:
        return float(np.asarray(theory)[index]) if np.ndim(theory) else float(theory)
    if "rate" in coords:
        from aejax.theory import gaussian_limit

        return float(gaussian_limit(float(coords["rate"]), activation))
    return math.nan


def _row(fit: JointFit, limit: float) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in PARAMETERS:
        row[name] = getattr(fit, name)
        row[f"{name}_low"], row[f"{name}_high"] = fit.ci[name]
    low, high = fit.ci["r_inf"]
    row.update(
        chi2_dof=fit.chi2_dof,
        n_points=float(fit.n),
        theory=limit,
        r_inf_minus_theory=fit.r_inf - limit,
        covers=float(low <= limit <= high) if np.isfinite(low) and np.isfinite(limit) else math.nan,
        width=high - low,
        p_d=fit.tests["d"]["p"],
        p_time=fit.tests["time"]["p"],
        p_interaction=fit.tests["interaction"]["p"],
        terms=",".join(fit.terms) or "none",
        fit_status=fit.status,
        notes=" | ".join(fit.notes),
    )
    return row


JOINT_HEADER = ["R∞ [CI]", "R_Gauss", "R∞ − R_Gauss", "covers?", "α [CI]", "β [CI]", "A", "B", "E", "χ²/dof", "status"]


def _digits(low: float, high: float) -> int:
    width = abs(high - low)
    return max(4, 1 - math.floor(math.log10(width))) if np.isfinite(width) and width > 0 else 6


def joint_table(result: xr.Dataset) -> tuple[list[str], list[list[str]]]:
    """The printed table of ``extrapolate_joint``: one row per combination of the other coordinates."""
    others = list(result.dims)
    header = [*others, *JOINT_HEADER]
    rows = []
    for index in np.ndindex(*[result.sizes[o] for o in others]):
        sel = result.isel(dict(zip(others, index, strict=True)))

        def v(name, sel=sel):
            return float(sel[name])

        k = _digits(v("r_inf_low"), v("r_inf_high"))
        covers = {1.0: "yes", 0.0: "no"}.get(v("covers"), "—")

        def exponent(name, v=v):
            if not np.isfinite(v(name)):
                return "—"
            return f"{v(name):.3f} [{v(name + '_low'):.3f}, {v(name + '_high'):.3f}]"

        rows.append(
            [
                *(f"{sel[o].item():g}" for o in others),
                f"{v('r_inf'):.{k}f} [{v('r_inf_low'):.{k}f}, {v('r_inf_high'):.{k}f}]",
                f"{v('theory'):.{k}f}",
                f"{v('r_inf_minus_theory'):+.{k}f}",
                covers,
                exponent("alpha"),
                exponent("beta"),
                f"{v('A'):.3g}" if np.isfinite(v("A")) else "—",
                f"{v('B'):.3g}" if np.isfinite(v("B")) else "—",
                f"{v('E'):.3g}" if np.isfinite(v("E")) else "—",
                f"{v('chi2_dof'):.2f}",
                str(sel["fit_status"].item()),
            ]
        )
    return header, rows


def report_joint(
    results: str | os.PathLike | xr.Dataset,
    *,
    var: str = "exact_risk",
    along: tuple[str, str] = ("d", "time"),
    out: str | os.PathLike | None = None,
    bootstrap: int = 1000,
    level: float = 0.95,
    interaction: bool | str = "auto",
) -> dict[str, Any]:
    """``aejax scaling RESULTS --along d,time``: fit the joint law, write ``scaling_joint.nc``,
    ``scaling_joint.md`` and ``scaling_joint.png`` into ``out`` (default: next to the results file).

    Returns:
        ``{"result": Dataset, "table": markdown, "files": {label: path}, "failed": [one line per failed fit]}``.
    """
    if isinstance(results, xr.Dataset):
        ds, where = results, Path(out or ".")
    else:
        path = Path(results)
        ds = load_results(path)
        where = Path(out) if out is not None else (path if path.is_dir() else path.parent)
    _validate.non_negative_int("--bootstrap", bootstrap)
    result = extrapolate_joint(ds, var, along, bootstrap=bootstrap, level=level, interaction=interaction)
    table = markdown_table(*joint_table(result))
    notes = [str(n) for n in np.ravel(result["notes"].values) if str(n)]
    text = (
        f"# Joint scaling law of {var} along {','.join(along)}\n\n{result.attrs['law']}, fitted per "
        f"{', '.join(map(str, result.dims)) or 'results'}; {level:.0%} bootstrap intervals over seeds "
        f"({bootstrap} resamples); "
        f"R_Gauss from aejax.theory.gaussian_limit.\n\n{table}\n"
        + ("\n" + "\n".join(f"- {n}" for n in notes) + "\n" if notes else "")
    )
    where.mkdir(parents=True, exist_ok=True)
    source = "a Dataset" if isinstance(results, xr.Dataset) else str(results)
    command = f"aejax scaling {source} --var {var} --along {','.join(along)} --bootstrap {bootstrap} --level {level:g}"
    files = {
        "fit": save_results(result, where / "scaling_joint.nc"),
        "table": where / "scaling_joint.md",
        "figure": plot_joint(ds, result, var, along, where / "scaling_joint.png", command=command),
    }
    atomic_write(files["table"], lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return {"result": result, "table": table, "files": files, "failed": _failed_fits(result)}


def _failed_fits(result: xr.Dataset) -> list[str]:
    """``"<combination>: <flags>"`` for each fit of ``extrapolate_joint`` with a failure flag."""
    failed = []
    for index in np.ndindex(*[result.sizes[o] for o in result.dims]):
        sel = result.isel(dict(zip(result.dims, index, strict=True)))
        status = str(sel["fit_status"].item())
        if any(FLAGS.get(f, "").startswith("failure") for f in status.split(",")):
            label = ", ".join(f"{o}={sel[o].item():g}" for o in result.dims) or "the fit"
            failed.append(f"{label}: {status}")
    return failed
