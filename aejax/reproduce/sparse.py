"""Bernoulli–Gaussian data: shallow, denoised and multi-layer decoders against their theory, vs p.

Per rate r and sparsity p (docs/theory.md §4), mean ± standard error over seeds of the Monte Carlo risk of

- ``shallow``: the sign autoencoder trained by online Adam from a Gaussian init (theory: R_Gauss(r),
  the same for every p: gradient descent ignores sparsity; at finite d an encoder pays
  ``theory.kurtosis_correction`` more on sparse data, reported as ``shallow_finite_d`` for the
  trained encoders' inverse participation ratio and ``rotation_finite_d`` for Haar rows);
- ``learned_denoiser``: a Haar encoder with ``A = c(r) B̄ᵀ``, both frozen, and the learned odd
  entrywise denoiser (``decoders.DenoiserHead``) trained by online Adam (theory: ``denoiser_risk``);
- ``posterior_mean``: the same linear decoder followed by ``theory.posterior_mean`` (no training;
  theory: ``denoiser_risk``);
- ``multilayer_t``: the unrolled VAMP decoder at its Bayes-optimal initialisation after t layers,
  t = 1..``layers`` (theory: ``state_evolution``).

Examples:
    >>> PRESETS["small"]["d"]
    256
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from aejax import theory
from aejax.config import TrainConfig
from aejax.decoders import NonlinearDecoder, init_params
from aejax.model import encode, init
from aejax.report import markdown_table, seed_mean_se
from aejax.reproduce._common import command, pick_size, write_outputs
from aejax.sources import BernoulliGaussian
from aejax.sweeping import sweep

NAME = "sparse"
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(d=32, rates=(1.0,), ps=(0.2, 1.0), seeds=(0, 1), steps=100, batch=128, layers=2, samples=512),
    "small": dict(
        d=256,
        rates=(0.5, 1.0, 2.0),
        ps=(0.05, 0.1, 0.2, 0.5, 1.0),
        seeds=(0, 1),
        steps=600,
        batch=128,
        layers=5,
        samples=4096,
    ),
    "large": dict(
        d=1024,
        rates=(0.5, 1.0, 2.0),
        ps=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0),
        seeds=(0, 1, 2),
        steps=3000,
        batch=256,
        layers=5,
        samples=16384,
    ),
}
SHALLOW_LR, DENOISER_LR = 0.005, 0.01


def run(size: str = "small", out: str | os.PathLike = "runs/reproduce", progress: bool = True) -> dict[str, Any]:
    """Measure every method over the preset's rates, sparsities and seeds; write figure, netCDF, table.

    Args:
        size: ``tiny``, ``small`` (d = 256; CPU minutes) or ``large`` (d = 1024; accelerators).
        out: output directory (sweep chunks under ``out/sparse-<method>/``; reruns resume).
        progress: show progress bars.

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"max_gap"``: per method, the largest |mean − theory|
        over rates and over p ≥ 0.1.
    """
    preset = pick_size(PRESETS, size)
    d, rates, ps, seeds, layers = (
        preset["d"],
        list(preset["rates"]),
        list(preset["ps"]),
        list(preset["seeds"]),
        preset["layers"],
    )
    methods = ["shallow", "learned_denoiser", "posterior_mean", *[f"multilayer_{t}" for t in range(1, layers + 1)]]
    risk = np.full((len(methods), len(rates), len(ps), len(seeds)), np.nan)
    trained = _train(preset, {"seed": seeds, "rate": rates, "p": ps}, out, progress)
    risk[:2] = [t["risk"].values for t in trained]
    ipr = trained[0]["inverse_participation_ratio"].values
    for i, r in enumerate(rates):
        for j, sparsity in enumerate(ps):
            for k, seed in enumerate(seeds):
                risk[2:, i, j, k] = _untrained_risks(d, r, sparsity, seed, layers, preset["samples"])
    ds = _dataset(preset, risk, ipr, methods, rates, ps, seeds)
    mean, se = seed_mean_se(ds["risk"])
    gap = ds["gap"].mean("seed")
    table = _table(size, preset, ds, mean, se, gap, methods, rates, ps)
    max_gap = {name: float(np.abs(gap.sel(decoder=name).where(ds["p"] >= 0.1)).max()) for name in methods}
    paths = write_outputs(NAME, out, ds, _figure(ds, mean, se, rates), table, command(NAME, size))
    return {**paths, "max_gap": max_gap}


def _train(preset: dict[str, Any], grid: dict[str, list], out: str | os.PathLike, progress: bool) -> list[xr.Dataset]:
    """Sweep the trained methods (``shallow``, ``learned_denoiser``) over ``grid``, dims (rate, p, seed)."""
    d = preset["d"]
    base = TrainConfig(
        d=d, n=d, steps=preset["steps"], batch=preset["batch"], source="bg", schedule="cosine", risk_eval="none"
    )
    return [
        sweep(
            config,
            {**grid, "lr": [lr]},
            out=Path(out) / f"{NAME}-{name}",
            mc_samples=preset["samples"],
            progress=progress,
        )
        .squeeze("lr")
        .transpose("rate", "p", "seed", ...)
        for name, config, lr in (
            ("shallow", base, SHALLOW_LR),
            (
                "learned_denoiser",
                dataclasses.replace(base, init="orthogonal", decoder="denoiser", trainable="head"),
                DENOISER_LR,
            ),
        )
    ]


def _theory_risks(rates: list[float], ps: list[float], layers: int) -> np.ndarray:
    """Each method's theory over (rate, p): R_Gauss, the denoiser risk twice, state evolution per layer."""
    return np.stack(
        [
            np.broadcast_to(np.asarray(theory.gaussian_limit(np.asarray(rates)))[:, None], (len(rates), len(ps))),
            *[np.asarray(theory.denoiser_risk("bg", np.asarray(ps)[None, :], np.asarray(rates)[:, None]))] * 2,
            *np.moveaxis(
                np.asarray(theory.state_evolution("bg", np.asarray(ps)[None, :], np.asarray(rates)[:, None], layers)),
                -1,
                0,
            ),
        ]
    )


