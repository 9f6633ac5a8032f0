"""Terminal output for the CLI: a rich progress bar behind the library's Progress interface, errors, and --json documents."""
from __future__ import annotations

import json
import math
import sys
import unicodedata
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from proto_index.filenames import as_text, is_text

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class BadUsage(Exception):
    """A command line that cannot mean anything (options missing or contradictory): exit status 2."""


_KEEP = ("Zs", "Co", "Cn")
"""Non-printable categories shown as they are: spaces, private use, unassigned (not controls)."""


def shown(text, keep: str = "") -> str:
    """``text`` for a terminal, on one line: control and format characters (escape sequences, line
    breaks, bidirectional overrides; all but those in ``keep``) as ``\\xHH``/``\\uHHHH``, and the
    bytes of a file name that are not UTF-8 as ``\\xHH``. For people only: it is not reversible
    (machine formats keep names losslessly)."""
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if ch.isprintable() or ch in keep or unicodedata.category(ch) in _KEEP:
            out.append(ch)
        elif 0xDC80 <= o <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape)
            out.append(f"\\x{o - 0xDC00:02x}")
        else:
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
    return "".join(out)


def say(line: str) -> None:
    """Print ``line`` for people on stdout (tabs kept as column separators, see :func:`shown`)."""
    typer.echo(shown(line, "\t"))


def error(message: str) -> None:
    err_console.print(Text.assemble(("error:", "bold red"), " ", shown(message)), highlight=False)


def echo_beside(out):
    """:func:`say` for a command's summary, on stderr when its output ``out`` is standard output
    (whose bytes are then the output's alone)."""
    from proto_index.atomic import is_stdout

    return (lambda line: typer.echo(shown(line, "\t"), err=True)) if is_stdout(out) else say


def _plain(value):
    """``value`` with numpy numbers as Python ones, paths as strings (a file name that is not UTF-8
    as :func:`~proto_index.filenames.as_text`'s URI) and NaN or infinity as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str) and not is_text(value):
        return as_text(value)  # a file name that is not UTF-8: its lossless file: URI
    return value


def echo_json(document) -> None:
    """Print ``document`` (dicts, lists, numbers, strings) as one JSON document on stdout (``--json``)."""
    typer.echo(json.dumps(_plain(document), indent=2, ensure_ascii=False, allow_nan=False))


class _Throughput(ProgressColumn):
    """Windows embedded so far and their rate: windows/s, and seconds of audio per second (x realtime)."""

    def render(self, task) -> Text:
        windows = task.fields.get("windows", 0)
        elapsed = task.elapsed or 0.0
        if not windows or elapsed <= 0:
            return Text(f"{windows} windows", style="progress.data.speed")
        rate = windows / elapsed
        return Text(f"{windows} windows, {rate:.1f}/s", style="progress.data.speed")


class BarProgress:
    """Shows files (or another ``unit``) done of all, windows embedded, throughput, elapsed time and ETA on stderr.

    Notes print as lines above the bar. The ETA is by files (the total is known up front, the
    number of windows is not).
    """

    def __init__(self, quiet: bool = False, unit: str = "files"):
        self.quiet, self.unit = quiet, unit
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._windows = 0

    def __enter__(self) -> "BarProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, total: int, description: str) -> None:
        if self.quiet or total == 0 or not err_console.is_terminal:
            return  # rich draws nothing live off a terminal, and its stop would leave a blank line there
        if self._bar is None:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} " + self.unit),
                *([_Throughput()] if self.unit == "files" else []),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=err_console,
                transient=not sys.stderr.isatty(),
            )
            self._bar.start()
        self._windows = 0
        self._task = self._bar.add_task(description, total=total, windows=0)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)

    def add_windows(self, n: int) -> None:
        """``n`` more windows went through the model (embed_files' ``on_windows``)."""
        self._windows += n
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, windows=self._windows)

    def note(self, message: str) -> None:
        # A failure line is shown even with --quiet: it is the one thing scripts need to see.
        err_console.print(shown(message), markup=False, highlight=False)
