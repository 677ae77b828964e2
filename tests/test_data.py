"""aejax.data: loaders on files written here, preprocessing against NumPy references, patches, splits."""

import gzip
import re

import jax
import numpy as np
import pytest

from aejax import data
from aejax.sources import Empirical


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(data.IDX_DTYPES[code]).tobytes()


def test_npz_named_and_single(tmp_path):
    x = np.arange(12.0).reshape(3, 4)
    np.savez(tmp_path / "one.npz", x=x)
    np.savez(tmp_path / "two.npz", images=x, labels=np.arange(3))
    np.testing.assert_array_equal(data.load_npz(tmp_path / "one.npz"), x)
    np.testing.assert_array_equal(data.load(tmp_path / "two.npz", name="labels"), np.arange(3.0))
    with pytest.raises(ValueError, match=r"two.npz: holds arrays \['images', 'labels'\]; pass name="):
        data.load_npz(tmp_path / "two.npz")
    with pytest.raises(ValueError, match=re.escape("two.npz: has no array named 'x'")):
        data.load_npz(tmp_path / "two.npz", name="x")


@pytest.mark.parametrize("code", sorted(data.IDX_DTYPES))
@pytest.mark.parametrize("zipped", [False, True])
def test_idx_every_type_code_plain_and_gzipped(tmp_path, code, zipped):
    x = np.arange(-6, 18).reshape(2, 3, 4) if code != 0x08 else np.arange(24).reshape(2, 3, 4)
    raw = _idx_bytes(x, code)
    path = tmp_path / ("x-idx3-ubyte.gz" if zipped else "x-idx3-ubyte")
    path.write_bytes(gzip.compress(raw) if zipped else raw)
    out = data.load(path)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x01\x02\x08\x01", "not an IDX file"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 2, 1, 2]), "unknown IDX type code 0x07"),
        (bytes([0, 0, 0x08, 2, 0, 0, 0, 2]), "IDX header truncated"),
        (bytes([0, 0, 0x08, 1, 0, 0, 0, 5, 1, 2]), r"needs 5 data bytes, found 2"),
    ],
)
def test_idx_bad_files_name_the_file_and_problem(tmp_path, raw, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=f"bad.idx: .*{message}|bad.idx: {message}"):
        data.load_idx(path)


def test_idx_truncated_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_idx_bytes(np.zeros((4, 4)), 0x08))[:-6])
    with pytest.raises(ValueError, match=re.escape("cut.gz: cannot read IDX file")):
        data.load_idx(path)


@pytest.mark.parametrize(
    "text, header", [("a,b,c\n1,2,3\n4,5,6.5\n", None), ("1,2,3\n4,5,6.5\n", None), ("x;y;z\n1;2;3\n4;5;6.5\n", True)]
)
def test_csv_with_and_without_header(tmp_path, text, header):
    path = tmp_path / "d.csv"
    path.write_text(text.replace(";", ","))
    np.testing.assert_array_equal(data.load_csv(path, header=header), [[1, 2, 3], [4, 5, 6.5]])


@pytest.mark.parametrize(
    "raw, header",
    [
        (b"\xef\xbb\xbf1,2\n3,4\n", None),
        (b"\xef\xbb\xbfa,b\n1,2\n3,4\n", None),
        (b"\xef\xbb\xbfa,b\n1,2\n3,4\n", True),
        (b"\xef\xbb\xbf1,2\n3,4\n", False),
    ],
)
def test_csv_with_utf8_byte_order_mark(tmp_path, raw, header):
    """Excel's "CSV UTF-8" starts with a BOM: it must not turn the first data row into a "header"."""
    path = tmp_path / "bom.csv"
    path.write_bytes(raw)
    np.testing.assert_array_equal(data.load(path, header=header), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(data.load(path), [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,2\n3\n", "line 2 has 1 fields, expected 2"),
        ("1,2\n3,x\n", "line 2, column 2: 'x' is not a number"),
        ("a,b\n", "no data rows"),
    ],
)
def test_csv_bad_files(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"bad.csv: {message}"):
        data.load_csv(path)


def test_missing_file_is_a_value_error(tmp_path):
    for loader in (data.load_npz, data.load_idx, data.load_csv):
        with pytest.raises(ValueError, match="nope"):
            loader(tmp_path / "nope")


def _correlated(rng, n=400, d=5):
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)


