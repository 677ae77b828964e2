"""Sparse Rademacher data at r = 1: does gradient descent switch from a rotation to the identity?

The sign autoencoder is trained by online Adam from a Gaussian init, with an untied (default) and a
weight-tied decoder, over sparsities p and seeds. Recorded per run: the encoder's identity-likeness
(``aejax.model.identity_likeness``: 1 for a signed permutation, ≈ 2 log d / d for a rotation) and the
Monte Carlo risk. The transition p* is the midpoint of a logistic curve fitted to the order
parameter, with a bootstrap over seeds for its uncertainty, and is compared with THEORY §4's
p_c = 2/π (tied or symmetric tie-break) and 2 − π/2 (sign(0) = +1, untied decoder).

The tie convention is also measured directly: the risk of the exact identity encoder (every zero
coordinate gives u = 0, so s = +1) and of a slightly perturbed identity (u ≠ 0: the tie is broken by
the other coordinates, symmetrically), each with its sample-moment optimal linear decoder.

Example:
    >>> PRESETS["small"]["d"]
    128
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy.optimize import curve_fit

from aejax import theory
from aejax.model import Params, identity_likeness
from aejax.reproduce._common import markdown_table, pick_size, write_outputs
from aejax.risk import mc_risk, optimal_decoder
from aejax.sources import SparseRademacher
from aejax.sweep import run_key
from aejax.train import TrainConfig, full_hparams, make_train

NAME = "phase-transition"
DECODERS = ("untied", "tied")
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(d=16, ps=(0.2, 0.6, 1.0), seeds=(0, 1), steps=100, samples=1024, bootstrap=20),
    "small": dict(d=128, ps=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), seeds=(0, 1, 2), steps=2000,
                  samples=8192, bootstrap=500),
    "large": dict(d=512, ps=tuple(np.round(np.arange(0.1, 1.001, 0.05), 2)), seeds=(0, 1, 2, 3, 4, 5), steps=8000,
                  samples=32768, bootstrap=1000),
}
LR, BATCH, PERTURBATION = 0.005, 128, 0.05


def run(size: str = "small", out: str | os.PathLike = "runs/reproduce", progress: bool = True) -> dict[str, Any]:
    """Train over the preset's sparsities and seeds, fit p*, measure the tie convention; write outputs.

    Args:
        size: ``tiny``, ``small`` (d = 128; CPU minutes) or ``large`` (d = 512; accelerators).
        out: output directory.
        progress: unused (the runs are one compiled program per decoder); kept for the common signature.

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"p_star"``: ``{decoder: (estimate, bootstrap standard error)}``.
    """
    del progress
    p = pick_size(PRESETS, size)
    d, ps, seeds = p["d"], np.asarray(p["ps"], float), list(p["seeds"])
    order = np.zeros((len(DECODERS), len(ps), len(seeds)))
    risk = np.zeros_like(order)
    for i, decoder in enumerate(DECODERS):
        config = TrainConfig(d=d, n=d, steps=p["steps"], batch=BATCH, source="sr", schedule="cosine",
                             risk_eval="none", tied=decoder == "tied")
        order[i], risk[i] = _train_grid(config, ps, seeds, p["samples"])
    fits = {dec: _bootstrap_midpoint(ps, order[i], p["bootstrap"]) for i, dec in enumerate(DECODERS)}
    ties = np.stack([_identity_risks(d, sp, p["samples"]) for sp in ps], axis=1)
    ds = xr.Dataset(
        {"identity_likeness": (("decoder", "p", "seed"), order), "risk": (("decoder", "p", "seed"), risk),
         "identity_risk": (("encoder", "p"), ties),
         "theory": (("curve", "p"), np.stack([np.full(len(ps), float(theory.rotation_risk(1.0))),
                                              np.asarray(theory.identity_risk(ps, 1.0, "sr", "tied")),
                                              np.asarray(theory.identity_risk(ps, 1.0, "sr", "plus_untied"))])),
         "p_star": ("decoder", [fits[k][0] for k in DECODERS]), "p_star_se": ("decoder", [fits[k][1] for k in DECODERS])},
        coords={"decoder": list(DECODERS), "p": ps, "seed": seeds, "encoder": ["identity", "perturbed_identity"],
                "curve": ["rotation", "identity_tied", "identity_plus_untied"]},
        attrs={"d": d, "rate": 1.0, "training": f"online Adam lr {LR}, batch {BATCH}, {p['steps']} steps, clip, cosine",
               "p_c_tied": theory.critical_sparsity("sr", "tied"),
               "p_c_plus_untied": theory.critical_sparsity("sr", "plus_untied"),
               "perturbation": f"B = I + {PERTURBATION} G/sqrt(d), G standard normal"})
    rows = [[f"{sp:g}"] + sum(([float(order[i, j].mean()), float(risk[i, j].mean())] for i in range(len(DECODERS))), [])
            + [float(ties[0, j]), float(ties[1, j])] + [float(v) for v in ds["theory"].values[:, j]]
            for j, sp in enumerate(ps)]
    header = ["p", "order untied", "risk untied", "order tied", "risk tied", "R(identity)", "R(perturbed id.)",
              "R_Gauss", "R_id tied", "R_id +1 untied"]
    fit_text = "; ".join(f"{k}: p* = {fits[k][0]:.3f} ± {fits[k][1]:.3f}" for k in DECODERS)
    table = (f"# {NAME} ({size})\n\nSparse Rademacher, d = {d}, r = 1, {ds.attrs['training']}; means over "
             f"{len(seeds)} seeds. order = identity-likeness (mean over rows of max_j b̄_ij²). R(identity) and "
             f"R(perturbed id.): exact identity encoder and {ds.attrs['perturbation']}, sample-moment optimal decoder. "
             f"Logistic midpoint of the order parameter (bootstrap over seeds): {fit_text}. Predicted p_c: "
             f"{ds.attrs['p_c_tied']:.3f} (tied/symmetric), {ds.attrs['p_c_plus_untied']:.3f} (sign(0) = +1, untied)."
             "\n\n" + markdown_table(header, rows) + "\n")
    paths = write_outputs(NAME, out, ds, _figure(ds, fits), table)
    return {**paths, "p_star": fits}


def _train_grid(config: TrainConfig, ps: np.ndarray, seeds: list[int], samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Identity-likeness and Monte Carlo risk of every (p, seed) run, as ``(len(ps), len(seeds))`` arrays."""
    train = make_train(config)

    def one(key_data, sparsity):
        key = jax.random.wrap_key_data(key_data)
        hp = full_hparams(config, {"lr": LR, "p": sparsity})
        params, _ = train(key, hp)
        r, _ = mc_risk(params, config.make_source(hp), jax.random.fold_in(key, 1), samples, **config.model_kw(hp))
        return identity_likeness(params.B), r

    keys = np.stack([np.asarray(jax.random.key_data(run_key(0, s))) for _ in ps for s in seeds])
    sparsity = np.repeat(ps, len(seeds)).astype(np.float32)
    order, risk = jax.jit(jax.vmap(one))(keys, sparsity)
    return np.asarray(order).reshape(len(ps), len(seeds)), np.asarray(risk).reshape(len(ps), len(seeds))


