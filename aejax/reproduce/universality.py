"""Real data: sign autoencoders on scikit-learn's digits against the Gaussian theory, on held-out data.

The 8×8 digits (pixels blank in more than 99% of the images dropped, d = 54; whitening the rarely
lit ones would amplify one or two images) are split into train and test parts; the
preprocessing is fitted on the training part only (``aejax.data.train_test_sources``). Two
conditions: ZCA-whitened (if the Gaussian theory is universal, the risk follows 1 − 2r/π) and
unwhitened (centred, scaled to tr Σ/d = 1: a decaying spectrum, compared with PCA on the same
spectrum and with a Gaussian of the same covariance) — plus a control: i.i.d. Gaussian data of the
same shape, split and ZCA-whitened the same way, which shows what the finite sample alone costs.
Training: minibatch Adam on the training rows
with the clip surrogate, one ``aejax.sweep`` per condition (the held-out, training and
Gaussian-equivalent risks are the record's ``heldout_risk``, ``train_risk`` and
``gaussian_equivalent_risk``); ``assemble`` and ``summary_rows`` turn the sweeps into the table
without training.

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

import numpy as np
import xarray as xr

from aejax import _validate, theory
from aejax.config import TrainConfig
from aejax.data import as_samples, load_array, train_test_sources
from aejax.report import markdown_table, seed_mean_se
from aejax.reproduce._common import command, pick_size, write_outputs
from aejax.sources import gaussian_equivalent
from aejax.sweeping import sweep

NAME = "universality"
CONDITIONS = ("whitened", "unwhitened", "gaussian_control")
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(rates=(0.5, 1.0), seeds=(0,), steps=100),
    "small": dict(rates=(0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0), seeds=(0, 1, 2), steps=2000),
    "large": dict(rates=(0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0), seeds=(0, 1, 2, 3, 4, 5, 6, 7), steps=4000),
}
LR, BATCH, TEST_FRACTION, MC_SAMPLES = 0.005, 128, 0.2, 1024


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


def run(
    size: str = "small",
    out: str | os.PathLike = "runs/reproduce",
    progress: bool = True,
    data: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """One ``aejax.sweep`` per condition over the preset's rates and seeds (minibatch Adam on the
    training rows); the record's ``train_risk``, ``heldout_risk`` and ``gaussian_equivalent_risk``.

    Args:
        size: ``tiny``, ``small`` (CPU minutes) or ``large``.
        out: output directory (the sweeps run in memory: their data may change between calls).
        progress: show progress bars.
        data: a data file to use instead of the digits (samples along the first axis).

    Returns:
        ``{"png", "nc", "md"}`` paths and ``"rows"`` of the table.
    """
    preset = pick_size(PRESETS, size)
    x = digits() if data is None else lit_columns(as_samples(load_array(data), str(data)))
    if x.shape[1] == 0:
        raise _validate.InputError(f"data {str(data)!r}: no column is non-zero in at least 1% of its rows")
    control = np.random.default_rng(0).normal(size=x.shape)
    runs, spectra = [], []
    for condition in CONDITIONS:
        train, test, _ = train_test_sources(
            control if condition == "gaussian_control" else x,
            TEST_FRACTION,
            seed=0,
            whiten=None if condition == "unwhitened" else "zca",
        )
        config = TrainConfig(
            d=train.d,
            n=train.d,
            steps=preset["steps"],
            batch=BATCH,
            mode="dataset",
            source=train,
            test_source=test,
            surrogate="clip",
            schedule="cosine",
            risk_eval="none",
        )
        grid = {"seed": list(preset["seeds"]), "rate": list(preset["rates"]), "lr": [LR]}
        runs.append(sweep(config, grid, mc_samples=MC_SAMPLES, progress=progress).squeeze("lr", drop=True))
        spectra.append(np.linalg.eigvalsh(gaussian_equivalent(train).cov)[::-1])
    name = "scikit-learn digits" if data is None else f"{data}"
    ds = assemble(runs, np.stack(spectra), steps=preset["steps"], n_rows=len(x), data=name)
    header, rows = summary_rows(ds)
    table = (
        f"# {NAME} ({size})\n\n{name}, columns lit in under 1% of images dropped (d = {ds.attrs['d']}), "
        f"{round((1 - TEST_FRACTION) * len(x))} training / {round(TEST_FRACTION * len(x))} test rows; "
        f"preprocessing fitted on the training rows. Minibatch Adam lr {LR}, batch {BATCH}, {preset['steps']} "
        f"steps, clip surrogate, cosine; means over {ds.sizes['seed']} seeds (`aejax.sweep`). Gaussian-equiv.: "
        "exact risk of the trained autoencoder on the Gaussian with the training rows' second moments "
        "(`gaussian_equivalent_risk`). gaussian_control: i.i.d. N(0, 1) data of the digits' shape, split and "
        "whitened the same way.\n\n" + markdown_table(header, rows) + "\n"
    )
    paths = write_outputs(NAME, out, ds, _figure(ds), table, command(NAME, size, data))
    return {**paths, "rows": rows}


def assemble(runs: list[xr.Dataset], spectra: np.ndarray, **attrs: Any) -> xr.Dataset:
    """The reproduction's Dataset from one sweep per condition (pure: no training).

    Args:
        runs: the sweeps of ``CONDITIONS`` in order, each with ``seed`` and ``rate`` axes and the
            record's ``train_risk``, ``heldout_risk`` and ``gaussian_equivalent_risk``; ``d`` from
            ``attrs`` or the ``d`` coordinate.
        spectra: ``(condition, d)`` eigenvalues of each condition's training second moments, descending.
        attrs: stored as the Dataset's attributes.

    Returns:
        ``train_risk``, ``test_risk`` and ``gaussian_risk`` over (condition, seed, rate), the
        ``theory`` R_Gauss at each actual rate round(r·d)/d, the ``pca_risk`` of each spectrum and the
        ``spectrum``.
    """
    names = {"train_risk": "train_risk", "heldout_risk": "test_risk", "gaussian_equivalent_risk": "gaussian_risk"}
    per_condition = [r[list(names)].rename(names).transpose("seed", "rate") for r in runs]
    ds = xr.concat(
        per_condition, dim=xr.DataArray(list(CONDITIONS), dims="condition"), coords="minimal", combine_attrs="drop"
    )
    ds = ds.drop_vars([c for c in ds.coords if c not in ("condition", "seed", "rate")])
    d = spectra.shape[1]
    actual = np.round(ds["rate"].values * d) / d
    pca = [[float(theory.pca_risk(r, spectrum=np.clip(s, 0, None))) for r in actual] for s in spectra]
    return ds.assign(
        theory=("rate", np.asarray(theory.gaussian_limit(actual), float)),
        pca_risk=(("condition", "rate"), np.asarray(pca)),
        spectrum=(("condition", "k"), spectra),
    ).assign_attrs(d=d, lr=LR, batch=BATCH, test_fraction=TEST_FRACTION, **attrs)


def summary_rows(ds: xr.Dataset) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the table: per rate, R_Gauss, then seed means of each condition's training,
    held-out and Gaussian-equivalent risk, then the PCA risk of the unwhitened spectrum (pure).

    Examples:
        >>> header, _ = summary_rows(assemble(
        ...     [xr.Dataset({v: (("seed", "rate"), [[0.5]]) for v in ("train_risk", "heldout_risk",
        ...      "gaussian_equivalent_risk")}, coords={"seed": [0], "rate": [1.0]})] * 3, np.ones((3, 2))))
        >>> header[:3]
        ['r', 'R_Gauss', 'whitened train']
    """
    mean = ds[["train_risk", "test_risk", "gaussian_risk"]].mean("seed")
    rows = [
        [f"{r:g}", float(ds["theory"].sel(rate=r))]
        + [
            float(mean[v].sel(condition=c, rate=r))
            for c in CONDITIONS
            for v in ("train_risk", "test_risk", "gaussian_risk")
        ]
        + [float(ds["pca_risk"].sel(rate=r, condition="unwhitened"))]
        for r in ds["rate"].values
    ]
    header = [
        "r",
        "R_Gauss",
        *[f"{c} {v}" for c in CONDITIONS for v in ("train", "test", "Gaussian-equiv.")],
        "PCA (unwhitened spectrum)",
    ]
    return header, rows


def _figure(ds: xr.Dataset):
    from aejax.plot import pyplot

    plt = pyplot()
    fig, (ax, ax_spec) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90)
    grid = np.linspace(0.02, float(ds["rate"].max()) * 1.05, 200)
    ax.plot(grid, np.asarray(theory.gaussian_limit(grid)), "k-", lw=1.5, label="R_Gauss(r)")
    for condition, color in zip(CONDITIONS, ("C0", "C1", "C2"), strict=True):
        s = ds.sel(condition=condition)
        mean, se = seed_mean_se(s["test_risk"])
        ax.errorbar(
            ds["rate"],
            mean,
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
