"""Real data: sign autoencoders on scikit-learn's digits against the Gaussian theory, on held-out data.

The 8×8 digits (pixels blank in more than 99% of the images dropped, d = 54; whitening the rarely
lit ones would amplify one or two images) are split into train and test parts; the
preprocessing is fitted on the training part only (``aejax.data.train_test_sources``). Two
conditions: ZCA-whitened (if the Gaussian theory is universal, the risk follows 1 − 2r/π) and
unwhitened (centred, scaled to tr Σ/d = 1: a decaying spectrum, compared with PCA on the same
spectrum and with a Gaussian of the same covariance) — plus a control: i.i.d. Gaussian data of the
same shape, split and ZCA-whitened the same way, which shows what the finite sample alone costs.
Training: minibatch Adam on the training rows
with the clip surrogate (vmapped ``make_train``; the parameters are needed for held-out risks).

``run(data=FILE)`` (``aejax reproduce universality --data FILE``) does the same on a user's samples
(any format of ``aejax.data.load_array``; images are flattened), with the same rule for rarely lit
columns.

Examples:
    >>> digits().shape
    (1797, 54)
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from aejax import _validate, theory
from aejax.config import TrainConfig
from aejax.data import as_samples, load_array, train_test_sources
from aejax.model import Architecture
from aejax.reproduce._common import markdown_table, pick_size, write_outputs
from aejax.risk import dataset_risk, exact_risk
from aejax.sources import Empirical, Gaussian
from aejax.train import make_train, run_key

NAME = "universality"
CONDITIONS = ("whitened", "unwhitened", "gaussian_control")
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(rates=(0.5, 1.0), seeds=(0,), steps=100),
    "small": dict(rates=(0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0), seeds=(0, 1, 2), steps=2000),
    "large": dict(rates=(0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0), seeds=(0, 1, 2, 3, 4, 5, 6, 7), steps=4000),
}
LR, BATCH, TEST_FRACTION = 0.005, 128, 0.2


def digits(min_lit: float = 0.01) -> np.ndarray:
    """scikit-learn's 1797 8×8 digits without the pixels lit (non-zero) in fewer than ``min_lit`` of the
    images: ``(1797, 54)`` by default (3 pixels are always blank, 4 more are lit in under 1%)."""
    from sklearn.datasets import load_digits

    # sklearn types load_digits() as Bunch | tuple; without return_X_y it is the Bunch
    return lit_columns(load_digits().data, min_lit)  # pyright: ignore[reportAttributeAccessIssue]


def lit_columns(x: Any, min_lit: float = 0.01) -> np.ndarray:
    """The columns of ``x`` that are non-zero in at least ``min_lit`` of the rows.

    Examples:
        >>> lit_columns(np.array([[0.0, 1.0], [0.0, 2.0]])).shape
        (2, 1)
    """
    x = np.asarray(x, dtype=np.float64)
    return x[:, (x != 0).mean(axis=0) >= min_lit]


def heldout_risk(params: Any, source: Empirical, arch: Architecture) -> jax.Array:
    """Mean ``||x − x̂||²/d`` over every row of an ``Empirical`` source (no resampling).

    Examples:
        >>> from aejax.model import init
        >>> src = Empirical(np.random.default_rng(0).normal(size=(20, 4)))
        >>> float(heldout_risk(init(jax.random.key(0), 4, 2), src, Architecture("sign")))
        1.0
    """
    return dataset_risk(params, source.data, arch=arch)


def run(
    size: str = "small",
    out: str | os.PathLike = "runs/reproduce",
    progress: bool = True,
    data: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train on the digits (whitened and not) over the preset's rates; risks on train and test rows.

    Args:
        size: ``tiny``, ``small`` (CPU minutes) or ``large``.
        out: output directory.
        progress: unused (one compiled call per condition); kept for the common signature.
        data: a data file to use instead of the digits (samples along the first axis).

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"rows"`` of the table.
    """
    preset = pick_size(PRESETS, size)
    x = digits() if data is None else lit_columns(as_samples(load_array(data), str(data)))
    if x.shape[1] == 0:
        raise _validate.InputError(f"data {str(data)!r}: no column is non-zero in at least 1% of its rows")
    name = "scikit-learn digits" if data is None else f"{data}"
    d, rates, seeds = x.shape[1], list(preset["rates"]), list(preset["seeds"])
    control = np.random.default_rng(0).normal(size=x.shape)
    results = {}
    for condition in CONDITIONS:
        train, test, _ = train_test_sources(
            control if condition == "gaussian_control" else x,
            TEST_FRACTION,
            seed=0,
            whiten=None if condition == "unwhitened" else "zca",
        )
        config = TrainConfig(
            d=d,
            n=round(max(rates) * d),
            steps=preset["steps"],
            batch=BATCH,
            mode="dataset",
            source=train,
            surrogate="clip",
            schedule="cosine",
            risk_eval="none",
        )
        gaussian = Gaussian(d, covariance=np.cov(train.data.T, bias=True))

        def one(key, rate, config=config, train=train, test=test, gaussian=gaussian):
            hparams = {"lr": LR, "rate": rate}
            params, _ = make_train(config)(key, hparams)
            arch = config.bind(hparams).arch
            return jnp.stack(
                [
                    heldout_risk(params, train, arch),
                    heldout_risk(params, test, arch),
                    exact_risk(params, gaussian, arch=arch),
                ]
            )

        keys = jnp.stack([run_key(0, s) for s in seeds])
        grid = jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None))
        results[condition] = np.asarray(jax.jit(grid)(keys, jnp.asarray(rates, jnp.float32)))  # (seed, rate, 3)
        results[condition + "_spectrum"] = np.linalg.eigvalsh(np.cov(train.data.T, bias=True))[::-1]
    ds = _dataset(results, rates, seeds, d, preset)
    ds.attrs["data"] = name
    rows = []
    for r in rates:
        s = ds.sel(rate=r).mean("seed")
        rows.append(
            [f"{r:g}", float(ds["theory"].sel(rate=r))]
            + [float(s[v].sel(condition=c)) for c in CONDITIONS for v in ("train_risk", "test_risk", "gaussian_risk")]
            + [float(ds["pca_risk"].sel(rate=r, condition="unwhitened"))]
        )
    header = [
        "r",
        "R_Gauss",
        *[f"{c} {v}" for c in CONDITIONS for v in ("train", "test", "Gaussian-equiv.")],
        "PCA (unwhitened spectrum)",
    ]
    table = (
        f"# {NAME} ({size})\n\n{name}, columns lit in under 1% of images dropped (d = {d}), "
        f"{round((1 - TEST_FRACTION) * len(x))} training / {round(TEST_FRACTION * len(x))} test rows; "
        f"preprocessing fitted on the training rows. Minibatch Adam lr {LR}, batch {BATCH}, {preset['steps']} steps, "
        "clip "
        f"surrogate, cosine; means over {len(seeds)} seeds. Gaussian-equiv.: exact risk of the trained autoencoder "
        "on a Gaussian with the training covariance. gaussian_control: i.i.d. N(0, 1) data of the digits' shape, "
        "split and whitened the same way.\n\n" + markdown_table(header, rows) + "\n"
    )
    paths = write_outputs(NAME, out, ds, _figure(ds), table)
    return {**paths, "rows": rows}


