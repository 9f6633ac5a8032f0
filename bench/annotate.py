"""`proto-index annotate` of a large generated decisions CSV, end to end through the CLI: rows/s.

Sets up a store once (N tiny distinct WAVs ingested with a trivial encoder, a class set, an
environment; not timed), writes a decisions CSV of ROWS `right` verdicts cycling over the stored
windows, then times `proto-index annotate CSV --quiet` in a fresh process on a fresh copy of the
store: with this checkout ("after") and, with ``--baseline REV``, with that commit's code ("before",
laid out as installed, as bench/startup.py does). ``--previous RATE`` prints the ratio against a
rows/s figure recorded earlier instead.

    .venv/bin/python bench/annotate.py                                   # 1,000,000 rows
    .venv/bin/python bench/annotate.py --rows 100000 --baseline d38e7f4
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from resume import TinyEncoder, write_files  # noqa: E402
from startup import ROOT, cli, extract, installed_layout  # noqa: E402

from sqlalchemy import select  # noqa: E402

from proto_index import Store  # noqa: E402
from proto_index.store.schema import Recording, Window  # noqa: E402
from proto_index.options import EnvironmentOptions

LABELS = ["siren", "dog bark", "drilling", "bird song"]


def make_store(work: Path, files: int) -> tuple[Path, list[tuple[str, float, float]]]:
    """A store of ``files`` one-window recordings, class set ``urban`` and environment ``park``; its windows."""
    write_files(work / "audio", files)
    with Store.init(work / "store", model="bench-tiny", encoder=TinyEncoder()) as s:
        s.ingest([work / "audio"])
        s.add_classes("urban", LABELS)
        s.add_environment("park", EnvironmentOptions(text="park"))
        with s._storage.session() as db:
            windows = list(db.execute(select(Recording.path, Window.start_s, Window.end_s).join(Window)))
    return work / "store", sorted(tuple(w) for w in windows)


def write_decisions(path: Path, windows: list[tuple[str, float, float]], rows: int) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label"])
        for k in range(rows):
            p, start, end = windows[k % len(windows)]
            w.writerow([p, f"{start:.6f}", f"{end:.6f}", "park", LABELS[k % 4], "right", ""])
    return path


def timed(code: Path, work: Path, store: Path, decisions: Path, name: str) -> float:
    fresh = work / f"store-{name}"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(store, fresh)
    seconds, _ = cli(code, work / "cache", "annotate", str(decisions), "--store", str(fresh))
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=2000, help="stored recordings (one window each)")
    ap.add_argument("--baseline", metavar="REV", help="also time this commit's code")
    ap.add_argument("--previous", type=float, metavar="RATE", help="a rows/s figure to compare with")
    args = ap.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-annotate-") as tmp:
        work = Path(tmp)
        store, windows = make_store(work, args.files)
        decisions = write_decisions(work / "decisions.csv", windows, args.rows)
        here = installed_layout(ROOT, work / "after")
        after = timed(here, work, store, decisions, "after")
        rate = args.rows / after
        print(f"after:  {args.rows:,} rows in {after:.1f} s = {rate:,.0f} rows/s")
        if args.baseline:
            base = installed_layout(extract(args.baseline, work / "src"), work / "before")
            before = timed(base, work, store, decisions, "before")
            print(f"before ({args.baseline}): {before:.1f} s = {args.rows / before:,.0f} rows/s")
            print(f"speed-up: {before / after:.1f}x")
        if args.previous:
            print(f"against {args.previous:,.0f} rows/s: {rate / args.previous:.1f}x")


if __name__ == "__main__":
    main()
