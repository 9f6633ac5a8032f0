"""`proto-index annotate`: store reviewed verdicts from a decisions CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from proto_index.cli.common import DEFAULT_STORE_PATH, QuietOption, StoreOption, open_store
from proto_index.cli.output import BarProgress, error

EXIT_SOME_ROWS_FAILED = 3


def annotate(
    decisions: Annotated[Path, typer.Argument(help="CSV path,start_s,end_s,environment,label,verdict,corrected_label (the report's review download).")],
    source: Annotated[Optional[str], typer.Option(help="Who or where the verdicts come from (default: the CSV's file name).")] = None,
    quiet: QuietOption = False,
    store: StoreOption = DEFAULT_STORE_PATH,
):
    """Store reviewed verdicts (right, wrong, relabel) on corpus windows in the catalog.

    Each row names a stored recording (by path, else by the content hash of the file there) and a
    window by its start_s/end_s (both empty: the whole recording). A window annotated again keeps
    only the latest verdict. Rows that cannot be stored (unknown recording, window, environment, or
    a label in no class set) are reported one per line as they are met (exit status 3); the others
    are stored, 5,000 rows per transaction (a rerun of the same file is harmless). Then
    `prototypes build CLASSES --method supervised` uses them.

    \b
    Example:
      proto-index annotate decisions.csv --source "reviewer A, 2026-12-01"
    """
    with _RowProgress(quiet, unit="rows") as bar:
        report = open_store(store).annotate(decisions, source, progress=bar)
    replaced = f" ({report.replaced} replaced an earlier verdict on the same window)" if report.replaced else ""
    typer.echo(f"stored {report.stored} verdicts{replaced}, {report.not_stored} rows not stored")
    if report.not_stored:
        raise typer.Exit(EXIT_SOME_ROWS_FAILED)


class _RowProgress(BarProgress):
    def note(self, message: str) -> None:
        error(message)  # a row not stored, as it is met
