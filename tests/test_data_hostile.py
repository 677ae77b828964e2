"""Hostile data files (issue 24, defect 8 and the CSV-delimiter minor): empty and zero-row files are refused
with one line naming the file, through the loaders, ``aejax sweep --data`` and ``aejax reproduce
universality --data``; a data file's rows are bounded by the memory budget; and a fuzz of small random or
corrupt ``.npy``/``.npz``/``.csv``/IDX files (hypothesis, derandomized) never gets past the loaders with
anything but ``aejax.InputError``/``InputTypeError`` or a well-formed split."""

import gzip
import io
import re
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aejax import _validate
from aejax.cli import main
from aejax.data import dataset_sources, load_array, load_csv

EXAMPLES = 300
STATS = {"examples": 0, "accepted": 0, "seconds": 0.0}


def idx_bytes(shape, code=0x08, values=None):
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    data = np.zeros(shape, dtype) if values is None else np.asarray(values, dtype)
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + data.tobytes()


def empty_files(tmp_path):
    """The issue's empty and zero-row files: name → (path, the shape or problem the message must name)."""
    files = {}
    (tmp_path / "empty.npy").write_bytes(b"")
    files["empty.npy"] = "not a readable .npy file"
    np.save(tmp_path / "rows0.npy", np.zeros((0, 16)))
    files["rows0.npy"] = "holds no values (shape (0, 16))"
    np.save(tmp_path / "cols0.npy", np.zeros((16, 0)))
    files["cols0.npy"] = "holds no values (shape (16, 0))"
    (tmp_path / "rows0.idx").write_bytes(idx_bytes((0, 16)))
    files["rows0.idx"] = "holds no values (shape (0, 16))"
    (tmp_path / "cols0.idx").write_bytes(idx_bytes((5, 0)))
    files["cols0.idx"] = "holds no values (shape (5, 0))"
    np.savez(tmp_path / "rows0.npz", x=np.zeros((0, 4)))
    files["rows0.npz"] = "holds no values (shape (0, 4))"
    return {name: (tmp_path / name, message) for name, message in files.items()}


@pytest.mark.parametrize("name", ["empty.npy", "rows0.npy", "cols0.npy", "rows0.idx", "cols0.idx", "rows0.npz"])
def test_empty_and_zero_row_files_are_refused_naming_the_file(tmp_path, name):
    path, message = empty_files(tmp_path)[name]
    with pytest.raises(_validate.InputError) as err:
        load_array(path)
    assert str(path) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("name", ["empty.npy", "rows0.npy", "rows0.idx"])
