"""Terminal output for the CLI: a rich progress bar behind the library's Progress interface, and errors."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)


class BarProgress:
    """Shows files done, rate and ETA on stderr; notes print as lines above the bar."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> "BarProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, total: int, description: str) -> None:
        if self.quiet or total == 0:
            return
        if self._bar is None:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=not sys.stderr.isatty(),
            )
            self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)

    def note(self, message: str) -> None:
        # A failure line is shown even with --quiet: it is the one thing scripts need to see.
        err_console.print(message, markup=False, highlight=False)
