"""``aejax scaling RESULTS``: the table, ``scaling.md``, ``scaling.nc`` and the figures of a results file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aejax import _validate
from aejax.report import markdown_table
from aejax.results import atomic_write, load_results, save_results
from aejax.scaling._collapse import collapse
from aejax.scaling._data import _failed, _fmt, _points, _unstack_runs, check_inputs
from aejax.scaling._extrapolate import _BYTES_PER_DRAW, extrapolate
from aejax.scaling._figures import plot_gap, plot_trajectories

TABLE_HEADER = ["α [CI]", "C", "R∞ [CI]", "R_Gauss", "R∞ − R_Gauss", "covers?", "χ²/dof", "fit"]


def table_rows(result: xr.Dataset) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the scaling table of an ``extrapolate`` result (one row per remaining coordinate).

    The last column is the fit's status (``ok`` or its flags); a failed fit's α and R∞ are printed with
    "(fit failed)" in place of an interval.

    Examples:
        >>> import numpy as np, xarray as xr
        >>> d = np.array([64, 128, 256, 512])
        >>> ds = xr.Dataset({"exact_risk": ("d", 0.36 + 0.03 / d)}, coords={"d": d})
        >>> header, rows = table_rows(extrapolate(ds, theory=0.36, bootstrap=0))
        >>> header[:3], rows[0][2], rows[0][-1]
        (['α [CI]', 'C', 'R∞ [CI]'], '0.36000 [nan, nan]', 'ok')
    """
    dims = [str(dim) for dim in result["r_inf"].dims]
    rows = [
        [*(_fmt(v) for v in point.values()), *_cells(result.sel(point) if point else result)]
        for point in _points(result, dims)
    ]
    return [*dims, *TABLE_HEADER], rows


_NUMBERS = ("alpha", "alpha_low", "alpha_high", "C", "r_inf", "r_inf_low", "r_inf_high", "theory")


def _cells(sel: xr.Dataset) -> list[str]:
    """One row of the table, the ``TABLE_HEADER`` columns of one combination."""
    f = {name: float(sel[name]) for name in (*_NUMBERS, "r_inf_minus_theory", "chi2_dof")}
    covers = (
        "—"
        if not (np.isfinite(f["theory"]) and np.isfinite(f["r_inf_low"]))
        else ("yes" if bool(sel["covers"]) else "no")
    )
    # R∞ to two significant digits of its interval's width (at least 4 decimals)
    width = f["r_inf_high"] - f["r_inf_low"]
    n = max(4, 1 - math.floor(math.log10(width))) if np.isfinite(width) and width > 0 else 5
    failed = _failed(sel)
    return [
        f"{f['alpha']:.3f} (fit failed)"
        if failed
        else f"{f['alpha']:.3f} [{f['alpha_low']:.3f}, {f['alpha_high']:.3f}]",
        f"{f['C']:.3g}",
        f"{f['r_inf']:.{n}f} (fit failed)"
        if failed
        else f"{f['r_inf']:.{n}f} [{f['r_inf_low']:.{n}f}, {f['r_inf_high']:.{n}f}]",
        f"{f['theory']:.{n}f}",
        f"{f['r_inf_minus_theory']:+.{n}f}",
        covers,
        f"{f['chi2_dof']:.2f}",
        str(sel["fit_status"].item()) if "fit_status" in sel else "—",
    ]


