"""`proto-index export`: a classification CSV in another format (Raven, Audacity, Kaleidoscope, JSON Lines, Parquet)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from proto_index.cli.output import echo_beside
from proto_index.outputs.exports import FORMATS, check_format, export as write_export, read_classification

FORMAT_HELP = f"One of {', '.join(FORMATS)}. raven: one selection table (.txt) for the run; audacity: --out is a folder with one label track per recording and files.csv; kaleidoscope: one CSV for Wildlife Acoustics Kaleidoscope (INDIR, FOLDER, IN FILE, CHANNEL, OFFSET, DURATION, TOP1MATCH = label, TOP1DIST = score, MANUAL ID, ...)."


def export(
    classification: Annotated[Path, typer.Argument(help="A CSV written by `classify`.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file, or - for standard output (audacity: folder).")],
):
    """Convert a classification CSV to Raven Pro, Audacity, Kaleidoscope, JSON Lines or Parquet.

    Times come from the per-window rows (classify --per-window); a file-level row becomes one
    selection over the whole file (its duration read from the audio's header).

    \b
    Examples:
      proto-index export windows.csv --format raven --out windows.selections.txt
      proto-index export windows.csv --format audacity --out labels/
      proto-index export windows.csv --format kaleidoscope --out windows.kaleidoscope.csv
    """
    check_format(fmt)
    rows, labels = read_classification(classification)
    write_export(rows, out, fmt, labels or None)
    echo_beside(out)(f"wrote {len(rows)} rows as {fmt} -> {out}")
