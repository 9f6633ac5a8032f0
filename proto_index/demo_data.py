"""Data for the demo (scripts/demo.sh): a synthetic corpus, archive and background recordings, and scoring.

    python -m proto_index.demo_data data OUT      # writes OUT/{corpus,archive,backgrounds}, OUT/labels.txt
    python -m proto_index.demo_data score OUT/labels.csv OUT/archive/manifest.csv
    python -m proto_index.demo_data table OUT/table OUT/archive/manifest.csv   # scores every OUT/table/P__ADAPT__TAU.csv
"""
from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

from proto_index import generated_audio

ENVIRONMENTS = ("park", "airport", "metro_station")


def write_demo_data(out: Path, corpus_clips: int = 60, archive_clips: int = 24, seed: int = 0) -> None:
    out = Path(out)
    generated_audio.write_corpus(out / "corpus", corpus_clips, seed, environments=ENVIRONMENTS)
    generated_audio.write_archive(out / "archive", archive_clips, ENVIRONMENTS, seed)
    for env in ENVIRONMENTS:
        generated_audio.write_backgrounds(out / "backgrounds" / env, env, 3, seed)
    (out / "labels.txt").write_text("".join(label.replace("_", " ") + "\n" for label in generated_audio.FOREGROUND_LABELS))


def _truth(manifest: Path) -> dict[Path, str]:
    with open(manifest, newline="") as f:
        return {(manifest.parent / r["path"]).resolve(): r["label"].replace("_", " ") for r in csv.DictReader(f)}


def accuracy(predictions: Path, manifest: Path) -> tuple[int, int]:
    """(hits, rows) of a classify CSV against the truth column of the demo manifest."""
    truth = _truth(manifest)
    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    return sum(truth.get(Path(r["path"]).resolve()) == r["label"] for r in rows), len(rows)


def table(folder: Path, manifest: Path) -> str:
    """A table of the accuracies of the classify CSVs ``PROTOTYPES__ADAPT__TAU.csv`` in ``folder``:
    one row per prototype set and adaptation, one column per tau setting (``default``, ``auto``)."""
    cells: dict[tuple[str, str], dict[str, str]] = {}
    taus: list[str] = []
    for path in sorted(Path(folder).glob("*.csv")):
        parts = path.stem.split("__")
        if len(parts) != 3:
            continue
        prototypes, adapt, tau = parts
        hits, n = accuracy(path, manifest)
        cells.setdefault((prototypes, adapt), {})[tau] = f"{hits}/{n} = {hits / max(n, 1):.2f}"
        if tau not in taus:
            taus.append(tau)
    taus.sort(key=lambda t: t != "default")
    header = ["prototypes", "adaptation", *(f"tau {t}" for t in taus)]
    order = {"none": 0, "text": 1, "audio": 2}
    keys = sorted(cells, key=lambda k: ("tgap" in k[0], k[0], order.get(k[1], 3), k[1]))  # zero-shot first
    rows = [[p, a, *(cells[p, a].get(t, "-") for t in taus)] for p, a in keys]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(x.ljust(w) for x, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def score(predictions: Path, manifest: Path) -> str:
    """Accuracy of a classify CSV against the truth column of the demo manifest."""
    hits, _ = accuracy(predictions, manifest)
    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f))
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
    if len(argv) == 3 and argv[0] == "table":
        print(table(Path(argv[1]), Path(argv[2])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
