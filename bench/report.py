"""Time `proto-index report` on synthetic classification CSVs of 1,000 and 100,000 windows.

The CSV is what `classify --per-window --all-scores` writes (10 classes, 2 environments), its rows
pointing at random 10 s windows (0.1 s grid) of a few real generated recordings, so nearly every shown
row gets its own excerpt. Prints, per size: CSV bytes, build seconds, rows shown, index.html bytes,
report bytes in all, and the ratios against the smallest size (the baseline of the same run).

    .venv/bin/python bench/report.py [--sizes 1000 100000] [--per-label 50]
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from proto_index.generated_audio import write_corpus
from proto_index.options import ReportOptions
from proto_index.outputs.report import build_report

LABELS = ["air conditioner", "car horn", "children playing", "dog bark", "drilling", "engine idling",
          "gun shot", "jackhammer", "siren", "street music"]
ENVIRONMENTS = ["park", "airport"]


def write_classification(path: Path, n: int, files: list[tuple[Path, float]], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    header = ["path", "start_s", "end_s", "environment", "adaptation", "tau", "label", "score", "margin", "error"] + LABELS
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(n):
            src, seconds = files[rng.integers(len(files))]
            start = round(float(rng.uniform(0, seconds - 10.0)), 1)
            scores = rng.normal(0.2, 0.1, len(LABELS))
            order = np.argsort(-scores)
            env = ENVIRONMENTS[i % len(ENVIRONMENTS)]
            w.writerow([src, f"{start:g}", f"{start + 10:g}", env, "audio", "0.700000", LABELS[order[0]],
                        f"{scores[order[0]]:.6f}", f"{scores[order[0]] - scores[order[1]]:.6f}", ""]
                       + [f"{s:.6f}" for s in scores])


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    ap.add_argument("--per-label", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmp = Path(tmp)
        corpus = write_corpus(tmp / "audio", 6, seed=0, seconds=(40.0, 60.0))
        files = [(c.path, sf.info(c.path).duration) for c in corpus.clips]
        print(f"audio: {len(files)} generated recordings, {sum(s for _, s in files):.0f} s; "
              f"--per-label {args.per_label}, {len(LABELS)} classes x {len(ENVIRONMENTS)} environments")
        print("| rows | CSV bytes | build s | rows shown | index.html bytes | report bytes | build vs first | bytes vs first |")
        print("|---|---|---|---|---|---|---|---|")
        first = None
        for n in args.sizes:
            table = tmp / f"c{n}.csv"
            write_classification(table, n, files)
            out = tmp / f"report-{n}"
            t0 = time.perf_counter()
            result = build_report(ReportOptions(table, out, per_label=args.per_label))
            seconds = time.perf_counter() - t0
            size = folder_bytes(out)
            first = first or (seconds, size)
            print(f"| {n:,} | {table.stat().st_size:,} | {seconds:.1f} | {result.shown:,} | "
                  f"{(out / 'index.html').stat().st_size:,} | {size:,} | {seconds / first[0]:.2f}x | {size / first[1]:.2f}x |")


if __name__ == "__main__":
    main()
