"""Shared plumbing of the reproductions: sizes, the command that made an output, and writing outputs.

Tables go through ``aejax.report.markdown_table``, seed means through ``aejax.report.seed_mean_se``
and figures through ``aejax.plot.save_figure`` (``write_figure`` here closes the figure too), so
every PNG records the command and the aejax version that made it.

Examples:
    >>> command("features", "tiny")
    'aejax reproduce features --size tiny'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import xarray as xr

from aejax import _validate
from aejax.results import save_results

SIZES = ("tiny", "small", "large")  # tiny: seconds (tests); small: minutes on a 2-core CPU; large: accelerators


def pick_size(presets: dict[str, dict[str, Any]], size: str) -> dict[str, Any]:
    """The preset of ``size`` (one of ``SIZES``)."""
    _validate.choice("size", size, SIZES)
    return presets[size]


def command(name: str, size: str, data: str | os.PathLike | None = None) -> str:
    """The command line that reproduces ``name`` at ``size`` (on ``data`` when given).

    Examples:
        >>> command("universality", "small", data="x.npy")
        'aejax reproduce universality --size small --data x.npy'
    """
    return f"aejax reproduce {name} --size {size}" + ("" if data is None else f" --data {data}")


def write_figure(fig: Any, path: Path, made_by: str) -> Path:
    """Save ``fig`` to ``path`` with ``aejax.plot.save_figure`` (recording ``made_by``) and close it."""
    from aejax.plot import pyplot, save_figure

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_figure(fig, path, command=made_by)
    finally:
        pyplot().close(fig)


def write_outputs(
    name: str, out: str | os.PathLike, ds: xr.Dataset, fig: Any, table: str, made_by: str
) -> dict[str, Path]:
    """Write ``<out>/<name>.png``, ``.nc`` and ``.md``; returns their paths under ``png``, ``nc``, ``md``.

    ``made_by`` (see ``command``) goes into the PNG's metadata, the Dataset's ``command`` attribute
    and the table's last line, each with the aejax version.
    """
    from aejax._version import __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": out / f"{name}.png", "nc": out / f"{name}.nc", "md": out / f"{name}.md"}
    write_figure(fig, paths["png"], made_by)
    save_results(ds.assign_attrs(command=made_by, aejax_version=__version__), paths["nc"])
    paths["md"].write_text(f"{table.rstrip()}\n\nMade by `{made_by}` (aejax {__version__}).\n")
    return paths
