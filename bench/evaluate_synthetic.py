"""Time the evaluation engine at the paper's scale on synthetic embeddings (no model, no audio).

UrbanSound8K-sized: 10 classes x 873 clips, 10 folds, 512 dimensions, 1440 background recordings
per environment (TAU 2019's count per scene), every method, adaptation and tau rule.

    .venv/bin/python bench/evaluate_synthetic.py [--snrs 6 8 10] [--environments park airport]
"""
from __future__ import annotations

import argparse
import time

from proto_index.core.synthetic_space import SpaceConfig, generate
from proto_index.evaluation.protocol import evaluate
from proto_index.options import Settings
from proto_index.evaluation.synthetic_run import experiment_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snrs", type=float, nargs="+", default=[6.0, 8.0, 10.0])
    ap.add_argument("--environments", nargs="+", default=["park", "airport"])
    args = ap.parse_args()
    t0 = time.perf_counter()
    config = SpaceConfig(dim=512, environments=tuple(args.environments))
    data = experiment_data(generate(config, per_class=873, n_folds=10, backgrounds_per_env=1440, snrs_db=tuple(args.snrs)))
    t1 = time.perf_counter()
    ev = evaluate(data, Settings())
    t2 = time.perf_counter()
    n = len(data.conditions)
    print("| conditions | scenes each | folds | generate s | evaluate s | s per condition |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {n} | {len(data.conditions[0].labels)} | {len(ev.folds)} | {t1 - t0:.1f} | {t2 - t1:.1f} | {(t2 - t1) / n:.1f} |")


if __name__ == "__main__":
    main()
