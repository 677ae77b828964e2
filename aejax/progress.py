"""Progress over sweep chunks: a rich progress bar with ETA, or nothing in quiet mode.

Nothing is printed from compiled code; the bar advances on the host after each chunk.

Example:
    >>> with ChunkProgress(total=2, enabled=False) as bar:
    ...     bar.advance(4)
"""

from __future__ import annotations

from typing import Self

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


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
        if self.enabled:
            self._progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
                                      TextColumn("{task.fields[runs]} runs"), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn())
            self._task = self._progress.add_task("sweep", total=total, runs=done_runs)

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def advance(self, runs: int) -> None:
        """Mark one chunk of ``runs`` runs finished."""
        self.runs += runs
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, runs=self.runs)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
