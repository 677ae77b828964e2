"""Finite-size scaling: how the trained risk approaches R_Gauss(r) as d grows, at r ∈ {0.5, 1, 2}.

Every d trains for the same time per dimension τ (``TrainConfig(time=τ)``: steps = τ·d/batch), in
one sweep with a ``d`` axis, so the gaps compare like with like (with the same number of steps at
every d, the larger d are simply trained less). Three gaps per (d, r):

- ``online_adam``: online Adam with the clip surrogate at time τ, its learning rate scaled with d by
  the measured rule ``lr · (D_REF/d) ** LR_POWER`` (docs/theory.md §11);
- ``gd_exact``: Adam on the exact risk (docs/theory.md §2) for ``pop_time`` steps — converged, so at
  r ≤ 1 (where R_Gauss is exact at every d) its gap is ~0, and at r > 1 it measures the finite-d
  excess of what GD finds;
- ``tight_frame``: a Haar tight frame with its optimal decoder, evaluated exactly (r > 1 only): the
  finite-d excess of the structure that is optimal as d → ∞.

Each gap is fitted as C·d^(−α) with bootstrap intervals over seeds (``aejax.scaling.fit_power_law``),
the online exact risk is extrapolated to d → ∞ (``aejax.scaling.extrapolate``: R∞ with its interval
against R_Gauss), and the online risk-against-τ curves are compared with the largest d's
(``aejax.scaling.collapse``).

Examples:
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

from aejax import _validate, scaling, theory
from aejax.config import TrainConfig
from aejax.model import Architecture, Params, haar_frame
from aejax.report import markdown_table, seed_mean_se
from aejax.reproduce._common import command, pick_size, write_outputs
from aejax.risk import exact_risk, optimal_decoder
from aejax.sources import Gaussian
from aejax.sweeping import sweep

NAME = "finite-size"
RATES = (0.5, 1.0, 2.0)
TRAINERS = ("online_adam", "gd_exact", "tight_frame")
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        dims=(16, 32),
        pop_dims=(16, 32),
        pop_rates=RATES,
        seeds=(0, 1),
        time=16.0,
        pop_time=100.0,
        trace_points=4,
        batch=16,
    ),
    "small": dict(
        dims=(64, 128, 256, 512, 1024),
        pop_dims=(64, 128, 256),
        pop_rates=RATES,
        seeds=(0, 1, 2),
        time=250.0,
        pop_time=1000.0,
        trace_points=20,
        batch=128,
    ),
    "large": dict(
        dims=(64, 128, 256, 512, 1024, 2048, 4096, 8192),
        pop_dims=(64, 128, 256, 512, 1024, 2048),
        pop_rates=RATES,
        seeds=(0, 1, 2, 3),
        time=1000.0,
        pop_time=2000.0,
        trace_points=20,
        batch=128,
    ),
}
ONLINE_LR, D_REF, LR_POWER = 0.005, 128, 1.0  # online Adam: lr at d = D_REF, scaled as (D_REF/d)^LR_POWER
POPULATION_LR = 0.01
NOISE_FLOOR = 2e-5  # float32 resolution of the exact risk at d ≤ 4096: smaller gaps are not fitted


def run(
    size: str = "small", out: str | os.PathLike = "runs/reproduce", progress: bool = True, **overrides: Any
) -> dict[str, Any]:
    """Measure the three gaps over the preset's dimensions; write the figure, netCDF and table.

    Args:
        size: ``tiny``, ``small`` (d ≤ 1024 online, ≤ 256 exact GD; CPU minutes) or ``large``
            (d ≤ 8192 online, ≤ 2048 exact GD; an accelerator).
        out: output directory (sweep chunks under ``out/finite-size-<trainer>/``; reruns resume).
        progress: show progress bars.
        overrides: preset entries to change (``dims``, ``pop_dims``, ``pop_rates``, ``seeds``,
            ``time``, ``pop_time``, ``trace_points``, ``batch``), e.g. ``dims=(64, ..., 2048)`` for
            the online runs of docs/scaling.md on a CPU.

    Returns:
        ``{"png", "nc", "md"}`` paths, ``"exponents"``: ``{trainer: {rate: PowerLawFit}}`` for every
        (trainer, rate) with at least three gaps above ``NOISE_FLOOR``, and ``"limit"``: the
        extrapolated online risk (``aejax.scaling.extrapolate``).
    """
    preset = _preset(size, overrides)
    dims, seeds = list(preset["dims"]), list(preset["seeds"])
    online, population = _sweeps(preset, out, progress)
    risk = _risks(preset, online, population)
    trajectories = online["risk_trace"].squeeze("lr", drop=True)
    ds = xr.Dataset(
        {
            "exact_risk": (("trainer", "d", "rate", "seed"), risk),
            "theory": ("rate", np.asarray(theory.gaussian_limit(np.asarray(RATES)), float)),
            "online_risk_trace": trajectories.transpose("d", "rate", "seed", "tau"),
        },
        coords={"trainer": list(TRAINERS), "d": dims, "rate": list(RATES), "seed": seeds},
        attrs={
            "size": size,
            "online_adam": f"Adam lr {ONLINE_LR}·({D_REF}/d)^{LR_POWER:g}, batch {preset['batch']}, "
            f"τ = {preset['time']:g} (steps = τ·d/{preset['batch']}), clip, cosine",
            "gd_exact": f"Adam lr {POPULATION_LR} on the exact risk, {preset['pop_time']:g} steps, cosine",
            "tight_frame": "Haar tight frame, optimal decoder, exact risk",
        },
    )
    return summarize(ds, out)


def _preset(size: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The preset of ``size`` with ``overrides`` (each one of its entries) applied."""
    preset = dict(pick_size(PRESETS, size))
    unknown = sorted(set(overrides) - set(preset))
    if unknown:
        raise _validate.InputError(f"unknown finite-size preset entries {unknown}; allowed: {sorted(preset)}")
    preset.update(overrides)
    return preset


