"""Presenting results: the one markdown table writer and the one seed mean ± standard error.

Every table that aejax writes (reproductions, ``aejax scaling``, the joint fit) goes through
``markdown_table``; every mean over seeds with its standard error through ``seed_mean_se``. Figures
are saved by ``aejax.plot.save_figure``.

Examples:
    >>> print(markdown_table(["r", "gap", "fit"], [[0.5, 0.001, "ok"]]))
    | r | gap | fit |
    |---|---|---|
    | 0.5000 | +0.0010 | ok |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from aejax import _validate

if TYPE_CHECKING:
    import xarray as xr


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table. Strings are written as given; floats get 4 decimals, signed in columns whose
    name contains "gap", and ``1e-4`` style in a column named ``"± se"``.

    Args:
        header: column names.
        rows: one sequence of cells per row, each as long as ``header``.

    Returns:
        The table, one line per row, without a trailing newline.

    Examples:
        >>> print(markdown_table(["d", "± se"], [[64, 0.00012]]))
        | d | ± se |
        |---|---|
        | 64 | 1.2e-04 |
    """
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise _validate.InputError(f"rows[{i}] has {len(row)} cells, but the header has {len(header)} columns")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v, c) for v, c in zip(row, header, strict=True)) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any, column: str) -> str:
    if isinstance(value, (float, np.floating)):
        if column == "± se":
            return f"{value:.1e}"
        return f"{value:+.4f}" if "gap" in column else f"{value:.4f}"
    return str(value)


def seed_mean_se(values: xr.DataArray, dim: str = "seed") -> tuple[xr.DataArray, xr.DataArray]:
    """Mean over ``dim`` and its standard error, std (ddof = 1) / √k with k the finite values.

    NaN values (failed runs) are left out of both; with fewer than two finite values the standard
    error is NaN, never 0: one seed says nothing about the spread.

    Args:
        values: a DataArray with a ``dim`` dimension.
        dim: the dimension to average over (default ``"seed"``).

    Returns:
        ``(mean, se)``, DataArrays without ``dim``.

    Examples:
        >>> import xarray as xr
        >>> mean, se = seed_mean_se(xr.DataArray([1.0, 2.0, 3.0], dims="seed"))
        >>> float(mean), round(float(se), 4)
        (2.0, 0.5774)
        >>> float(seed_mean_se(xr.DataArray([1.0], dims="seed"))[1])
        nan
    """
    if dim not in values.dims:
        raise _validate.InputError(f"dim must be a dimension of values {tuple(values.dims)}, got {dim!r}")
    count = values.notnull().sum(dim)
    mean = values.mean(dim, skipna=True)
    deviation = ((values - mean) ** 2).sum(dim, skipna=True)
    var = deviation / (count - 1).where(count >= 2)
    return mean, (var / count) ** 0.5
