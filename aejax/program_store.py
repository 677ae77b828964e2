"""Exported block programs on disk, so a new process skips tracing and lowering them.

The persistent compilation cache (``aejax.enable_compilation_cache``) spares a new process XLA's
compile, but not tracing the Python program and lowering it to StableHLO (about a quarter of a
second each per bucket). Where that cache is on, each block program is also kept as a serialized
``jax.export.Exported`` beside JAX's entries, keyed by everything the program depends on: the
config (its built-in values and aejax's own sources, activations and priors), the Monte Carlo
samples, the swept names, the block width, the platform, the versions of jax, jaxlib, optax, NumPy
and ml_dtypes, JAX's settings and a digest of aejax's source code. A new process deserializes it
instead of tracing: the program it then compiles (and finds in the compilation cache) is the very
one a cold process compiles, so the bits are the same.

A config holding a user's own object (a named optimizer, a user's function or ``Source``) is not
stored: its code may change under the same name. An entry that is missing, torn, corrupted (its
SHA-256 is checked), written for another key, or unreadable by this JAX is ignored without a word,
and the program is traced as without the store.

Examples:
    >>> from aejax.config import TrainConfig
    >>> program_key(TrainConfig(d=8, n=8, steps=10), 64, ("lr",), 2, "cpu", directory=None) is None
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax

from aejax import _validate
from aejax._build import package_versions
from aejax.identity import describe

__all__ = ["load", "program_key", "save", "store_directory"]

MAGIC = b"aejax-exported-program 1\n"
PREFIX = "aejax-program-"
_OWN_MODULES = ("aejax.", "jax.", "jaxlib.", "optax.")  # versioned or digested: safe to key by name
_IRRELEVANT_FLAGS = ("jax_compilation_cache", "jax_persistent_cache", "jax_log", "jax_explain_cache", "jax_raise_")


def store_directory() -> str | None:
    """Where programs are kept: JAX's persistent compilation cache directory, while it is on
    (``None`` otherwise: nothing is written)."""
    if not jax.config.jax_enable_compilation_cache:  # pyright: ignore[reportAttributeAccessIssue]
        return None
    directory = jax.config.jax_compilation_cache_dir  # pyright: ignore[reportAttributeAccessIssue]
    return os.fspath(directory) if directory else None


def program_key(
    config: Any,
    mc_samples: int,
    hparam_names: tuple[str, ...],
    runs_per_device: int,
    platform: str,
    directory: str | None = "",
) -> str | None:
    """The store's key of a block program: a JSON text of everything the program depends on, or
    ``None`` where nothing is stored (the store is off, or the config holds a user's object).
    ``directory=""`` (the default) means ``store_directory()``."""
    if (store_directory() if directory == "" else directory) is None:
        return None
    try:
        fields = {f.name: describe(f.name, getattr(config, f.name)) for f in dataclasses.fields(config)}
    except _validate.InputError:  # an object without a stable identity
        return None
    if not _own_code_only(fields):
        return None
    flags = {k: repr(v) for k, v in jax.config.values.items() if not k.startswith(_IRRELEVANT_FLAGS)}
    return json.dumps(
        {
            "config": fields,
            "mc_samples": mc_samples,
            "hparams": list(hparam_names),
            "runs_per_device": runs_per_device,
            "platform": platform,
            "versions": _versions(),
            "flags": flags,
            "code": code_digest(),
        },
        sort_keys=True,
        default=repr,
    )


def _own_code_only(description: Any) -> bool:
    """Whether every object in a ``describe`` output is aejax's, JAX's or optax's own (a built-in
    value, or a function/type of those packages): their code is covered by the key."""
    if isinstance(description, dict):
        if "name" in description and len(description) == 1:  # aejax.named: the user's promise only
            return False
        for tag in ("function", "type"):
            if tag in description and not (description[tag].split(":")[0] + ".").startswith(_OWN_MODULES):
                return False
        return all(_own_code_only(v) for v in description.values())
    if isinstance(description, list):
        return all(_own_code_only(v) for v in description)
    return True


@functools.cache
def code_digest() -> str:
    """SHA-256 of aejax's Python sources (every ``.py`` file of the package), once per process."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def _versions() -> dict[str, str]:
    return {"jax": jax.__version__, **package_versions(("jaxlib", "optax", "numpy", "ml_dtypes"))}


def _path(key: str, directory: str) -> Path:
    return Path(directory) / (PREFIX + hashlib.sha256(key.encode()).hexdigest()[:40])


def load(key: str | None, directory: str | None = None) -> Any:
    """The ``jax.export.Exported`` stored under ``key`` (in ``directory``, default
    ``store_directory()``), or ``None``: no key, no entry, or an entry that is torn, corrupted,
    written for another key or unreadable (never an error)."""
    directory = directory or store_directory()
    if key is None or directory is None:
        return None
    try:
        blob = _path(key, directory).read_bytes()
        if not blob.startswith(MAGIC):
            return None
        header, payload = blob[len(MAGIC) :].split(b"\n", 1)
        meta = json.loads(header)
        if meta.get("key") != key or meta.get("sha256") != hashlib.sha256(payload).hexdigest():
            return None
        return jax.export.deserialize(bytearray(payload))
    except Exception:  # missing, unreadable, or not a program this JAX can read: trace instead
        return None


def save(key: str | None, exported: Any, directory: str | None = None) -> bool:
    """Store ``exported`` under ``key`` (written to a temporary file, then renamed into place);
    returns whether it was written (not: no key, no store, or serialization unavailable, e.g.
    without the ``flatbuffers`` package)."""
    directory = directory or store_directory()
    if key is None or directory is None:
        return False
    try:
        payload = bytes(exported.serialize())
    except Exception:  # e.g. ImportError: jax's serialization needs flatbuffers
        return False
    header = json.dumps({"key": key, "sha256": hashlib.sha256(payload).hexdigest()}).encode()
    path = _path(key, directory)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + header + b"\n" + payload)
        os.replace(tmp, path)  # a torn or concurrent write fails the SHA-256 check of load, never more
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False
    return True
