"""Writing an evaluation's files: results.csv, results.md, results.json and the three PNG plots."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from proto_index.atomic import open_output, refuse_stdout
from proto_index.evaluation import plots, tables
from proto_index.evaluation.protocol import Evaluation

CSV_NAME, MARKDOWN_NAME, JSON_NAME = "results.csv", "results.md", "results.json"
SNR_PLOT, TAU_PLOT, METHODS_PLOT = "accuracy_vs_snr.png", "accuracy_vs_tau.png", "methods.png"


def _atomic_write(path: Path, text: str) -> None:
    with open_output(path) as f:
        f.write(text)


def check_out_dir(out_dir: Path) -> None:
    """The results folder is a folder, never standard output."""
    refuse_stdout(out_dir, "evaluation results (a folder)")


def write_all(evaluation: Evaluation, out_dir: Path, parameters: dict, with_plots: bool = True) -> list[Path]:
    """Write every output into ``out_dir`` (created if needed); returns the paths written."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with open_output(out_dir / CSV_NAME, newline="") as f:
        w = csv.DictWriter(f, fieldnames=tables.LONG_COLUMNS)
        w.writeheader()
        for row in tables.long_rows(evaluation):
            w.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    written.append(out_dir / CSV_NAME)
    _atomic_write(out_dir / MARKDOWN_NAME, tables.format_markdown(evaluation))
    written.append(out_dir / MARKDOWN_NAME)
    _atomic_write(out_dir / JSON_NAME, json.dumps(tables.as_dict(evaluation, parameters), indent=1) + "\n")
    written.append(out_dir / JSON_NAME)
    if with_plots:
        written.append(plots.accuracy_vs_snr(evaluation, out_dir / SNR_PLOT))
        written.append(plots.accuracy_vs_tau(evaluation, out_dir / TAU_PLOT))
        written.append(plots.methods_summary(evaluation, out_dir / METHODS_PLOT))
    return written
