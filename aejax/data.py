"""Real data: file loaders (npz, IDX, CSV), preprocessing fitted on a training set, patches, splits.

Loaders return ``float64`` NumPy arrays and raise ``ValueError`` naming the file and the problem: an
unreadable, empty or zero-row file, or one whose rows as float64 would not fit the memory budget (half
the available host memory).
Preprocessing is fitted once (``fit_preprocessing``) and applied to any data with the same columns
(``Preprocessing.apply``), so held-out data is transformed with the training set's statistics.

Eigenvalue floor: whitening divides by the square roots of the covariance eigenvalues, so a
direction whose variance is below ``eig_floor`` times the largest variance (default 1e-6, a
relative floor, independent of the data's units) is refused with a ``ValueError`` that gives the
numerical rank; keep fewer directions with ``whiten="pca", components=k``.

Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 4)) @ np.diag([3.0, 1.0, 1.0, 0.5])
    >>> train, test = split(x, test_fraction=0.25, seed=0)
    >>> prep = fit_preprocessing(train, whiten="zca")
    >>> bool(np.allclose(np.cov(prep.apply(train).T, bias=True), np.eye(4)))
    True
"""

from __future__ import annotations

import csv
import gzip
import os
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from aejax import _validate
from aejax.preprocessing import WHITENINGS as WHITENINGS  # re-exported: data.WHITENINGS
from aejax.preprocessing import Preprocessing, check_data, fit_preprocessing
from aejax.preprocessing import preprocess as preprocess  # re-exported: data.preprocess
from aejax.sources import Empirical

# IDX type codes (third magic byte) and their big-endian NumPy dtypes.
# What NumPy raises on an unreadable .npy/.npz: an empty (0-byte) file gives EOFError, and a damaged
# header is parsed as a Python literal, which gives SyntaxError or tokenize.TokenError (NumPy ≥ 2.3).
_UNREADABLE = (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError)
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_npz(path: str | os.PathLike, name: str | None = None) -> np.ndarray:
    """One named array of an ``.npz`` file, as float64.

    Args:
        path: the ``.npz`` file.
        name: the array's name; may be omitted when the file holds exactly one array.

    Returns:
        The array.

    Examples:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "d.npz"
        >>> np.savez(f, images=np.zeros((3, 2)))
        >>> load_npz(f).shape
        (3, 2)
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (*_UNREADABLE, zipfile.BadZipFile) as err:
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
        try:
            array = archive[name]
        except (*_UNREADABLE, zipfile.BadZipFile, zlib.error) as err:  # a corrupt member
            raise _validate.InputError(f"{path}: array {name!r} is unreadable ({type(err).__name__}: {err})") from None
        return _numeric(array, path)


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (the MNIST format), gzipped or not, any IDX type code, as float64.

    Format: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, one big-endian uint32 per dimension,
    then the values in big-endian C order. Gzip is recognised by its magic bytes, not the name.

    Args:
        path: the file.

    Returns:
        The array with the file's shape (e.g. ``(60000, 28, 28)`` for MNIST images).

    Examples:
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
            f"{path}: not an IDX file (its first bytes {raw[:4].hex()} are not 0000<type><ndim>)"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise _validate.InputError(f"{path}: unknown IDX type code 0x{code:02X}; allowed: {allowed}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise _validate.InputError(
            f"{path}: IDX header truncated or without dimensions (ndim={ndim}, {len(raw)} bytes)"
        )
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise _validate.InputError(
            f"{path}: IDX shape {shape} of {dtype.name} needs {expected} data bytes, "
            f"found {len(raw) - header} (truncated or wrong header)"
        )
    return _numeric(np.frombuffer(raw, dtype, offset=header).reshape(shape), path)


def load_csv(path: str | os.PathLike, header: bool | None = None, delimiter: str = ",") -> np.ndarray:
    """A numeric CSV file (one sample per row) as a ``(rows, columns)`` float64 array.

    Args:
        path: the file.
        header: whether the first line holds column names; ``None`` detects it (a first line
            with a non-numeric field is a header).
        delimiter: field separator.

    Returns:
        The array.

    Examples:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "x.csv"
        >>> _ = f.write_text("a,b\\n1,2\\n3,4.5\\n")
        >>> load_csv(f)
        array([[1. , 2. ],
               [3. , 4.5]])
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(i + 1, row) for i, row in enumerate(csv.reader(f, delimiter=delimiter)) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise _validate.InputError(f"{path}: cannot read CSV file ({err})") from None
    all_rows = rows
    if header is None:
        header = bool(rows) and not all(_is_number(v) for v in rows[0][1])
    rows = rows[1:] if header else rows
    if not rows:
        raise _validate.InputError(f"{path}: no data rows{_delimiter_hint(all_rows, delimiter)}")
    width = len(rows[0][1])
    values = np.empty((len(rows), width))
    for r, (line, row) in enumerate(rows):
        if len(row) != width:
            raise _validate.InputError(f"{path}: line {line} has {len(row)} fields, expected {width}")
        for c, field in enumerate(row):
            if not _is_number(field):
                raise _validate.InputError(
                    f"{path}: line {line}, column {c + 1}: {field!r} is not a number{_delimiter_hint(rows, delimiter)}"
                )
            values[r, c] = float(field)
    return values


