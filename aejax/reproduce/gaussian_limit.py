"""Risk vs rate on Gaussian data: trained sign autoencoders against R_Gauss(r), Shannon and PCA.

Two training methods over the same rates and seeds, each one ``aejax.sweep``: online Adam with the
clip surrogate on fresh samples, and gradient descent (Adam) on the exact population risk. The
risk reported is the exact risk of the final parameters (docs/theory.md §2), so no Monte Carlo noise.

Examples:
    >>> PRESETS["small"]["d"]
    512
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aejax import theory
from aejax.config import TrainConfig
from aejax.report import markdown_table, seed_mean_se
from aejax.reproduce._common import command, pick_size, write_outputs
from aejax.sweeping import sweep

NAME = "gaussian-limit"
METHODS = ("online_sgd", "gd_exact")
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(d=32, pop_d=32, rates=(0.5, 1.0, 2.0), seeds=(0, 1), steps=200, pop_steps=200, max_padding=1.0),
    "small": dict(
        d=512, pop_d=128, rates=(0.1, 0.5, 1.0, 2.0, 4.0), seeds=(0, 1, 2), steps=1000, pop_steps=1000, max_padding=0.25
    ),
    "large": dict(
        d=1024,
        pop_d=1024,
        rates=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0),
        seeds=(0, 1, 2, 3, 4),
        steps=4000,
        pop_steps=2000,
        max_padding=0.25,
    ),
}
ONLINE_LR, POPULATION_LR, BATCH = 0.005, 0.01, 128


def run(size: str = "small", out: str | os.PathLike = "runs/reproduce", progress: bool = True) -> dict[str, Any]:
    """Train both methods over the preset's rates and seeds; write the figure, netCDF and table.

    Args:
        size: ``tiny``, ``small`` (online at d = 512, exact-risk GD at d = 128, CPU minutes) or ``large``.
        out: output directory (sweep chunks go to ``out/gaussian-limit-<method>/``; reruns resume).
        progress: show progress bars.

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"max_gap"``: the largest mean-over-seeds gap to theory for
        ``r ≤ 1`` and ``r > 1`` per method.
    """
    preset = pick_size(PRESETS, size)
    runs = []
    for method, d, steps, lr in (
        ("online_sgd", preset["d"], preset["steps"], ONLINE_LR),
        ("gd_exact", preset["pop_d"], preset["pop_steps"], POPULATION_LR),
    ):
        config = TrainConfig(
            d=d,
            n=d,
            steps=steps,
            batch=BATCH,
            mode="online" if method == "online_sgd" else "population",
            surrogate="clip",
            schedule="cosine",
            risk_eval="none",
        )
        ds = sweep(
            config,
            {"seed": list(preset["seeds"]), "rate": list(preset["rates"]), "lr": [lr]},
            out=Path(out) / f"{NAME}-{method}",
            mc_samples=4096,
            max_padding=preset["max_padding"],
            progress=progress,
        )
        runs.append(ds[["exact_risk", "theory"]].squeeze("lr", drop=True).assign_attrs(d=d, steps=steps, lr=lr))
    ds = xr.concat(runs, dim=xr.DataArray(list(METHODS), dims="trainer"), combine_attrs="drop")
    ds = ds.assign(
        d=("trainer", [r.attrs["d"] for r in runs]),
        steps=("trainer", [r.attrs["steps"] for r in runs]),
        lr=("trainer", [r.attrs["lr"] for r in runs]),
    ).assign_attrs(size=size, batch=BATCH)
    return summarize(ds, out)


def summarize(ds: xr.Dataset, out: str | os.PathLike) -> dict[str, Any]:
    """Write the figure, netCDF and table of a gaussian-limit Dataset (rerun on a saved ``.nc`` to redraw).

    Args:
        ds: ``exact_risk`` and ``theory`` over (trainer, seed, rate); per-trainer ``d``, ``steps``, ``lr``.
        out: output directory.

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"max_gap"`` (see ``run``).
    """
    ds = ds.drop_vars("gap", errors="ignore")
    ds["gap"] = ds["exact_risk"] - ds["theory"]
    mean, se = seed_mean_se(ds["exact_risk"])
    gap = ds["gap"].mean("seed")
    info = {m: {k: ds[k].sel(trainer=m).item() for k in ("d", "steps", "lr")} for m in METHODS}
    rows = [
        [
            f"{r:g}",
            float(ds["theory"].sel(rate=r).isel(seed=0, trainer=0)),
            *(float(stat.sel(trainer=m, rate=r)) for m in METHODS for stat in (mean, se, gap)),
        ]
        for r in ds["rate"].values
    ]
    header = [
        "r",
        "theory",
        f"online SGD d={info['online_sgd']['d']}",
        "± se",
        "online gap",
        f"GD exact d={info['gd_exact']['d']}",
        "± se",
        "GD gap",
    ]
    online, gd = info["online_sgd"], info["gd_exact"]
    table = (
        f"# {NAME} ({ds.attrs['size']})\n\nExact risk of the trained parameters, mean ± standard error over "
        f"{ds.sizes['seed']} seeds; gap = mean − R_Gauss at the run's actual rate round(r·d)/d (the theory column is "
        f"at d={online['d']}). Online: Adam lr {online['lr']:g}, batch {ds.attrs['batch']}, {online['steps']} steps, "
        f"clip surrogate, cosine schedule. GD: Adam lr {gd['lr']:g} on the exact risk, {gd['steps']} steps, cosine."
        "\n\n" + markdown_table(header, rows) + "\n"
    )
    max_gap = {
        m: {
            "r<=1": float(gap.sel(trainer=m).where(ds["rate"] <= 1).max()),
            "r>1": float(gap.sel(trainer=m).where(ds["rate"] > 1).max()),
        }
        for m in METHODS
    }
    paths = write_outputs(NAME, out, ds, _figure(ds, mean, se), table, command(NAME, ds.attrs["size"]))
    return {**paths, "max_gap": max_gap}


def _figure(ds: xr.Dataset, mean: xr.DataArray, se: xr.DataArray):
    from aejax.plot import pyplot

    plt = pyplot()
    fig, (ax, ax_gap) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90)
    grid = np.linspace(0.02, float(ds["rate"].max()) * 1.05, 300)
    ax.plot(grid, np.asarray(theory.gaussian_limit(grid)), "k-", lw=1.5, label="R_Gauss(r)")
    ax.plot(grid, np.asarray(theory.shannon_limit(grid)), "k:", lw=1, label="Shannon 2^(-2r)")
    ax.plot(grid, np.asarray(theory.pca_risk(grid)), "k--", lw=1, label="PCA max(0, 1-r)")
    for method, marker in zip(METHODS, "os", strict=True):
        d = ds["d"].sel(trainer=method).item()
        label = f"{method.replace('_', ' ')} (d={d})"
        ax.errorbar(
            ds["rate"],
            mean.sel(trainer=method),
            se.sel(trainer=method),
            fmt=marker,
            ms=4,
            mfc="none",
            capsize=2,
            label=label,
        )
        ax_gap.errorbar(
            ds["rate"],
            (mean - ds["theory"].isel(seed=0)).sel(trainer=method),
            se.sel(trainer=method),
            fmt=marker + "-",
            ms=4,
            capsize=2,
            label=label,
        )
    ax.set(xlabel="rate r = n/d", ylabel="risk per coordinate", ylim=(0, 1.02))
    ax.legend(fontsize=7)
    ax_gap.axhline(0, color="k", lw=0.8)
    ax_gap.set(xlabel="rate r", ylabel="trained − R_Gauss(r)", xscale="log")
    ax_gap.legend(fontsize=7)
    for a in (ax, ax_gap):
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig
