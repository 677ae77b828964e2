"""The ``aejax`` command's errors (issue 17): one line and status 2 for what the user caused, one line
and status 130 for Ctrl-C, a traceback and a bug-report line (status 1) for a bug; flags winning over
the TOML; axes that do nothing; figures written atomically."""

import errno
import time

import numpy as np
import pytest

import aejax
from aejax.cli import main

TINY = ["--d", "8", "--steps", "4", "--batch", "8", "--mc-samples", "64", "--quiet"]


def run(argv, capsys):
    """(status, stdout, stderr) of ``main(argv)``, counting an argparse exit as its status."""
    try:
        status = main(argv)
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err):
    return err.count("\n") == 1 and err.startswith("aejax: error: ") and "Traceback" not in err


USER_ERRORS = [
    # 7: values that overflowed int32 deep inside JAX, or ran out of memory
    (["train", "--d", "10000000", "--steps", "2"], "needs", "d=10000000, n=10000000, batch=128"),
    (["train", "--d", "8", "--steps", "2", "--batch", "1000000000"], "needs", "batch=1000000000"),
    (["train", "--d", "8", "--steps", "2", "--seed", "-1"], "--seed must be a non-negative integer", "-1"),
    (["sweep", *TINY, "--rates", "1e12"], "grid axis 'rate' must be at most 1e+06", ""),
    (["sweep", *TINY, "--mc-samples", "3000000000"], "mc_samples must be at most 2147483647", ""),
    (["sweep", *TINY, "--d", "3000000000"], "d must be at most 2147483647", ""),
    (["sweep", *TINY, "--steps", "3000000000"], "steps must be at most 2147483647", ""),
    # messages that named no argument or file
    (["theory", "--rates", ""], "argument --rates: expected comma-separated numbers, got ''", ""),
    (["sweep", *TINY, "--out", ""], "argument --out: expected a directory path, got ''", ""),
    (["reproduce", "sparse", "--out", " "], "argument --out: expected a directory path", ""),
    (
        ["sweep", *TINY, "--coordinator", "localhost:1234"],
        "need --coordinator, --num-processes and --process-id",
        "missing --num-processes, --process-id",
    ),
    (
        ["sweep", *TINY, "--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"],
        "--coordinator must be host:port",
        "'nohost'",
    ),
    (
        ["sweep", *TINY, "--coordinator", "h:1", "--num-processes", "0", "--process-id", "0"],
        "--num-processes must be a positive integer",
        "got 0",
    ),
    (
        ["sweep", *TINY, "--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"],
        "--process-id must be in [0, --num-processes=2)",
        "got 2",
    ),
    # axes that do nothing: several values refused (one value that is not the default: a warning)
    (["sweep", *TINY, "--p", "0.1,0.5"], "grid axis 'p' has no effect", "source='gaussian'"),
    (["sweep", *TINY, "--activation", "relu", "--slope", "1,2"], "grid axis 'slope' has no effect", "'relu'"),
    (["sweep", *TINY, "--surrogate", "ste", "--slope", "1,2"], "grid axis 'slope' has no effect", "'ste'"),
]


@pytest.mark.parametrize(
    "argv, fragment, detail", USER_ERRORS, ids=[" ".join(a[:1] + a[-2:]) for a, _, _ in USER_ERRORS]
)
def test_user_errors_are_one_line_naming_the_argument(tmp_path, monkeypatch, capsys, argv, fragment, detail):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(argv, capsys)
    assert status == 2 and one_line_error(err) and fragment in err and detail in err, err