CSV_DELIMITERS = (",", ";", "\t", "|", " ")


def _delimiter_hint(rows: list[tuple[int, list[str]]], delimiter: str) -> str:
    """A hint when the rows are numbers separated by another common delimiter than ``delimiter``."""
    for other in CSV_DELIMITERS:
        if other == delimiter:
            continue
        fields = [f for _, row in rows[-3:] for value in row for f in value.split(other)]
        if any(other in value for _, row in rows[-3:] for value in row) and all(_is_number(f) for f in fields):
            return (
                f" (the rows look {other!r}-separated, not {delimiter!r}-separated: convert the file, or load it "
                f"with aejax.data.load_csv(path, delimiter={other!r}))"
            )
    return ""


def load(path: str | os.PathLike, **kwargs: Any) -> np.ndarray:
    """Load a data file by its name: ``.npz`` (``load_npz``), ``.csv`` (``load_csv``), anything
    else as IDX (``load_idx``; e.g. ``train-images-idx3-ubyte.gz``).

    Args:
        path: the file.
        **kwargs: passed to the loader (``name`` for npz; ``header``, ``delimiter`` for CSV).

    Returns:
        The array.

    Examples:
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
    """A loaded array as float64, refused when not numeric, empty (a zero-length axis) or over the memory
    budget as float64 (``array`` may be a memory map: it is checked before it is read)."""
    if array.dtype.kind not in "biuf":
        raise _validate.InputError(f"{path}: array of dtype {array.dtype} is not numeric")
    if array.size == 0:
        raise _validate.InputError(
            f"{path}: holds no values (shape {array.shape}); a data file needs at least one row with at least one value"
        )
    rows = array.shape[0] if array.ndim else 1
    _validate.within_memory(f"{path}: the rows", rows, 8 * (array.size // rows), "row as float64")
    return np.array(array, dtype=np.float64)  # a copy: never the memory map itself


def drop_constant(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Remove constant columns (e.g. always-blank border pixels).

    Returns:
        ``(data without them, indices of the kept columns)``.

    Examples:
        >>> drop_constant(np.array([[1.0, 0.0], [2.0, 0.0]]))[1]
        array([0])
    """
    x = check_data(data)
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

    Examples:
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

    Examples:
        >>> [part.shape for part in split(np.zeros((10, 3)), 0.3)]
        [(7, 3), (3, 3)]
    """
    x = np.asarray(data)
    try:
        inside = not isinstance(test_fraction, (bool, str, bytes)) and bool(0 < test_fraction < 1)
    except (TypeError, ValueError):  # not a number, or an array of several
        inside = False
    if not inside:
        raise _validate.InputError(f"test_fraction must be in (0, 1), a number, got {test_fraction!r}")
    _validate.non_negative_int("seed", seed)
    n_test = int(round(test_fraction * len(x)))  # noqa: RUF046 -- test_fraction may be a 0-d array: keep an int
    if n_test < 2 or len(x) - n_test < 2:
        raise _validate.InputError(f"test_fraction={test_fraction} of {len(x)} rows leaves fewer than 2 rows in a part")
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[n_test:]], x[order[:n_test]]


def train_test_sources(
    data: Any,
    test_fraction: float = 0.2,
    seed: int = 0,
    *,
    center: bool = True,
    whiten: str | None = None,
    components: int | None = None,
    eig_floor: float = 1e-6,
    drop_constant: bool = False,
) -> tuple[Empirical, Empirical, Preprocessing]:
    """Split ``data``, fit the preprocessing on the training part only, and return both as sources.

    Train on the first source (e.g. ``TrainConfig(mode="dataset", source=train)``) and measure
    risk on the second: it holds the test rows transformed with the training statistics, so its
    whitening is only approximately white — that mismatch is part of the held-out risk.

    Args:
        data: ``(samples, d)`` array.
        test_fraction: fraction of rows held out.
        seed: seed of the split.
        center: subtract the training mean (``fit_preprocessing``).
        whiten: ``None``, ``"pca"`` or ``"zca"`` (``fit_preprocessing``).
        components: PCA components kept (``fit_preprocessing``).
        eig_floor: relative eigenvalue floor (``fit_preprocessing``).
        drop_constant: drop columns constant in the training part (``fit_preprocessing``; the test
            part's values there are ignored).

    Returns:
        ``(train_source, test_source, preprocessing)``: two ``aejax.sources.Empirical`` and the
        fitted ``Preprocessing``.

    Examples:
        >>> x = np.random.default_rng(0).normal(size=(100, 4))
        >>> train, test, prep = train_test_sources(x, 0.25, whiten="zca")
        >>> train.data.shape, test.data.shape
        ((75, 4), (25, 4))
    """
    train_x, test_x = split(data, test_fraction, seed)
    prep = fit_preprocessing(train_x, center, whiten, components, eig_floor, drop_constant)
    return Empirical(train_x, preprocessing=prep), Empirical(test_x, preprocessing=prep), prep


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """A single-array ``.npy`` file, as float64.

    Examples:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "x.npy"
        >>> np.save(f, np.arange(6).reshape(2, 3))
        >>> load_npy(f).dtype
        dtype('float64')
    """
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # mapped: its size is checked before reading
    except _UNREADABLE as err:
        raise _validate.InputError(f"{path}: not a readable .npy file ({type(err).__name__}: {err})") from None
    if not isinstance(array, np.ndarray):
        raise _validate.InputError(f"{path}: not a .npy array (it is an .npz archive; name it .npz)")
    return _numeric(array, path)


def load_array(path: str | os.PathLike, name: str | None = None) -> np.ndarray:
    """``load``, plus ``.npy`` files (``load_npy``); ``name`` picks an ``.npz`` file's array.

    Examples:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "x.npy"
        >>> np.save(f, np.ones((2, 3)))
        >>> load_array(f).shape
        (2, 3)
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return load_npy(path)
    return load(path, **({"name": name} if name is not None and suffix == ".npz" else {}))


def as_samples(array: Any, what: str = "data") -> np.ndarray:
    """``(samples, ...)`` → ``(samples, features)``: images ``(N, H, W)`` become rows of ``H·W`` pixels.

    Examples:
        >>> as_samples(np.zeros((5, 3, 4))).shape
        (5, 12)
    """
    x = np.asarray(array, dtype=np.float64)
    if x.ndim < 2:
        raise _validate.InputError(f"{what} must hold one sample per row (at least 2-D), got shape {x.shape}")
    return x.reshape(x.shape[0], -1)


def dataset_sources(
    path: str | os.PathLike,
    *,
    whiten: str | None = None,
    components: int | None = None,
    test_fraction: float = 0.2,
    drop_constant: bool = False,
    seed: int = 0,
    center: bool = True,
    eig_floor: float = 1e-6,
    name: str | None = None,
) -> tuple[Empirical, Empirical, Preprocessing, dict[str, Any]]:
    """Load a data file, split it, fit the preprocessing on the training part: what ``aejax sweep --data`` trains on.

    The file is ``.npz`` (array ``name``, or its only array), ``.npy``, ``.csv`` or IDX (gzipped
    or not); samples are its first axis, the other axes are flattened (images become pixel rows).

    Args:
        path: the file.
        whiten: ``None``, ``"pca"`` or ``"zca"`` (``fit_preprocessing``).
        components: PCA components kept (``fit_preprocessing``).
        drop_constant: drop columns constant in the training part (``fit_preprocessing``).
        center: subtract the training mean (``fit_preprocessing``).
        eig_floor: relative eigenvalue floor (``fit_preprocessing``).
        test_fraction: fraction of the samples held out (``split``).
        seed: seed of the split.
        name: array name in an ``.npz`` file.

    Returns:
        ``(train, test, preprocessing, info)``: two ``Empirical`` sources, the fitted
        ``Preprocessing`` and a JSON-able ``info`` dict (file, shapes, options, the
        preprocessing's ``describe()``), recorded by the CLI in the results' attributes.

    Examples:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "img.npy"
        >>> images = np.random.default_rng(0).normal(size=(50, 4, 4))
        >>> images[:, 0, :] = 0.0  # a blank border row
        >>> np.save(f, images)
        >>> train, test, prep, info = dataset_sources(f, whiten="pca", components=8, test_fraction=0.2)
        >>> train.data.shape, test.data.shape, info["ignored_directions"]
        ((40, 8), (10, 8), 4)
    """
    raw = load_array(path, name)
    x = as_samples(raw, f"{path}")
    train, test, prep = train_test_sources(
        x,
        test_fraction,
        seed,
        center=center,
        whiten=whiten,
        components=components,
        eig_floor=eig_floor,
        drop_constant=drop_constant,
    )
    info = {
        "file": str(path),
        "shape": list(raw.shape),
        "samples": int(x.shape[0]),
        "n_train": int(train.data.shape[0]),
        "n_test": int(test.data.shape[0]),
        "whiten": whiten or "none",
        "components": components,
        "test_fraction": test_fraction,
        "drop_constant": drop_constant,
        "split_seed": seed,
        "center": center,
        "eig_floor": eig_floor,
        **prep.describe(),
    }
    return train, test, prep, info
