"""Sweeps on a cluster: JAX's own cluster detection, and shards of a sweep for job arrays.

Two ways to spread one sweep over several hosts (docs/cluster.md):

- one job of several processes joined by ``jax.distributed``: ``initialize_cluster()`` (the CLI's
  ``--cluster auto``) lets JAX read the process count, this process's index and the coordinator
  from SLURM, Open MPI, Kubernetes or Cloud TPU; the sweep then shards its runs over every device
  of every host;
- independent tasks, the pattern of a SLURM job array: task K of N runs
  ``aejax.sweep_shard(..., shard=(K, N))`` (``--shard K/N`` or ``--shard auto``), which computes only
  its share of the runs and writes their chunk files into the shared ``out`` directory, with no
  coordinator and without assembling; a final plain ``sweep`` into the same ``out`` finds every
  run done and assembles the Dataset, bit for bit the one a single process computes.

A shard's share: in each shape bucket (a ``d`` and a hidden-unit count), the bucket's runs in grid
order, the one at position ``p`` going to shard ``p mod N``. Every shard thus gets about ``1/N`` of
every bucket (balanced when buckets cost differently) and compiles the same block programs as a
one-process sweep; a run's bits depend only on its block program's width, which follows from the
bucket's size, never from which other runs share its block (``aejax.programs``).

Examples:
    >>> parse_shard("1/4")
    Shard(index=1, count=4)
    >>> parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"})
    Shard(index=2, count=3)
    >>> owned_runs([10, 11, 12, 13, 14], Shard(1, 2))
    [11, 13]
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from aejax import _validate
from aejax.results import RunStore, _lock, fingerprint

__all__ = ["Shard", "ShardReport", "initialize_cluster", "owned_runs", "parse_shard"]

CLUSTERS = "SLURM (srun), Open MPI (mpirun), Kubernetes (JobSet) or Cloud TPU"


@dataclasses.dataclass(frozen=True)
class Shard:
    """Task ``index`` of ``count`` independent tasks that share one sweep (build it with
    ``check_shard`` or ``parse_shard``, which validate it)."""

    index: int
    count: int


class ShardReport(NamedTuple):
    """What one shard did: its share of the runs (``owned``), how many of them it computed and
    how many it found already done in ``out``."""

    shard: Shard
    owned: int
    computed: int
    reused: int


def check_shard(shard: Any) -> Shard:
    """``shard`` as a ``Shard``: a ``Shard``, a pair ``(K, N)`` or a string for ``parse_shard``.

    Raises:
        InputError / InputTypeError: unless ``N >= 1`` and ``0 <= K < N`` (integers).

    Examples:
        >>> check_shard((0, 2))
        Shard(index=0, count=2)
    """
    if isinstance(shard, str):
        return parse_shard(shard)
    if isinstance(shard, Shard):
        shard = (shard.index, shard.count)
    if not (isinstance(shard, Sequence) and len(shard) == 2):
        raise _validate.InputTypeError(f"shard must be a pair (K, N), a 'K/N' string or 'auto', got {shard!r}")
    index, count = shard
    for name, value in (("shard count N", count), ("shard index K", index)):
        if isinstance(value, bool) or (not isinstance(value, int) and not hasattr(value, "__index__")):
            raise _validate.InputTypeError(f"{name} must be an integer, got {value!r}")
    index, count = int(index), int(count)
    if count < 1:
        raise _validate.InputError(f"shard count N must be at least 1, got shard {index}/{count}")
    if not 0 <= index < count:
        raise _validate.InputError(f"shard index K must be in [0, N) = [0, {count}), got shard {index}/{count}")
    return Shard(index, count)


def parse_shard(text: str, environ: Mapping[str, str] | None = None) -> Shard:
    """A shard from ``"K/N"``, or ``"auto"``: this task of a SLURM job array, read from
    ``SLURM_ARRAY_TASK_ID``, ``SLURM_ARRAY_TASK_COUNT`` and, when set, ``SLURM_ARRAY_TASK_MIN`` and
    ``SLURM_ARRAY_TASK_STEP`` (``K = (ID − MIN) / STEP``), so ``--array=0-9``, ``1-10`` and
    ``0-18:2`` all give shards 0..9 of 10.

    Args:
        text: ``"K/N"`` with ``0 <= K < N`` or ``"auto"``.
        environ: the environment to read for ``"auto"`` (default ``os.environ``).

    Returns:
        The ``Shard``.

    Raises:
        InputError: a malformed or out-of-range ``K/N``, or ``auto`` outside a job array.

    Examples:
        >>> parse_shard("0/1")
        Shard(index=0, count=1)
    """
    if not isinstance(text, str):
        raise _validate.InputTypeError(f"shard must be a 'K/N' string or 'auto', got {text!r}")
    if text.strip() == "auto":
        return _slurm_array_task(os.environ if environ is None else environ)
    index, slash, count = text.strip().partition("/")
    if not slash or not _is_int(index) or not _is_int(count):
        raise _validate.InputError(f"shard must be K/N (integers, 0 <= K < N) or 'auto', got {text!r}")
    return check_shard((int(index), int(count)))


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _slurm_array_task(environ: Mapping[str, str]) -> Shard:
    names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
    missing = [name for name in names if name not in environ]
    if missing:
        raise _validate.InputError(
            f"shard 'auto' reads the SLURM job array's task, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set (not inside `sbatch --array`); give the shard as K/N"
        )
    values = {}
    for name, default in (
        *((name, None) for name in names),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_STEP", "1"),
    ):
        text = environ.get(name, default)
        if text is None or not _is_int(text):
            raise _validate.InputError(f"shard 'auto': {name} must be an integer, got {text!r}")
        values[name] = int(text)
    step = max(1, values["SLURM_ARRAY_TASK_STEP"])
    index = (values["SLURM_ARRAY_TASK_ID"] - values["SLURM_ARRAY_TASK_MIN"]) // step
    return check_shard((index, values["SLURM_ARRAY_TASK_COUNT"]))


def owned_runs(members: Sequence[int], shard: Shard | None) -> list[int]:
    """The runs of one shape bucket (``members``, in grid order) that ``shard`` computes: those at
    positions ``p`` with ``p mod N == K`` (all of them without a shard).

    Examples:
        >>> owned_runs([3, 4, 5], Shard(0, 2)), owned_runs([3, 4, 5], None)
        ([3, 5], [3, 4, 5])
    """
    members = list(members)
    return members if shard is None else members[shard.index :: shard.count]


class ShardStore(RunStore):
    """The run store as one of several shards writing into the same ``out`` at once.

    Shards take ``out/.lock`` shared (so they run together, while a plain sweep into ``out``, which
    takes it exclusively, waits for none of them and is refused while any runs) and
    ``out/.lock-shard-K-of-N`` exclusively (the same shard twice is refused). A shard leaves other
    writers' temporary files alone (it cannot tell a killed writer's from a running shard's); the next
    plain sweep removes them. Chunk files are written atomically, as by ``RunStore``.
    """

    def __init__(self, out: str | os.PathLike, manifest: dict[str, Any], shard: Shard, resume: bool = False):
        self.out = Path(out)
        self.fingerprint = fingerprint(manifest)
        self.chunks = self.out / "chunks"
        self.chunks.mkdir(parents=True, exist_ok=True)
        self._lock = None
        self._shared: int | None = _shared_lock(self.out / ".lock")
        try:
            self._lock = _lock(self.out / f".lock-shard-{shard.index}-of-{shard.count}")
            self._check_manifest(manifest, resume)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release both locks (idempotent)."""
        super().close()
        if self._shared is not None:
            os.close(self._shared)
            self._shared = None


def _shared_lock(path: Path) -> int:
    """A shared, non-blocking ``flock`` on ``path``; refused while a plain sweep holds it exclusively."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise _validate.InputError(
            f"out={str(path.parent)!r} is in use by a sweep that is not a shard (process {holder}); "
            "wait for it to finish or choose another out directory"
        ) from None
    return fd


def initialize_cluster() -> None:
    """Join this process to its job's other processes with ``jax.distributed.initialize()`` and no
    arguments: JAX reads the coordinator, the process count and this process's index from the
    environment of SLURM (``srun``), Open MPI (``mpirun``), Kubernetes (JobSet) or Cloud TPU. Call it
    before anything else uses JAX; then ``sweep`` shards its runs over every device of every process.

    Raises:
        InputError: no cluster environment was found (JAX has no coordinator address).

    Examples:
        >>> initialize_cluster()  # doctest: +SKIP
    """
    import jax

    try:
        jax.distributed.initialize()
    except ValueError as err:
        raise _validate.InputError(
            f"cluster 'auto' found no cluster environment ({err}): JAX detects {CLUSTERS}; run the command "
            "under srun or mpirun, or give --coordinator, --num-processes and --process-id "
            "(jax.distributed.initialize's arguments)"
        ) from None
