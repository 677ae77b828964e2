"""What training learns: the encoder's frame structure and the decoder's alignment with it.

For r ≤ 1 the optimum has orthonormal rows (a rotation); for r > 1 an incoherent unit-norm tight
frame (docs/theory.md §3). Trained encoders (online Adam, clip surrogate) are compared with a Haar
rotation / tight frame and with their i.i.d. Gaussian initialisation through

- the eigenvalues of B̄ᵀB̄ (all equal to r for a unit-norm tight frame; n ones and d − n zeros for
  r < 1), summarised by the relative spread (std/mean) of its min(n, d) largest eigenvalues,
- the off-diagonal overlaps ρ_ij of B̄B̄ᵀ (0 for a rotation; O(d^-1/2) for a tight frame),
- the decoder: cosine between A and B̄ᵀ, and the scale α = ⟨A, B̄ᵀ⟩/‖B̄‖² against the optimal
  sqrt(2/π) (r ≤ 1) or sqrt(π/2)/(r + π/2 − 1) (r > 1).

Training runs are vmapped ``make_train`` calls (the parameters are needed, which a sweep does not keep).

Examples:
    >>> round(optimal_scale(2.0), 4)
    0.4875
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from aejax import theory
from aejax.config import TrainConfig
from aejax.model import Architecture, Params, haar_frame, init, normalize_rows
from aejax.report import markdown_table
from aejax.reproduce._common import command, pick_size, write_outputs
from aejax.risk import exact_risk
from aejax.sources import Gaussian
from aejax.train import make_train, run_key

NAME = "features"
ENCODERS = ("trained", "haar", "init")
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(d=16, rates=(0.5, 2.0), seeds=(0, 1), steps=100),
    "small": dict(d=256, rates=(0.5, 2.0), seeds=(0, 1, 2), steps=1000),
    "large": dict(d=1024, rates=(0.5, 1.0, 2.0, 4.0), seeds=(0, 1, 2, 3), steps=4000),
}
LR, BATCH, BINS = 0.005, 128, np.linspace(-0.6, 0.6, 61)
SUMMARY_HEADER = (
    "r",
    "eig spread trained",
    "eig spread Haar",
    "RMS overlap trained",
    "RMS overlap Haar",
    "RMS overlap init",
    "cos(A, B̄ᵀ)",
    "scale α",
    "optimal α",
    "exact risk",
    "R_Gauss",
)


def optimal_scale(r: float) -> float:
    """Decoder scale α of the optimum A = α B̄ᵀ on N(0, I) data: sqrt(2/π) (r ≤ 1), sqrt(π/2)/(r + π/2 − 1).

    Examples:
        >>> round(optimal_scale(0.5), 4)
        0.7979
    """
    return math.sqrt(2 / math.pi) if r <= 1 else math.sqrt(math.pi / 2) / (r + math.pi / 2 - 1)


def run(size: str = "small", out: str | os.PathLike = "runs/reproduce", progress: bool = True) -> dict[str, Any]:
    """Train, then measure frame statistics of trained, Haar and initial encoders.

    Args:
        size: ``tiny``, ``small`` (d = 256, r ∈ {0.5, 2}) or ``large``.
        out: output directory.
        progress: unused (one compiled call per rate); kept for the common signature.

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"summary"``: per rate, the mean eigenvalue spread,
        overlap RMS and decoder cosine/scale of the trained encoders.
    """
    preset = pick_size(PRESETS, size)
    d, seeds = preset["d"], list(preset["seeds"])
    eig, hist, stats = [], [], []
    for r in preset["rates"]:
        n = round(r * d)
        config = TrainConfig(
            d=d, n=n, steps=preset["steps"], batch=BATCH, surrogate="clip", schedule="cosine", risk_eval="none"
        )
        keys = jnp.stack([run_key(0, s) for s in seeds])
        params, _ = jax.jit(jax.vmap(make_train(config), in_axes=(0, None)))(keys, {"lr": LR})
        encoders = {
            "trained": params.B,
            "haar": jnp.stack([haar_frame(jax.random.fold_in(k, 1), n, d) for k in keys]),
            "init": jnp.stack([init(jax.random.split(k, 4)[0], d, n).B for k in keys]),
        }
        eig.append([_frame_eigenvalues(B) for B in encoders.values()])
        hist.append([_overlap_histogram(B) for B in encoders.values()])
        stats.append([_decoder_stats(params.A[i], params.B[i], d) for i in range(len(seeds))])
    ds = _dataset(preset, eig, hist, stats)
    header, rows = summary_rows(ds)
    table = (
        f"# {NAME} ({size})\n\nd = {d}, online Adam lr {LR}, batch {BATCH}, {preset['steps']} steps, clip, cosine; "
        f"means over {len(seeds)} seeds. Eigenvalue spread: std/mean of the min(n, d) largest eigenvalues of "
        "B̄ᵀB̄ (0 for a rotation and for a unit-norm tight frame; a row-normalised Haar frame is only "
        "nearly tight). RMS overlap: root mean square of the off-diagonal entries of B̄B̄ᵀ (0 for a rotation). "
        "α: least-squares scale of A on B̄ᵀ.\n\n" + markdown_table(header, rows) + "\n"
    )
    summary = {r: dict(zip(header[1:], row[1:], strict=True)) for r, row in zip(preset["rates"], rows, strict=True)}
    paths = write_outputs(NAME, out, ds, _figure(ds), table, command(NAME, size))
    return {**paths, "summary": summary}


def summary_rows(ds: xr.Dataset) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the table (pure): per rate, seed means of the frame statistics of the
    trained, Haar and initial encoders, of the decoder's alignment and of the exact risk, with the
    optimal scale and R_Gauss.

    Args:
        ds: ``eig_spread`` and ``overlap_rms`` over (rate, encoder, seed); ``decoder_cosine``,
            ``decoder_scale`` and ``exact_risk`` over (rate, seed).

    Returns:
        ``(header, rows)`` for ``aejax.report.markdown_table``.
    """
    rows = []
    for r in ds["rate"].values:
        s = ds.sel(rate=r).mean("seed")
        rows.append(
            [
                f"{r:g}",
                float(s["eig_spread"].sel(encoder="trained")),
                float(s["eig_spread"].sel(encoder="haar")),
                float(s["overlap_rms"].sel(encoder="trained")),
                float(s["overlap_rms"].sel(encoder="haar")),
                float(s["overlap_rms"].sel(encoder="init")),
                float(s["decoder_cosine"]),
                float(s["decoder_scale"]),
                optimal_scale(float(r)),
                float(s["exact_risk"]),
                float(theory.gaussian_limit(float(r))),
            ]
        )
    return list(SUMMARY_HEADER), rows


