"""Start-up: ``import aejax`` and ``aejax sweep --help`` import nothing the command does not need
(issue 25). Checked in a fresh interpreter, whose ``sys.modules`` lists every module imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("xarray", "pandas", "matplotlib", "rich", "orbax", "flax", "scipy")


def imported_after(code: str) -> set[str]:
    """The top-level names of ``HEAVY`` that a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1])) & set(HEAVY)


def test_import_aejax_and_sweep_help_import_no_heavy_module():
    """``import aejax`` then ``aejax sweep --help`` (one interpreter: the help imports aejax first)."""
    code = (
        "import contextlib, io\nimport aejax\nfrom aejax.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['sweep', '--help'])"
    )
    assert imported_after(code) == set()


def test_probe_sees_a_heavy_import():
    """The probe can fail: ``aejax.scaling`` (fits on Datasets) does import xarray and pandas."""
    assert {"xarray", "pandas"} <= imported_after("import aejax.scaling")


def test_progress_bar_still_shows_when_enabled(capsys):
    """rich, now imported when a bar is shown, still draws it: chunks, runs done, the step task."""
    from aejax.progress import ChunkProgress

    with ChunkProgress(total=2, enabled=True, done_runs=1) as bar:
        bar.steps(5, 10)
        bar.advance(3)
    out = capsys.readouterr().out
    assert "1/2" in out and "4 runs done" in out


def test_import_aejax_imports_no_jax():
    """``import aejax`` alone imports nothing heavy, not even JAX: names are imported on first use."""
    probe = "import aejax, sys\nprint('jax' in sys.modules, 'numpy' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_every_public_name_resolves_to_its_module():
    """Each name of ``aejax.__all__`` is importable from the package, and each lazily imported one is
    the object its home module defines (``aejax._HOMES``)."""
    import importlib

    import aejax

    for name in aejax.__all__:
        value = getattr(aejax, name)
        home = aejax._HOMES.get(name)
        if home is not None:
            assert value is getattr(importlib.import_module(home), name), name
    assert set(aejax._HOMES) <= set(aejax.__all__)
    assert "nothing" not in dir(aejax) and "sweep" in dir(aejax)