def _sweeps(preset: dict[str, Any], out: str | os.PathLike, progress: bool) -> tuple[xr.Dataset, xr.Dataset]:
    """The online Adam sweep over ``dims`` and the exact-risk (population) sweep over ``pop_dims``."""
    dims, pop_dims, seeds = list(preset["dims"]), list(preset["pop_dims"]), list(preset["seeds"])
    pop_rates = [r for r in RATES if r in preset["pop_rates"]]
    grid = {"seed": seeds, "rate": list(RATES), "lr": [ONLINE_LR]}
    online = sweep(
        TrainConfig(
            d=max(dims),
            n=max(dims),
            time=preset["time"],
            batch=preset["batch"],
            surrogate="clip",
            schedule="cosine",
            lr_power=LR_POWER,
            d_ref=D_REF,
            trace_points=preset["trace_points"],
        ),
        {**grid, "d": dims},
        out=Path(out) / f"{NAME}-online",
        mc_samples=2048,
        progress=progress,
    )
    population = sweep(
        TrainConfig(
            d=max(pop_dims),
            n=max(pop_dims),
            time=preset["pop_time"],
            mode="population",
            schedule="cosine",
            trace_points=preset["trace_points"],
        ),
        {**grid, "rate": pop_rates, "lr": [POPULATION_LR], "d": pop_dims},
        out=Path(out) / f"{NAME}-gd",
        mc_samples=2048,
        progress=progress,
    )
    return online, population


def _risks(preset: dict[str, Any], online: xr.Dataset, population: xr.Dataset) -> np.ndarray:
    """Exact risks over (trainer, d, rate, seed): the sweeps' and the tight frame's (r > 1); NaN where not run."""
    dims, pop_dims, seeds = list(preset["dims"]), list(preset["pop_dims"]), list(preset["seeds"])
    pop_rates = [r for r in RATES if r in preset["pop_rates"]]
    risk = np.full((len(TRAINERS), len(dims), len(RATES), len(seeds)), np.nan)
    risk[0] = online["exact_risk"].squeeze("lr").transpose("d", "rate", "seed").values
    for i, d in enumerate(dims):
        if d in pop_dims:
            gd = population["exact_risk"].squeeze("lr", drop=True).sel(d=d)
            for j, r in enumerate(RATES):
                if r in pop_rates:
                    risk[1, i, j] = gd.sel(rate=r).transpose("seed").values
        for j, r in enumerate(RATES):
            if r > 1:
                risk[2, i, j] = [_tight_frame_risk(d, r, s) for s in seeds]
    return risk


