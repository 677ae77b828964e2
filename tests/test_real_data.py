"""Real data end to end (issue 15): whitening rank-deficient images, held-out and Gaussian-equivalent
risks through the Model, ``aejax sweep --data`` on an MNIST-format IDX file, ``reproduce universality
--data`` and ``reproduce real-sparse``."""

import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from aejax import data
from aejax.cli import main
from aejax.config import TrainConfig
from aejax.model import Architecture, Params
from aejax.risk import dataset_risk
from aejax.sources import Empirical, gaussian_equivalent
from aejax.train import make_train, run_key

SIDE = 12


def _stroke_images(n=200, seed=0):
    """``n`` 12×12 uint8 images of random strokes; the border is always blank, and ten interior pixels
    are blank except in a single image each (so a training split may see them constant)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, SIDE, SIDE))
    for image in images:
        for _ in range(3):
            r0, c0 = rng.integers(2, SIDE - 2, size=2)
            dr, dc = rng.integers(-1, 2, size=2)
            for t in range(rng.integers(3, 7)):
                r, c = r0 + t * dr, c0 + t * dc
                if 2 <= r < SIDE - 2 and 2 <= c < SIDE - 2:
                    image[r, c] = 255 * rng.uniform(0.5, 1.0)
    rare = [(1, c) for c in range(1, SIDE - 1)][:10]  # the row inside the border: lit once each
    for k, (r, c) in enumerate(rare):
        images[:, r, c] = 0.0
        images[7 + 13 * k, r, c] = 200.0
    return images.astype(np.uint8)


def _write_idx(path, images):
    header = bytes([0, 0, 0x08, 3]) + b"".join(int(s).to_bytes(4, "big") for s in images.shape)
    path.write_bytes(header + images.tobytes())
    return path


@pytest.fixture(scope="module")
def idx_file(tmp_path_factory):
    return _write_idx(tmp_path_factory.mktemp("idx") / "strokes-idx3-ubyte", _stroke_images())


def test_pca_ignores_blank_pixels_and_pixels_blank_in_the_training_split(idx_file):
    x = data.as_samples(data.load_idx(idx_file))
    always_blank = int(np.sum(np.ptp(x, axis=0) == 0))
    assert always_blank >= SIDE * SIDE - 8 * 8 - 10  # the two outer rings, less the lit-once pixels
    train, test, prep = data.train_test_sources(x, 0.2, seed=0, whiten="pca", components=16)
    raw_train, raw_test = data.split(x, 0.2, seed=0)
    train_blank = np.nonzero(np.ptp(raw_train, axis=0) == 0)[0]
    assert len(train_blank) > always_blank  # some lit-once pixels are lit only in the held-out rows
    assert prep.constant_columns == tuple(train_blank.tolist())
    assert prep.ignored_directions == x.shape[1] - prep.rank >= len(train_blank)
    np.testing.assert_array_equal(prep.transform[train_blank], 0.0)  # their held-out values are ignored
    white = np.asarray(train.data, np.float64)
    np.testing.assert_allclose(white.T @ white / len(white), np.eye(16), atol=1e-4)
    # independent: the top-16 principal directions of the centred training rows, up to a sign
    centred = raw_train - raw_train.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:16].T / (s[:16] / np.sqrt(len(centred)))
    np.testing.assert_allclose(np.abs(white), np.abs(expected), atol=1e-3)
    held_out = (raw_test - raw_train.mean(axis=0)) @ vt[:16].T / (s[:16] / np.sqrt(len(centred)))
    np.testing.assert_allclose(np.abs(np.asarray(test.data)), np.abs(held_out), atol=1e-3)


def test_zca_and_full_pca_refuse_rank_deficiency_and_name_what_works(idx_file):
    x = data.as_samples(data.load_idx(idx_file))
    rank = int(np.linalg.matrix_rank(x - x.mean(axis=0)))
    for whiten in ("zca", "pca"):
        with pytest.raises(
            ValueError,
            match=rf"numerical rank {rank} < {x.shape[1]} .*use whiten='pca' with "
            rf"components<={rank}, or drop_constant=True",
        ):
            data.fit_preprocessing(x, whiten=whiten)
    prep = data.fit_preprocessing(x, whiten="zca", drop_constant=True)
    kept = np.ptp(x, axis=0) > 0
    assert prep.transform.shape == (x.shape[1], kept.sum()) and prep.ignored_directions == (~kept).sum()
    out = prep.apply(x)
    np.testing.assert_allclose(out.T @ out / len(x), np.eye(kept.sum()), atol=1e-6)
    with pytest.raises(ValueError, match=r"constant columns .* pass drop_constant=True"):
        data.fit_preprocessing(x)
    assert data.fit_preprocessing(x, drop_constant=True).apply(x).shape == (len(x), kept.sum())


def test_dataset_risk_in_blocks_equals_the_mean_over_rows():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(37, 6)), jnp.float32)
    A, B = (jnp.asarray(rng.normal(size=shape), jnp.float32) for shape in ((6, 4), (4, 6)))
    params = Params(A, B)
    expected = np.mean((np.asarray(x) - np.sign(np.asarray(x) @ np.asarray(params.B).T) @ np.asarray(params.A).T) ** 2)
    for block in (1, 5, 37, 100):
        assert float(
            dataset_risk(params, x, block=block, arch=Architecture("sign", row_normalize=False))
        ) == pytest.approx(expected, rel=1e-5)


def test_test_source_is_checked_and_risks_are_nan_without_real_data():
    rows = Empirical(np.random.default_rng(0).normal(size=(30, 4)))
    with pytest.raises(TypeError, match=re.escape("test_source must be None or an aejax.sources.Empirical")):
        TrainConfig(d=4, n=4, steps=10, test_source="gaussian")
    with pytest.raises(ValueError, match="test_source has d=4 but the config has d=5"):
        TrainConfig(d=5, n=5, steps=10, test_source=rows)
    model = TrainConfig(d=4, n=4, steps=10).bind()
    params = model.init(jax.random.key(0))
    assert all(
        math.isnan(float(f(params))) for f in (model.heldout_risk, model.train_risk, model.gaussian_equivalent_risk)
    )


def _sign_exact_risk(A, B, cov):
    """Exact risk of x̂ = A sign(B̄x) on N(0, cov), written out (docs/theory.md §2), float64."""
    Bn = B / np.linalg.norm(B, axis=1, keepdims=True)
    sb = cov @ Bn.T
    q = np.sqrt(np.diag(Bn @ sb))
    c_xs = np.sqrt(2 / np.pi) * sb / q
    rho = np.clip((Bn @ sb) / np.outer(q, q), -1, 1)
    c_ss = 2 / np.pi * np.arcsin(rho)
    return (np.trace(cov) - 2 * np.sum(A * c_xs) + np.sum((A @ c_ss) * A)) / cov.shape[0]


@pytest.mark.integration
def test_cli_sweep_on_an_idx_file_records_heldout_training_and_gaussian_equivalent_risks(idx_file, tmp_path):
    out = tmp_path / "run"
    argv = [
        "sweep",
        "--data",
        str(idx_file),
        "--whiten",
        "pca",
        "--components",
        "16",
        "--test-fraction",
        "0.2",
        "--rates",
        "1",
        "--seeds",
        "0",
        "--steps",
        "40",
        "--batch",
        "32",
        "--mc-samples",
        "256",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    ds = xr.load_dataset(out / "results.nc")
    for name in ("risk", "heldout_risk", "train_risk", "gaussian_equivalent_risk", "theory", "status"):
        assert name in ds
    info = json.loads(ds.attrs["data"])
    assert info["file"] == str(idx_file) and info["whiten"] == "pca" and info["components"] == 16
    assert info["d"] == 16 and info["input_d"] == SIDE * SIDE and info["n_train"] == 160 and info["n_test"] == 40
    assert info["constant_columns"] > SIDE * SIDE - 8 * 8 - 10
    assert info["ignored_directions"] >= info["constant_columns"]
    assert "pca whitening, 16 components of 144 columns -> d = 16" in ds.attrs["preprocessing"]
    assert json.loads(ds.attrs["config"])["mode"] == "dataset"

    # independent: retrain the run and evaluate it in NumPy on the same preprocessed rows
    train, test, _, _ = data.dataset_sources(idx_file, whiten="pca", components=16, test_fraction=0.2)
    config = TrainConfig(d=16, n=16, steps=40, batch=32, mode="dataset", source=train, test_source=test)
    params, _ = jax.jit(make_train(config))(run_key(0, 0), {"rate": jnp.float32(1.0)})
    A, B = np.asarray(params.A, np.float64), np.asarray(params.B, np.float64)
    Bn = B / np.linalg.norm(B, axis=1, keepdims=True)

    def risk_on(rows):
        rows = np.asarray(rows, np.float64)
        return np.mean((rows - np.sign(rows @ Bn.T) @ A.T) ** 2)

    run = ds.squeeze()
    assert float(run["heldout_risk"]) == pytest.approx(risk_on(test.data), rel=1e-4)
    assert float(run["train_risk"]) == pytest.approx(risk_on(train.data), rel=1e-4)
    rows = np.asarray(train.data, np.float64)
    cov = rows.T @ rows / len(rows)
    assert float(run["gaussian_equivalent_risk"]) == pytest.approx(_sign_exact_risk(A, B, cov), rel=1e-3)
    assert float(run["theory"]) == pytest.approx(1 - 2 / np.pi, rel=1e-6)  # R_Gauss at the run's rate 16/16
    assert math.isnan(float(run["exact_risk"]))


def test_cli_data_errors(idx_file, tmp_path, capsys):
    base = ["sweep", "--rates", "1", "--seeds", "0", "--steps", "10", "--out", str(tmp_path / "x"), "--quiet"]
    assert main([*base, "--data", str(idx_file), "--whiten", "zca"]) == 2
    assert "use whiten='pca' with components<=" in capsys.readouterr().err
    assert main([*base, "--components", "8"]) == 2
    assert "--components apply to a data file: give --data FILE" in capsys.readouterr().err
    assert main([*base, "--data", str(idx_file), "--whiten", "pca", "--components", "8", "--source", "bg"]) == 2
    assert "drop --source" in capsys.readouterr().err
    assert main([*base, "--data", str(idx_file), "--whiten", "pca", "--components", "8", "--d", "9"]) == 2
    assert "--d 9 does not match --data" in capsys.readouterr().err
    # the TOML [data] table (file relative to the TOML file), and a dataset over the memory budget
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'[data]\nfile = "{idx_file.name}"\nwhiten = "pca"\ncomponents = 8\n[sweep]\nmemory_budget = 1000\n'
    )
    (tmp_path / idx_file.name).write_bytes(idx_file.read_bytes())
    assert main([*base, "--config", str(toml)]) == 2
    err = capsys.readouterr().err
    assert f"--data {tmp_path / idx_file.name}: the preprocessed rows (160 + 40 × 8 float32" in err
    assert "per-device memory budget of 0.0 MiB" in err
    toml.write_text('[data]\nfile = "x.idx"\nwhitening = "pca"\n')
    assert main([*base, "--config", str(toml)]) == 2
    assert "[data] has unknown keys ['whitening']" in capsys.readouterr().err


@pytest.mark.integration
def test_reproduce_universality_on_a_users_file(idx_file, tmp_path):
    npy = tmp_path / "strokes.npy"
    np.save(npy, data.load_idx(idx_file))
    assert (
        main(["reproduce", "universality", "--size", "tiny", "--data", str(npy), "--out", str(tmp_path), "--quiet"])
        == 0
    )
    ds = xr.load_dataset(tmp_path / "universality.nc")
    assert ds.attrs["data"] == str(npy) and ds.attrs["d"] < SIDE * SIDE
    assert str(npy) in (tmp_path / "universality.md").read_text()
    assert np.all(np.isfinite(ds["test_risk"].values))
    assert main(["reproduce", "sparse", "--size", "tiny", "--data", str(npy), "--out", str(tmp_path)]) == 2


@pytest.mark.integration
def test_reproduce_real_sparse(tmp_path):
    from aejax import reproduce
    from aejax.reproduce import real_sparse

    result = reproduce.run("real-sparse", "tiny", tmp_path, progress=False)
    ds = xr.load_dataset(result["nc"])
    assert result["md"].read_text().startswith("# real-sparse (tiny)")
    assert result["reconstructions"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ds.sizes["decoder"] == len(real_sparse.METHODS) and np.all(np.isfinite(ds["heldout_risk"].values))
    # the BG fit by moments matches the pooled fourth moment of the training coefficients
    assert ds.attrs["p_moments"] == pytest.approx(3 / ds.attrs["kurtosis"])
    assert ds.attrs["kurtosis"] > 1.0 and ds.attrs["p_moments"] < 0.5  # heavy-tailed coefficients
    # the untrained multilayer decoder with one layer is the posterior-mean decoder (same theory, same risk)
    assert float(ds["theory"].sel(decoder="multilayer_untrained")[0]) == pytest.approx(
        float(ds["theory"].sel(decoder="posterior_mean")[0]), rel=1e-4
    )
    assert set(result["gain"]) == {"learned_denoiser", "multilayer"}


def test_fit_bg_recovers_p_of_bernoulli_gaussian_samples():
    from aejax.reproduce.real_sparse import fit_bg

    rng = np.random.default_rng(0)
    p = 0.2
    x = np.where(rng.uniform(size=400_000) < p, rng.normal(size=400_000) / np.sqrt(p), 0.0)
    fit = fit_bg(x)
    assert fit["p_moments"] == pytest.approx(p, rel=0.05) and fit["p_near_zero"] == pytest.approx(p, rel=0.05)


def test_dct_coefficients_invert():
    from aejax.reproduce.real_sparse import dct_coefficients, patch_images

    patches = np.random.default_rng(2).normal(size=(5, 64))
    dc = patches.sum(axis=1) / 8  # the orthonormal DC term of an 8×8 patch
    np.testing.assert_allclose(patch_images(dct_coefficients(patches), dc).reshape(5, 64), patches, atol=1e-12)
    np.testing.assert_allclose(np.sum(dct_coefficients(patches) ** 2, axis=1) + dc**2, np.sum(patches**2, axis=1))


def test_gaussian_equivalent_has_the_rows_second_moments():
    rows = np.random.default_rng(3).normal(size=(40, 3)) @ np.diag([1.0, 2.0, 0.5])
    source = Empirical(rows)
    cov = np.asarray(source.data, np.float64).T @ np.asarray(source.data, np.float64) / 40
    np.testing.assert_allclose(np.asarray(gaussian_equivalent(source).cov), cov, rtol=1e-5)
