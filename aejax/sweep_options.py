"""The options of a sweep, as one frozen object: ``aejax.sweep``'s keyword options and the CLI's
TOML ``[sweep]`` table, field for field.

``SweepOptions`` checks itself when built (each bad value named with what is allowed), so a sweep's
plan, its execution and the CLI share one set of checks.

Examples:
    >>> options = SweepOptions(chunk=8, mc_samples=256)
    >>> options.chunk, options.checkpointing
    (8, False)
    >>> SweepOptions(seed=-1)
    Traceback (most recent call last):
    ...
    aejax.InputError: seed must be a non-negative integer, got -1
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from aejax import _validate
from aejax.config import MAX_STEPS
from aejax.programs import MAX_RUNS_PER_DEVICE

__all__ = ["SweepOptions"]


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs and where it writes; never what it computes (that is the config and the grid),
    except ``seed``, ``mc_samples``, ``runs_per_device`` and ``max_padding`` (the last two through the
    block width, ``aejax.programs``).

    Each field is the ``aejax.sweep`` keyword of the same name (its docstring says what it does) and
    the key of the same name in the CLI's TOML ``[sweep]`` table.

    Raises:
        InputError / InputTypeError: a field out of its range or of the wrong type (named).

    Examples:
        >>> SweepOptions(out="runs/a", checkpoint_every=100).checkpointing
        True
        >>> SweepOptions(checkpoint_seconds=60.0)
        Traceback (most recent call last):
        ...
        aejax.InputError: checkpoint_every/checkpoint_seconds need out= (checkpoints are saved under out/checkpoints)
    """

    out: str | os.PathLike | None = None
    resume: bool = False
    devices: int | Sequence[Any] | None = None
    chunk: int | None = None
    runs_per_device: int | None = None
    seed: int = 0
    mc_samples: int | None = None
    max_padding: float = 0.25
    memory_budget: int | None = None
    progress: bool = True
    checkpoint_every: int | None = None
    checkpoint_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.mc_samples is not None:  # at least 2 for a standard error
            _validate.positive_int("mc_samples", self.mc_samples, minimum=2, maximum=MAX_STEPS)
        if self.chunk is not None:
            _validate.positive_int("chunk", self.chunk, maximum=MAX_STEPS)
        if self.runs_per_device is not None:
            _validate.positive_int("runs_per_device", self.runs_per_device, maximum=MAX_RUNS_PER_DEVICE)
        _validate.non_negative_int("seed", self.seed)
        if self.seed >= 2**63:
            raise _validate.InputError(f"seed must be below 2**63, got {self.seed}")
        if self.out is not None:
            _validate.path("out", self.out)
        _validate.boolean("resume", self.resume)
        _validate.boolean("progress", self.progress)
        if self.checkpoint_every is not None:
            _validate.positive_int("checkpoint_every", self.checkpoint_every)
        if self.checkpoint_seconds is not None:
            _validate.positive_number("checkpoint_seconds", self.checkpoint_seconds, scalar=True)
        if self.checkpointing and self.out is None:
            raise _validate.InputError(
                "checkpoint_every/checkpoint_seconds need out= (checkpoints are saved under out/checkpoints)"
            )
        if self.memory_budget is not None:
            _validate.positive_int("memory_budget", self.memory_budget)

    @property
    def checkpointing(self) -> bool:
        """Whether chunks train in segments with a checkpoint between them.

        Examples:
            >>> SweepOptions().checkpointing
            False
        """
        return self.checkpoint_every is not None or self.checkpoint_seconds is not None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The fields, in order: ``sweep``'s keyword options and the TOML ``[sweep]`` keys.

        Examples:
            >>> SweepOptions.names()[:3]
            ('out', 'resume', 'devices')
        """
        return tuple(f.name for f in dataclasses.fields(cls))

    def as_dict(self) -> dict[str, Any]:
        """The fields as keyword arguments of ``aejax.sweep``.

        Examples:
            >>> SweepOptions(chunk=4).as_dict()["chunk"]
            4
        """
        return {name: getattr(self, name) for name in self.names()}
