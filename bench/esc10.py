"""ESC-10 with BirdNET through the public API: supervised, few-shot examples, classifier-anchored
prototypes and search by example, fold by fold.

    python bench/esc10.py [--data ../shared/data/esc10] [--work /tmp/esc10-bench]

ESC-10 (400 clips of ~5 s, 10 classes, 5 folds: the first digit of a file name) is read where it
lies, never copied. Every clip is ingested once into a `birdnet` store; then, per test fold:
supervised prototypes from the other folds' clips (confirmed with `annotate`), `examples`
prototypes from k = 1, 2, 5, 10 clips per class of the other folds, and `classifier` prototypes
(the 35 corpus windows BirdNET's own labels score highest, label-free) for the six classes BirdNET
has a label for, against BirdNET's own decision over those labels. Search by example: precision@10
of each clip's nearest clips (cosine of the file vectors). Prints one table; chance is 1/10 (1/6
for the six mapped classes).
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from proto_index import PrototypeInputs, Store
from proto_index.core.profiles import l2_normalize
from proto_index.options import EnvironmentOptions, PrototypeOptions

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {  # ESC-10 class -> BirdNET V2.4 labels
    "Dog bark": ["Dog_Dog"],
    "Baby cry": ["Human vocal_Human vocal"],
    "Person sneeze": ["Human non-vocal_Human non-vocal"],
    "Helicopter": ["Engine_Engine"],
    "Chainsaw": ["Power tools_Power tools"],
    "Rooster": ["Gallus gallus_Red Junglefowl"],
}
SHOTS = (1, 2, 5, 10)


def write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def accuracy(store: Store, clips: list[Path], labels: dict[Path, str], prototypes: str) -> float:
    result = store.classify([(p, "quiet") for p in clips], prototypes)
    return float(np.mean([r.label == labels[Path(r.path)] for r in result.files]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "esc10")
    ap.add_argument("--work", type=Path, default=Path("/tmp/esc10-bench"))
    args = ap.parse_args()
    clips = sorted(args.data.glob("*/*.ogg"))
    labels = {p: p.parent.name.split(" - ", 1)[1] for p in clips}
    classes = sorted(set(labels.values()))
    fold = {p: p.name[0] for p in clips}
    args.work.mkdir(parents=True, exist_ok=True)
    store_path = args.work / "store"
    fresh = not store_path.exists()
    store = Store.init(store_path, model="birdnet") if fresh else Store.open(store_path)
    start = time.perf_counter()
    report = store.ingest(clips)
    print(f"{len(clips)} clips: {report.added} ingested in {time.perf_counter() - start:.0f} s, {len(report.failed)} failed")
    if fresh:
        store.add_classes("esc10", classes)
        store.add_classes("mapped", sorted(MAPPING))
        store.add_environment("quiet", EnvironmentOptions(audio=[clips[0]], tau_audio=0.0))  # no background subtraction
    rows: dict[str, list[float]] = {}
    for f in "12345":
        test = [p for p in clips if fold[p] == f]
        train = [p for p in clips if fold[p] != f]
        decisions = write_csv(args.work / f"fold{f}.csv",
                              ["path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label"],
                              [[p, "", "", "", labels[p], "wrong" if fold[p] == f else "right", ""] for p in clips])
        store.annotate(decisions)
        store.build_prototypes("esc10", PrototypeOptions(method="supervised", replace=True))
        rows.setdefault("supervised (all other folds)", []).append(accuracy(store, test, labels, "esc10-supervised"))
        for k in SHOTS:
            shots = [p for c in classes for p in [q for q in train if labels[q] == c][:k]]
            examples = write_csv(args.work / f"examples{f}-{k}.csv", ["class", "path"], [[labels[p], p] for p in shots])
            store.build_prototypes("esc10", PrototypeOptions(method="examples", name=f"esc10-k{k}", replace=True, inputs=PrototypeInputs(examples=examples)))
            rows.setdefault(f"examples, {k} per class", []).append(accuracy(store, test, labels, f"esc10-k{k}"))
    mapping = write_csv(args.work / "mapping.csv", ["class", "model_label"],
                        [[c, label] for c, ls in MAPPING.items() for label in ls])
    store.build_prototypes("mapped", PrototypeOptions(method="classifier", n=35, replace=True, inputs=PrototypeInputs(mapping=mapping)))
    mapped = [p for p in clips if labels[p] in MAPPING]
    rows["classifier prototypes, 6 mapped classes"] = [accuracy(store, mapped, labels, "mapped-classifier35")]
    vectors = dict(zip(clips, np.asarray(store.embed_audio(clips))))  # stored windows, embedded once
    scores = store.encoder.label_scores(np.stack([vectors[p] for p in mapped]))
    column = {label: i for i, label in enumerate(store.encoder.labels)}
    names = sorted(MAPPING)
    own = np.stack([scores[:, [column[label] for label in MAPPING[c]]].max(axis=1) for c in names], axis=1)
    rows["BirdNET's own labels, 6 mapped classes"] = [float(np.mean([names[i] == labels[p] for i, p in zip(own.argmax(1), mapped)]))]
    unit = l2_normalize(np.stack([vectors[p] for p in clips]))
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :10]
    truth = np.array([labels[p] for p in clips])
    rows["search by example, precision@10"] = [float(np.mean(truth[top] == truth[:, None]))]
    store.close()
    print(f"| method | {' | '.join(f'fold {f}' for f in '12345')} | mean |")
    print("|---|" + "---:|" * 6)
    for name, values in rows.items():
        cells = [f"{v:.3f}" for v in values] + [""] * (5 - len(values))
        print(f"| {name} | {' | '.join(cells)} | {np.mean(values):.3f} |")


if __name__ == "__main__":
    main()
