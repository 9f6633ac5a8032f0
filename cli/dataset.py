"""`classify --format parquet-dataset`: the run written as a partitioned Parquet dataset as results arrive."""
from __future__ import annotations

from pathlib import Path

import typer

from proto_index.api import Store
from proto_index.cli.output import BarProgress
from proto_index.engine.executors import ExecutorOptions
from proto_index.options import EmbedOptions, ScoringOptions


def classify_into_dataset(store: Store, inputs: Path | list[tuple[Path, str]], prototypes: str, out: Path,
                          rows_per_file: int | None, all_scores: bool, quiet: bool, *, scoring: ScoringOptions,
                          options: EmbedOptions, executor: ExecutorOptions) -> int:
    """Classify into the dataset folder ``out`` (resuming one an earlier identical run left), say what was
    written; returns the number of inputs that failed."""
    from proto_index.options import DatasetOptions

    target = DatasetOptions(out, all_scores=all_scores, **({"rows_per_file": rows_per_file} if rows_per_file else {}))
    with BarProgress(quiet) as bar:
        report = store.classify_dataset(inputs, prototypes, target, progress=bar, scoring=scoring, options=options,
                                        executor=executor)
    resumed = f", {report.resumed} already in it" if report.resumed else ""
    typer.echo(f"classified {report.inputs - report.failed} inputs ({report.rows} rows), {report.failed} failed, "
               f"{report.parts} parts written{resumed} -> {out}")
    typer.echo(f"model: {store.identity.describe()}, kind {store.model_kind}")
    return report.failed
