"""Finite-size scaling: gap between trained risk and R_Gauss(r) as d grows, at r ∈ {0.5, 1, 2}.

Three gaps per (d, r), which separate optimisation from genuine finite-d effects:

- ``online_sgd``: online Adam with the clip surrogate at a fixed step budget (optimisation gap).
- ``gd_exact``: Adam on the exact risk (THEORY §2) — converged, so at r ≤ 1 (where R_Gauss is exact at
  every d) its gap is ~0, and at r > 1 it measures the finite-d excess of what GD finds.
- ``tight_frame``: a Haar tight frame with its optimal decoder, evaluated exactly (r > 1 only): the
  finite-d excess of the structure that is optimal as d → ∞.

Each gap's mean over seeds is fitted as C·d^α by least squares on log–log axes (``fit_power_law``).

Example:
    >>> PRESETS["small"]["dims"]
    (64, 128, 256, 512, 1024)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr

from aejax import theory
from aejax.model import Params, haar_frame
from aejax.reproduce._common import fit_power_law, markdown_table, pick_size, write_outputs
from aejax.risk import exact_risk, optimal_decoder
from aejax.sources import Gaussian
from aejax.sweeping import sweep
from aejax.config import TrainConfig

NAME = "finite-size"
RATES = (0.5, 1.0, 2.0)
TRAINERS = ("online_sgd", "gd_exact", "tight_frame")
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(dims=(16, 32), pop_dims=(16,), seeds=(0, 1), steps=100, pop_steps=100, max_padding=1.0),
    "small": dict(dims=(64, 128, 256, 512, 1024), pop_dims=(64, 128, 256), seeds=(0, 1), steps=1000, pop_steps=1000,
                  max_padding=0.25),
    "large": dict(dims=(64, 128, 256, 512, 1024, 2048, 4096), pop_dims=(64, 128, 256, 512, 1024, 2048),
                  seeds=(0, 1, 2, 3), steps=4000, pop_steps=2000, max_padding=0.25),
}
ONLINE_LR, POPULATION_LR, BATCH = 0.005, 0.01, 128
NOISE_FLOOR = 2e-5  # float32 resolution of the exact risk at d ≤ 4096: smaller gaps are not fitted


def run(size: str = "small", out: str | os.PathLike = "runs/reproduce", progress: bool = True) -> dict[str, Any]:
    """Measure the three gaps over the preset's dimensions; write the figure, netCDF and table.

    Args:
        size: ``tiny``, ``small`` (d ≤ 1024 online, ≤ 256 exact GD; CPU minutes) or ``large`` (d ≤ 4096).
        out: output directory (sweep chunks under ``out/finite-size-<trainer>-d<d>/``; reruns resume).
        progress: show progress bars.

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"exponents"``: ``{trainer: {rate: (α, standard error)}}``
        for every (trainer, rate) with at least three gaps above ``NOISE_FLOOR``.
    """
    preset = pick_size(PRESETS, size)
    dims, seeds = list(preset["dims"]), list(preset["seeds"])
    risk = np.full((len(TRAINERS), len(dims), len(RATES), len(seeds)), np.nan)
    for i, d in enumerate(dims):
        for t, (trainer, steps, lr, allowed) in enumerate((("online_sgd", preset["steps"], ONLINE_LR, dims),
                                                           ("gd_exact", preset["pop_steps"], POPULATION_LR, preset["pop_dims"]))):
            if d not in allowed:
                continue
            config = TrainConfig(d=d, n=d, steps=steps, batch=BATCH, mode="online" if t == 0 else "population",
                                 surrogate="clip", schedule="cosine", risk_eval="none")
            ds = sweep(config, {"seed": seeds, "rate": list(RATES), "lr": [lr]}, out=Path(out) / f"{NAME}-{trainer}-d{d}",
                       mc_samples=2048, max_padding=preset["max_padding"], progress=progress)
            risk[t, i] = ds["exact_risk"].squeeze("lr").transpose("rate", "seed").values
        for j, r in enumerate(RATES):
            if r > 1:
                risk[2, i, j] = [_tight_frame_risk(d, r, s) for s in seeds]
    ds = xr.Dataset({"exact_risk": (("trainer", "d", "rate", "seed"), risk),
                     "theory": ("rate", np.asarray(theory.gaussian_limit(np.asarray(RATES)), float))},
                    coords={"trainer": list(TRAINERS), "d": dims, "rate": list(RATES), "seed": seeds},
                    attrs={"size": size,
                           "online": f"Adam lr {ONLINE_LR}, batch {BATCH}, {preset['steps']} steps, clip, cosine",
                           "gd_exact": f"Adam lr {POPULATION_LR} on the exact risk, {preset['pop_steps']} steps, cosine",
                           "tight_frame": "Haar tight frame, optimal decoder, exact risk"})
    return summarize(ds, out)


def summarize(ds: xr.Dataset, out: str | os.PathLike) -> dict[str, Any]:
    """Fit the exponents and write the figure, netCDF and table of a finite-size Dataset.

    Gaps below ``NOISE_FLOOR`` (the float32 resolution of the exact risk) are left out of the fits.
    Rerun it on a saved ``finite-size.nc`` (``xarray.load_dataset``) to redraw without retraining.

    Args:
        ds: ``exact_risk`` over (trainer, d, rate, seed), ``theory`` over rate, and the run's attributes.
        out: output directory.

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"exponents"`` (see ``run``).
    """
    ds = ds.drop_vars(["gap", "exponent", "exponent_se"], errors="ignore")
    ds["gap"] = ds["exact_risk"] - ds["theory"]
    gap = ds["gap"].mean("seed")
    dims, rates = ds["d"].values.tolist(), ds["rate"].values.tolist()
    exponents: dict[str, dict[float, tuple[float, float]]] = {}
    for trainer in TRAINERS:
        for r in rates:
            g = gap.sel(trainer=trainer, rate=r).values
            ok = np.isfinite(g) & (g > NOISE_FLOOR)
            if ok.sum() >= 3:
                exponents.setdefault(trainer, {})[r] = fit_power_law(ds["d"].values[ok], g[ok])
    fits = [[exponents.get(t, {}).get(r, (np.nan, np.nan)) for r in rates] for t in TRAINERS]
    ds["exponent"] = (("trainer", "rate"), [[f[0] for f in row] for row in fits])
    ds["exponent_se"] = (("trainer", "rate"), [[f[1] for f in row] for row in fits])
    rows = [[trainer, f"{r:g}"] + [f"{float(gap.sel(trainer=trainer, rate=r, d=d)):+.1e}" for d in dims]
            + [_exponent_text(exponents.get(trainer, {}).get(r))] for trainer in TRAINERS for r in rates
            if np.isfinite(gap.sel(trainer=trainer, rate=r)).any()]
    table = (f"# {NAME} ({ds.attrs['size']})\n\nMean gap (exact risk − R_Gauss(r)) over {ds.sizes['seed']} seeds; "
             "exponent α of gap ≈ C d^α: least squares on log–log axes over the gaps above "
             f"{NOISE_FLOOR:g} (at least 3 of them), ± standard error from the residuals. online: {ds.attrs['online']}; "
             f"gd_exact: {ds.attrs['gd_exact']}; tight_frame: {ds.attrs['tight_frame']}.\n\n"
             + markdown_table(["trainer", "r", *[f"gap d={d}" for d in dims], "α ± se"], rows) + "\n")
    paths = write_outputs(NAME, out, ds, _figure(ds, gap, exponents), table)
    return {**paths, "exponents": exponents}


def _tight_frame_risk(d: int, r: float, seed: int) -> float:
    n = round(r * d)
    B = haar_frame(jax.random.key(seed), n, d)
    source = Gaussian(d)
    return float(exact_risk(Params(optimal_decoder(B, source, row_normalize=True), B), source, row_normalize=True))


def _exponent_text(fit: tuple[float, float] | None) -> str:
    return "—" if fit is None else f"{fit[0]:+.2f} ± {fit[1]:.2f}"


def _figure(ds: xr.Dataset, gap: xr.DataArray, exponents: dict):
    from aejax.plot import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(TRAINERS), figsize=(10, 3.4), dpi=90)
    for ax, trainer in zip(axes, TRAINERS):
        for r, color in zip(RATES, ("C0", "C1", "C2")):
            g = gap.sel(trainer=trainer, rate=r)
            se = ds["gap"].sel(trainer=trainer, rate=r).std("seed", ddof=1) / np.sqrt(ds.sizes["seed"])
            if not (np.isfinite(g.values) & (g.values > 0)).any():
                continue
            fit = exponents.get(trainer, {}).get(r)
            label = f"r={r:g}" + ("" if fit is None else f": α={fit[0]:+.2f}±{fit[1]:.2f}")
            ax.errorbar(ds["d"], g.where(g > NOISE_FLOOR), se, fmt="o-", color=color, ms=4, capsize=2, label=label)
        ax.axhline(NOISE_FLOOR, color="gray", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="d", title=trainer.replace("_", " "))
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    axes[0].set_ylabel("risk − R_Gauss(r)")
    fig.tight_layout()
    return fig
