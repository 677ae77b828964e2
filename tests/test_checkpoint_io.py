"""Failures and interruptions during a checkpoint save (issue 24, items 7 and 13): an I/O failure
(full disk, out directory deleted) exits with status 2 and one line, like a failed chunk write; a
Ctrl-C during a save exits with 130 and the one "interrupted" line (no traceback, no background
thread's output), leaves no temporary file, and a rerun ends bit-identical to an uninterrupted sweep."""

import errno
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest

import aejax
import aejax.checkpoint
from aejax.checkpoint import ChunkCheckpoints
from aejax.cli import main

COMPARED = ("risk", "risk_se", "exact_risk", "loss_trace", "risk_trace")


def argv(out):
    return (
        f"sweep --d 16 --steps 80 --batch 16 --rates 1 --seeds 0,1 --devices 1 --mc-samples 256 "
        f"--checkpoint-every 40 --quiet --out {out}"
    ).split()


def wrap_save(monkeypatch, before=None, after=None):
    original = ChunkCheckpoints.save

    def save(self, next_block, state):
        if before:
            before(self)
        original(self, next_block, state)
        if after:
            after()

    monkeypatch.setattr(ChunkCheckpoints, "save", save)


def assert_one_error_line(capfd, status, expected_status, *words):
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == expected_status, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]


# the command line end to end; the full-disk test below keeps a failed save's exit in the default tier
@pytest.mark.integration
def test_out_directory_deleted_before_a_save_exits_2_with_one_line(tmp_path, monkeypatch, capfd):
    out = tmp_path / "out"
    wrap_save(monkeypatch, before=lambda store: shutil.rmtree(out, ignore_errors=True))
    status = main(argv(out))
    assert_one_error_line(capfd, status, 2, "aejax: error:", "checkpoint", "No such file or directory")


def test_full_disk_during_a_save_exits_2_with_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch, capfd):
    out = tmp_path / "out"
    atomic_write = aejax.checkpoint.atomic_write

    def write_half_then_fail(path, write):
        def failing(tmp):
            write(tmp)
            with open(tmp, "r+b") as f:
                f.truncate(os.path.getsize(tmp) // 2)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        atomic_write(path, failing)

    monkeypatch.setattr(aejax.checkpoint, "atomic_write", write_half_then_fail)
    status = main(argv(out))
    assert_one_error_line(capfd, status, 2, "aejax: error: cannot save checkpoint", "No space left on device")
    assert not [p for p in (out / "checkpoints").rglob("*") if p.is_file()]


@pytest.mark.integration  # Ctrl-C and resume through the command line
@pytest.mark.parametrize("delay", [0.0, pytest.param(0.003, marks=pytest.mark.slow)])
def test_ctrl_c_during_a_save_is_one_line_and_the_rerun_is_identical(tmp_path, monkeypatch, capfd, request, delay):
    """SIGINT delivered ``delay`` seconds into the first checkpoint save (the save is followed by a
    pause, so the signal always lands in it or just after it, before the sweep goes on)."""
    out = tmp_path / "out"
    first = []
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a background shell may ignore SIGINT
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))

    def interrupt(store):
        if not first:
            first.append(store)
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()

    wrap_save(monkeypatch, before=interrupt, after=lambda: time.sleep(2.0) if len(first) == 1 else None)
    status = main(argv(out))
    time.sleep(0.5)  # output a background thread might still print
    assert_one_error_line(capfd, status, 130, "aejax: interrupted;")
    assert not list((out / "checkpoints").rglob(".*.tmp"))
    monkeypatch.undo()
    assert main(argv(out)) == 0
    capfd.readouterr()
    assert main(argv(tmp_path / "fresh")) == 0
    resumed, fresh = aejax.load_results(out), aejax.load_results(tmp_path / "fresh")
    for name in COMPARED:
        np.testing.assert_array_equal(resumed[name].values, fresh[name].values, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.001, 0.01])
def test_ctrl_c_during_a_save_in_a_process_prints_one_line_until_it_exits(tmp_path, delay):
    """As above in a process of its own, so that what background threads print until the interpreter
    exits is seen too (Orbax's save printed two tracebacks there)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    helper = [sys.executable, str(root / "tests" / "helpers" / "ctrl_c_in_save.py"), str(delay)]
    done = subprocess.run([*helper, *argv(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 130, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("aejax: interrupted;"), done.stderr[-3000:]


def test_long_warnings_are_cut_to_one_short_line(capsys):
    """A 1,200-character warning (e.g. quoting a library's error) reaches the user as one line of at
    most 400 characters that says how much was cut."""
    import warnings

    from aejax.cli import MAX_WARNING, _show_warning

    message = "checkpoint problem: " + "x" * 1200
    _show_warning(warnings.WarningMessage(message, UserWarning, "f", 1).message, UserWarning, "f", 1)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err.strip()) <= len("aejax: warning: ") + MAX_WARNING
    assert err.startswith("aejax: warning: checkpoint problem: xxx") and "more characters)" in err
