"""Data for the demo (scripts/demo.sh): a synthetic corpus, archive and background recordings, and scoring.

    python -m proto_index.demo data OUT      # writes OUT/{corpus,archive,backgrounds}, OUT/labels.txt
    python -m proto_index.demo score OUT/labels.csv OUT/archive/manifest.csv
"""
from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

from proto_index.audio import synth

ENVIRONMENTS = ("park", "airport", "metro_station")


def write_demo_data(out: Path, corpus_clips: int = 60, archive_clips: int = 24, seed: int = 0) -> None:
    out = Path(out)
    synth.write_corpus(out / "corpus", corpus_clips, seed, environments=ENVIRONMENTS)
    synth.write_archive(out / "archive", archive_clips, ENVIRONMENTS, seed)
    for env in ENVIRONMENTS:
        synth.write_backgrounds(out / "backgrounds" / env, env, 3, seed)
    (out / "labels.txt").write_text("".join(label.replace("_", " ") + "\n" for label in synth.FOREGROUND_LABELS))


def score(predictions: Path, manifest: Path) -> str:
    """Accuracy of a classify CSV against the truth column of the demo manifest."""
    with open(manifest, newline="") as f:
        truth = {(manifest.parent / r["path"]).resolve(): r["label"].replace("_", " ") for r in csv.DictReader(f)}
    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    hits = sum(truth.get(Path(r["path"]).resolve()) == r["label"] for r in rows)
    spread = Counter(r["label"] for r in rows).most_common()
    return (
        f"accuracy {hits}/{len(rows)} = {hits / max(len(rows), 1):.2f}; predicted labels: "
        + ", ".join(f"{label} x{n}" for label, n in spread)
    )


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "data":
        write_demo_data(Path(argv[1]))
        print(f"wrote demo audio under {argv[1]}")
        return 0
    if len(argv) == 3 and argv[0] == "score":
        print(score(Path(argv[1]), Path(argv[2])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