def summarize(ds: xr.Dataset, out: str | os.PathLike) -> dict[str, Any]:
    """Fit the gaps, extrapolate the online risk and write the figure, netCDF and table.

    Gaps below ``NOISE_FLOOR`` (the float32 resolution of the exact risk) are left out of the fits.
    Rerun it on a saved ``finite-size.nc`` (``xarray.load_dataset``) to redraw without retraining.

    Args:
        ds: ``exact_risk`` over (trainer, d, rate, seed), ``theory`` over rate, optionally
            ``online_risk_trace`` over (d, rate, seed, tau), and the run's attributes.
        out: output directory.

    Returns:
        ``{"png", "nc", "md"}`` paths, ``"exponents"`` and ``"limit"`` (see ``run``).
    """
    ds = ds.drop_vars(
        ["gap", "alpha", "alpha_low", "alpha_high", "r_inf", "r_inf_low", "r_inf_high", "collapse"], errors="ignore"
    )
    ds["gap"] = ds["exact_risk"] - ds["theory"]
    gap = ds["gap"].mean("seed")
    exponents = _fit_exponents(ds)
    limit = _extrapolate_online(ds)
    if "online_risk_trace" in ds:
        ds["collapse"] = scaling.collapse(ds[["online_risk_trace"]].rename(online_risk_trace="risk_trace"))
    text = _gap_table(ds, gap, exponents)
    if limit is not None:
        text += _limit_table(ds, limit)
    if "collapse" in ds:
        text += _collapse_table(ds)
    paths = write_outputs(NAME, out, ds, _figure(ds, gap, exponents), text, command(NAME, ds.attrs["size"]))
    return {**paths, "exponents": exponents, "limit": limit}


def _fit_exponents(ds: xr.Dataset) -> dict[str, dict[float, scaling.PowerLawFit]]:
    """Fit gap ≈ C·d^(−α) per (trainer, rate) with at least 3 gaps above ``NOISE_FLOOR``; store α and its
    interval in ``ds`` (``alpha``, ``alpha_low``, ``alpha_high``; NaN where not fitted)."""
    rates = ds["rate"].values.tolist()
    exponents: dict[str, dict[float, scaling.PowerLawFit]] = {}
    for trainer in TRAINERS:
        for r in rates:
            g = ds["gap"].sel(trainer=trainer, rate=r).transpose("d", "seed").values
            ok = np.all(np.isfinite(g), axis=1, keepdims=False)
            ok[ok] = g[ok].mean(axis=1) > NOISE_FLOOR
            if ok.sum() >= 3:
                exponents.setdefault(trainer, {})[r] = scaling.fit_power_law(
                    ds["d"].values[ok], g[ok], seeds_axis=1 if g.shape[1] > 1 else None, bootstrap=500
                )
    for name, pick in (
        ("alpha", lambda f: f.alpha),
        ("alpha_low", lambda f: f.alpha_ci[0]),
        ("alpha_high", lambda f: f.alpha_ci[1]),
    ):
        ds[name] = (
            ("trainer", "rate"),
            [[pick(exponents[t][r]) if r in exponents.get(t, {}) else np.nan for r in rates] for t in TRAINERS],
        )
    return exponents


def _extrapolate_online(ds: xr.Dataset) -> xr.Dataset | None:
    """The online risk extrapolated to d → ∞ (with at least 3 dimensions, all finite), its ``r_inf*`` stored in
    ``ds``; else ``None``."""
    online = ds["exact_risk"].sel(trainer="online_adam").to_dataset(name="exact_risk")
    online["theory"] = ds["theory"]
    fittable = ds["d"].size >= 3 and bool(np.isfinite(online["exact_risk"]).all())
    limit = scaling.extrapolate(online, "exact_risk", "d", bootstrap=500) if fittable else None
    if limit is not None:
        for name in ("r_inf", "r_inf_low", "r_inf_high"):
            ds[name] = limit[name]
    return limit


