"""How long-running library work reports progress; the CLI plugs in a progress bar, Python callers may not."""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int, description: str) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def note(self, message: str) -> None:
        """A line worth showing the user now (e.g. a file that failed), not an error of the whole job."""

    # Optional: ``add_windows(n)``, called when n more audio windows went through the model (the
    # pipelines look it up with getattr, so progress objects without it keep working).


class SilentProgress:
    """Reports nothing; notes are kept so callers can inspect them."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, message: str) -> None:
        self.notes.append(message)

    def add_windows(self, n: int) -> None:
        pass
