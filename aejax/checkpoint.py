"""Checkpoints inside long runs: the training state of a chunk's runs, saved between segments.

A sweep with ``checkpoint_every`` (steps) or ``checkpoint_seconds`` trains each chunk in segments of
trace blocks (``aejax.train.make_trainer``) and, after a segment, saves the chunk's state — weights,
optimizer state and trace so far, with the index of the next block — as
``out/checkpoints/<chunk tag>/block-<next block>.npz``. Keys are not saved: every step's key is
``fold_in`` of the run key and the step, so the state and the block index determine the rest. A rerun
of the same sweep restores the latest checkpoint of an unfinished chunk and continues from it; its
results are bit-identical to an uninterrupted run, and at most one checkpoint interval of work is lost.

A checkpoint proves what it holds. Next to the arrays it stores a *proof*: the chunk's tag, the next
block, the optimizer step reached, what the chunk is (its runs and checkpoint settings) and a SHA-256
of all of this and of every array's dtype, shape and bytes. ``restore`` trusts nothing else: not the
file name, not the directory. A checkpoint whose hash, tag, block or step is not what the restore
expects is reported by name (one warning line), removed, and its block is recomputed.

Writing is synchronous, in the calling thread: the state (already on the host) goes into a temporary
file that is flushed to disk and renamed into place (``atomic_write``), so a kill or a
Ctrl-C leaves either a whole checkpoint or none, and an I/O failure is an ``OSError`` naming the file.
(An earlier version used Orbax, whose background threads printed tracebacks when a save was
interrupted and whose tensorstore errors were ``ValueError``; a chunk's host arrays need neither
sharded writes nor asynchrony.) Only the newest checkpoint of a chunk is kept.

Examples:
    >>> import tempfile, numpy as np
    >>> store = ChunkCheckpoints(tempfile.mkdtemp(), "demo")
    >>> store.save(3, {"w": np.arange(4.0)})
    >>> block, state = store.restore({"w": np.zeros(4)})
    >>> block, state["w"].tolist()
    (3, [0.0, 1.0, 2.0, 3.0])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

FORMAT = 2  # format 1: Orbax directories without a proof
_BLOCK = re.compile(r"^block-(\d{9})\.npz$")
_FORMAT_1 = re.compile(r"^block-(\d{9})$")  # an Orbax directory
_PROOF = "__proof__"


class ChunkCheckpoints:
    """The checkpoints of one chunk: ``root/<tag>/block-<next block>.npz``.

    Args:
        root: the sweep's checkpoint directory (``out/checkpoints``).
        tag: identifies the chunk within its sweep (its runs, the sweep's fingerprint and the
            segment length), so a checkpoint is only ever restored into the same computation.
        steps: the optimizer step reached after each trace block (``TrainConfig.trace_steps``);
            a checkpoint before block ``b`` must have reached ``steps[b - 1]``. ``None``: not checked.
        identity: JSON-able description of the chunk (runs, checkpoint settings), stored in the
            proof so that a checkpoint this sweep cannot use can be explained (``unusable``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        tag: str,
        steps: Sequence[int] | None = None,
        identity: dict[str, Any] | None = None,
    ):
        self.path = Path(root) / tag
        self.tag = tag
        self.steps = None if steps is None else tuple(int(s) for s in steps)
        self.identity = dict(identity or {})

    def _file(self, block: int) -> Path:
        return self.path / f"block-{block:09d}.npz"

    def _step(self, block: int) -> int | None:
        return self.steps[block - 1] if self.steps is not None and 0 < block <= len(self.steps) else None

    def latest(self) -> int | None:
        """The block named by the newest checkpoint file, or ``None`` (the name is not trusted: see ``restore``)."""
        blocks = self._named_blocks()
        return blocks[0] if blocks else None

    def _named_blocks(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted((int(m.group(1)) for p in self.path.iterdir() if (m := _BLOCK.match(p.name))), reverse=True)

    def save(self, next_block: int, state: Any) -> None:
        """Save ``state`` (a pytree of host arrays) as the checkpoint before block ``next_block``;
        older checkpoints of this chunk are removed once it is complete.

        Raises:
            OSError: the checkpoint cannot be written (full disk, directory removed, ...), naming it.
        """
        leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(state)]
        proof = {
            "format": FORMAT,
            "tag": self.tag,
            "block": int(next_block),
            "step": self._step(next_block),
            "identity": self.identity,
        }
        proof["sha256"] = _digest(proof, leaves)
        target = self._file(next_block)

        def write(tmp):
            with open(tmp, "wb") as f:
                arrays = {f"leaf_{i:05d}": leaf for i, leaf in enumerate(leaves)}
                np.savez(f, **{_PROOF: np.asarray(json.dumps(proof, sort_keys=True))}, **arrays)  # pyright: ignore[reportArgumentType]

        try:
            self.path.parent.mkdir(exist_ok=True)  # not its parents: a deleted out directory is an error
            self.path.mkdir(exist_ok=True)
            atomic_write(target, write)
        except OSError as err:
            reason = err.strerror or str(err)
            failure = OSError(f"cannot save checkpoint {target}: {reason}")
            failure.errno = err.errno
            raise failure from None
        for old in self.path.iterdir():
            if old != target:
                remove(old)

    def restore(self, like: Any) -> tuple[int, Any] | None:
        """``(next_block, state)`` of the newest checkpoint that proves to be this chunk's, shaped like
        the pytree ``like``; ``None`` when there is none. A checkpoint that cannot be read or fails its
        proof (hash, tag, block, step, shapes) is reported in one warning line naming it, removed, and
        not used: its work is recomputed."""
        leaves, treedef = jax.tree_util.tree_flatten(like)
        for old in self.path.iterdir() if self.path.is_dir() else ():
            if _FORMAT_1.match(old.name):
                warnings.warn(
                    f"ignoring checkpoint {old}: it has no proof of its content (another format)", stacklevel=2
                )
                remove(old)
        for block in self._named_blocks():
            path = self._file(block)
            problem, state = self._verified(path, block, [np.asarray(leaf) for leaf in leaves])
            if problem is None:
                return block, jax.tree_util.tree_unflatten(treedef, state)
            warnings.warn(f"ignoring checkpoint {path}: {problem}; its blocks are recomputed", stacklevel=2)
            remove(path)
        return None

    def _verified(self, path: Path, block: int, like: list[np.ndarray]) -> tuple[str | None, list[np.ndarray]]:
        """``(None, leaves)`` for a checkpoint that passes its proof, else ``(the problem, [])``."""
        try:
            with np.load(path, allow_pickle=False) as z:
                proof = json.loads(str(z[_PROOF]))
                leaves = [z[f"leaf_{i:05d}"] for i in range(len(like))] if len(z.files) == len(like) + 1 else None
        except Exception as err:  # any damage of the file: it is not used
            return f"unreadable ({type(err).__name__}: {' '.join(str(err).split())[:200]})", []
        if not isinstance(proof, dict) or proof.get("format") != FORMAT:
            return "it has no proof of its content (another format)", []
        expected = {"tag": self.tag, "block": block, "step": self._step(block)}
        for key, want in expected.items():
            if proof.get(key) != want:
                return f"it holds {key} {proof.get(key)!r}, expected {want!r}", []
        if leaves is None or any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(leaves, like, strict=True)):
            return "its arrays do not have the shapes and dtypes of this chunk's state", []
        if _digest({k: v for k, v in proof.items() if k != "sha256"}, leaves) != proof.get("sha256"):
            return "its content does not match its SHA-256 checksum", []
        return None, leaves

    def clear(self) -> None:
        """Remove this chunk's checkpoints (after its records are stored)."""
        remove(self.path)


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, flush it to disk and rename it to
    ``path``; the temporary file is removed if anything fails (like ``aejax.results.atomic_write``,
    which this layer cannot import)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_proof(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The proof of the newest checkpoint file in a chunk's checkpoint ``folder`` (unverified: for
    housekeeping and messages), or ``None`` when it has none that can be read."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("block-*.npz"), reverse=True):
        with contextlib.suppress(Exception):
            with np.load(path, allow_pickle=False) as z:
                proof = json.loads(str(z[_PROOF]))
            if isinstance(proof, dict) and proof.get("format") == FORMAT:
                return proof
    return None


def _digest(proof: dict[str, Any], leaves: list[np.ndarray]) -> str:
    """SHA-256 of the proof's fields and of every array's dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps(proof, sort_keys=True).encode())
    for leaf in leaves:
        h.update(f"{leaf.dtype.str}{leaf.shape}".encode())
        h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()


def remove(path: Path) -> None:
    """Remove a checkpoint file or folder (no error when it is gone)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