def _gap_table(ds: xr.Dataset, gap: xr.DataArray, exponents: dict[str, dict[float, scaling.PowerLawFit]]) -> str:
    """The table's heading and the mean gap per (trainer, rate) and d, with the fitted α."""
    dims, rates = ds["d"].values.tolist(), ds["rate"].values.tolist()
    rows = [
        [trainer, f"{r:g}"]
        + [f"{float(gap.sel(trainer=trainer, rate=r, d=d)):+.1e}" for d in dims]
        + [_exponent_text(exponents.get(trainer, {}).get(r))]
        for trainer in TRAINERS
        for r in rates
        if np.isfinite(gap.sel(trainer=trainer, rate=r)).any()
    ]
    return (
        f"# {NAME} ({ds.attrs['size']})\n\nMean gap (exact risk − R_Gauss(r)) over {ds.sizes['seed']} seeds; "
        "α of gap ≈ C·d^(−α), fitted over the gaps above "
        f"{NOISE_FLOOR:g} (at least 3), with a 95% bootstrap interval over seeds. "
        f"online_adam: {ds.attrs['online_adam']}; gd_exact: {ds.attrs['gd_exact']}; "
        f"tight_frame: {ds.attrs['tight_frame']}.\n\n"
        + markdown_table(["trainer", "r", *[f"gap d={d}" for d in dims], "α [95% interval]"], rows)
        + "\n"
    )


def _limit_table(ds: xr.Dataset, limit: xr.Dataset) -> str:
    """The extrapolated online risk R∞ per rate against R_Gauss."""
    return (
        "\nOnline risk extrapolated to d → ∞ (R(d) = R∞ + C·d^(−α)):\n\n"
        + markdown_table(
            ["r", "R∞ [95% interval]", "R_Gauss", "R∞ − R_Gauss", "covers"],
            [
                [
                    f"{r:g}",
                    f"{float(limit['r_inf'].sel(rate=r)):.4f} [{float(limit['r_inf_low'].sel(rate=r)):.4f}, "
                    f"{float(limit['r_inf_high'].sel(rate=r)):.4f}]",
                    f"{float(ds['theory'].sel(rate=r)):.4f}",
                    f"{float(limit['r_inf'].sel(rate=r) - ds['theory'].sel(rate=r)):+.4f}",
                    str(bool(limit["covers"].sel(rate=r))),
                ]
                for r in ds["rate"].values.tolist()
            ],
        )
        + "\n"
    )


def _collapse_table(ds: xr.Dataset) -> str:
    """The trajectory collapse: per rate and d, the largest distance to the largest d's risk trace."""
    dims, rates = ds["d"].values.tolist(), ds["rate"].values.tolist()
    return (
        "\nTrajectory collapse: largest |risk_d(τ) − risk_dmax(τ)| over the τ grid (seed means):\n\n"
        + markdown_table(
            ["r", *[f"d={d}" for d in dims]],
            [[f"{r:g}"] + [f"{float(ds['collapse'].sel(rate=r, d=d)):.4f}" for d in dims] for r in rates],
        )
        + "\n"
    )


def _tight_frame_risk(d: int, r: float, seed: int) -> float:
    n = round(r * d)
    B = haar_frame(jax.random.key(seed), n, d)
    source = Gaussian(d)
    arch = Architecture("sign", row_normalize=True)
    return float(exact_risk(Params(optimal_decoder(B, source, arch=arch), B), source, arch=arch))


def _exponent_text(fit: scaling.PowerLawFit | None) -> str:
    return "—" if fit is None else f"{fit.alpha:.2f} [{fit.alpha_ci[0]:.2f}, {fit.alpha_ci[1]:.2f}]"


def _figure(ds: xr.Dataset, gap: xr.DataArray, exponents: dict):
    from aejax.plot import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(TRAINERS), figsize=(10, 3.4), dpi=90)
    for ax, trainer in zip(axes, TRAINERS, strict=True):
        for r, color in zip(RATES, ("C0", "C1", "C2"), strict=True):
            g = gap.sel(trainer=trainer, rate=r)
            se = seed_mean_se(ds["gap"].sel(trainer=trainer, rate=r))[1]
            if not (np.isfinite(g.values) & (g.values > 0)).any():
                continue
            fit = exponents.get(trainer, {}).get(r)
            label = f"r={r:g}" + ("" if fit is None else f": α={_exponent_text(fit)}")
            ax.errorbar(ds["d"], g.where(g > NOISE_FLOOR), se, fmt="o-", color=color, ms=4, capsize=2, label=label)
        ax.axhline(NOISE_FLOOR, color="gray", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="d", title=trainer.replace("_", " "))
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    axes[0].set_ylabel("risk − R_Gauss(r)")
    fig.tight_layout()
    return fig