def _frame_eigenvalues(B: jax.Array) -> np.ndarray:
    Bn = normalize_rows(B)
    return np.asarray(jnp.linalg.eigvalsh(jnp.swapaxes(Bn, -1, -2) @ Bn))[..., ::-1]


def _overlap_histogram(B: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    Bn = normalize_rows(B)
    g = np.asarray(Bn @ jnp.swapaxes(Bn, -1, -2))
    off = ~np.eye(g.shape[-1], dtype=bool)
    return np.stack([np.histogram(gi[off], BINS)[0] for gi in g]), np.sqrt(np.mean(g[:, off] ** 2, axis=-1))


def _decoder_stats(A: jax.Array, B: jax.Array, d: int) -> tuple[float, float, float]:
    Bt = normalize_rows(B).T
    inner = float(jnp.sum(A * Bt))
    cosine = inner / float(jnp.linalg.norm(A) * jnp.linalg.norm(Bt))
    risk = float(exact_risk(Params(A, B), Gaussian(d), arch=Architecture("sign", row_normalize=True)))
    return cosine, inner / float(jnp.sum(Bt**2)), risk


def _dataset(preset: dict[str, Any], eig: list, hist: list, stats: list) -> xr.Dataset:
    rates, seeds, d = list(preset["rates"]), list(preset["seeds"]), preset["d"]
    eigs = np.asarray(eig)  # (rate, encoder, seed, d)
    counts = np.asarray([[h[0] for h in per_rate] for per_rate in hist])
    rms = np.asarray([[h[1] for h in per_rate] for per_rate in hist])
    per_seed = np.asarray(stats)  # (rate, seed, 3)
    coords = {
        "rate": rates,
        "encoder": list(ENCODERS),
        "seed": seeds,
        "k": np.arange(d),
        "overlap": 0.5 * (BINS[1:] + BINS[:-1]),
    }
    return xr.Dataset(
        {
            "eigenvalue": (("rate", "encoder", "seed", "k"), eigs),
            "eig_spread": (("rate", "encoder", "seed"), _spread(eigs, rates, d)),
            "overlap_count": (("rate", "encoder", "seed", "overlap"), counts),
            "overlap_rms": (("rate", "encoder", "seed"), rms),
            "decoder_cosine": (("rate", "seed"), per_seed[..., 0]),
            "decoder_scale": (("rate", "seed"), per_seed[..., 1]),
            "exact_risk": (("rate", "seed"), per_seed[..., 2]),
            "optimal_scale": ("rate", [optimal_scale(r) for r in rates]),
        },
        coords=coords,
        attrs={"d": d, "steps": preset["steps"], "lr": LR, "batch": BATCH},
    )


def _spread(eigs: np.ndarray, rates: list[float], d: int) -> np.ndarray:
    """std/mean of the min(n, d) largest eigenvalues, per (rate, encoder, seed)."""
    out = []
    for r, e in zip(rates, eigs, strict=True):
        top = e[..., : min(round(r * d), d)]
        out.append(top.std(axis=-1) / top.mean(axis=-1))
    return np.asarray(out)


def _figure(ds: xr.Dataset):
    from aejax.plot import pyplot

    plt = pyplot()
    rates = ds["rate"].values
    fig, axes = plt.subplots(2, len(rates), figsize=(4 * len(rates), 6), dpi=80, squeeze=False)
    for c, r in enumerate(rates):
        s = ds.sel(rate=r, seed=ds["seed"].values[0])
        for encoder, style in zip(ENCODERS, ("-", "--", ":"), strict=True):
            axes[0, c].plot(s["eigenvalue"].sel(encoder=encoder), style, label=encoder)
            counts = s["overlap_count"].sel(encoder=encoder)
            axes[1, c].step(ds["overlap"], counts / max(1, counts.sum()), style, where="mid", label=encoder)
        axes[0, c].set(title=f"r = {r:g}: eigenvalues of B̄ᵀB̄", xlabel="index", ylabel="eigenvalue")
        axes[1, c].set(
            title=f"overlaps of B̄B̄ᵀ; cos(A, B̄ᵀ) = {float(s['decoder_cosine']):.3f}",
            xlabel="ρ_ij",
            ylabel="fraction",
            yscale="log",
        )
        for a in axes[:, c]:
            a.grid(alpha=0.3)
            a.legend(fontsize=7)
    fig.tight_layout()
    return fig
