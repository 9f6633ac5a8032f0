"""`classify --format parquet-dataset`: the run written as a partitioned Parquet dataset as results arrive."""
from __future__ import annotations

from pathlib import Path

import typer

from proto_index.cli.output import BarProgress


def classify_into_dataset(store, paths: list[Path] | None, env: str | None, manifest: Path | None, prototypes: str,
                          out: Path, rows_per_file: int | None, all_scores: bool, quiet: bool, options: dict) -> int:
    """Classify into the dataset folder ``out`` (resuming one an earlier identical run left), say what was
    written; returns the number of inputs that failed."""
    from proto_index.options import DatasetOptions

    items = manifest if manifest is not None else [(p, env) for p in paths]
    target = DatasetOptions(out, all_scores=all_scores, **({"rows_per_file": rows_per_file} if rows_per_file else {}))
    with BarProgress(quiet) as bar:
        report = store.classify_dataset(items, prototypes, target, progress=bar, **options)
    resumed = f", {report.resumed} already in it" if report.resumed else ""
    typer.echo(f"classified {report.inputs - report.failed} inputs ({report.rows} rows), {report.failed} failed, "
               f"{report.parts} parts written{resumed} -> {out}")
    typer.echo(f"model: {store.identity.describe()}, kind {store.model_kind}")
    return report.failed
