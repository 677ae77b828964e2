"""The ``aejax`` command's exit (``aejax._fast_exit``): the status ``sys.exit`` would give, every
``atexit`` handler run and the streams flushed before ``os._exit`` skips the interpreter's teardown;
a normal exit when a non-daemon thread is still alive or a profiler is on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aejax._fast_exit import exit_status

ROOT = Path(__file__).resolve().parents[1]


def test_exit_status_reads_codes_as_sys_exit_does(capsys):
    assert (exit_status(None), exit_status(0), exit_status(3)) == (0, 0, 3)
    assert exit_status("bad input") == 1 and capsys.readouterr().err == "bad input\n"


def _run(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("code", [0, 2, 130])
def test_status_atexit_handlers_and_buffered_output_survive(tmp_path, code):
    done = _run(
        f"""
        import atexit, pathlib, sys
        from aejax._fast_exit import exit_now
        atexit.register(lambda: pathlib.Path({str(tmp_path / "handler")!r}).write_text("ran"))
        sys.stdout.write("x" * 100000)  # more than a pipe's buffer: flushed before os._exit
        exit_now({code})
        raise AssertionError("exit_now returned")
        """,
        tmp_path,
    )
    assert done.returncode == code, done.stderr
    assert len(done.stdout) == 100000 and (tmp_path / "handler").read_text() == "ran"


def test_a_live_thread_gets_a_normal_exit_that_waits_for_it(tmp_path):
    done = _run(
        f"""
        import pathlib, threading, time
        from aejax._fast_exit import exit_now
        def work():
            time.sleep(0.5)
            pathlib.Path({str(tmp_path / "thread")!r}).write_text("finished")
        threading.Thread(target=work).start()
        exit_now(4)
        """,
        tmp_path,
    )
    assert done.returncode == 4 and (tmp_path / "thread").read_text() == "finished", done.stderr


def test_the_command_under_cprofile_still_writes_its_profile(tmp_path):
    """``python -m cProfile -m aejax ...`` writes the profile after the command: no fast exit then."""
    out = tmp_path / "cli.prof"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "aejax", "theory", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
