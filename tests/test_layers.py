"""The package's layers import one way (docs: README "Modules"): every ``aejax`` import, including
the lazy ones inside functions, goes to a strictly lower layer, or stays inside its own
subpackage (``aejax.theory``, ``aejax.reproduce``). A cycle or an upward import fails here."""

import ast
from pathlib import Path

import pytest

import aejax

PACKAGE = Path(aejax.__file__).resolve().parent

# Lowest first. A module may import modules of earlier layers only.
LAYERS = [
    ["_validate", "_version"],
    ["identity", "cache"],
    ["activations", "optim", "progress", "preprocessing", "theory"],
    ["sources", "model"],
    ["data", "decoders", "risk"],
    ["record", "optimum"],
    ["config"],
    ["train", "grid", "devices", "program_store"],
    ["results", "checkpoint", "programs"],
    ["_time_axis", "shards"],  # one sweep per τ (stacked with results' save); the store for several shards
    ["sweeping", "plot", "nn", "_joint_fit", "_lr_transfer"],
    ["scaling"],  # uses plot, so one layer above it
    ["reproduce"],
    ["cli", "__init__"],
    ["__main__"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _top(module: str) -> str:
    """``aejax.theory.sparse`` -> ``theory``; ``aejax`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _runtime_nodes(tree: ast.AST):
    """Every node, except those under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def _aejax_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "aejax"}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == "aejax"
        ):
            if node.module == "aejax":
                found |= {f"aejax.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _own_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_module_has_a_layer():
    missing = sorted({_own_name(p) for p in MODULES} - set(RANK))
    assert not missing, f"modules without a layer in tests/test_layers.py: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    own = _own_name(path)
    for module in sorted(_aejax_imports(path)):
        target = _top(module)
        if target == own and own in ("theory", "reproduce"):
            continue  # inside a subpackage
        assert target in RANK, f"{path.name} imports {module}, which has no layer"
        assert RANK[target] < RANK[own], (
            f"{path.relative_to(PACKAGE)} (layer {RANK[own]}: {own}) imports {module} "
            f"(layer {RANK[target]}): imports must point to lower layers"
        )