TOML_ERRORS = [
    ("[train]\nsteps = 4\ndd = 8\n", "[train] has unknown keys ['dd']; allowed: d, n, steps"),
    ("[grid]\nrates = [1.0]\n", "[grid] has unknown keys ['rates']; allowed: seed, d, lr"),
    ("[sweep]\nouts = 'x'\n", "[sweep] has unknown keys ['outs']; allowed: out, resume"),
    ("[grid]\nrate = [[0.5, 1.0]]\n", "[grid] rate must be a number or a flat list of numbers, got [[0.5, 1.0]]"),
    ("[train]\nd = [8]\n", "[train] d must be a number, a string or a boolean, got [8]"),
    ("train = 3\n", "train must be a table [train], got 3"),
    ("[sweep]\nout = ''\n", "[sweep] out must be a non-empty directory path, got ''"),
    ("[sweep]\nout = 3\n", "[sweep] out must be a non-empty directory path, got 3"),
]


@pytest.mark.parametrize("text, fragment", TOML_ERRORS, ids=[t for t, _ in TOML_ERRORS])
def test_toml_errors_name_the_file_table_and_key(tmp_path, monkeypatch, capsys, text, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text(text)
    status, _, err = run(["sweep", "--config", "c.toml", *TINY], capsys)
    assert status == 2 and one_line_error(err) and "--config 'c.toml'" in err and fragment in err, err


def test_huge_steps_returns_promptly_with_status_2(tmp_path, monkeypatch, capsys):
    """Issue 17.8: --steps 10**12 used to hang in the trace-interval divisor scan."""
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    status, _, err = run(["sweep", *TINY, "--steps", "1000000000000"], capsys)
    assert time.perf_counter() - start < 10
    assert status == 2 and one_line_error(err) and "steps must be at most 2147483647" in err, err


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    """A TypeError deep inside the library is not bad input: status 1, the traceback, a bug-report line."""

    def broken(*args, **kwargs):
        raise TypeError("unsupported operand type(s) deep inside")

    monkeypatch.setattr(aejax.theory, "prediction_table", broken)
    status, _, err = run(["theory"], capsys)
    assert status == 1 and "Traceback (most recent call last)" in err and "deep inside" in err
    assert "this is a bug in aejax" in err.splitlines()[-1]


@pytest.mark.integration
def test_ctrl_c_in_a_sweep_says_what_was_kept_and_exits_130(tmp_path, monkeypatch, capsys):
    """Issue 17.9: Ctrl-C after the first chunk: one line naming <out>/chunks and how to resume; status
    130; rerunning the same command finishes from the kept chunk."""
    from aejax import _sweep_runners

    real, calls = _sweep_runners.run_chunk, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_sweep_runners, "run_chunk", interrupted)
    out = tmp_path / "out"
    argv = ["sweep", *TINY, "--rates", "0.5,1", "--seeds", "0,1", "--devices", "1", "--chunk", "2", "--out", str(out)]
    status, _, err = run(argv, capsys)
    assert status == 130 and err == (
        f"aejax: interrupted; finished chunks are kept in {out / 'chunks'}: rerun the same command to resume\n"
    ), err
    assert len(list((out / "chunks").glob("chunk-*.npz"))) == 1
    monkeypatch.setattr(_sweep_runners, "run_chunk", real)
    status, _, _ = run(argv, capsys)
    assert status == 0 and aejax.load_results(out).attrs["reused_runs"] == 2


@pytest.mark.parametrize(
    "argv, target, kept",
    [
        (["train", *TINY[:-1]], "aejax.sweeping.sweep", "nothing was kept"),
        (["theory"], "aejax.theory.prediction_table", "nothing was kept"),
        (
            ["reproduce", "sparse", "--size", "tiny", "--out", "rep"],
            "aejax.reproduce.run",
            "the finished chunks of its sweeps are kept under rep",
        ),
    ],
)
def test_ctrl_c_in_every_command_is_one_line_and_130(tmp_path, monkeypatch, capsys, argv, target, kept):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(target, interrupt)
    status, _, err = run(argv, capsys)
    assert status == 130 and err.count("\n") == 1 and err.startswith("aejax: interrupted; ") and kept in err, err


