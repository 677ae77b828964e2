"""Real data: file loaders (npz, IDX, CSV), preprocessing fitted on a training set, patches, splits.

Loaders return ``float64`` NumPy arrays and raise ``ValueError`` naming the file and the problem.
Preprocessing is fitted once (``fit_preprocessing``) and applied to any data with the same columns
(``Preprocessing.apply``), so held-out data is transformed with the training set's statistics.

Eigenvalue floor: whitening divides by the square roots of the covariance eigenvalues, so a
direction whose variance is below ``eig_floor`` times the largest variance (default 1e-6, a
relative floor, independent of the data's units) is refused with a ``ValueError`` that gives the
numerical rank; keep fewer directions with ``whiten="pca", components=k``.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 4)) @ np.diag([3.0, 1.0, 1.0, 0.5])
    >>> train, test = split(x, test_fraction=0.25, seed=0)
    >>> prep = fit_preprocessing(train, whiten="zca")
    >>> bool(np.allclose(np.cov(prep.apply(train).T, bias=True), np.eye(4)))
    True
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np

from aejax import _validate
from aejax.sources import Empirical

# IDX type codes (third magic byte) and their big-endian NumPy dtypes.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
WHITENINGS = ("pca", "zca")


def load_npz(path: str | os.PathLike, name: str | None = None) -> np.ndarray:
    """One named array of an ``.npz`` file, as float64.

    Args:
        path: the ``.npz`` file.
        name: the array's name; may be omitted when the file holds exactly one array.

    Returns:
        The array.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "d.npz"
        >>> np.savez(f, images=np.zeros((3, 2)))
        >>> load_npz(f).shape
        (3, 2)
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:  # EOFError: an empty (0-byte) file
        raise _validate.InputError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _validate.InputError(f"{path}: not an .npz archive (it holds a single .npy array)")
    with archive:
        names = sorted(archive.files)
        if not names:
            raise _validate.InputError(f"{path}: holds no arrays (an empty .npz archive)")
        if name is None:
            if len(names) != 1:
                raise _validate.InputError(f"{path}: holds arrays {names}; pass name= to choose one")
            name = names[0]
        if name not in names:
            raise _validate.InputError(f"{path}: has no array named {name!r}; it holds {names}")
        return _numeric(archive[name], path)


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (the MNIST format), gzipped or not, any IDX type code, as float64.

    Format: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, one big-endian uint32 per dimension,
    then the values in big-endian C order. Gzip is recognised by its magic bytes, not the name.

    Args:
        path: the file.

    Returns:
        The array with the file's shape (e.g. ``(60000, 28, 28)`` for MNIST images).

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "x.idx"
        >>> _ = f.write_bytes(bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
        >>> load_idx(f)[1]
        array([3., 4., 5.])
    """
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise _validate.InputError(f"{path}: cannot read IDX file ({err})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise _validate.InputError(
            f"{path}: not an IDX file (its first bytes {raw[:4].hex()} are not 0000<type><ndim>)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise _validate.InputError(f"{path}: unknown IDX type code 0x{code:02X}; allowed: {allowed}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise _validate.InputError(
            f"{path}: IDX header truncated or without dimensions (ndim={ndim}, {len(raw)} bytes)")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise _validate.InputError(f"{path}: IDX shape {shape} of {dtype.name} needs {expected} data bytes, "
                                   f"found {len(raw) - header} (truncated or wrong header)")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(np.float64)


def load_csv(path: str | os.PathLike, header: bool | None = None, delimiter: str = ",") -> np.ndarray:
    """A numeric CSV file (one sample per row) as a ``(rows, columns)`` float64 array.

    Args:
        path: the file.
        header: whether the first line holds column names; ``None`` detects it (a first line
            with a non-numeric field is a header).
        delimiter: field separator.

    Returns:
        The array.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "x.csv"
        >>> _ = f.write_text("a,b\\n1,2\\n3,4.5\\n")
        >>> load_csv(f)
        array([[1. , 2. ],
               [3. , 4.5]])
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(i + 1, row) for i, row in enumerate(csv.reader(f, delimiter=delimiter)) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise _validate.InputError(f"{path}: cannot read CSV file ({err})") from None
    if header is None:
        header = bool(rows) and not all(_is_number(v) for v in rows[0][1])
    rows = rows[1:] if header else rows
    if not rows:
        raise _validate.InputError(f"{path}: no data rows")
    width = len(rows[0][1])
    values = np.empty((len(rows), width))
    for r, (line, row) in enumerate(rows):
        if len(row) != width:
            raise _validate.InputError(f"{path}: line {line} has {len(row)} fields, expected {width}")
        for c, field in enumerate(row):
            if not _is_number(field):
                raise _validate.InputError(f"{path}: line {line}, column {c + 1}: {field!r} is not a number")
            values[r, c] = float(field)
    return values


def load(path: str | os.PathLike, **kwargs: Any) -> np.ndarray:
    """Load a data file by its name: ``.npz`` (``load_npz``), ``.csv`` (``load_csv``), anything
    else as IDX (``load_idx``; e.g. ``train-images-idx3-ubyte.gz``).

    Args:
        path: the file.
        **kwargs: passed to the loader (``name`` for npz; ``header``, ``delimiter`` for CSV).

    Returns:
        The array.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "d.npz"
        >>> np.savez(f, x=np.ones((2, 2)))
        >>> load(f).sum()
        np.float64(4.0)
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return load_npz(path, **kwargs)
    if suffix == ".csv":
        return load_csv(path, **kwargs)
    return load_idx(path, **kwargs)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numeric(array: np.ndarray, path: Any) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise _validate.InputError(f"{path}: array of dtype {array.dtype} is not numeric")
    return array.astype(np.float64)


@dataclasses.dataclass(frozen=True, eq=False)
class Preprocessing:
    """Fitted preprocessing ``x ↦ (x − mean) @ transform`` (see ``fit_preprocessing``).

    Attributes:
        mean: ``(d,)`` column means subtracted (zeros without centring).
        transform: ``(d, k)`` matrix: a global scale times the identity (no whitening), the PCA
            whitening map (k = components) or the ZCA one (k = d).
        eigenvalues: ``(d,)`` covariance eigenvalues of the fitted data, largest first.

    Example:
        >>> prep = fit_preprocessing(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 2.0]]))
        >>> prep.apply(np.array([[2.0, 2.0]]))
        array([[0., 0.]])
    """

    mean: np.ndarray
    transform: np.ndarray
    eigenvalues: np.ndarray

    def apply(self, data: Any) -> np.ndarray:
        """Transform ``(samples, d)`` data with the fitted statistics; returns ``(samples, k)``."""
        x = _check_data(data, min_samples=1)
        if x.shape[1] != self.mean.shape[0]:
            raise _validate.InputError(f"data has {x.shape[1]} columns but the preprocessing was fitted on "
                                       f"{self.mean.shape[0]}")
        return (x - self.mean) @ self.transform


def fit_preprocessing(data: Any, center: bool = True, whiten: str | None = None, components: int | None = None,
                      eig_floor: float = 1e-6) -> Preprocessing:
    """Fit centring and scaling or whitening on ``data`` (float64).

    Without whitening, one global scale makes ``tr Σ / d = 1`` (unit variance per coordinate on
    average, the sources' normalisation). ``"pca"`` rotates to the principal axes, keeps the
    ``components`` largest and scales each to unit variance; ``"zca"`` whitens and rotates back.
    Σ is the second-moment matrix of the (centred) data. Directions below the relative
    eigenvalue floor are refused (module docstring).

    Args:
        data: ``(samples, d)`` finite numbers, at least 2 samples, no constant columns.
        center: subtract the column means.
        whiten: ``None``, ``"pca"`` or ``"zca"``.
        components: principal components kept by ``"pca"`` (default all d).
        eig_floor: relative eigenvalue floor for whitening, in (0, 1).

    Returns:
        A ``Preprocessing``.

    Example:
        >>> x = np.random.default_rng(1).normal(size=(50, 3)) * [1.0, 2.0, 3.0]
        >>> fit_preprocessing(x, whiten="pca", components=2).apply(x).shape
        (50, 2)
    """
    x = _check_data(data)
    constant = np.nonzero(np.ptp(x, axis=0) == 0)[0]
    if constant.size:
        raise _validate.InputError(
            f"data has constant columns {constant[:10].tolist()} (zero variance); drop them first")
    if not 0 < eig_floor < 1:
        raise _validate.InputError(
            f"eig_floor must be in (0, 1) (relative to the largest eigenvalue), got {eig_floor!r}")
    if whiten is not None:
        _validate.choice("whiten", whiten, WHITENINGS)
    d = x.shape[1]
    mean = x.mean(axis=0) if center else np.zeros(d)
    x = x - mean
    eigval, eigvec = np.linalg.eigh(x.T @ x / x.shape[0])
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
    if whiten is None:
        return Preprocessing(mean, np.eye(d) * np.sqrt(d / np.sum(eigval)), eigval)
    k = d if components is None else _validate.positive_int("components", components)
    if k > d or (whiten == "zca" and k != d):
        raise _validate.InputError(f"components must be at most d={d} (and all of them for zca), got {components}")
    if np.any(eigval[:k] < eig_floor * eigval[0]):
        rank = int(np.sum(eigval >= eig_floor * eigval[0]))
        raise _validate.InputError(f"cannot whiten: the data covariance has numerical rank {rank} < {k} at eig_floor="
                                   f"{eig_floor:g}; use whiten='pca' with components<={rank}")
    transform = eigvec[:, :k] / np.sqrt(eigval[:k])
    if whiten == "zca":
        transform = transform @ eigvec[:, :k].T
    return Preprocessing(mean, transform, eigval)


def preprocess(data: Any, center: bool = True, whiten: str | None = None, components: int | None = None,
               eig_floor: float = 1e-6) -> np.ndarray:
    """``fit_preprocessing(data, ...).apply(data)``: preprocess data with its own statistics.

    Example:
        >>> x = np.random.default_rng(2).normal(size=(40, 3)) + 5
        >>> bool(np.allclose(preprocess(x).mean(axis=0), 0))
        True
    """
    return fit_preprocessing(data, center, whiten, components, eig_floor).apply(data)


def _check_data(data: Any, min_samples: int = 2) -> np.ndarray:
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < min_samples or x.shape[1] < 1:
        raise _validate.InputError(f"data must be a 2-D array (samples, d) with at least {min_samples} "
                                   f"sample{'s' * (min_samples > 1)}, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        rows = np.unique(np.nonzero(~np.isfinite(x))[0])[:5].tolist()
        raise _validate.InputError(f"data must be finite; rows {rows} hold NaN or inf")
    return x


def drop_constant(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Remove constant columns (e.g. always-blank border pixels).

    Returns:
        ``(data without them, indices of the kept columns)``.

    Example:
        >>> drop_constant(np.array([[1.0, 0.0], [2.0, 0.0]]))[1]
        array([0])
    """
    x = _check_data(data)
    kept = np.nonzero(np.ptp(x, axis=0) > 0)[0]
    return x[:, kept], kept


def random_patches(images: Any, size: int, count: int, seed: int = 0) -> np.ndarray:
    """Random ``size × size`` patches of ``(N, H, W)`` images, flattened to ``(count, size²)``.

    Each patch picks an image and a top-left corner uniformly at random.

    Args:
        images: ``(N, H, W)`` array (use ``x.reshape(N, H, W)`` for flattened images).
        size: patch side, at most ``min(H, W)``.
        count: number of patches.
        seed: NumPy random seed.

    Returns:
        The patches.

    Example:
        >>> random_patches(np.arange(32.0).reshape(2, 4, 4), size=2, count=5).shape
        (5, 4)
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise _validate.InputError(f"images must have shape (N, H, W), got shape {images.shape}")
    size = _validate.positive_int("size", size)
    count = _validate.positive_int("count", count)
    n, h, w = images.shape
    if size > min(h, w):
        raise _validate.InputError(f"size must be at most min(H, W)={min(h, w)}, got {size}")
    rng = np.random.default_rng(seed)
    which = rng.integers(0, n, count)
    top = rng.integers(0, h - size + 1, count)
    left = rng.integers(0, w - size + 1, count)
    offsets = np.arange(size)
    rows = (top[:, None] + offsets)[:, :, None]
    cols = (left[:, None] + offsets)[:, None, :]
    return images[which[:, None, None], rows, cols].reshape(count, size * size)


def split(data: Any, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle the rows and split them into a training and a held-out test part.

    Args:
        data: ``(samples, ...)`` array.
        test_fraction: fraction of rows held out, in (0, 1); both parts get at least 2 rows.
        seed: NumPy random seed of the shuffle.

    Returns:
        ``(train, test)``.

    Example:
        >>> [part.shape for part in split(np.zeros((10, 3)), 0.3)]
        [(7, 3), (3, 3)]
    """
    x = np.asarray(data)
    if not 0 < test_fraction < 1:
        raise _validate.InputError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    n_test = int(round(test_fraction * len(x)))
    if n_test < 2 or len(x) - n_test < 2:
        raise _validate.InputError(f"test_fraction={test_fraction} of {len(x)} rows leaves fewer than 2 rows in a part")
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[n_test:]], x[order[:n_test]]


