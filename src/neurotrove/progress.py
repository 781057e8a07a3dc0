"""Progress bars for long work, shown on a terminal and silent elsewhere.

Examples
--------
>>> from neurotrove.progress import progress_bar
>>> with progress_bar(3, "hashing", enabled=False) as bar:
...     for _ in range(3):
...         bar.advance()
>>> bar.completed
3
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ProgressBar", "progress_bar", "wants_progress"]


def wants_progress(progress: bool | None) -> bool:
    """Resolve a ``progress`` argument: ``None`` means "when stderr is a terminal"."""
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)


class ProgressBar:
    """A handle to advance a progress bar (a no-op when the bar is hidden)."""

    def __init__(self, progress: Any = None, task: Any = None) -> None:
        self._progress = progress
        self._task = task
        self.completed = 0

    def advance(self, amount: float = 1) -> None:
        """Move the bar forward by ``amount``."""
        self.completed += int(amount)
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def update(self, *, total: float | None = None, description: str | None = None) -> None:
        """Change the bar's total or its description."""
        if self._progress is not None:
            self._progress.update(self._task, total=total, description=description)


@contextmanager
def progress_bar(
    total: float | None, description: str, *, enabled: bool | None = None, unit: str = ""
) -> Iterator[ProgressBar]:
    """Show a rich progress bar while the block runs.

    Parameters
    ----------
    total : float or None
        The amount of work (``None`` when unknown).
    description : str
        What is being done.
    enabled : bool or None
        Show the bar; ``None`` shows it only when stderr is a terminal.
    unit : str
        ``"bytes"`` shows sizes and transfer speed instead of counts.
    """
    if not wants_progress(enabled):
        yield ProgressBar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    if unit == "bytes":
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns.append(MofNCompleteColumn())
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield ProgressBar(progress, task)