def test_cli_sweep_and_reproduce_on_empty_files_exit_2_with_one_line(tmp_path, capsys, name):
    path, message = empty_files(tmp_path)[name]
    out = str(tmp_path / "out")
    for argv in (
        ["sweep", "--data", str(path), "--steps", "1", "--seeds", "0", "--rates", "1", "--out", out, "--quiet"],
        ["reproduce", "universality", "--size", "tiny", "--data", str(path), "--out", out, "--quiet"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("aejax: error: ") and message in err, err


def test_reproduce_universality_refuses_a_file_without_lit_columns(tmp_path, capsys):
    np.save(tmp_path / "zeros.npy", np.zeros((50, 4)))
    argv = [
        "reproduce",
        "universality",
        "--size",
        "tiny",
        "--data",
        str(tmp_path / "zeros.npy"),
        "--out",
        str(tmp_path),
    ]
    assert main([*argv, "--quiet"]) == 2
    assert "no column is non-zero in at least 1% of its rows" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, separator",
    [("1;2;3\n4;5;6\n7;8;9\n", ";"), ("a;b\n1;2\n3;4\n", ";"), ("1\t2\n3\t4\n5\t6\n", "\t"), ("1;2;3\n", ";")],
)
def test_csv_with_another_delimiter_gets_a_hint(tmp_path, text, separator):
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(_validate.InputError, match=re.escape(f"look {separator!r}-separated")) as err:
        load_csv(path)
    assert f"delimiter={separator!r}" in str(err.value)
    rows = [r for r in text.splitlines() if not r.startswith("a")]
    expected = np.array([[float(v) for v in r.split(separator)] for r in rows])
    if len(rows) > 1:  # and the hinted delimiter reads it
        assert np.array_equal(load_csv(path, delimiter=separator), expected)


def test_csv_hint_only_for_numbers(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,x;y\n")
    with pytest.raises(_validate.InputError) as err:
        load_csv(path)
    assert "separated" not in str(err.value)


def test_data_rows_are_bounded_by_the_memory_budget(tmp_path, monkeypatch):
    """A file whose rows as float64 exceed half the available memory is refused before it is converted;
    the .npy is memory-mapped, so its size is checked before it is read."""
    monkeypatch.setattr(_validate, "available_host_bytes", lambda: 2 * 64 * 1000, raising=False)  # 64 kB budget
    np.save(tmp_path / "big.npy", np.zeros((2000, 8), np.uint8))  # 2000 rows × 64 bytes as float64 = 128 kB
    with pytest.raises(_validate.InputError, match=r"the rows must be at most 1000 \(64 bytes per row as float64"):
        load_array(tmp_path / "big.npy")
    (tmp_path / "big.idx").write_bytes(idx_bytes((2000, 8)))
    with pytest.raises(_validate.InputError, match="got 2000"):
        load_array(tmp_path / "big.idx")
    np.save(tmp_path / "fits.npy", np.zeros((1000, 8), np.uint8))
    assert load_array(tmp_path / "fits.npy").shape == (1000, 8)


# ------------------------------------------------------------------------------------------- the fuzz

shapes = st.one_of(
    st.tuples(st.integers(4, 24), st.integers(1, 5)),  # enough rows for a split
    st.tuples(st.integers(4, 12), st.integers(1, 3), st.integers(1, 3)),  # images
    st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple),  # anything, empty included
)
dtypes = st.sampled_from(["<f8", "<f8", "<f4", "<i4", "|u1", "|b1", "<c8", "<U3", ">f8"])


@st.composite
def npy_file(draw):
    shape, dtype = draw(shapes), draw(dtypes)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.normal(size=shape) * draw(st.sampled_from([1.0, 1.0, 100.0, 1e300, 0.0]))
    if draw(st.booleans()):
        values.flat[: draw(st.integers(0, 2))] = draw(st.sampled_from([np.nan, np.inf, 0.0]))
    buffer = io.BytesIO()
    with np.errstate(all="ignore"):
        np.save(buffer, values.astype(dtype) if dtype != "<U3" else values.astype(str).astype(dtype))
    raw = buffer.getvalue()
    return "x.npy", corrupt(draw, raw)


@st.composite
def npz_file(draw):
    arrays = draw(st.dictionaries(st.sampled_from(["a", "b"]), shapes, max_size=2))
    buffer = io.BytesIO()
    np.savez(buffer, *[np.ones(s) for s in arrays.values()])  # arr_0, arr_1
    return "x.npz", corrupt(draw, buffer.getvalue())


@st.composite
def csv_file(draw):
    token = st.sampled_from(["1", "-2.5", "0", "1e3", "nan", "inf", "", "x", " 3", "1e400", '"4"'])
    width = draw(st.integers(1, 4))
    good = st.lists(
        st.lists(st.sampled_from(["1", "-2.5", "0", "1e3", "7"]), min_size=width, max_size=width), max_size=12
    )
    rows = draw(st.one_of(good, st.lists(st.lists(token, min_size=1, max_size=4), max_size=6)))
    separator = draw(st.sampled_from([",", ",", ";", "\t"]))
    text = "".join(separator.join(row) + draw(st.sampled_from(["\n", "\r\n"])) for row in rows)
    return "x.csv", corrupt(draw, text.encode())


@st.composite
def idx_file(draw):
    code = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]))
    shape = draw(st.one_of(st.just([10, 3]), st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    size = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(code, 1) * int(np.prod(shape))
    body = draw(st.binary(min_size=size, max_size=size)) if size <= 200 else bytes(size)
    raw = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + body
    if draw(st.booleans()):
        raw = gzip.compress(raw, mtime=0)
    return draw(st.sampled_from(["x.idx", "x-ubyte.gz"])), corrupt(draw, raw)


def corrupt(draw, raw):
    """Mostly the file as written; else truncated, a byte flipped, or random bytes appended."""
    how = draw(st.sampled_from(["keep", "keep", "keep", "truncate", "flip", "append"]))
    if how == "truncate" and raw:
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if how == "flip" and raw:
        i = draw(st.integers(0, len(raw) - 1))
        return raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1 :]
    if how == "append":
        return raw + draw(st.binary(min_size=1, max_size=8))
    return raw


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(st.one_of(npy_file(), npz_file(), csv_file(), idx_file()), st.sampled_from([0.2, 0.5]))
def test_data_file_fuzz(tmp_path_factory, case, test_fraction):
    """Whatever the bytes, loading and splitting a file either refuses it with an aejax error, or gives
    finite training and held-out rows that partition the file's samples."""
    start = time.perf_counter()
    name, raw = case
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(raw)
    try:
        train, test, _, info = dataset_sources(path, test_fraction=test_fraction)
    except (_validate.InputError, _validate.InputTypeError) as err:
        assert str(err).strip() and "\n" not in str(err).strip(), err
    else:
        STATS["accepted"] += 1
        assert np.isfinite(train.data).all() and np.isfinite(test.data).all()
        assert info["n_train"] + info["n_test"] == info["samples"] == len(load_array(path))
        assert train.data.shape[1] == test.data.shape[1] == info["d"] >= 1
    STATS["examples"] += 1
    STATS["seconds"] += time.perf_counter() - start


def test_data_file_fuzz_report():
    """Prints how many fuzz examples ran and their time (run with -s)."""
    print(
        f"\ndata-file fuzz: {STATS['examples']} examples ({STATS['accepted']} accepted, the rest refused) in "
        f"{STATS['seconds']:.1f} s"
    )


def test_npy_with_a_damaged_header_string_is_refused_naming_the_file(tmp_path):
    """Found by the fuzz on Python 3.12 (NumPy 2.5): an unterminated string in the header raised
    tokenize.TokenError (NumPy 2.0 raises ValueError) through load_npy."""
    header = b"{'descr&: '<f8', 'fortran_order': False, 'shape': (4, 1), }" + b" " * 58 + b"\n"
    path = tmp_path / "x.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(32))
    with pytest.raises(_validate.InputError, match=r"x\.npy: not a readable \.npy file"):
        load_array(path)
