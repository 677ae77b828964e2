"""The package's layers import one way (docs: README "Modules"): every ``aejax`` import goes to a
strictly lower layer, or stays inside its own subpackage (``aejax.theory``, ``aejax.reproduce``).
Every import counts: module-level ones, lazy ones inside functions and those under
``if TYPE_CHECKING:`` (annotations are a dependency too). The one exception is ``UPWARD``, an
explicit list of upward imports allowed inside a named function (or for its annotation). A cycle
or any other upward import fails here."""

import ast
from pathlib import Path

import pytest

import aejax

PACKAGE = Path(aejax.__file__).resolve().parent

# Lowest first. A module may import modules of earlier layers only.
LAYERS = [
    ["_validate", "_version", "_build", "_threefry", "_fast_exit"],
    ["identity", "cache", "report"],
    ["activations", "optim", "progress", "preprocessing", "theory"],
    ["sources", "model"],
    ["data", "decoders", "risk", "trace_cost", "hparams"],
    ["config", "record", "optimum"],  # the static structure and the per-run schema: neither imports the other
    ["bound"],  # Model: a config bound to its numbers, evaluated through the record
    ["train", "grid", "devices", "program_store"],
    ["results", "checkpoint", "programs"],
    ["_outer_axes", "shards", "sweep_options"],  # one sweep per static value; the store for several shards; the options
    ["_sweep_plan", "_sweep_theory"],  # the sweep pipeline: plan; the theory column
    ["_sweep_runners"],  # chunk strategies (plain, segmented with checkpoints), given a plan's buckets
    ["_sweep_execute"],
    ["_sweep_assemble"],
    ["sweeping", "plot", "nn"],
    ["scaling"],  # a subpackage (fits, Datasets, figures, report); uses plot, so one layer above it
    ["reproduce"],
    ["cli", "__init__"],
    ["__main__"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}

# The only upward imports allowed: (importing module, imported module, where). ``where`` is the
# function that imports lazily, or "TYPE_CHECKING" for an import that serves annotations only. A
# module-level runtime import is never allowed upward.
UPWARD = {
    # TrainConfig.bind is the factory of Model, whose module sits above config (Model evaluates
    # through record and holds a TrainConfig): bind imports it when called, and names it as its
    # return type.
    ("config", "aejax.bound", "TrainConfig.bind"),
    ("config", "aejax.bound", "TYPE_CHECKING"),
}


def _top(module: str) -> str:
    """``aejax.theory.sparse`` -> ``theory``; ``aejax`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imported(node: ast.AST) -> set[str]:
    """The ``aejax`` modules an import statement names (``from aejax import x`` names ``aejax.x``)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.split(".")[0] == "aejax"}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "aejax":
        return {f"aejax.{alias.name}" for alias in node.names} if node.module == "aejax" else {node.module}
    return set()


def _walk(node: ast.AST, where: str):
    """``(module, where)`` for every ``aejax`` import under ``node``: ``where`` is "module", the
    qualified name of the enclosing function, or "TYPE_CHECKING"."""
    for child in ast.iter_child_nodes(node):
        for module in _imported(child):
            yield module, where
        if _is_type_checking(child):
            yield from _walk(child, "TYPE_CHECKING")
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner = child.name if where in ("module", "TYPE_CHECKING") else f"{where}.{child.name}"
            yield from _walk(child, inner)
        else:
            yield from _walk(child, where)


def imports_of(source: str) -> set[tuple[str, str]]:
    """Every ``aejax`` import of a module's source, with where it happens."""
    return set(_walk(ast.parse(source), "module"))


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _own_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def upward_imports(own: str, source: str) -> list[str]:
    """The imports of module ``own`` (a layer name) that break the layering, as messages."""
    errors = []
    for module, where in sorted(imports_of(source)):
        target = _top(module)
        if target == own and own in ("theory", "reproduce", "scaling"):
            continue  # inside a subpackage
        if target not in RANK:
            errors.append(f"imports {module} ({where}), which has no layer")
        elif RANK[target] >= RANK[own] and (own, module, where) not in UPWARD:
            errors.append(
                f"(layer {RANK[own]}: {own}) imports {module} (layer {RANK[target]}) at {where}: "
                "imports must point to lower layers"
            )
    return errors


def test_every_module_has_a_layer():
    missing = sorted({_own_name(p) for p in MODULES} - set(RANK))
    assert not missing, f"modules without a layer in tests/test_layers.py: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    errors = upward_imports(_own_name(path), path.read_text())
    assert not errors, f"{path.relative_to(PACKAGE)}: " + "; ".join(errors)


def test_every_allowed_upward_import_is_used():
    """An entry of ``UPWARD`` whose import is gone is removed, so the list never hides a new one."""
    found = {(_own_name(p), module, where) for p in MODULES for module, where in imports_of(p.read_text())}
    assert found >= UPWARD, f"stale UPWARD entries: {sorted(UPWARD - found)}"


RECORD_ON_MAIN = """
from typing import TYPE_CHECKING
from aejax.model import Params
if TYPE_CHECKING:
    from aejax.config import Model
"""

CASES = [
    ("record", RECORD_ON_MAIN, ["aejax.config (layer 5) at TYPE_CHECKING"]),  # the old config <-> record cycle
    ("record", "def f():\n    from aejax import bound\n", ["aejax.bound (layer 6) at f"]),
    ("config", "from aejax.bound import Model\n", ["aejax.bound (layer 6) at module"]),  # not a factory's import
    ("config", "def bind():\n    from aejax.bound import Model\n", ["aejax.bound (layer 6) at bind"]),
    ("config", "class TrainConfig:\n    def bind(self):\n        from aejax.bound import Model\n", []),
    ("config", "class TrainConfig:\n    def bind(self):\n        from aejax.train import make_train\n", ["train"]),
    ("record", "import typing\nif typing.TYPE_CHECKING:\n    import aejax.record\n", ["aejax.record (layer 5)"]),
    ("bound", "from aejax import record\nfrom aejax.config import TrainConfig\n", []),
]


@pytest.mark.parametrize(("own", "source", "expected"), CASES)
def test_the_check_counts_lazy_and_annotation_imports(own, source, expected):
    """The check itself: imports under TYPE_CHECKING and inside functions count; only the listed
    factory import passes upward (and only inside its function)."""
    errors = upward_imports(own, source)
    assert len(errors) == len(expected), errors
    for error, fragment in zip(errors, expected, strict=True):
        assert fragment in error, (fragment, error)
