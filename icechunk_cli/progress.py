"""A progress bar on stderr for long work, fed by the library's ``progress(phase, done, total)``
callbacks: one line per phase, shown only when stderr is a terminal, gone when the work ends."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from icechunk_cli.render import Output

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["ProgressBar"]


class ProgressBar:
    """A rich progress bar on stderr, one task per phase of the work; silent unless a terminal."""

    def __init__(self, out: Output) -> None:
        self._out = out
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBar:
        if self._out.stderr_is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description:>8}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._out.err_console,
                transient=True,
            )
            self._progress.start()
        return self

    def update(self, phase: str, done: int, total: int) -> None:
        progress = self._progress
        if progress is None:
            return
        task = self._tasks.get(phase)
        if task is None:
            task = self._tasks[phase] = progress.add_task(phase, total=total or None)
        progress.update(task, completed=done, total=total or None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
