"""Progress over sweep chunks: a rich progress bar with ETA, or nothing in quiet mode.

Nothing is printed from compiled code; the bar advances on the host after each chunk and, for
chunks trained in segments (checkpointed sweeps), after each segment: steps done, steps per
second and the chunk's ETA.

Examples:
    >>> with ChunkProgress(total=2, enabled=False) as bar:
    ...     bar.steps(50, 100)
    ...     bar.advance(4)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:  # rich is imported when a bar is shown: a quiet sweep and ``import aejax`` do without it
    from rich.progress import Progress, TaskID


def _bar(total: int, done_runs: int) -> tuple[Progress, TaskID]:
    """A rich progress bar over ``total`` chunks, with the finished runs, the rate and the ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class _Rate(ProgressColumn):
        """Items per second of a task (chunks, or steps within a chunk)."""

        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:.3g}/s" if task.speed else "")

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[runs]} runs done"),
        _Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    return progress, progress.add_task("sweep", total=total, runs=done_runs)


class ChunkProgress:
    """Context manager showing chunks done out of ``total`` and the number of finished runs.

    Args:
        total: number of chunks to run.
        enabled: show the bar (False: quiet).
        done_runs: runs already finished before this call (resumed).
    """

    def __init__(self, total: int, enabled: bool = True, done_runs: int = 0):
        self.enabled = enabled and total > 0
        self.runs = done_runs
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._steps: TaskID | None = None
        if self.enabled:
            self._progress, self._task = _bar(total, done_runs)

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def advance(self, runs: int) -> None:
        """Mark one chunk of ``runs`` runs finished."""
        self.runs += runs
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, runs=self.runs)
            if self._steps is not None:
                self._progress.remove_task(self._steps)
                self._steps = None

    def add_chunks(self, count: int) -> None:
        """Count ``count`` more chunks to run (a bucket whose block width was lowered to fit memory)."""
        if self._progress is not None and self._task is not None and count:
            task = self._progress.tasks[self._progress.task_ids.index(self._task)]
            self._progress.update(self._task, total=(task.total or 0) + count)

    def steps(self, done: int, total: int) -> None:
        """Within a chunk trained in segments: ``done`` of ``total`` steps (rate and ETA from rich)."""
        if self._progress is None:
            return
        if self._steps is None:
            self._steps = self._progress.add_task("chunk", total=total, runs=self.runs)
        self._progress.update(self._steps, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
