"""Stand-in for a person's review of the demo, for the review loop of docs/review.md (not for real data).

    python scripts/demo_review.py windows.csv demo/archive/manifest.csv decisions.csv

Marks each row of a `classify` CSV `right` when its label is the clip's true class (the demo
manifest's `label` column), else `relabel`s it with the true class, and writes the decisions CSV
that `proto-index annotate` reads (the report's review download has the same columns).
"""
import csv
import sys
from pathlib import Path


def main(classification: str, manifest: str, out: str) -> None:
    with open(manifest, newline="") as f:
        truth = {(Path(manifest).parent / r["path"]).resolve(): r["label"].replace("_", " ") for r in csv.DictReader(f)}
    with open(classification, newline="") as f, open(out, "w", newline="") as g:
        w = csv.writer(g)
        w.writerow(["path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label"])
        for r in csv.DictReader(f):
            true = truth.get(Path(r["path"]).resolve())
            if true is None or not r["label"]:
                continue
            right = r["label"] == true
            w.writerow([r["path"], r.get("start_s", ""), r.get("end_s", ""), r["environment"], r["label"],
                        "right" if right else "relabel", "" if right else true])


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