@pytest.mark.integration
def test_flags_win_over_every_sweep_option_of_the_toml(tmp_path, monkeypatch, capsys):
    """Issue 17.6: [sweep] out/resume/progress/devices/chunk/mc_samples in the TOML, each overridden by its
    flag (--out, --no-resume, --quiet, --devices, --chunk, --mc-samples)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text(
        "[train]\nd = 8\nsteps = 4\nbatch = 8\n[grid]\nseed = [0, 1]\nrate = [1.0]\n"
        "[sweep]\nout = 'a'\nresume = true\nprogress = true\ndevices = 1\nchunk = 1\n"
        "mc_samples = 512\n"
    )
    argv = [
        "sweep",
        "--config",
        "c.toml",
        "--out",
        "b",
        "--no-resume",
        "--quiet",
        "--devices",
        "2",
        "--chunk",
        "2",
        "--mc-samples",
        "64",
    ]
    status, _, err = run(argv, capsys)
    assert status == 0, err
    assert not (tmp_path / "a").exists() and "━" not in err  # no progress bar
    attrs = aejax.load_results(tmp_path / "b").attrs
    assert attrs["mc_samples"] == 64 and attrs["chunks"] == 1 and '"devices": 2' in attrs["device"]
    # and the TOML's own values hold when no flag is given (resume = true needs the sweep in 'a')
    status, _, err = run(["sweep", "--config", "c.toml"], capsys)
    assert status == 2 and "resume=True but out='a' holds no sweep to resume" in err, err


@pytest.mark.integration
def test_one_ignored_axis_value_is_a_one_line_warning(tmp_path, monkeypatch, capsys):
    """A single --p with a Gaussian source runs, with one warning line saying it is ignored."""
    monkeypatch.chdir(tmp_path)
    status, _, err = run(["sweep", *TINY, "--rates", "1", "--seeds", "0", "--p", "0.5", "--out", "o"], capsys)
    assert status == 0
    assert err == (
        "aejax: warning: grid axis 'p' = 0.5 is ignored: the sparsity p only acts on a named sparse "
        "source ('bg', 'sr') or a non-linear decoder (here source='gaussian', decoder='linear')\n"
    ), err


def test_figure_write_interrupted_by_a_full_disk_leaves_no_truncated_png(tmp_path, monkeypatch):
    """A full disk during savefig: the PNG already there is kept whole, and no temporary file is left."""
    import xarray as xr
    from matplotlib.figure import Figure

    from aejax.plot import plot_risk_vs_rate

    ds = xr.Dataset(
        {"risk": (("seed", "rate"), [[0.7, 0.4]]), "risk_se": (("seed", "rate"), [[0.01, 0.01]])},
        coords={"seed": [0], "rate": [0.5, 1.0]},
    )
    path = plot_risk_vs_rate(ds, tmp_path / "f.png")
    before = path.read_bytes()
    real = Figure.savefig

    def full_disk(self, fname, **kwargs):
        real(self, fname, **kwargs)
        with open(fname, "r+b") as f:
            f.truncate(10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full_disk)
    with pytest.raises(OSError, match="No space left"):
        plot_risk_vs_rate(ds, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["f.png"]
    assert np.frombuffer(before[:8], np.uint8).tolist() == list(b"\x89PNG\r\n\x1a\n")


def test_empty_npz_files_are_refused_naming_the_file(tmp_path):
    """A 0-byte .npz (was an EOFError traceback) and an archive without arrays (was 'holds arrays []; pass
    name= to choose one'): an InputError naming the file and the problem."""
    from aejax.data import load_npz

    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(aejax.InputError, match=f"{empty}: not a readable .npz file \\(EOFError"):
        load_npz(empty)
    np.savez(tmp_path / "none.npz")
    with pytest.raises(aejax.InputError, match=r"none\.npz: holds no arrays \(an empty \.npz archive\)"):
        load_npz(tmp_path / "none.npz")
