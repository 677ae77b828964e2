"""The documentation runs: markdown code blocks, module docstring examples, and docstring coverage.

Module examples run with doctest; a module's examples that train or sweep are in the integration tier,
like the pages.

Markdown: every block fenced exactly as ```` ```python ```` in docs/*.md and README.md runs, in
order, in one namespace per file (fence code as ```` ```py ```` or ```` ```text ```` to show it
without running it). Tracebacks point at the markdown file's own line numbers.
"""

import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import aejax
from aejax import nn

ROOT = Path(__file__).resolve().parents[1]
# The pages' blocks are whole workflows (sweeps, fits, figures): the integration tier. README.md's include a
# full scaling sweep to d = 1024 (about 11 minutes on 2 cores): slow.
MARKDOWN = [
    *(
        pytest.param(p, id=str(p.relative_to(ROOT)), marks=pytest.mark.integration)
        for p in sorted((ROOT / "docs").glob("*.md"))
    ),
    pytest.param(ROOT / "README.md", id="README.md", marks=pytest.mark.slow),
]
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# A module whose examples train, sweep or optimise (a ``>>>`` or ``...`` line calling one of these) runs
# whole workflows: its examples are in the integration tier with the pages; the others run by default.
TRAINS = re.compile(
    r"^\s*(>>>|\.\.\.) .*\b(sweep|sweep_shard|run_sweep|make_train|make_trainer|run|"
    r"finite_d_optimum|converged_optimum)\(",
    re.MULTILINE,
)


def _examples_train(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return bool(spec and spec.origin and TRAINS.search(Path(spec.origin).read_text(encoding="utf-8")))


MODULES = [
    pytest.param(name, id=name, marks=[pytest.mark.integration] if _examples_train(name) else [])
    for name in [*sorted(m.name for m in pkgutil.walk_packages(aejax.__path__, "aejax.")), "aejax"]
]
PUBLIC = sorted({f"aejax.{name}" for name in aejax.__all__} | {f"aejax.nn.{name}" for name in nn.__all__})


@pytest.mark.parametrize("path", MARKDOWN)
def test_markdown_python_blocks_run(path, tmp_path, monkeypatch):
    """Every python block of the docs runs as written, in a fresh directory (files they write, such as
    runs/, go there, and results from an earlier run are never reused)."""
    monkeypatch.chdir(tmp_path)
    if not path.exists():
        pytest.skip(f"{path.name} does not exist yet")
    text = path.read_text(encoding="utf-8")
    blocks = list(PYTHON_BLOCK.finditer(text))
    if not blocks:
        pytest.skip(f"{path.name} has no python blocks")
    namespace = {"__name__": f"docs_{path.stem}"}
    for block in blocks:
        first_line = text.count("\n", 0, block.start(1))  # 0-based line of the block's first code line
        exec(compile("\n" * first_line + block.group(1), str(path), "exec"), namespace)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module, capsys):
    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    )
    assert result.failed == 0, capsys.readouterr().out


def _resolve(dotted: str):
    owner, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(owner), name)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_have_docstring_with_example(name):
    doc = inspect.getdoc(_resolve(name)) or ""
    assert doc, f"{name} has no docstring"
    assert ">>>" in doc, f"{name}'s docstring has no runnable example (a '>>>' line)"


@pytest.mark.parametrize("name", nn.__all__)
def test_nn_public_methods_have_docstrings(name):
    cls = getattr(nn, name)
    own = [m for m, value in vars(cls).items() if callable(value) or isinstance(value, classmethod)]
    missing = [m for m in own if not m.startswith("_") and not inspect.getdoc(getattr(cls, m))]
    assert not missing, f"aejax.nn.{name} methods without docstrings: {missing}"
