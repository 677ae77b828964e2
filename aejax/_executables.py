"""Compiled block programs kept on disk, next to JAX's persistent compilation cache.

JAX's cache skips XLA's compilation, but a new process still traces and lowers the Python program
(about 1 s for a run, most of a warm start). Where a compilation cache directory is set (the
``aejax`` command sets one), a block program is also saved whole, as XLA's serialized executable,
under ``<cache>/aejax-programs/``, and a later process loads it without tracing.

The file's name is a hash of everything the executable depends on: the run's structure (every
``TrainConfig`` field, which must be a plain value: configs holding source or optimizer objects are
not stored), the Monte Carlo sample count, the swept names, the block width, the device kind, the
versions of jax and jaxlib, ``XLA_FLAGS`` and the contents of every aejax source file, so an edited
engine never loads a stale program. A file that fails to load is compiled again and replaced.

Examples:
    >>> from aejax.config import TrainConfig
    >>> from aejax.sources import Gaussian
    >>> program_id(TrainConfig(d=8, n=8, steps=4, source=Gaussian(8)), 64, ("lr",), 1, None) is None
    True
    >>> len(program_id(TrainConfig(d=8, n=8, steps=4), 64, ("lr",), 1, None))
    64
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import jax
import jaxlib.version
from jax.experimental import serialize_executable

from aejax.config import TrainConfig

FOLDER = "aejax-programs"


def cache_folder() -> Path | None:
    """Where block programs are kept: ``aejax-programs`` in JAX's compilation cache directory (None
    when no directory is set)."""
    base = jax.config.jax_compilation_cache_dir  # pyright: ignore[reportAttributeAccessIssue]
    return Path(base) / FOLDER if base else None


@functools.cache
def _engine_digest() -> str:
    """Hash of every source file of the installed aejax package."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def program_id(
    config: TrainConfig, mc_samples: int, hparam_names: tuple[str, ...], runs_per_device: int, device: Any
) -> str | None:
    """The file name of a block program, or None when ``config`` holds objects (not stored)."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if not all(isinstance(v, (str, int, float, bool)) or v is None for v in fields.values()):
        return None
    kind = None if device is None else (device.platform, device.device_kind)
    identity = (
        sorted(fields.items()),
        mc_samples,
        hparam_names,
        runs_per_device,
        kind,
        jax.__version__,
        jaxlib.version.__version__,
        os.environ.get("XLA_FLAGS", ""),
        _engine_digest(),
    )
    return hashlib.sha256(repr(identity).encode()).hexdigest()


def load(name: str, device: Any) -> Any | None:
    """The stored executable ``name`` loaded onto ``device``, or None (none stored, or unreadable)."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        serialized, in_tree, out_tree = pickle.loads((folder / f"{name}.bin").read_bytes())
        return serialize_executable.deserialize_and_load(serialized, in_tree, out_tree, execution_devices=[device])
    except Exception:  # absent, truncated or from an incompatible build: compile instead
        return None


def save(name: str, compiled: Any) -> None:
    """Store ``compiled`` as ``name``, atomically; a failure to store only costs a later compile."""
    folder = cache_folder()
    if folder is None:
        return
    try:
        payload = pickle.dumps(serialize_executable.serialize(compiled))
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as handle:
            handle.write(payload)
        try:
            os.replace(handle.name, folder / f"{name}.bin")
        finally:
            Path(handle.name).unlink(missing_ok=True)
    except Exception:  # a backend that cannot serialize, a read-only or full disk
        return