def _identity_risks(d: int, p: float, samples: int) -> np.ndarray:
    """Risks of the exact and the perturbed identity encoder, each with its optimal linear decoder."""
    source = SparseRademacher(d, p)
    perturbed = jnp.eye(d) + PERTURBATION * jax.random.normal(jax.random.key(3), (d, d)) / np.sqrt(d)
    out = []
    for B in (jnp.eye(d), perturbed):
        A = optimal_decoder(B, source, key=jax.random.key(4), n_samples=8 * samples)
        out.append(float(mc_risk(Params(A, B), source, jax.random.key(5), samples)[0]))
    return np.asarray(out)


def _logistic(p, low, high, mid, width):
    return low + (high - low) / (1 + np.exp(-(p - mid) / width))


def _fit_midpoint(ps: np.ndarray, values: np.ndarray) -> float:
    guess = (values.min(), values.max(), float(np.median(ps)), 0.05)
    bounds = ([0.0, 0.0, ps.min(), 1e-3], [1.0, 1.0, ps.max(), 1.0])
    try:
        return float(curve_fit(_logistic, ps, values, p0=guess, bounds=bounds, maxfev=5000)[0][2])
    except RuntimeError:  # no convergence: no transition visible in this resample
        return float("nan")


def _bootstrap_midpoint(ps: np.ndarray, order: np.ndarray, samples: int) -> tuple[float, float]:
    """Logistic midpoint of the mean order parameter and its bootstrap (over seeds) standard error."""
    rng = np.random.default_rng(0)
    estimate = _fit_midpoint(ps, order.mean(axis=1))
    picks = rng.integers(0, order.shape[1], (samples, order.shape[1]))
    boot = np.asarray([_fit_midpoint(ps, order[:, pick].mean(axis=1)) for pick in picks])
    return estimate, float(np.nanstd(boot, ddof=1))


def _figure(ds: xr.Dataset, fits: dict[str, tuple[float, float]]):
    from aejax.plot import _pyplot

    plt = _pyplot()
    fig, (ax_order, ax_risk) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90)
    ps = ds["p"].values
    for c, dec in enumerate(DECODERS):
        order = ds["identity_likeness"].sel(decoder=dec)
        se = order.std("seed", ddof=1) / np.sqrt(ds.sizes["seed"])
        ax_order.errorbar(ps, order.mean("seed"), se, fmt="o-", color=f"C{c}", ms=4, capsize=2,
                          label=f"{dec}: p* = {fits[dec][0]:.3f} ± {fits[dec][1]:.3f}")
        risk = ds["risk"].sel(decoder=dec)
        ax_risk.errorbar(ps, risk.mean("seed"), risk.std("seed", ddof=1) / np.sqrt(ds.sizes["seed"]), fmt="o-",
                         color=f"C{c}", ms=4, capsize=2, label=f"GD, {dec} decoder")
    for value, style, label in ((ds.attrs["p_c_tied"], "--", "p_c tied"), (ds.attrs["p_c_plus_untied"], ":", "p_c +1 untied")):
        ax_order.axvline(value, color="k", ls=style, lw=1, label=label)
    for curve, style in zip(ds["curve"].values, ("k-", "k--", "k:")):
        ax_risk.plot(ps, ds["theory"].sel(curve=curve), style, lw=1, label=curve.replace("_", " "))
    for e, marker in zip(ds["encoder"].values, "sv"):
        ax_risk.plot(ps, ds["identity_risk"].sel(encoder=e), marker, color="C3", mfc="none", label=e.replace("_", " "))
    ax_order.set(xlabel="sparsity p", ylabel="identity-likeness", ylim=(0, 1.02))
    ax_risk.set(xlabel="sparsity p", ylabel="risk")
    for a in (ax_order, ax_risk):
        a.grid(alpha=0.3)
        a.legend(fontsize=6)
    fig.tight_layout()
    return fig