def _dataset(
    preset: dict[str, Any],
    risk: np.ndarray,
    ipr: np.ndarray,
    methods: list[str],
    rates: list[float],
    ps: list[float],
    seeds: list[int],
) -> xr.Dataset:
    """The measured risks next to their theory, the finite-d predictions for ``shallow``, and the gaps."""
    d = preset["d"]
    theory_risk = _theory_risks(rates, ps, preset["layers"])
    p_grid, r_grid = np.asarray(ps)[None, :], np.asarray(rates)[:, None]
    trained_excess = np.asarray(theory.kurtosis_correction("bg", p_grid, r_grid, ipr.mean(axis=-1)))
    haar_excess = np.asarray(theory.rotation_excess("bg", p_grid, r_grid, d))
    ds = xr.Dataset(
        {
            "risk": (("decoder", "rate", "p", "seed"), risk),
            "theory": (("decoder", "rate", "p"), theory_risk),
            "shallow_ipr": (("rate", "p", "seed"), ipr),
            "shallow_finite_d": (("rate", "p"), theory_risk[0] + trained_excess),
            "rotation_finite_d": (("rate", "p"), theory_risk[0] + haar_excess),
        },
        coords={"decoder": methods, "rate": rates, "p": ps, "seed": seeds},
        attrs={
            "d": d,
            "steps": preset["steps"],
            "shallow": f"online Adam lr {SHALLOW_LR}, batch {preset['batch']}, cosine",
            "learned_denoiser": f"Haar encoder and A = c(r) B̄ᵀ frozen; denoiser by online Adam lr "
            f"{DENOISER_LR}, batch {preset['batch']}, cosine",
        },
    )
    ds["gap"] = ds["risk"] - ds["theory"]
    return ds


def _table(
    size: str,
    preset: dict[str, Any],
    ds: xr.Dataset,
    mean: xr.DataArray,
    se: xr.DataArray,
    gap: xr.DataArray,
    methods: list[str],
    rates: list[float],
    ps: list[float],
) -> str:
    """The markdown table: per method, rate and p, theory, mean ± se, gap (and shallow's finite-d gap)."""
    finite_d_gap = ds["shallow_finite_d"] - ds["theory"].sel(decoder="shallow")
    rows = [
        [
            name,
            f"{r:g}",
            f"{sp:g}",
            float(ds["theory"].sel(decoder=name, rate=r, p=sp)),
            float(mean.sel(decoder=name, rate=r, p=sp)),
            float(se.sel(decoder=name, rate=r, p=sp)),
            float(gap.sel(decoder=name, rate=r, p=sp)),
            float(finite_d_gap.sel(rate=r, p=sp)) if name == "shallow" else "–",
        ]
        for name in methods
        for r in rates
        for sp in ps
    ]
    return (
        f"# {NAME} ({size})\n\nBernoulli–Gaussian data, d = {preset['d']}; Monte Carlo risk ({preset['samples']} "
        f"samples), mean ± standard error over {len(preset['seeds'])} seeds; gap = mean − theory. shallow: "
        f"{ds.attrs['shallow']}, {preset['steps']} steps; its finite-d gap is the predicted excess on sparse data of "
        "the trained encoders at this d (`theory.kurtosis_correction` at their mean inverse participation ratio). "
        f"learned_denoiser: {ds.attrs['learned_denoiser']}. posterior_mean and multilayer_t: "
        "Haar encoder, Bayes-optimal parameters, no training.\n\n"
        + markdown_table(["decoder", "r", "p", "theory", "risk", "± se", "gap", "finite-d gap"], rows)
        + "\n"
    )


def _untrained_risks(d: int, r: float, p: float, seed: int, layers: int, samples: int) -> np.ndarray:
    """Risks of the posterior-mean decoder and of the multilayer decoder after each layer."""
    n = round(r * d)
    source = BernoulliGaussian(d, p)
    params = init(jax.random.key(seed), d, n, kind="orthogonal")
    denoised = init_params(NonlinearDecoder("posterior_mean", "bg", p=p, rate=n / d), params)
    multilayer = NonlinearDecoder("multilayer", "bg", layers=layers, p=p)
    return np.asarray(
        _risks(denoised, init_params(multilayer, params), source, jax.random.key(10_000 + seed), samples, n / d)
    )


@functools.partial(jax.jit, static_argnames="samples")
def _risks(denoised, deep, source, key, samples, rate):
    x = source.sample(key, samples)
    s = encode(deep, x, row_normalize=True)
    pm = NonlinearDecoder("posterior_mean", "bg", p=source.p, rate=rate).decode(denoised, s, row_normalize=True)
    layers = deep.head.log_snr.shape[0]
    xs = NonlinearDecoder("multilayer", "bg", layers=layers, p=source.p).decode_layers(deep, s)
    per_layer = jnp.mean((x[:, None, :] - xs) ** 2, axis=(0, 2))
    return jnp.concatenate([jnp.mean((x - pm) ** 2)[None], per_layer])


def _figure(ds: xr.Dataset, mean: xr.DataArray, se: xr.DataArray, rates: list[float]):
    from aejax.plot import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(rates), figsize=(4 * len(rates), 3.6), dpi=90, squeeze=False)
    shown = [
        "shallow",
        "learned_denoiser",
        "posterior_mean",
        *[m for m in ds["decoder"].values if m.startswith("multi")],
    ]
    for ax, r in zip(axes[0], rates, strict=True):
        for c, name in enumerate(shown):
            color = f"C{c % 10}"
            ax.plot(ds["p"], ds["theory"].sel(decoder=name, rate=r), "-", color=color, lw=1)
            ax.errorbar(
                ds["p"],
                mean.sel(decoder=name, rate=r),
                se.sel(decoder=name, rate=r),
                fmt="o",
                color=color,
                ms=3,
                capsize=2,
                label=name.replace("_", " "),
            )
        ax.plot(
            ds["p"],
            ds["shallow_finite_d"].sel(rate=r),
            ":",
            color="C0",
            lw=1,
            label=f"shallow at d = {ds.attrs['d']} (trained rows' IPR)",
        )
        ax.set(xscale="log", xlabel="sparsity p", ylabel="risk", title=f"r = {r:g} (lines: theory)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig
