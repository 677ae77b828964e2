"""Standard figures (matplotlib, Agg backend: no display needed).

Examples:
    >>> import numpy as np, tempfile, xarray as xr, pathlib
    >>> ds = xr.Dataset({"risk": (("seed", "rate"), [[0.7, 0.4]]), "risk_se": (("seed", "rate"), [[0.01, 0.01]])},
    ...                 coords={"seed": [0], "rate": [0.5, 1.0]})
    >>> plot_risk_vs_rate(ds, pathlib.Path(tempfile.mkdtemp()) / "f.png").exists()
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from aejax import _validate

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot():
    """matplotlib's ``pyplot`` on the non-interactive Agg backend (figures are only written to files).

    Examples:
        >>> pyplot().figure is not None
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def import_matplotlib() -> None:
    """Import what ``plot_risk_vs_rate`` and ``save_figure`` draw and write with (0.3 s; the ``aejax``
    command does it while XLA compiles).

    Examples:
        >>> import_matplotlib()
    """
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


def plot_risk_vs_rate(
    ds: xr.Dataset, path: str | os.PathLike, activation: str = "sign", title: str | None = None
) -> Path:
    """Trained risk vs rate (mean over seeds, error bars: standard error over seeds and Monte Carlo),
    with the Gaussian-limit theory, Shannon's bound and PCA.

    Args:
        ds: sweep results with a ``rate`` dimension (and optionally ``seed``; any other swept axis
            gets one line per value).
        path: PNG path.
        activation: activation whose theory curve is drawn.
        title: figure title.

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure  # not pyplot: its import alone costs a second

    from aejax import theory

    fig = Figure(figsize=(5.5, 4), dpi=110)
    ax = fig.subplots()
    grid = np.linspace(0.02, max(2.0, float(ds["rate"].max())) * 1.05, 300)
    ax.plot(grid, np.asarray(theory.gaussian_limit(grid, activation)), "k-", lw=1.5, label=f"theory ({activation})")
    ax.plot(grid, np.asarray(theory.shannon_limit(grid)), "k:", lw=1, label="Shannon 2^(-2r)")
    ax.plot(grid, np.asarray(theory.pca_risk(grid)), "k--", lw=1, label="PCA max(0, 1-r)")
    risk = ds["risk"]
    others = [dim for dim in risk.dims if dim not in ("rate", "seed")]
    stacked = risk.stack(line=others) if others else risk.expand_dims(line=[0])
    for label in stacked["line"].values:
        curve = stacked.sel(line=label)
        seeds = curve.sizes.get("seed", 1)
        mean = curve.mean("seed") if "seed" in curve.dims else curve
        spread = curve.std("seed", ddof=1) / np.sqrt(seeds) if seeds > 1 else ds["risk_se"].max()
        name = (
            "trained"
            if not others
            else "trained "
            + ", ".join(
                f"{o}={v:g}" if isinstance(v, (int, float, np.number)) else f"{o}={v}"
                for o, v in zip(others, np.atleast_1d(label).tolist(), strict=True)
            )
        )
        ax.errorbar(
            mean["rate"],
            mean,
            yerr=np.broadcast_to(np.asarray(spread), mean.shape),
            fmt="o",
            ms=4,
            capsize=2,
            label=name,
        )
    ax.set_xlabel("rate r = n/d")
    ax.set_ylabel("risk per coordinate")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)


def save_figure(fig: Figure, path: str | os.PathLike, command: str | None = None) -> Path:
    """Write ``fig`` to ``path`` atomically (a temporary file renamed into place): a full disk or a
    kill leaves the old file or none, never a truncated one. The format follows the suffix.

    A PNG records what made it in its text chunks: ``Software`` is ``aejax <version>`` and, when
    given, ``Source`` is ``command`` (read them back with ``figure_provenance``), so a stale figure
    is visible.

    Args:
        fig: a matplotlib figure.
        path: where to write it; the suffix picks the format.
        command: the command that made the figure, e.g. ``"aejax reproduce finite-size --size small"``.

    Returns:
        ``path`` as a ``Path``.

    Example:
        >>> import pathlib, tempfile
        >>> fig = pyplot().figure()
        >>> path = save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "f.png", command="aejax sweep")
        >>> path.read_bytes()[:4], figure_provenance(path)["Source"]
        (b'\\x89PNG', 'aejax sweep')
    """
    from aejax._version import __version__
    from aejax.results import atomic_write

    path = Path(path)
    fmt = path.suffix.lstrip(".") or None
    metadata = None
    if (fmt or "png").lower() == "png":
        metadata = {"Software": f"aejax {__version__}"}
        if command is not None:
            metadata["Source"] = str(command)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, metadata=metadata))
    return path


def figure_provenance(path: str | os.PathLike) -> dict[str, str]:
    """The text chunks of a PNG written by ``save_figure``: ``Software`` (aejax version) and ``Source``
    (the command), plus any other the file holds.

    Example:
        >>> import pathlib, tempfile
        >>> path = save_figure(pyplot().figure(), pathlib.Path(tempfile.mkdtemp()) / "f.png")
        >>> figure_provenance(path)["Software"].startswith("aejax ")
        True
    """
    import zlib

    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise _validate.InputError(f"path must be a PNG file, got {str(path)!r}")
    out, at = {}, 8
    while at + 8 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            out[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            compressed, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            out[key.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
        at += 12 + length
    return out
