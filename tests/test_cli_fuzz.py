"""Fuzzing the ``aejax`` command (issue 17): hypothesis draws argv for every command and TOML documents
for ``sweep --config`` (its [train], [grid], [sweep] and [data] tables), mostly invalid or tiny valid. Every
outcome must be status 0 (it ran) or 2 (a one-line ``aejax: error``), never a traceback, and nothing may be
written outside ``--out``.

The quick version (``QUICK`` examples) runs with ``-m integration``; ``-m slow`` runs ``SLOW`` examples.
"""

import contextlib
import io
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aejax.cli import main

pytestmark = pytest.mark.integration  # each example is a whole command, many of them tiny sweeps

QUICK, SLOW = 60, 300
STATS = {"examples": 0, "seconds": 0.0, "ran": 0, "data_tables": 0, "data_examples": 0, "data_seconds": 0.0}

# values: mostly tiny valid ones, plus the kinds of bad input a user types
tiny_int = st.integers(1, 6)
bad_int = st.sampled_from(["0", "-1", "abc", "1.5", "", "3000000000", "1e3", "99999999999999999999"])
bad_float = st.sampled_from(["nan", "inf", "-1", "0", "x", "", "1e12", "1e-300", ",", "1,,2"])
number_list = st.lists(st.sampled_from(["0.5", "1", "0.25", "2"]), min_size=1, max_size=2, unique=True).map(",".join)
seed_list = st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True).map(lambda v: ",".join(map(str, v)))
names = st.sampled_from(
    [
        "sign",
        "relu",
        "helu",
        "tanh",
        "linear",
        "swish",
        "",
        "adam",
        "sgd",
        "cosine",
        "bg",
        "sr",
        "gaussian",
        "online",
        "dataset",
        "population",
        "ste",
        "clip",
        "tanh",
    ]
)


def mostly(valid, invalid, odds=6):
    """``valid`` ``odds`` times out of ``odds + 1``, else ``invalid``."""
    return st.integers(0, odds).flatmap(lambda i: invalid if i == odds else valid)  # hypothesis favours 0


def flag(name, valid, invalid):
    return mostly(valid, invalid).map(lambda v: [name, str(v)])


SIZE = [
    flag("--d", st.integers(1, 8), bad_int),
    flag("--steps", st.integers(1, 4), bad_int),
    flag("--batch", st.integers(1, 8), bad_int),
]
OPTIONAL = [
    flag("--activation", st.sampled_from(["sign", "relu", "helu", "tanh", "linear"]), names),
    flag("--surrogate", st.sampled_from(["ste", "clip", "tanh"]), names),
    flag("--optimizer", st.sampled_from(["adam", "sgd"]), names),
    flag("--schedule", st.sampled_from(["constant", "cosine"]), names),
    flag("--source", st.sampled_from(["gaussian", "bg", "sr"]), names),
    flag("--mode", st.sampled_from(["online", "dataset", "population"]), names),
]


@st.composite
def argv_for(draw, command):
    """Tiny sizes always given (valid or not), other flags sometimes; then a few random extra tokens."""
    args = [command]
    if command in ("train", "sweep"):
        for size in SIZE:
            args += draw(size)
        args += draw(flag("--mc-samples", st.integers(2, 64), bad_int))
        for option in draw(st.lists(st.sampled_from(OPTIONAL), max_size=3)):
            args += draw(option)
    if command == "train":
        args += draw(
            st.lists(
                st.one_of(
                    flag("--rate", st.sampled_from([0.5, 1.0, 2.0]), bad_float),
                    flag("--seed", st.integers(0, 3), bad_int),
                    flag("--lr", st.just(0.01), bad_float),
                    flag("--p", st.just(0.5), bad_float),
                    flag("--slope", st.just(2.0), bad_float),
                ),
                max_size=2,
            ).map(sum_lists)
        )
    elif command == "sweep":
        args += ["--out", "out", "--quiet"]
        args += draw(flag("--rates", number_list, bad_float)) + draw(flag("--seeds", seed_list, bad_int))
        args += draw(
            st.lists(
                st.one_of(
                    flag("--lr", number_list, bad_float),
                    flag("--p", number_list, bad_float),
                    flag("--slope", number_list, bad_float),
                    flag("--devices", st.integers(1, 4), bad_int),
                    flag("--chunk", st.integers(1, 4), bad_int),
                    st.just(["--resume"]),
                    st.just(["--no-resume"]),
                    # never all three multi-host flags valid: that would join a cluster
                    flag("--num-processes", st.integers(1, 2), bad_int),
                    flag("--coordinator", st.sampled_from(["h:1", "nohost", ":", ""]), st.just("x")),
                    flag("--out", st.sampled_from(["", " "]), st.just("")),
                ),
                max_size=3,
            ).map(sum_lists)
        )
    elif command == "theory":
        args += draw(
            st.lists(
                st.one_of(
                    flag("--rates", number_list, bad_float), flag("--ps", number_list, bad_float), st.just(["--json"])
                ),
                max_size=2,
            ).map(sum_lists)
        )
    elif command == "reproduce":  # a valid name would run an experiment: only bad names and flags
        args += [draw(st.sampled_from(["nope", "", "sparse-x", "--size"]))]
        args += draw(
            st.lists(
                st.one_of(
                    flag("--size", st.sampled_from(["huge", "", "tiny"]), st.just("x")),
                    flag("--out", st.sampled_from(["", " "]), st.just("")),
                ),
                max_size=2,
            ).map(sum_lists)
        )
    args += draw(
        mostly(
            st.just([]),
            st.lists(st.sampled_from(["--bogus", "-", "--", "--d", "--rates=", "7"]), min_size=1, max_size=1),
        )
    )
    return args


