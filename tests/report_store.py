"""A classification to report on: the fake encoder over generated scenes, through the real CLI.

``classify --per-window --all-scores --report`` over a synthetic archive (proto_index.generated_audio), plus a
copy of one recording under a hostile name and a hostile label in one row (built by the tests that need it).
"""
from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

from cli_store import cli

from proto_index.generated_audio import write_archive, write_backgrounds, write_corpus

HOSTILE_LABEL = '<script>alert("label")</script>'
HOSTILE_NAME = '<img src=x onerror=alert(1)>,"q".wav'


@dataclass
class Classified:
    store: Path
    archive: Path
    csv: Path
    report: Path  # written by classify --report
    stdout: str


def classified(tmp: Path, n_files: int = 6, per_label: int = 50) -> Classified:
    store = tmp / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    write_corpus(tmp / "corpus", 16, seed=1, labels=("siren", "dog_bark", "drilling", "bird"),
                 environments=("park", "airport"), seconds=(2.0, 6.0))
    cli("ingest", tmp / "corpus", "--store", store, "-q")
    labels = tmp / "labels.txt"
    labels.write_text("siren\ndog bark\ndrilling\nbird song\n")
    cli("classes", "add", "urban", "--labels-file", labels, "--store", store)
    cli("prototypes", "build", "urban", "--method", "tgap", "--n", "4", "--store", store)
    write_backgrounds(tmp / "bg", "park", 2, seed=2, seconds=(3.0, 4.0))
    cli("env", "add", "park", "--text", "park", "--audio", tmp / "bg", "--store", store)
    cli("env", "add", "airport", "--text", "airport", "--store", store)
    archive = write_archive(tmp / "archive", n_files, ["park", "airport"], seed=3, seconds=(12.0, 24.0))
    out_csv, report = tmp / "windows.csv", tmp / "report-classify"
    res = cli("classify", "-p", "urban-tgap4", "--manifest", archive.manifest, "--per-window", "--all-scores",
              "--out", out_csv, "--report", report, "--report-per-label", per_label, "--store", store, "-q")
    return Classified(store, archive.folder, out_csv, report, res.stdout)


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def with_hostile_row(c: Classified, tmp: Path) -> Path:
    """The classification plus one more row: a copy of the first recording under a hostile file name,
    labelled with a hostile label. Returns the new CSV."""
    header, rows = read_rows(c.csv)
    first = list(rows[0])
    hostile = tmp / "hostile" / HOSTILE_NAME
    hostile.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(first[0], hostile)
    first[0] = str(hostile)
    first[header.index("label")] = HOSTILE_LABEL
    return write_rows(tmp / "hostile.csv", header, rows + [first])
