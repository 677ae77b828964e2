"""Checkpoints inside long runs: the training state of a chunk's runs, saved between segments.

A sweep with ``checkpoint_every`` (steps) or ``checkpoint_seconds`` trains each chunk in segments of
trace blocks (``aejax.train.make_trainer``) and, after a segment, saves the chunk's state — weights,
optimizer state and trace so far, with the index of the next block — under
``out/checkpoints/<chunk tag>/``. Keys are not saved: every step's key is ``fold_in`` of the run key
and the step, so the state and the block index determine the rest. A rerun of the same sweep
restores the latest checkpoint of an unfinished chunk and continues from it; its results are
bit-identical to an uninterrupted run, and at most one checkpoint interval of work is lost.

Saving uses Orbax (``orbax.checkpoint.StandardCheckpointer``), which writes each checkpoint into a
temporary directory and renames it into place, so a kill leaves either a whole checkpoint or none.
The state is copied to the host first, so a checkpoint never holds a second copy of the state on
the device. Only the newest checkpoint of a chunk is kept.

Examples:
    >>> import tempfile, numpy as np
    >>> store = ChunkCheckpoints(tempfile.mkdtemp(), "demo")
    >>> store.save(3, {"w": np.arange(4.0)})
    >>> block, state = store.restore({"w": np.zeros(4)})
    >>> block, state["w"].tolist()
    (3, [0.0, 1.0, 2.0, 3.0])
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np

_STEP = re.compile(r"^block-(\d{9})$")


class ChunkCheckpoints:
    """The checkpoints of one chunk: ``root/<tag>/block-<next block>/``.

    Args:
        root: the sweep's checkpoint directory (``out/checkpoints``).
        tag: identifies the chunk within its sweep (its runs, the sweep's fingerprint and the
            segment length), so a checkpoint is only ever restored into the same computation.
    """

    def __init__(self, root: str | os.PathLike, tag: str):
        self.path = Path(root) / tag

    def _checkpointer(self):
        import orbax.checkpoint as ocp  # imported when a sweep checkpoints: it is slow to import

        return ocp.StandardCheckpointer()

    def latest(self) -> int | None:
        """The next block of the newest complete checkpoint, or ``None``."""
        if not self.path.is_dir():
            return None
        blocks = [int(m.group(1)) for p in self.path.iterdir() if (m := _STEP.match(p.name)) and p.is_dir()]
        return max(blocks) if blocks else None

    def save(self, next_block: int, state: Any) -> None:
        """Save ``state`` (a pytree of host arrays) as the checkpoint before block ``next_block``;
        older checkpoints of this chunk are removed once it is complete."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / f"block-{next_block:09d}"
        checkpointer = self._checkpointer()
        checkpointer.save(target.resolve(), jax.tree_util.tree_map(np.asarray, state), force=True)
        checkpointer.wait_until_finished()
        checkpointer.close()
        for old in self.path.iterdir():
            if old != target and _STEP.match(old.name):
                shutil.rmtree(old, ignore_errors=True)

    def restore(self, like: Any) -> tuple[int, Any] | None:
        """``(next_block, state)`` of the newest checkpoint, shaped like the pytree ``like``; ``None``
        when there is none (or it cannot be read, which is reported and treated as none)."""
        block = self.latest()
        if block is None:
            return None
        abstract = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), like)
        checkpointer = self._checkpointer()
        try:
            state = checkpointer.restore((self.path / f"block-{block:09d}").resolve(), abstract)
        except Exception as err:  # a damaged checkpoint: start the chunk again
            import warnings

            warnings.warn(
                f"ignoring unreadable checkpoint {self.path} ({type(err).__name__}: {err}); the chunk starts again",
                stacklevel=2,
            )
            return None
        finally:
            checkpointer.close()
        return block, jax.tree_util.tree_map(np.asarray, state)

    def clear(self) -> None:
        """Remove this chunk's checkpoints (after its records are stored)."""
        shutil.rmtree(self.path, ignore_errors=True)