def sum_lists(lists):
    return [token for part in lists for token in part]


toml_value = st.recursive(
    st.one_of(
        st.integers(-3, 6), st.sampled_from([0.5, 1.0, -1.0, float("inf"), float("nan"), 1e12]), st.booleans(), names
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "d"]), inner, max_size=2)
    ),
    max_leaves=4,
)
TOML_KEYS = [
    "d",
    "n",
    "steps",
    "batch",
    "activation",
    "mode",
    "source",
    "eval_every",
    "warmup",
    "tied",
    "seed",
    "rate",
    "lr",
    "p",
    "slope",
    "margin",
    "out",
    "resume",
    "progress",
    "devices",
    "chunk",
    "mc_samples",
    "bogus",
]


def toml_text(tables):
    """A TOML document (tomllib has no writer): a few tables of key = value lines."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return {"inf": "inf", "nan": "nan"}.get(str(v), repr(v))
        if isinstance(v, str):
            return '"' + v + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return str(v)

    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in entries.items()) for name, entries in tables.items()
    )


# the [data] table: its own keys, with the values a user gets wrong (issue 24: types) and a real file
DATA_TOML_KEYS = ["file", "whiten", "components", "test_fraction", "drop_constant", "name", "split_seed", "bogus"]
data_value = st.one_of(
    toml_value, st.sampled_from(["data.npy", "data.npy", "missing.npy", "pca", "zca", 0.2, 1.5, -1, "no", "0.2"])
)


def toml_table(name):
    if name == "data":  # mostly the real file, so that the other values are the ones checked
        return st.fixed_dictionaries(
            {"file": mostly(st.just("data.npy"), data_value, odds=3)},
            optional={key: data_value for key in DATA_TOML_KEYS if key != "file"},
        )
    return st.dictionaries(st.sampled_from(TOML_KEYS), toml_value, max_size=3)


tomls = (
    st.lists(mostly(st.sampled_from(["train", "grid", "sweep", "data"]), st.just("trian")), max_size=3, unique=True)
    .flatmap(lambda names: st.tuples(*map(toml_table, names)).map(lambda tables: dict(zip(names, tables, strict=True))))
    .map(toml_text)
)
cases = st.one_of(
    st.sampled_from(["train", "sweep", "theory", "reproduce"]).flatmap(argv_for),
    st.tuples(tomls, argv_for("sweep")),
)


def check(case):
    """Run one case in a fresh working directory; return (status, stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            argv = case
            if isinstance(case, tuple):
                Path("c.toml").write_text(case[0])
                np.save("data.npy", np.random.default_rng(0).normal(size=(20, 4)))  # for [data] file = "data.npy"
                argv = [*case[1], "--config", "c.toml"]
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                try:
                    status = main(argv)
                except SystemExit as stop:  # argparse's own exits (usage errors, --help)
                    status = stop.code
            written = sorted(
                str(p) for p in Path(".").rglob("*") if not str(p).startswith(("out", "c.toml", "data.npy"))
            )
        finally:
            os.chdir(cwd)
    text = err.getvalue()
    assert status in (0, 2), (argv, status, text[-3000:])
    assert "Traceback" not in text, (argv, text[-3000:])
    assert status == 0 or text.startswith("aejax: error: ") or "aejax: error:" in text.splitlines()[-1], (argv, text)
    assert not written, (argv, written)
    return status


def _fuzz(case):
    start = time.perf_counter()
    STATS["ran"] += check(case) == 0
    STATS["examples"] += 1
    STATS["data_tables"] += isinstance(case, tuple) and "[data]" in case[0]
    STATS["seconds"] += time.perf_counter() - start


COMMON = dict(
    deadline=timedelta(seconds=120),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(max_examples=QUICK, **COMMON)
@given(cases)
def test_cli_fuzz_quick(case):
    _fuzz(case)


@pytest.mark.slow
@settings(max_examples=SLOW, **COMMON)
@given(cases)
def test_cli_fuzz_slow(case):
    _fuzz(case)


# A [data] table alone, with a --d the 4-column file never matches: every value is checked and the file
# loaded and split, but nothing trains, so many tables fit in a few seconds.
DATA_ARGV = ["sweep", "--d", "5", "--steps", "1", "--seeds", "0", "--rates", "1", "--out", "out", "--quiet"]
DATA_QUICK = 80
data_cases = toml_table("data").map(lambda table: (toml_text({"data": table}), DATA_ARGV))


@settings(
    max_examples=DATA_QUICK,
    deadline=timedelta(seconds=120),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data_cases)
def test_toml_data_table_fuzz_quick(case):
    start = time.perf_counter()
    check(case)
    STATS["data_examples"] += 1
    STATS["data_seconds"] += time.perf_counter() - start


def test_cli_fuzz_report():
    """Prints how many fuzz examples ran and their time (run with -s)."""
    print(
        f"\ncli fuzz: {STATS['examples']} examples ({STATS['ran']} ran to status 0, the rest refused with "
        f"status 2; {STATS['data_tables']} with a TOML [data] table) in {STATS['seconds']:.1f} s; "
        f"[data] table fuzz: {STATS['data_examples']} examples in {STATS['data_seconds']:.1f} s"
    )
