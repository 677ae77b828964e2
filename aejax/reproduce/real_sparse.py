"""Real sparse data: the decoders on DCT coefficients of image patches, against a fitted Bernoulli–Gaussian theory.

Data: 8×8 patches of grayscale photographs (scikit-learn's two bundled sample images, or the images
of a user's file), their orthonormal 2-D DCT (``scipy.fft.dctn``) without the DC coefficient (the
patch's mean brightness, which is not sparse), d = 63. Training patches come from the left three
quarters of every image and held-out patches from the right quarter (with five or more images:
the first 80% of the images and the others), so no held-out pixel was seen in training. Every
coefficient is centred and scaled to unit variance with the training patches' statistics.

AC coefficients of natural images are heavy-tailed (kurtosis ≈ 15–50 per coefficient), close to
a Gaussian scale mixture. The theory is that of a Bernoulli–Gaussian prior BG(p) of unit
variance whose p is fitted by the method of moments, ``E x⁴ = 3/p`` pooled over the coordinates
(``fit_bg``): it matches the fourth moment, the quantity that decides the shallow decoder's
finite-d excess (``theory.kurtosis_correction``), with no threshold to choose. The alternative
fit, the fraction of near-zero coefficients (``P(|x| < t) = 1 − p + p·erf(t√(p/2))``), depends on
``t`` and on the shape near zero, which a continuous heavy-tailed law does not share with BG; the
table gives the theory at both p's to show how much the prediction depends on the fit.

Compared on the held-out patches (``Model.heldout_risk``), mean ± standard error over seeds:

- ``shallow``: the sign autoencoder trained by minibatch Adam on the training patches
  (theory: ``R_Gauss(r)``; at finite d plus ``kurtosis_correction`` at the trained rows' IPR);
- ``learned_denoiser``: Haar encoder and ``A = c(r) B̄ᵀ`` frozen, the learned odd entrywise
  denoiser trained (``decoder="denoiser", trainable="head"``; theory: ``denoiser_risk``);
- ``posterior_mean``: the BG(p) posterior-mean denoiser at the fitted p, untrained (``denoiser_risk``);
- ``multilayer``: the unrolled VAMP decoder for BG(p), at its Bayes-optimal start (untrained) and
  with its per-layer factors trained on the training patches (``decoder="multilayer",
  trainable="head"``; theory: ``state_evolution`` after the last layer).

Where the theory fails, and why: the coefficients of one patch share its contrast (a Gaussian
scale mixture ``x = σ g``: their squares are correlated), and the sign code ``sign(Bx)`` does not
see σ. The shallow decoder then follows ``scale_mixture_risk`` rather than R_Gauss or the BG
finite-d correction, and entrywise denoisers, which need σ, gain almost nothing.

The second figure, ``real-sparse-reconstructions.png``, shows a held-out crop next to its
reconstructions, patch by patch, by the shallow and the trained multilayer decoders at each rate
(the DC coefficient, not coded, is taken from the original), on the held-out block of largest pixel
variance. It shows the scale-mixture failure: every patch is reconstructed at the average
contrast, so flat patches get texture and strong edges are damped.

Examples:
    >>> fit_bg(np.random.default_rng(0).normal(size=(20000, 4)))["p_moments"] > 0.95  # Gaussian: p = 1
    True
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from aejax import _validate, theory
from aejax.config import TrainConfig
from aejax.data import Preprocessing, load_array, random_patches
from aejax.report import markdown_table, seed_mean_se
from aejax.reproduce._common import command, pick_size, write_figure, write_outputs
from aejax.sources import Empirical
from aejax.sweeping import sweep
from aejax.train import make_train, run_key

NAME = "real-sparse"
PATCH = 8
METHODS = ("shallow", "learned_denoiser", "posterior_mean", "multilayer_untrained", "multilayer")
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(rates=(1.0,), seeds=(0,), steps=20, batch=64, train=600, test=200, layers=1),
    "small": dict(rates=(0.5, 1.0, 2.0), seeds=(0, 1), steps=1500, batch=128, train=20000, test=5000, layers=4),
    "large": dict(
        rates=(0.25, 0.5, 1.0, 1.5, 2.0), seeds=(0, 1, 2, 3), steps=4000, batch=256, train=100000, test=20000, layers=6
    ),
}
LR = {"shallow": 0.005, "learned_denoiser": 0.01, "multilayer": 0.005}
MC_SAMPLES = 1024  # the record's Monte Carlo risk on the training rows (the table uses the held-out risk)
NEAR_ZERO = 0.1  # threshold t of the near-zero-fraction fit, in units of the coefficient's standard deviation


def images(data: str | os.PathLike | None = None) -> np.ndarray:
    """Grayscale images ``(N, H, W)`` in [0, 1]-ish units: scikit-learn's sample photographs, or a file's.

    A file may hold one image ``(H, W)``, images ``(N, H, W)`` or colour images ``(N, H, W, 3|4)``
    (averaged over the channels); any format of ``aejax.data.load_array``.

    Examples:
        >>> images().shape
        (2, 427, 640)
    """
    if data is None:
        from sklearn.datasets import load_sample_images

        return np.stack([im.mean(axis=-1) / 255.0 for im in load_sample_images().images])
    x = load_array(data)
    if x.ndim == 4 and x.shape[-1] in (3, 4):
        x = x[..., :3].mean(axis=-1)
    x = x[None] if x.ndim == 2 else x
    if x.ndim != 3 or min(x.shape[1:]) < PATCH:
        raise _validate.InputError(
            f"data {str(data)!r} must hold images (H, W), (N, H, W) or (N, H, W, channels) of at "
            f"least {PATCH}×{PATCH} pixels, got shape {x.shape}"
        )
    return x


def split_images(ims: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out pixels: the images cut into square blocks (side ``min(64, H, W)``), a
    random ``test_fraction`` of the blocks held out. Patches are then drawn inside blocks, so no
    held-out pixel is trained on, and both parts sample the same kinds of image regions.

    Returns:
        ``(train_blocks, test_blocks)``, each ``(blocks, side, side)``.

    Examples:
        >>> train, test = split_images(np.zeros((2, 128, 320)))
        >>> train.shape, test.shape
        ((16, 64, 64), (4, 64, 64))
    """
    side = min(64, ims.shape[1], ims.shape[2])
    n, h, w = ims.shape[0], ims.shape[1] // side, ims.shape[2] // side
    blocks = (
        ims[:, : h * side, : w * side].reshape(n, h, side, w, side).transpose(0, 1, 3, 2, 4).reshape(-1, side, side)
    )
    n_test = int(round(test_fraction * len(blocks)))  # noqa: RUF046 -- test_fraction may be a 0-d array: keep an int
    if n_test < 1 or n_test == len(blocks):
        raise _validate.InputError(
            f"the images give {len(blocks)} blocks of {side}×{side} pixels: too few to hold out "
            f"{test_fraction:.0%} of them (give larger or more images)"
        )
    order = np.random.default_rng(seed).permutation(len(blocks))
    return blocks[order[n_test:]], blocks[order[:n_test]]


