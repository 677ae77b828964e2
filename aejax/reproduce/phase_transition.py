"""Sparse Rademacher data at r = 1: how the gradient-trained encoder leaves the rotation as p grows.

The sign autoencoder is trained by online Adam from a Gaussian init over sparsities p and seeds by
three trainers (``TRAINERS``): a weight-tied decoder with the clip surrogate, an untied decoder with
the clip surrogate, and an untied decoder with the straight-through (identity) surrogate, one
``aejax.sweep`` each. Recorded per run (``aejax.record``): the encoder's identity-likeness
(``aejax.model.identity_likeness``: 1 for a signed permutation, ≈ 2 log d / d for a rotation), its
trace over training, the Monte Carlo risk, and the fraction of exact ties (``u = 0`` at a zero
input coordinate, ``exact_tie_fraction``) that decides which sign(0) convention the trained encoder
realises. The transition p* is where the seed-mean order parameter crosses 1/2 (bootstrap over
seeds for its standard error); ``assemble`` computes it and the predictions without training.

Predictions compared (``aejax.theory``, docs/theory.md §4 and the derivations in ``theory.sparse``):
p_c = 2/π (identity vs rotation, tied decoder or symmetric ties), p_c = 2 − π/2 (sign(0) = +1,
untied), the kurtosis threshold 1/3 where the rotation becomes locally unstable, and the optimal
partial identity B̄ = √a I + √(1 − a) M with its a*(p) and risk. The tie convention is also measured
on fixed encoders: the exact identity (every zero coordinate gives u = 0, so s = +1) and a slightly
perturbed identity (u ≠ 0: the tie is broken by the other coordinates), each with its sample-moment
optimal linear decoder.

Examples:
    >>> PRESETS["small"]["d"]
    64
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy import optimize

from aejax import theory
from aejax.config import TrainConfig
from aejax.model import Architecture, Params
from aejax.report import markdown_table, seed_mean_se
from aejax.reproduce._common import command, pick_size, write_outputs
from aejax.risk import mc_risk, optimal_decoder
from aejax.sources import SparseRademacher
from aejax.sweeping import sweep

NAME = "phase-transition"
TRAINERS: dict[str, dict[str, Any]] = {
    "tied_clip": dict(tied=True, surrogate="clip"),
    "untied_clip": dict(tied=False, surrogate="clip"),
    "untied_ste": dict(tied=False, surrogate="ste"),
}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(d=16, ps=(0.2, 0.6, 1.0), seeds=(0, 1), steps=100, samples=1024, bootstrap=20),
    "small": dict(
        d=64,
        ps=(0.2, 0.3, 0.33, 0.36, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 1.0),
        seeds=(0, 1, 2),
        steps=20000,
        samples=8192,
        bootstrap=500,
    ),
    "large": dict(
        d=256,
        ps=(0.2, 0.25, 0.3, 0.33, 0.36, 0.38, 0.4, 0.42, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0),
        seeds=(0, 1, 2, 3, 4, 5),
        steps=80000,
        samples=32768,
        bootstrap=1000,
    ),
}
LR, BATCH, PERTURBATION, LEVEL = 0.01, 256, 0.05, 0.5


def run(size: str = "small", out: str | os.PathLike = "runs/reproduce", progress: bool = True) -> dict[str, Any]:
    """One ``aejax.sweep`` per trainer over the preset's sparsities and seeds, then ``assemble``
    (p*, predictions) and the table and figure; writes the outputs.

    Args:
        size: ``tiny``, ``small`` (d = 64, 20 000 steps; about 15 CPU minutes) or ``large``
            (d = 256, 80 000 steps; accelerators).
        out: output directory (sweep chunks under ``out/phase-transition-<trainer>/``; reruns resume).
        progress: show progress bars.

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"p_star"``: ``{trainer: (estimate, bootstrap standard error)}``.
    """
    preset = pick_size(PRESETS, size)
    d, ps = preset["d"], [float(sp) for sp in preset["ps"]]
    grid = {"seed": list(preset["seeds"]), "p": ps, "lr": [LR]}
    runs = [
        sweep(
            TrainConfig(d=d, n=d, steps=preset["steps"], batch=BATCH, source="sr", risk_eval="none", **kw),
            grid,
            out=Path(out) / f"{NAME}-{trainer}",
            mc_samples=preset["samples"],
            progress=progress,
        ).squeeze("lr", drop=True)
        for trainer, kw in TRAINERS.items()
    ]
    identity = np.stack([_identity_risks(d, sp, preset["samples"]) for sp in ps], axis=1)
    training = f"online Adam lr {LR} (constant), batch {BATCH}, {preset['steps']} steps"
    ds = assemble(runs, identity, preset["bootstrap"], training, d)
    paths = write_outputs(NAME, out, ds, _figure(ds), _table(ds, size), command(NAME, size))
    return {**paths, "p_star": p_star(ds)}


def assemble(runs: list[xr.Dataset], identity_risk: np.ndarray, bootstrap: int, training: str, d: int) -> xr.Dataset:
    """The reproduction's Dataset from one sweep per trainer (pure: no training).

    Args:
        runs: the sweeps of ``TRAINERS`` in order, over ``p`` and ``seed``, with the record's
            ``identity_likeness`` (and its trace), ``risk`` and ``exact_tie_fraction``.
        identity_risk: ``(2, p)`` risks of the exact and the perturbed identity encoder.
        bootstrap: bootstrap resamples (over seeds) of the crossing p*.
        training: how the runs were trained, for the table.
        d: the dimension.

    Returns:
        The records over (trainer, p, seed), the predictions (``theory``, ``a_star``, thresholds in
        the attributes) and the crossing ``p_star`` ± ``p_star_se`` (bootstrap over seeds) with its
        grid interval ``p_star_interval``.
    """
    names = ["identity_likeness", "risk", "identity_likeness_trace", "exact_tie_fraction"]
    per_trainer = [r[names].transpose("p", "seed", ...) for r in runs]
    trainers = xr.DataArray(list(TRAINERS), dims="trainer")
    ds = xr.concat(per_trainer, dim=trainers, coords="minimal", combine_attrs="drop")
    ds = ds.drop_vars([c for c in ds.coords if c not in ("trainer", "p", "seed", "step")])
    ps, likeness = ds["p"].values, ds["identity_likeness"].values
    fits = [_bootstrap_crossing(ps, likeness[i], bootstrap) for i in range(len(TRAINERS))]
    best = np.asarray([theory.best_partial_identity("sr", float(sp)) for sp in ps])
    curves = {
        "rotation": np.full(len(ps), float(theory.rotation_risk(1.0))),
        "identity_tied": np.asarray(theory.identity_risk("sr", ps, 1.0, "tied")),
        "identity_plus_untied": np.asarray(theory.identity_risk("sr", ps, 1.0, "plus_untied")),
        "partial_identity": 1 - best[:, 1],
    }
    ds = ds.assign(
        identity_risk=(("encoder", "p"), identity_risk),
        theory=(("curve", "p"), np.stack(list(curves.values()))),
        a_star=("p", best[:, 0]),
        p_star=("trainer", [f[0] for f in fits]),
        p_star_se=("trainer", [f[1] for f in fits]),
        p_star_interval=(("trainer", "bound"), [_crossing_interval(ps, row.mean(axis=1)) for row in likeness]),
    )
    return ds.assign_coords(
        encoder=["identity", "perturbed_identity"], curve=list(curves), bound=["low", "high"]
    ).assign_attrs(
        d=d,
        rate=1.0,
        training=training,
        p_c_tied=theory.critical_sparsity("sr", "tied"),
        p_c_plus_untied=theory.critical_sparsity("sr", "plus_untied"),
        p_kurtosis=theory.kurtosis_threshold("sr"),
        p_half_partial_identity=_theory_crossing(),
        perturbation=f"B = I + {PERTURBATION} G/sqrt(d), G standard normal",
    )


def p_star(ds: xr.Dataset) -> dict[str, tuple[float, float]]:
    """``{trainer: (p*, bootstrap standard error)}`` of an ``assemble``d Dataset."""
    return {
        str(k): (float(ds["p_star"].sel(trainer=k)), float(ds["p_star_se"].sel(trainer=k)))
        for k in ds["trainer"].values
    }


def _identity_risks(d: int, p: float, samples: int) -> np.ndarray:
    """Risks of the exact and the perturbed identity encoder, each with its optimal linear decoder."""
    source = SparseRademacher(d, p)
    perturbed = jnp.eye(d) + PERTURBATION * jax.random.normal(jax.random.key(3), (d, d)) / np.sqrt(d)
    out = []
    arch = Architecture("sign", row_normalize=False)
    for B in (jnp.eye(d), perturbed):
        A = optimal_decoder(B, source, arch=arch, key=jax.random.key(4), n_samples=8 * samples)
        out.append(float(mc_risk(Params(A, B), source, jax.random.key(5), samples, arch=arch)[0]))
    return np.asarray(out)


def _crossing_index(values: np.ndarray) -> int | None:
    """Index k of the first value at or above ``LEVEL`` after values below it, or None."""
    above = values >= LEVEL
    return None if not above.any() or above[0] else int(np.argmax(above))


def _crossing(ps: np.ndarray, values: np.ndarray) -> float:
    """First p where ``values`` rises through ``LEVEL`` (linear interpolation); NaN if it never does."""
    k = _crossing_index(values)
    if k is None:
        return float("nan")
    return float(ps[k - 1] + (LEVEL - values[k - 1]) * (ps[k] - ps[k - 1]) / (values[k] - values[k - 1]))


def _crossing_interval(ps: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """The two grid sparsities between which ``values`` crosses ``LEVEL`` (NaNs if it never does)."""
    k = _crossing_index(values)
    return (float("nan"), float("nan")) if k is None else (float(ps[k - 1]), float(ps[k]))


def _bootstrap_crossing(ps: np.ndarray, likeness: np.ndarray, samples: int) -> tuple[float, float]:
    """Crossing of the seed-mean order parameter and its bootstrap (over seeds) standard error."""
    rng = np.random.default_rng(0)
    picks = rng.integers(0, likeness.shape[1], (samples, likeness.shape[1]))
    boot = np.asarray([_crossing(ps, likeness[:, pick].mean(axis=1)) for pick in picks])
    boot = boot[np.isfinite(boot)]
    return _crossing(ps, likeness.mean(axis=1)), float(np.std(boot, ddof=1)) if boot.size > 1 else float("nan")


def _theory_crossing() -> float:
    """Sparsity where the optimal partial identity's a*(p) reaches ``LEVEL`` (d → ∞)."""
    # scipy's stubs type brentq's result as float | (float, RootResults) whatever full_output is
    return float(
        optimize.brentq(  # pyright: ignore[reportArgumentType]
            lambda sp: float(theory.best_partial_identity("sr", sp)[0]) - LEVEL,
            theory.kurtosis_threshold("sr") + 1e-6,
            1.0,
            xtol=1e-8,
        )
    )


