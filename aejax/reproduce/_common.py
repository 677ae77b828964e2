"""Shared plumbing of the reproductions: sizes, output paths, markdown tables, power-law fits.

Examples:
    >>> exponent, se = fit_power_law([64, 128, 256], [0.04, 0.02, 0.01])
    >>> round(exponent, 3), round(se, 3)
    (-1.0, 0.0)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aejax import _validate
from aejax.results import save_results

SIZES = ("tiny", "small", "large")  # tiny: seconds (tests); small: minutes on a 2-core CPU; large: accelerators


def pick_size(presets: dict[str, dict[str, Any]], size: str) -> dict[str, Any]:
    """The preset of ``size`` (one of ``SIZES``)."""
    _validate.choice("size", size, SIZES)
    return presets[size]


def write_outputs(name: str, out: str | os.PathLike, ds: xr.Dataset, fig: Any, table: str) -> dict[str, Path]:
    """Write ``<out>/<name>.png``, ``.nc`` and ``.md``; returns their paths under ``png``, ``nc``, ``md``."""
    from aejax.plot import pyplot, save_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": out / f"{name}.png", "nc": out / f"{name}.nc", "md": out / f"{name}.md"}
    try:
        save_figure(fig, paths["png"])
    finally:
        pyplot().close(fig)
    save_results(ds, paths["nc"])
    paths["md"].write_text(table)
    return paths


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats get 4 decimals (signed in columns named with "gap"; ``"± se"`` columns: 1e-4 style).

    Examples:
        >>> print(markdown_table(["r", "gap"], [[0.5, 0.001]]))
        | r | gap |
        |---|---|
        | 0.5000 | +0.0010 |
    """

    def cell(value: Any, column: str) -> str:
        if isinstance(value, (float, np.floating)):
            if column == "± se":
                return f"{value:.1e}"
            return f"{value:+.4f}" if "gap" in column else f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v, c) for v, c in zip(row, header, strict=True)) + " |" for row in rows]
    return "\n".join(lines)


def fit_power_law(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares slope of log y against log x, and its standard error from the residuals.

    Args:
        x: positive abscissae (e.g. dimensions d), at least 2.
        y: positive values (e.g. gaps to theory).

    Returns:
        ``(exponent, standard_error)``; the error is NaN with only two points.
    """
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if lx.size < 2 or not np.all(np.isfinite(ly)):
        raise _validate.InputError(f"fit_power_law needs at least 2 positive points, got x={list(x)}, y={list(y)}")
    design = np.c_[lx, np.ones_like(lx)]
    coef, *_ = np.linalg.lstsq(design, ly, rcond=None)
    dof = lx.size - 2
    if dof == 0:
        return float(coef[0]), float("nan")
    sigma2 = np.sum((ly - design @ coef) ** 2) / dof
    return float(coef[0]), float(np.sqrt(sigma2 / np.sum((lx - lx.mean()) ** 2)))