@pytest.mark.parametrize("whiten", ["pca", "zca"])
def test_whitening_matches_numpy_reference(whiten):
    x = _correlated(np.random.default_rng(0))
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / len(x)
    eigval, eigvec = np.linalg.eigh(cov)  # independent reference: symmetric inverse square root
    inv_sqrt = eigvec @ np.diag(eigval**-0.5) @ eigvec.T
    out = data.preprocess(x, whiten=whiten)
    np.testing.assert_allclose(out.T @ out / len(x), np.eye(5), atol=1e-9)
    if whiten == "zca":
        np.testing.assert_allclose(out, centred @ inv_sqrt, atol=1e-9)
    else:  # PCA: same whitened data up to a rotation, so the same Gram matrix of samples
        np.testing.assert_allclose(out @ out.T, (centred @ inv_sqrt) @ (centred @ inv_sqrt).T, atol=1e-8)


def test_unwhitened_scaling_and_components():
    x = _correlated(np.random.default_rng(1))
    out = data.preprocess(x)
    assert np.isclose(np.mean(np.sum(out**2, axis=1)), 5.0)
    assert data.preprocess(x, whiten="pca", components=2).shape == (400, 2)


def test_eigenvalue_floor_is_relative():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3)) * [1.0, 1.0, 1e-4]  # variance ratio 1e-8
    with pytest.raises(ValueError, match="numerical rank 2 < 3 at eig_floor=1e-06"):
        data.fit_preprocessing(x, whiten="zca")
    data.fit_preprocessing(x, whiten="zca", eig_floor=1e-9)
    data.fit_preprocessing(x * 1e6, whiten="pca", components=2)  # the floor does not depend on units
    with pytest.raises(ValueError, match="eig_floor must be in"):
        data.fit_preprocessing(x, whiten="zca", eig_floor=0.0)


def test_held_out_data_uses_training_statistics():
    rng = np.random.default_rng(3)
    x = _correlated(rng, n=1000)
    train, test, prep = data.train_test_sources(x, 0.3, seed=1, whiten="zca")
    assert isinstance(train, Empirical) and isinstance(test, Empirical)
    assert (train.data.shape, test.data.shape) == ((700, 5), (300, 5))
    raw_train, raw_test = data.split(x, 0.3, seed=1)
    expected = (raw_test - raw_train.mean(axis=0)) @ prep.transform
    np.testing.assert_allclose(np.asarray(test.data), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.cov(np.asarray(train.data).T, bias=True), np.eye(5), atol=1e-4)
    assert not np.allclose(np.asarray(test.data).mean(axis=0), 0, atol=1e-6)  # not re-centred on itself


def test_empirical_still_preprocesses_its_own_data():
    x = _correlated(np.random.default_rng(4))
    np.testing.assert_allclose(
        np.asarray(Empirical(x, whiten="zca").data), data.preprocess(x, whiten="zca"), rtol=1e-5, atol=1e-5
    )


def test_split_is_a_partition():
    x = np.arange(20.0)[:, None]
    train, test = data.split(x, 0.25, seed=5)
    assert sorted(np.r_[train[:, 0], test[:, 0]].tolist()) == list(range(20)) and len(test) == 5
    with pytest.raises(ValueError, match="test_fraction must be in"):
        data.split(x, 1.0)


def test_random_patches_are_windows_of_the_images():
    images = np.random.default_rng(6).normal(size=(3, 8, 8))
    patches = data.random_patches(images, 3, 50, seed=0)
    assert patches.shape == (50, 9)
    windows = {
        tuple(np.round(images[i, r : r + 3, c : c + 3].ravel(), 12))
        for i in range(3)
        for r in range(6)
        for c in range(6)
    }
    assert all(tuple(np.round(p, 12)) in windows for p in patches)
    with pytest.raises(ValueError, match=r"size must be at most min\(H, W\)=8, got 9"):
        data.random_patches(images, 9, 1)


def test_digits_from_scikit_learn_whiten_and_train():
    sklearn = pytest.importorskip("sklearn.datasets")
    x, _ = data.drop_constant(sklearn.load_digits().data)
    assert x.shape == (1797, 61)
    with pytest.raises(ValueError, match="numerical rank"):  # a pixel lit in one image only
        data.fit_preprocessing(x, whiten="zca", eig_floor=1e-4)
    white = data.preprocess(x, whiten="pca", components=40)
    np.testing.assert_allclose(white.T @ white / len(x), np.eye(40), atol=1e-8)
    patches = data.random_patches(sklearn.load_digits().images, 4, 500, seed=0)
    source = Empirical(patches, whiten="zca")
    assert source.sample(jax.random.key(0), 7).shape == (7, 16)