def _table(ds: xr.Dataset, size: str) -> str:
    ps, fits, n_seeds = ds["p"].values, p_star(ds), ds.sizes["seed"]
    mean = {name: ds[name].mean("seed") for name in ("identity_likeness", "risk", "exact_tie_fraction")}
    rows = [
        [f"{sp:g}"]
        + [float(mean[stat].sel(trainer=name, p=sp)) for name in TRAINERS for stat in ("identity_likeness", "risk")]
        + [float(mean["exact_tie_fraction"].sel(p=sp).max()), float(ds["a_star"].sel(p=sp))]
        + [float(v) for v in ds["theory"].sel(p=sp).values]
        + [float(v) for v in ds["identity_risk"].sel(p=sp).values]
        for sp in ps
    ]
    header = [
        "p",
        *(f"{stat} {name}" for name in TRAINERS for stat in ("identity-likeness", "risk")),
        "exact ties",
        "a*",
        *[f"R {c.replace('_', ' ')}" for c in ds["curve"].values],
        "R(identity)",
        "R(perturbed id.)",
    ]
    interval = ds["p_star_interval"]
    fit_text = "; ".join(
        f"{k}: p* = {fits[k][0]:.3f} ± {fits[k][1]:.3f} (between p = "
        f"{float(interval.sel(trainer=k, bound='low')):g} and {float(interval.sel(trainer=k, bound='high')):g})"
        for k in TRAINERS
    )
    a = ds.attrs
    return (
        f"# {NAME} ({size})\n\nSparse Rademacher, d = {a['d']}, r = 1, {a['training']}; means over {n_seeds} seeds. "
        f"identity-likeness: mean over rows of max_j b̄_ij²; exact ties = largest fraction of zero dominant "
        f"inputs that gave u = 0 exactly (1: sign(0) = +1 decides; 0: ties broken by the other coordinates). "
        f"a* and R partial identity: best B̄ = √a I + √(1−a) M (d → ∞). R(identity), R(perturbed id.): exact "
        f"identity and {a['perturbation']}, sample-moment optimal decoder.\n\n"
        f"Order parameter crosses {LEVEL:g} (± bootstrap over seeds; the grid interval bounds the "
        f"interpolation): {fit_text}. Predictions: kurtosis threshold "
        f"{a['p_kurtosis']:.3f} (rotation locally unstable above), a*(p) = {LEVEL:g} at "
        f"{a['p_half_partial_identity']:.3f}, p_c {a['p_c_tied']:.3f} (identity vs rotation, tied/symmetric "
        f"ties), {a['p_c_plus_untied']:.3f} (sign(0) = +1, untied).\n\n" + markdown_table(header, rows) + "\n"
    )