def dct_coefficients(patches: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DCT of flattened square patches, without the DC coefficient: ``(count, size² − 1)``.

    Examples:
        >>> dct_coefficients(np.ones((2, 64))).round(12).max()  # a flat patch has only a DC term
        np.float64(0.0)
    """
    from scipy.fft import dctn

    size = math.isqrt(patches.shape[1])
    coef = np.asarray(dctn(patches.reshape(-1, size, size), axes=(1, 2), norm="ortho")).reshape(len(patches), -1)
    return coef[:, 1:]


def patch_images(coef: np.ndarray, dc: np.ndarray) -> np.ndarray:
    """Inverse of ``dct_coefficients`` given each patch's DC coefficient: ``(count, size, size)``."""
    from scipy.fft import idctn

    size = math.isqrt(coef.shape[1] + 1)
    full = np.c_[dc, coef].reshape(-1, size, size)
    return np.asarray(idctn(full, axes=(1, 2), norm="ortho"))


def fit_bg(x: np.ndarray, t: float = NEAR_ZERO) -> dict[str, float]:
    """Bernoulli–Gaussian fits to unit-variance data ``x``: ``p`` from ``E x⁴ = 3/p`` and from ``P(|x| < t)``.

    Returns:
        ``{"kurtosis": pooled E x⁴, "p_moments": min(1, 3/E x⁴), "near_zero": P(|x| < t),
        "p_near_zero": the p of BG(p) with that fraction (1 if the data have fewer near-zero
        values than a Gaussian), "scale_factor": (E‖x‖)² / E‖x‖² over the rows (``x`` 2-D; see
        ``scale_mixture_risk``)}``.
    """
    from scipy.optimize import brentq
    from scipy.special import erf

    x = np.asarray(x, np.float64)
    kurtosis = float(np.mean(x**4))
    norms = np.linalg.norm(x.reshape(len(x), -1), axis=1)
    scale = float(np.mean(norms) ** 2 / np.mean(norms**2))
    fraction = float(np.mean(np.abs(x) < t))

    def excess(p):
        return 1 - p + p * erf(t * np.sqrt(p / 2)) - fraction

    # scipy's stubs type brentq's result as float | (float, RootResults) whatever full_output is
    p_zero = 1.0 if excess(1.0) >= 0 else float(brentq(excess, 1e-6, 1.0))  # pyright: ignore[reportArgumentType]
    return {
        "kurtosis": kurtosis,
        "p_moments": min(1.0, 3.0 / kurtosis),
        "near_zero": fraction,
        "p_near_zero": p_zero,
        "scale_factor": scale,
    }


def scale_mixture_risk(r: Any, scale_factor: float) -> np.ndarray:
    """Sign-autoencoder risk on a Gaussian scale mixture ``x = σ g`` (``g ~ N(0, I)``, one σ per sample, E σ² = 1).

    The code ``sign(B x) = sign(B g)`` does not see σ, so ``C_ss`` is that of ``g`` and ``C_xs`` is
    ``E σ`` times it: the optimal linear decoder of the rotation / tight frame reaches
    ``1 − (E σ)² (1 − R_Gauss(r))``. For patches σ ∝ ‖x‖ (at large d), so ``(E σ)²`` is the
    ``scale_factor`` of ``fit_bg``. Entrywise denoisers cannot recover σ from the signs either.

    Examples:
        >>> float(scale_mixture_risk(1.0, 1.0)) == float(theory.gaussian_limit(1.0))  # no mixing: R_Gauss
        True
    """
    return 1 - scale_factor * (1 - np.asarray(theory.gaussian_limit(np.asarray(r)), float))


def sparse_sources(ims: np.ndarray, n_train: int, n_test: int, seed: int = 0):
    """Training and held-out ``Empirical`` sources of unit-variance DCT coefficients, and what built them.

    Returns:
        ``(train, test, info)``: ``info`` holds the coefficients' ``mean`` and ``std`` (training
        statistics) and the held-out patches' DC coefficients ``test_dc`` and raw ``test_coef``.
    """
    train_ims, test_ims = split_images(ims)
    train_patches = random_patches(train_ims, PATCH, n_train, seed=seed)
    test_patches = random_patches(test_ims, PATCH, n_test, seed=seed + 1)
    train_coef, test_coef = dct_coefficients(train_patches), dct_coefficients(test_patches)
    mean, std = train_coef.mean(axis=0), train_coef.std(axis=0)
    if np.any(std == 0):
        raise _validate.InputError("some DCT coefficients are constant over the training patches (flat images?)")
    prep = Preprocessing(mean, np.diag(1 / std), np.sort(std**2)[::-1])
    train, test = Empirical(train_coef, preprocessing=prep), Empirical(test_coef, preprocessing=prep)
    return train, test, {"mean": mean, "std": std, "test_region": test_ims}


def run(
    size: str = "small",
    out: str | os.PathLike = "runs/reproduce",
    progress: bool = True,
    data: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """One ``aejax.sweep`` per trained decoder (the untrained ones: ``Model.init`` and the same
    record fields), then ``assemble``; writes figure, netCDF, table and the reconstruction figure.

    Args:
        size: ``tiny`` (seconds), ``small`` (CPU minutes) or ``large``.
        out: output directory (the sweeps run in memory: their data may change between calls).
        progress: show progress bars.
        data: an image file to use instead of scikit-learn's sample photographs.

    Returns:
        ``{"png", "nc", "md", "reconstructions"}`` paths, ``"fit"`` (``fit_bg``) and ``"gain"``: per
        rate, the held-out risk of the shallow decoder minus that of the learned denoiser and of
        the trained multilayer decoder.
    """
    preset = pick_size(PRESETS, size)
    train, test, info = sparse_sources(images(data), preset["train"], preset["test"])
    rates, layers = list(preset["rates"]), preset["layers"]
    fit = fit_bg(np.asarray(train.data))
    configs = _configs(train, test, preset)
    grid = {"seed": list(preset["seeds"]), "rate": rates, "p": [fit["p_moments"]]}
    records = {
        method: sweep(configs[method], _grid(grid, method), mc_samples=MC_SAMPLES, progress=progress)
        if method in LR
        else _untrained(configs[method], grid)
        for method in METHODS
    }
    attrs = dict(steps=preset["steps"], batch=preset["batch"], n_train=preset["train"], n_test=preset["test"])
    ds = assemble(records, fit, layers, train.d, data="sklearn sample images" if data is None else str(data), **attrs)
    rows, gain = _table_rows(ds, rates)
    made_by = command(NAME, size, data)
    paths = write_outputs(NAME, out, ds, _figure(ds), _table(ds, rows, size, data), made_by)
    shown = _reconstructions(configs, rates, fit["p_moments"], _crop_rows(info, train)[0])
    paths["reconstructions"] = _reconstruction_figure(shown, info, train, rates, Path(out), made_by)
    return {**paths, "fit": fit, "gain": gain}


def _configs(train: Empirical, test: Empirical, preset: dict[str, Any]) -> dict[str, TrainConfig]:
    """The static structure of each method (``n = d``: the sweep's ``rate`` axis masks hidden units)."""
    base = TrainConfig(
        d=train.d,
        n=train.d,
        steps=preset["steps"],
        batch=preset["batch"],
        mode="dataset",
        source=train,
        test_source=test,
        risk_eval="none",
        schedule="cosine",
    )
    haar = dataclasses.replace(base, init="orthogonal", prior="bg")
    layers = preset["layers"]
    return {
        "shallow": base,
        "learned_denoiser": dataclasses.replace(haar, decoder="denoiser", trainable="head"),
        "posterior_mean": dataclasses.replace(haar, decoder="posterior_mean"),
        "multilayer_untrained": dataclasses.replace(haar, decoder="multilayer", layers=layers),
        "multilayer": dataclasses.replace(haar, decoder="multilayer", layers=layers, trainable="head"),
    }


def _grid(grid: dict[str, list], method: str) -> dict[str, list]:
    """The sweep grid of a trained method: its learning rate, and p only where the decoder uses it."""
    return (
        {**grid, "lr": [LR[method]]}
        if method != "shallow"
        else {"seed": grid["seed"], "rate": grid["rate"], "lr": [LR[method]]}
    )


def _untrained(config: TrainConfig, grid: dict[str, list]) -> xr.Dataset:
    """The record's held-out and training risks of the Bayes-optimal decoder on a Haar encoder, at
    initialisation (no training, so no sweep), over (seed, rate)."""
    keys = jnp.stack([run_key(0, s) for s in grid["seed"]])
    values = []
    for r in grid["rate"]:
        model = config.bind({"rate": r, "p": grid["p"][0]})
        params = jax.vmap(model.init)(keys)
        values.append(np.asarray(jax.vmap(lambda q, m=model: jnp.stack([m.heldout_risk(q), m.train_risk(q)]))(params)))
    values = np.stack(values, axis=1)  # (seed, rate, 2)
    coords = {"seed": grid["seed"], "rate": grid["rate"]}
    return xr.Dataset(
        {"heldout_risk": (("seed", "rate"), values[..., 0]), "train_risk": (("seed", "rate"), values[..., 1])}, coords
    )


def _reconstructions(configs: dict[str, TrainConfig], rates: list[float], p: float, rows: jax.Array) -> dict:
    """The first seed's reconstructions of ``rows`` by the shallow and the trained multilayer decoder
    at each rate: those runs are trained again here (``make_train``), as a sweep keeps no weights."""
    shown = {}
    for method in ("shallow", "multilayer"):
        for r in rates:
            hparams = {"rate": r, "p": p, "lr": LR[method]}
            params, _ = jax.jit(make_train(configs[method]))(run_key(0, 0), hparams)
            shown[(method, r)] = np.asarray(configs[method].bind(hparams).apply(params, rows))
    return shown


def assemble(records: dict[str, xr.Dataset], fit: dict[str, float], layers: int, d: int, **attrs: Any) -> xr.Dataset:
    """The reproduction's Dataset from each method's records (pure: no training).

    Args:
        records: per method of ``METHODS``, a Dataset over ``seed`` and ``rate`` (and length-one
            ``p`` and ``lr`` axes, as a sweep gives) with the record's ``heldout_risk`` and
            ``train_risk``; the shallow one also with ``inverse_participation_ratio`` and
            ``gaussian_equivalent_risk``.
        fit: ``fit_bg`` of the training coefficients.
        layers: VAMP layers of the multilayer decoders.
        d: the dimension (DCT coefficients per patch).
        attrs: more attributes (e.g. ``steps``, ``batch``, ``data``).

    Returns:
        Risks over (decoder, rate, seed), the shallow runs' ``shallow_ipr`` and
        ``gaussian_equivalent_risk``, and the theories at both fits of p.
    """

    def tidy(r: xr.Dataset) -> xr.Dataset:
        r = r.isel({k: 0 for k in ("p", "lr") if k in r.dims}, drop=True).transpose("rate", "seed", ...)
        return r.drop_vars([c for c in r.coords if c not in ("rate", "seed")])

    per_method = [tidy(records[m])[["heldout_risk", "train_risk"]] for m in METHODS]
    ds = xr.concat(per_method, dim=xr.DataArray(list(METHODS), dims="decoder"), combine_attrs="drop")
    shallow = tidy(records["shallow"])
    rates = [float(r) for r in ds["rate"].values]
    actual = np.asarray([max(1, round(r * d)) / d for r in rates])
    theory_m = _theory(fit, rates, d, layers, "p_moments")
    ipr = shallow["inverse_participation_ratio"].mean("seed").values
    finite_d = theory_m[0] + np.asarray(theory.kurtosis_correction("bg", fit["p_moments"], actual, ipr))
    return ds.assign(
        gaussian_equivalent_risk=shallow["gaussian_equivalent_risk"],
        shallow_ipr=shallow["inverse_participation_ratio"],
        theory=(("decoder", "rate"), theory_m),
        theory_near_zero=(("decoder", "rate"), _theory(fit, rates, d, layers, "p_near_zero")),
        shallow_finite_d=("rate", finite_d),
        shallow_scale_mixture=("rate", scale_mixture_risk(actual, fit["scale_factor"])),
    ).assign_attrs(d=d, layers=layers, patch=PATCH, **fit, lr=str(LR), **attrs)


def _table(ds: xr.Dataset, rows: list[list[Any]], size: str, data: str | os.PathLike | None) -> str:
    a, d, layers, seeds = ds.attrs, ds.attrs["d"], ds.attrs["layers"], ds["seed"].values
    fit, preset = (
        {k: a[k] for k in ("kurtosis", "p_moments", "near_zero", "p_near_zero", "scale_factor")},
        {"train": a["n_train"], "test": a["n_test"], "batch": a["batch"], "steps": a["steps"]},
    )
    source = "scikit-learn's sample photographs" if data is None else str(data)
    return (
        f"# {NAME} ({size})\n\nDCT coefficients (DC dropped, d = {d}) of 8×8 patches of {source}: "
        f"{preset['train']} training patches, {preset['test']} held-out patches from pixels never trained on; "
        f"each coefficient scaled to unit variance. Pooled E x⁴ = {fit['kurtosis']:.2f}: BG fit by moments p = "
        f"{fit['p_moments']:.4f}; by the fraction of |x| < {NEAR_ZERO} ({fit['near_zero']:.3f}) p = "
        f"{fit['p_near_zero']:.4f}. Held-out risk, mean ± se over {len(seeds)} seeds; theory at the moments fit "
        f"(gap = risk − theory), and at the near-zero fit; gain = shallow − method (measured, and the theory's). "
        f"shallow: minibatch Adam lr {LR['shallow']}, batch {preset['batch']}, {preset['steps']} steps, cosine; "
        f"theory R_Gauss(r), finite-d: + kurtosis_correction at the trained rows' IPR; Gauss-equiv.: its exact "
        "risk on the Gaussian with the training rows' second moments (`gaussian_equivalent_risk`); "
        "scale-mixture theory: "
        f"1 − (E‖x‖)²/E‖x‖² · (1 − R_Gauss(r)) with "
        f"(E‖x‖)²/E‖x‖² = {fit['scale_factor']:.4f} (`scale_mixture_risk`). learned_denoiser and multilayer "
        "(head trained): lr "
        f"{LR['learned_denoiser']} / {LR['multilayer']}, Haar encoder frozen; multilayer: {layers} VAMP layers."
        "\n\n"
        + markdown_table(
            [
                "decoder",
                "r",
                "held-out risk",
                "± se",
                "train risk",
                "theory",
                "gap",
                "theory (near-zero p)",
                "gain",
                "theory gain",
            ],
            rows,
        )
        + "\n"
    )


def _crop_rows(info: dict[str, Any], train: Empirical) -> tuple[jnp.ndarray, np.ndarray, tuple[int, int]]:
    """A held-out crop tiled into 8×8 patches: its normalised coefficients, DC terms and tile grid."""
    blocks = info["test_region"]
    region = blocks[int(np.argmax(blocks.reshape(len(blocks), -1).std(axis=1)))]  # the most textured held-out block
    tiles_h, tiles_w = region.shape[0] // PATCH, region.shape[1] // PATCH
    crop = region[: tiles_h * PATCH, : tiles_w * PATCH]
    patches = crop.reshape(tiles_h, PATCH, tiles_w, PATCH).transpose(0, 2, 1, 3).reshape(-1, PATCH * PATCH)
    from scipy.fft import dctn

    dc = np.asarray(dctn(patches.reshape(-1, PATCH, PATCH), axes=(1, 2), norm="ortho"))[:, 0, 0]
    coef = (dct_coefficients(patches) - info["mean"]) / info["std"]
    return jnp.asarray(coef, jnp.float32), dc, (tiles_h, tiles_w)


def _tile(coef: np.ndarray, dc: np.ndarray, info: dict[str, Any], grid: tuple[int, int]) -> np.ndarray:
    patches = patch_images(np.asarray(coef, np.float64) * info["std"] + info["mean"], dc)
    h, w = grid
    return patches.reshape(h, w, PATCH, PATCH).transpose(0, 2, 1, 3).reshape(h * PATCH, w * PATCH)


def _reconstruction_figure(
    shown: dict, info: dict[str, Any], train: Empirical, rates: list[float], out: Path, made_by: str
) -> Path:
    from aejax.plot import pyplot

    plt = pyplot()
    coef, dc, grid = _crop_rows(info, train)
    original = _tile(np.asarray(coef), dc, info, grid)
    lo, hi = np.percentile(original, [1, 99])
    fig, axes = plt.subplots(2, len(rates) + 1, figsize=(1.7 * (len(rates) + 1), 3.6), dpi=90, squeeze=False)
    for row, method in enumerate(("shallow", "multilayer")):
        blank = np.broadcast_to(-info["mean"] / info["std"], coef.shape)  # raw AC coefficients 0
        first = original if row == 0 else _tile(blank, dc, info, grid)
        axes[row][0].imshow(first, cmap="gray", vmin=lo, vmax=hi)
        axes[row][0].set_title("held-out original" if row == 0 else "DC only", fontsize=7)
        for col, r in enumerate(rates, start=1):
            image = _tile(shown[(method, r)], dc, info, grid)
            error = float(np.mean((np.asarray(coef) - shown[(method, r)]) ** 2))
            axes[row][col].imshow(image, cmap="gray", vmin=lo, vmax=hi)
            axes[row][col].set_title(f"{method.replace('_', ' ')} r={r:g}\ncoefficient risk {error:.2f}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return write_figure(fig, out / f"{NAME}-reconstructions.png", made_by)


def _theory(fit: dict[str, float], rates: list[float], d: int, layers: int, key: str) -> np.ndarray:
    p = fit[key]
    actual = np.asarray([max(1, round(r * d)) / d for r in rates])
    shallow = np.asarray(theory.gaussian_limit(actual), float)
    denoised = np.asarray(theory.denoiser_risk("bg", p, actual), float)
    deep = np.asarray(theory.state_evolution("bg", p, actual, layers), float)[..., -1]
    return np.stack([shallow, denoised, denoised, deep, deep])  # (method, rate), in METHODS order


def _table_rows(ds: xr.Dataset, rates: list[float]) -> tuple[list[list[Any]], dict[str, list[float]]]:
    mean, se = seed_mean_se(ds["heldout_risk"])
    rows, gain = [], {"learned_denoiser": [], "multilayer": []}
    for method in METHODS:
        for r in rates:
            m, t = float(mean.sel(decoder=method, rate=r)), float(ds["theory"].sel(decoder=method, rate=r))
            shallow_m = float(mean.sel(decoder="shallow", rate=r))
            shallow_t = float(ds["theory"].sel(decoder="shallow", rate=r))
            if method in gain:
                gain[method].append(shallow_m - m)
            rows.append(
                [
                    method,
                    f"{r:g}",
                    m,
                    float(se.sel(decoder=method, rate=r)),
                    float(ds["train_risk"].mean("seed").sel(decoder=method, rate=r)),
                    t,
                    m - t,
                    float(ds["theory_near_zero"].sel(decoder=method, rate=r)),
                    "–" if method == "shallow" else f"{shallow_m - m:+.4f}",
                    "–" if method == "shallow" else f"{shallow_t - t:+.4f}",
                ]
            )
    for r in rates:
        m = float(mean.sel(decoder="shallow", rate=r))
        rows.append(
            [
                "shallow, scale-mixture theory",
                f"{r:g}",
                m,
                "–",
                "–",
                float(ds["shallow_scale_mixture"].sel(rate=r)),
                m - float(ds["shallow_scale_mixture"].sel(rate=r)),
                "–",
                "–",
                "–",
            ]
        )
    for r in rates:
        rows.append(
            [
                "shallow, finite-d theory / Gauss-equiv.",
                f"{r:g}",
                float(ds["gaussian_equivalent_risk"].sel(rate=r).mean("seed")),
                "–",
                "–",
                float(ds["shallow_finite_d"].sel(rate=r)),
                float(mean.sel(decoder="shallow", rate=r) - ds["shallow_finite_d"].sel(rate=r)),
                "–",
                "–",
                "–",
            ]
        )
    return rows, gain


def _figure(ds: xr.Dataset):
    from aejax.plot import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=90)
    mean, se = seed_mean_se(ds["heldout_risk"])
    rates = ds["rate"].values
    for c, method in enumerate(METHODS):
        color = f"C{c}"
        ax.errorbar(
            rates,
            mean.sel(decoder=method),
            se.sel(decoder=method),
            fmt="o",
            color=color,
            ms=4,
            capsize=2,
            label=f"{method.replace('_', ' ')} (held-out)",
        )
        ax.plot(rates, ds["theory"].sel(decoder=method), "-", color=color, lw=1)
        ax.plot(rates, ds["theory_near_zero"].sel(decoder=method), ":", color=color, lw=1)
    ax.plot(rates, ds["shallow_finite_d"], "--", color="C0", lw=1, label=f"shallow at d = {ds.attrs['d']} (BG)")
    ax.plot(rates, ds["shallow_scale_mixture"], "-.", color="k", lw=1, label="shallow, scale mixture")
    ax.set(
        xlabel="rate r = n/d",
        ylabel="risk per coordinate",
        title=f"DCT of 8×8 patches; BG fit p = {ds.attrs['p_moments']:.3f} (lines), "
        f"{ds.attrs['p_near_zero']:.3f} (dotted)",
    )
    ax.title.set_fontsize(8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