def report(
    results: str | os.PathLike,
    var: str = "exact_risk",
    along: str = "d",
    out: str | os.PathLike | None = None,
    *,
    bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the scaling law of a results file and write ``scaling.nc``, ``scaling.md``, ``scaling_gap.png``
    and (with a ``risk_trace``) ``scaling_trajectories.png`` into ``out``: the ``aejax scaling`` command.

    ``scaling.nc`` holds the ``extrapolate`` Dataset plus, when the results have ``risk_trace``, its
    ``collapse`` as ``risk_trace_collapse``. Errors name the command's arguments (``RESULTS``, ``--var``,
    ``--along``).

    Args:
        results: a results file (or a sweep's output directory).
        var: the quantity to extrapolate.
        along: the size axis.
        out: output directory (default: the results file's directory).
        bootstrap: bootstrap resamples per fit (see ``fit_power_law``).
        level: confidence level of the intervals.
        seed: random seed of the bootstrap.

    Returns:
        ``{"header", "rows", "table" (markdown), "result" (Dataset), "files" ({label: path}), "failed"}``:
        ``failed`` lists ``"<combination>: <flags and notes>"`` for every fit that failed (``FitStatus``); the
        command then exits with status 3 after writing the files.

    Examples:
        >>> import numpy as np, pathlib, tempfile, xarray as xr
        >>> from aejax.results import save_results
        >>> d = np.array([64, 128, 256, 512])
        >>> y = 0.36 + 0.03 / d + 1e-6 * np.random.default_rng(0).standard_normal((3, 4))
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> path = save_results(xr.Dataset({"exact_risk": (("seed", "d"), y)}, coords={"seed": [0, 1, 2], "d": d}),
        ...                     folder / "results.nc")
        >>> sorted(report(path, bootstrap=50)["files"])
        ['figure', 'markdown', 'netcdf']
    """
    results = Path(results)
    ds = _load(results, var, along, bootstrap, level)
    result = extrapolate(ds, var, along, bootstrap=bootstrap, level=level, seed=seed, bootstrap_name="--bootstrap")
    if not np.isfinite(result["r_inf"].values).any():
        reasons = "; ".join(json.loads(result.attrs["skipped"]))
        raise _validate.InputError(f"--var {var!r}: no combination could be fitted: {reasons}")
    out = Path(out) if out is not None else (results if results.is_dir() else results.parent)
    out.mkdir(parents=True, exist_ok=True)
    trace_var = "risk_trace"
    collapsed = collapse(ds, trace_var, along) if trace_var in ds.data_vars and along in ds[trace_var].dims else None
    if collapsed is not None:
        result[collapsed.name] = collapsed
    header, rows = table_rows(result)
    table = markdown_table(header, rows)
    command = _command(results, var, along, bootstrap, level, seed)
    files = {"figure": plot_gap(result, out / "scaling_gap.png", command=command)}
    if collapsed is not None:
        files["trajectories"] = plot_trajectories(
            ds, out / "scaling_trajectories.png", trace_var, along, command=command
        )
    failed, flagged = _flagged(result)
    text = [
        *_summary(ds, result, results, table, level),
        *_flag_lines(failed, flagged),
        *(_collapse_section(collapsed, trace_var) if collapsed is not None else []),
        "Figures: " + ", ".join(f"`{p.name}`" for p in files.values()),
        "",
    ]
    files["netcdf"] = save_results(result, out / "scaling.nc")
    files["markdown"] = out / "scaling.md"
    atomic_write(files["markdown"], lambda tmp: Path(tmp).write_text("\n".join(text), encoding="utf-8"))
    return {"header": header, "rows": rows, "table": table, "result": result, "files": files, "failed": failed}


def _load(results: Path, var: str, along: str, bootstrap: int, level: float) -> xr.Dataset:
    """The command's options checked (the bootstrap's memory before reading the file), then the results,
    with errors naming the command's arguments."""
    if not 0 < level < 1:
        raise _validate.InputError(f"--level must lie in (0, 1), got {level!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise _validate.InputError(f"--bootstrap must be a non-negative integer, got {bootstrap!r}")
    _validate.within_memory("--bootstrap", bootstrap, _BYTES_PER_DRAW, "resample")
    try:
        ds = load_results(results)
    except ValueError as err:
        raise _validate.InputError(f"RESULTS: {err}") from None
    ds = _unstack_runs(ds, along)
    check_inputs(ds, var, along, names={"var": "--var", "along": "--along"})
    return ds


def _command(results: Path, var: str, along: str, bootstrap: int, level: float, seed: int) -> str:
    """The ``aejax scaling`` command that makes these files (recorded in the figures)."""
    command = f"aejax scaling {results} --var {var} --along {along} --bootstrap {bootstrap} --level {level:g}"
    return command if seed == 0 else f"{command} (bootstrap seed {seed})"


def _summary(ds: xr.Dataset, result: xr.Dataset, results: Path, table: str, level: float) -> list[str]:
    """The page's title, what was fitted and how, the table, and the combinations not fitted."""
    var, along = result.attrs["var"], result.attrs["along"]
    xs = ", ".join(_fmt(v) for v in ds[along].values)
    skipped = json.loads(result.attrs["skipped"])
    text = [
        f"# Scaling of {var} with {along}",
        "",
        f"Results: `{results}`; {along} = {xs}; {result.attrs['seeds']} seed(s).",
        "",
        (
            f"Fit: {var} = R∞ + C·{along}^(−α) at each {', '.join(map(str, result['r_inf'].dims)) or 'point'}; "
            f"{result.attrs['method']}; {level:.0%} percentile intervals. Theory: {result.attrs['theory_source']}."
        ),
        "",
        table,
        "",
    ]
    return text + (["Not fitted: " + "; ".join(skipped), ""] if skipped else [])


def _flagged(result: xr.Dataset) -> tuple[list[str], list[str]]:
    """``"<combination>: <note>"`` for each fit that failed, and for each that raised a caution only."""
    failed, flagged = [], []
    for point in _points(result, [str(dim) for dim in result["r_inf"].dims]):
        sel = result.sel(point) if point else result
        if str(sel["fit_status"].item()) in ("ok", "not_fitted"):
            continue
        line = f"{', '.join(f'{k}={_fmt(v)}' for k, v in point.items()) or 'all'}: {sel['fit_note'].item()}"
        (failed if _failed(sel) else flagged).append(line)
    return failed, flagged


def _flag_lines(failed: list[str], flagged: list[str]) -> list[str]:
    text = []
    if failed:
        text += [
            "**The fit failed** (no interval; its R∞ and α are not estimates of the limit): " + "; ".join(failed),
            "",
        ]
    return text + (["Caution: " + "; ".join(flagged), ""] if flagged else [])


def _collapse_section(collapsed: xr.DataArray, trace_var: str) -> list[str]:
    """The page's section on the trajectory collapse: how it is measured, and one row per size."""
    dims = [str(dim) for dim in collapsed.dims]
    rows = [
        [*(_fmt(v) for v in point.values()), f"{float(collapsed.sel(point)):.2e}"]
        for point in _points(collapsed.to_dataset(), dims)
    ]
    note = f" Note: {collapsed.attrs['note']}." if "note" in collapsed.attrs else ""
    return [
        f"## Trajectory collapse ({trace_var} against {collapsed.attrs['time']})",
        "",
        collapsed.attrs["description"] + note,
        "",
        markdown_table([*dims, "max |Δ|"], rows),
        "",
    ]
