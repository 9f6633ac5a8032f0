"""`proto-index report`: a static HTML review report of a classification CSV (also `classify --report DIR`)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from proto_index.api import STORE_ENV_VAR
from proto_index.cli.output import err_console
from proto_index.options import ReportOptions
from proto_index.options.outputs import DEFAULT_PER_LABEL
from proto_index.outputs.report import build_report
from proto_index.outputs.report.build import DEFAULT_NEIGHBOURS, check_out  # noqa: F401  (classify --report)

EXIT_SOME_FILES_FAILED = 3

PerLabelOption = Annotated[int, typer.Option("--per-label", min=1, help="Rows shown per environment and label: "
                                             "the least certain half and a spread of the rest.")]


def make_report(options: ReportOptions) -> int:
    """Build the report, print one line per source that could not be shown; returns how many."""
    def problem(path: str, why: str) -> None:
        err_console.print(f"report: {path}: {why}", markup=False, highlight=False)

    result = build_report(options, on_problem=problem)
    typer.echo(f"report of {result.rows} rows ({result.shown} shown, {len(result.problems)} files unavailable) "
               f"-> {result.out / 'index.html'}")
    return len(result.problems)


def report(
    csv: Annotated[Path, typer.Argument(help="The CSV `classify` wrote (with or without --per-window / --all-scores).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder to create (must not exist, or be empty).")],
    per_label: PerLabelOption = DEFAULT_PER_LABEL,
    audio_root: Annotated[Optional[Path], typer.Option(help="Folder that relative paths in the CSV are relative to (default: the current folder, as classify saw them).")] = None,
    store: Annotated[Optional[Path], typer.Option("--store", envvar=STORE_ENV_VAR, help="Store the CSV came from: adds model, environments and, with -p, the prototype page.")] = None,
    prototypes: Annotated[Optional[str], typer.Option("--prototypes", "-p", help="Prototype set used by classify (needs --store): a page of its TGAP neighbours and modality gap.")] = None,
    neighbours: Annotated[int, typer.Option(min=1, help="TGAP neighbours to play per class on the prototype page.")] = DEFAULT_NEIGHBOURS,
):
    """Write a static HTML review report (opens from file://, no server, no network).

    It shows a summary (store, model, environments with adaptation and tau, counts per label,
    score and margin histograms), then per environment and label up to --per-label rows, each with
    its audio, a spectrogram, the top three classes and a link to the source; filter, sort (least
    certain first), mark each row right / wrong / relabel and download the decisions as CSV
    (path,start_s,end_s,environment,label,verdict,corrected_label). Rows whose audio is gone are
    listed (one line each on stderr, exit status 3) and the rest is shown.

    \b
    Examples:
      proto-index report labels.csv --out review/
      proto-index report windows.csv --out review/ --store my-store -p urban-tgap35 --per-label 100
    """
    from proto_index.api import Store
    from proto_index.errors import InvalidInput

    if prototypes and store is None:
        raise InvalidInput("--prototypes needs --store (the store the prototype set lives in)")
    opened = Store.open(store) if store is not None else None
    try:
        catalog = opened.report_catalog(prototypes) if opened is not None else None
        problems = make_report(ReportOptions(csv, out, per_label, audio_root, catalog, neighbours))
    finally:
        if opened is not None:
            opened.close()
    if problems:
        raise typer.Exit(EXIT_SOME_FILES_FAILED)
