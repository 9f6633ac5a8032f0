"""Transductive adaptation at archive scale: what `classify --transductive` adds over the argmax.

    python bench/transductive.py [--windows 100000] [--classes 10] [--repeats 1]

On a generated 512-d space (classes as clusters, text anchors across a modality gap, pulled towards
other classes), times the step `classify --transductive` runs per environment, with its defaults:
the FAISS neighbour graph (proto_index.store.knn) and the EM (proto_index.core.transductive), against
the baseline every classify runs (profiles and argmax). Prints medians, the ratio and both accuracies.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
from timing import median_seconds

from proto_index.core.decision import decide
from proto_index.core.profiles import cosine_profiles, l2_normalize
from proto_index.core.transductive import TransductiveOptions, prior_from_profiles, transduce
from proto_index.store.knn import neighbour_graph


def space(n: int, k: int, d: int = 512, seed: int = 0):
    rng = np.random.default_rng(seed)
    common = l2_normalize(rng.normal(size=d))
    centres = l2_normalize(common + l2_normalize(rng.normal(size=(k, d))))
    labels = rng.integers(0, k, n)
    audio = l2_normalize(centres[labels] + 0.9 * l2_normalize(rng.normal(size=(n, d)))).astype(np.float32)
    gap = l2_normalize(rng.normal(size=d))
    anchors = l2_normalize(centres + 0.9 * np.roll(centres, -1, axis=0) + 2.0 * gap)
    return audio, anchors, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=100_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    audio, anchors, labels = space(args.windows, args.classes)
    options = TransductiveOptions()
    out = {}

    def baseline():
        out["argmax"] = decide(cosine_profiles(audio, anchors)).winners

    def transductive():
        prior = prior_from_profiles(cosine_profiles(audio, anchors), options.temperature)
        graph = neighbour_graph(audio, options.neighbours)
        out["transductive"] = transduce(audio, prior, graph, options).assignments.argmax(axis=1)

    def graph_only():
        neighbour_graph(audio, options.neighbours)

    base = median_seconds(baseline, args.repeats)
    graph = median_seconds(graph_only, args.repeats)
    full = median_seconds(transductive, args.repeats)
    print(f"{args.windows} windows x 512-d, {args.classes} classes, {os.cpu_count()} CPUs, median of {args.repeats}")
    print(f"argmax (profiles + decide):        {base:8.2f} s   accuracy {np.mean(out['argmax'] == labels):.3f}")
    print(f"transductive (graph + EM):         {full:8.2f} s   accuracy {np.mean(out['transductive'] == labels):.3f}")
    print(f"  of which the neighbour graph:    {graph:8.2f} s")
    print(f"ratio transductive / argmax:       {full / base:8.1f}x")


if __name__ == "__main__":
    main()