def train_test_sources(data: Any, test_fraction: float = 0.2, seed: int = 0, *, center: bool = True,
                       whiten: str | None = None, components: int | None = None, eig_floor: float = 1e-6):
    """Split ``data``, fit the preprocessing on the training part only, and return both as sources.

    Train on the first source (e.g. ``TrainConfig(mode="dataset", source=train)``) and measure
    risk on the second: it holds the test rows transformed with the training statistics, so its
    whitening is only approximately white — that mismatch is part of the held-out risk.

    Args:
        data: ``(samples, d)`` array.
        test_fraction: fraction of rows held out.
        seed: seed of the split.
        center, whiten, components, eig_floor: see ``fit_preprocessing``.

    Returns:
        ``(train_source, test_source, preprocessing)``: two ``aejax.sources.Empirical`` and the
        fitted ``Preprocessing``.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(100, 4))
        >>> train, test, prep = train_test_sources(x, 0.25, whiten="zca")
        >>> train.data.shape, test.data.shape
        ((75, 4), (25, 4))
    """
    train_x, test_x = split(data, test_fraction, seed)
    prep = fit_preprocessing(train_x, center, whiten, components, eig_floor)
    return Empirical(train_x, preprocessing=prep), Empirical(test_x, preprocessing=prep), prep