def _figure(ds: xr.Dataset):
    from aejax.plot import pyplot

    fits = p_star(ds)

    plt = pyplot()
    fig, (ax_order, ax_risk) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=90)
    ps = ds["p"].values
    for c, trainer in enumerate(TRAINERS):
        fit = fits[trainer]
        for name, ax, label in (
            ("identity_likeness", ax_order, f"{trainer}: p* = {fit[0]:.3f} ± {fit[1]:.3f}"),
            ("risk", ax_risk, f"GD, {trainer}"),
        ):
            mean, se = seed_mean_se(ds[name].sel(trainer=trainer))
            ax.errorbar(
                ps,
                mean,
                se,
                fmt="o-",
                color=f"C{c}",
                ms=4,
                capsize=2,
                label=label,
            )
    ax_order.plot(ps, ds["a_star"], "k-", lw=1, label="a*(p), partial identity (d → ∞)")
    for key, style, label in (
        ("p_kurtosis", "-.", "kurtosis threshold"),
        ("p_c_tied", "--", "p_c tied"),
        ("p_c_plus_untied", ":", "p_c +1 untied"),
    ):
        ax_order.axvline(ds.attrs[key], color="gray", ls=style, lw=1, label=label)
    # the styles are a palette: at most as many curves/encoders as styles, fewer is fine
    for curve, style in zip(ds["curve"].values, ("k-", "k--", "k:", "k-."), strict=False):
        ax_risk.plot(ps, ds["theory"].sel(curve=curve), style, lw=1, label=curve.replace("_", " "))
    for e, marker in zip(ds["encoder"].values, "sv", strict=False):
        ax_risk.plot(ps, ds["identity_risk"].sel(encoder=e), marker, color="C3", mfc="none", label=e.replace("_", " "))
    ax_order.set(xlabel="sparsity p", ylabel="identity-likeness", ylim=(0, 1.02))
    ax_risk.set(xlabel="sparsity p", ylabel="risk")
    for a in (ax_order, ax_risk):
        a.grid(alpha=0.3)
        a.legend(fontsize=6)
    fig.tight_layout()
    return fig