def _dataset(results: dict, rates: list[float], seeds: list[int], d: int, preset: dict[str, Any]) -> xr.Dataset:
    values = np.stack([results[c] for c in CONDITIONS])  # (condition, seed, rate, 3)
    actual = np.round(np.asarray(rates) * d) / d
    spectra = np.stack([results[c + "_spectrum"] for c in CONDITIONS])
    pca = np.stack([[float(theory.pca_risk(r, spectrum=np.clip(s, 0, None))) for r in actual] for s in spectra])
    return xr.Dataset(
        {
            "train_risk": (("condition", "seed", "rate"), values[..., 0]),
            "test_risk": (("condition", "seed", "rate"), values[..., 1]),
            "gaussian_risk": (("condition", "seed", "rate"), values[..., 2]),
            "theory": ("rate", np.asarray(theory.gaussian_limit(actual), float)),
            "pca_risk": (("condition", "rate"), pca),
            "spectrum": (("condition", "k"), spectra),
        },
        coords={"condition": list(CONDITIONS), "seed": seeds, "rate": rates, "k": np.arange(d)},
        attrs={"d": d, "steps": preset["steps"], "lr": LR, "batch": BATCH, "test_fraction": TEST_FRACTION},
    )


def _figure(ds: xr.Dataset):
    from aejax.plot import pyplot

    plt = pyplot()
    fig, (ax, ax_spec) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90)
    grid = np.linspace(0.02, float(ds["rate"].max()) * 1.05, 200)
    ax.plot(grid, np.asarray(theory.gaussian_limit(grid)), "k-", lw=1.5, label="R_Gauss(r)")
    for condition, color in zip(CONDITIONS, ("C0", "C1", "C2"), strict=True):
        s = ds.sel(condition=condition)
        se = s["test_risk"].std("seed") / np.sqrt(max(1, ds.sizes["seed"] - 1))
        ax.errorbar(
            ds["rate"],
            s["test_risk"].mean("seed"),
            se,
            fmt="o-",
            color=color,
            ms=4,
            capsize=2,
            label=f"{condition}: test",
        )
        ax.plot(ds["rate"], s["train_risk"].mean("seed"), "x:", color=color, label=f"{condition}: train")
        if condition != "gaussian_control":
            ax.plot(
                ds["rate"],
                s["gaussian_risk"].mean("seed"),
                "s",
                mfc="none",
                color=color,
                ms=5,
                label=f"{condition}: Gaussian-equiv.",
            )
    ax.plot(ds["rate"], ds["pca_risk"].sel(condition="unwhitened"), "--", color="C1", lw=1, label="PCA (unwhitened)")
    ax.set(xlabel="rate r = n/d", ylabel="risk per coordinate", ylim=(0, 1.02), title=f"digits (d = {ds.attrs['d']})")
    ax.legend(fontsize=6)
    for condition in CONDITIONS[:2]:
        ax_spec.plot(ds["spectrum"].sel(condition=condition), label=condition)
    ax_spec.set(yscale="log", xlabel="index", ylabel="eigenvalue of training covariance", title="spectra")
    ax_spec.legend(fontsize=7)
    for a in (ax, ax_spec):
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig
