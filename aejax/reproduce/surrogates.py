"""Surrogate gradients compared: risk reached and steps to reach it, per surrogate kind and slope.

Sign autoencoders at rate ``r`` on N(0, I) data are trained online with each surrogate derivative
of ``aejax.activations.SURROGATES`` (the identity STE once, every windowed surrogate at each slope),
and HeLU at several margins against ReLU (margin 0 is ReLU's own derivative) — one ``aejax.sweep``
per static structure. "Steps to reach" is the first trace step whose exact risk is within
``TOLERANCE`` of that run's final risk.

Examples:
    >>> steps_to_reach([0.9, 0.5, 0.405, 0.4], [10, 20, 30, 40])
    30
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aejax import theory
from aejax.activations import SURROGATES
from aejax.config import TrainConfig
from aejax.report import markdown_table
from aejax.reproduce._common import command, pick_size, write_outputs
from aejax.sweeping import sweep

NAME = "surrogates"
TOLERANCE = 0.01
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        d=16, rate=1.0, seeds=(0,), steps=60, slopes=(1.0, 4.0), kinds=("ste", "clip", "tanh"), margins=(0.0, 0.05)
    ),
    "small": dict(
        d=128,
        rate=1.0,
        seeds=(0, 1),
        steps=1000,
        slopes=(0.5, 1.0, 2.0, 4.0),
        kinds=tuple(SURROGATES),
        margins=(0.0, 0.001, 0.05, 0.2, 0.5),
    ),
    "large": dict(
        d=512,
        rate=1.0,
        seeds=(0, 1, 2, 3),
        steps=2000,
        slopes=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
        kinds=tuple(SURROGATES),
        margins=(0.0, 0.001, 0.01, 0.05, 0.2, 0.5),
    ),
}
LR, BATCH = 0.005, 128


def steps_to_reach(trace: Any, steps: Any, tolerance: float = TOLERANCE) -> int:
    """First step whose trace value is within ``tolerance`` of the trace's last value.

    Examples:
        >>> steps_to_reach([0.5, 0.3], [5, 10], tolerance=0.5)
        5
    """
    trace = np.asarray(trace)
    return int(np.asarray(steps)[np.argmax(trace <= trace[-1] + tolerance)])


def run(size: str = "small", out: str | os.PathLike = "runs/reproduce", progress: bool = True) -> dict[str, Any]:
    """Sweep surrogate kinds × slopes (sign) and margins (HeLU); write the figure, netCDF and table.

    Args:
        size: ``tiny``, ``small`` (d = 128, r = 1, CPU minutes) or ``large``.
        out: output directory (sweep chunks under ``out/surrogates-<variant>/``; reruns resume).
        progress: show progress bars.

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"rows"``: per variant, its final risk (mean over seeds),
        theory and mean steps to reach.
    """
    preset = pick_size(PRESETS, size)
    jobs = [("sign", kind, {"slope": [1.0] if kind == "ste" else list(preset["slopes"])}) for kind in preset["kinds"]]
    jobs.append(("helu", "clip", {"margin": list(preset["margins"])}))
    variants: list[xr.Dataset] = []
    for activation, kind, axis in jobs:
        variants += _sweep_variants(preset, activation, kind, axis, out, progress)
    ds = xr.concat(variants, dim="variant", coords="different", compat="equals")
    steps = ds["step"].values
    reach = np.asarray(
        [
            [steps_to_reach(ds["risk_trace"].sel(variant=v, seed=s), steps) for s in ds["seed"].values]
            for v in ds["variant"].values
        ]
    )
    ds["steps_to_reach"] = (("variant", "seed"), reach)
    ds.attrs.update(d=preset["d"], rate=preset["rate"], steps=preset["steps"], lr=LR, batch=BATCH, tolerance=TOLERANCE)
    rows = [
        [
            str(v),
            float(ds["exact_risk"].sel(variant=v).mean()),
            float(ds["theory"].sel(variant=v)),
            float(ds["exact_risk"].sel(variant=v).mean() - ds["theory"].sel(variant=v)),
            float(ds["steps_to_reach"].sel(variant=v).mean()),
        ]
        for v in ds["variant"].values
    ]
    table = (
        f"# {NAME} ({size})\n\nd = {preset['d']}, r = {preset['rate']:g}, online Adam lr {LR}, batch {BATCH}, "
        f"{preset['steps']} steps, cosine schedule; means over {len(preset['seeds'])} seeds. "
        "Theory: R_Gauss for sign, the orthogonal-rows "
        f"value 1 − r·μ1²/v for HeLU/ReLU. Steps to reach: first trace step within {TOLERANCE} of the run's final "
        "exact risk.\n\n" + markdown_table(["variant", "exact risk", "theory", "gap", "steps to reach"], rows) + "\n"
    )
    paths = write_outputs(NAME, out, ds, _figure(ds), table, command(NAME, size))
    return {**paths, "rows": rows}


def _sweep_variants(
    preset: dict[str, Any],
    activation: str,
    kind: str,
    axis: dict[str, list[float]],
    out: str | os.PathLike,
    progress: bool,
) -> list[xr.Dataset]:
    """Sweep one surrogate ``kind`` of ``activation`` over the seeds and its ``axis`` (slope or margin); one
    dataset per value of the axis, labelled as a variant with its theory."""
    config = TrainConfig(
        d=preset["d"],
        n=round(preset["rate"] * preset["d"]),
        steps=preset["steps"],
        batch=BATCH,
        activation=activation,
        surrogate=kind,
        schedule="cosine",
        risk_eval="exact",
    )
    name = kind if activation == "sign" else "helu"
    ds = sweep(
        config,
        {"seed": list(preset["seeds"]), **axis, "lr": [LR]},
        out=Path(out) / f"{NAME}-{name}",
        mc_samples=2048,
        progress=progress,
    )
    ((axis_name, values),) = axis.items()
    variants = []
    for v in values:
        one = ds.sel({axis_name: v}).squeeze("lr", drop=True)
        variants.append(
            xr.Dataset({"exact_risk": one["exact_risk"], "risk_trace": one["risk_trace"]}).assign_coords(
                variant=f"{name} {axis_name}={v:g}" if name != "ste" else "ste",
                activation=activation,
                surrogate=name,
                slope=v if axis_name == "slope" else np.nan,
                margin=v if axis_name == "margin" else np.nan,
                theory=float(theory.gaussian_limit(preset["rate"], activation)),
            )
        )
    return variants


def _figure(ds: xr.Dataset):
    from aejax.plot import pyplot

    plt = pyplot()
    fig, (ax_slope, ax_margin, ax_trace) = plt.subplots(1, 3, figsize=(12, 3.6), dpi=80)
    sign = ds.where(ds["activation"] == "sign", drop=True)
    for kind in dict.fromkeys(sign["surrogate"].values):
        part = sign.where(sign["surrogate"] == kind, drop=True)
        risk = part["exact_risk"].mean("seed")
        if kind == "ste":
            ax_slope.axhline(float(risk[0]), color="k", ls="--", lw=1, label="ste (identity)")
        else:
            ax_slope.plot(part["slope"], risk, "o-", ms=4, label=kind)
    ax_slope.axhline(float(sign["theory"][0]), color="k", lw=1.5, label="R_Gauss")
    ax_slope.set(xscale="log", xlabel="surrogate slope k", ylabel="final exact risk", title="sign: surrogate × slope")
    helu = ds.where(ds["activation"] == "helu", drop=True)
    ax_margin.plot(helu["margin"] + 1e-4, helu["exact_risk"].mean("seed"), "o-", label="HeLU (margin 0 = ReLU)")
    ax_margin.axhline(float(helu["theory"][0]), color="k", lw=1.5, label="orthogonal-rows value")
    ax_margin.set(xscale="log", xlabel="margin α (+1e-4)", ylabel="final exact risk", title="HeLU margins")
    for v in ds["variant"].values:
        if v == "ste" or v.endswith("slope=1") or v.startswith("helu"):
            ax_trace.plot(ds["step"], ds["risk_trace"].sel(variant=v).mean("seed"), lw=1, label=v)
    ax_trace.set(yscale="log", xlabel="step", ylabel="exact risk", title="training curves")
    for a in (ax_slope, ax_margin, ax_trace):
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=6)
    fig.tight_layout()
    return fig
