"""Index at scale on synthetic CLAP-like vectors: exact Flat vs the compressed index proto-index picks.

For each corpus size: build time, memory per vector, TGAP build (50 classes, N=35: search the text
anchors, read the exact neighbours, take centroids), search latency, and recall@35 of the
compressed index (with its exact re-ranking) against exact search. Ratios are against Flat, measured
in the same run. The vectors are clustered unit vectors; queries are either "anchors" (cluster
centres pushed off the audio manifold by a shared modality-gap vector, as text anchors are) or
in-distribution clips.

    .venv/bin/python bench/index.py                 # 1M vectors
    .venv/bin/python bench/index.py --sizes 1000000,5000000
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proto_index.core.index_plan import ivfpq_plan  # noqa: E402
from proto_index.core.prototypes import tgap_prototypes  # noqa: E402
from proto_index.store.index import VectorIndex  # noqa: E402
from proto_index.store.vectors import VectorFile  # noqa: E402

DIM = 512
N_CLUSTERS = 2_000
N_CLASSES = 50
TGAP_N = 35


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def write_corpus(vf: VectorFile, n: int, centres: np.ndarray, seed: int, chunk: int = 100_000) -> None:
    rng = np.random.default_rng(seed)
    for at in range(0, n, chunk):
        m = min(chunk, n - at)
        labels = rng.integers(0, len(centres), m)
        vf.append(unit(centres[labels] + 0.06 * rng.standard_normal((m, DIM)).astype(np.float32)))


def median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


def run(n: int, workdir: Path) -> list[dict]:
    rng = np.random.default_rng(0)
    centres = unit(rng.standard_normal((N_CLUSTERS, DIM)).astype(np.float32))
    gap = unit(rng.standard_normal(DIM).astype(np.float32))
    anchors = unit(centres[:N_CLASSES] + 1.2 * gap)  # cos(anchor, its cluster) ~ 0.6: a modality gap
    clips = unit(centres[rng.integers(0, N_CLUSTERS, 200)] + 0.06 * rng.standard_normal((200, DIM)).astype(np.float32))

    vf = VectorFile(workdir / f"vectors-{n}.f32", DIM)
    t = time.perf_counter()
    write_corpus(vf, n, centres, seed=1)
    print(f"[{n}] wrote {n} vectors in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    rows = np.arange(n, dtype=np.int64)

    results = []
    truth = {}
    for name, plan in (("Flat (exact)", None), ("auto compressed", ivfpq_plan(n, DIM))):
        t = time.perf_counter()
        index = VectorIndex.build(DIM, rows, vf.read, plan)
        build_s = time.perf_counter() - t
        index.save(workdir / "probe.faiss")
        bytes_per_vector = (workdir / "probe.faiss").stat().st_size / n

        def tgap():
            _, nb = index.search(anchors, TGAP_N)
            return tgap_prototypes(vf.read(nb.ravel()).reshape(N_CLASSES, TGAP_N, DIM))

        tgap_s = median_time(tgap)
        lat = []
        for q in clips[:50]:
            t = time.perf_counter()
            index.search(q, 10)
            lat.append(time.perf_counter() - t)
        _, nb_anchor = index.search(anchors, TGAP_N)
        _, nb_clip = index.search(clips, TGAP_N)
        if plan is None:
            truth = {"anchor": nb_anchor, "clip": nb_clip}
        results.append({
            "n": n,
            "index": name if plan is None else f"{plan.factory} +rerank x{plan.rerank}",
            "build_s": build_s,
            "bytes_per_vector": bytes_per_vector,
            "tgap_s": tgap_s,
            "search_ms": 1000 * statistics.median(lat),
            "recall_anchor": recall(nb_anchor, truth["anchor"]),
            "recall_clip": recall(nb_clip, truth["clip"]),
        })
        print(f"[{n}] {results[-1]}", file=sys.stderr)
        del index
    vf.path.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--workdir", default=None, help="where to put the temporary vector file (needs 2 KB per vector)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            rows += run(n, Path(tmp))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores; faiss threads default; {time.strftime('%Y-%m-%d')}")
    head = ("vectors", "index", "build s", "B/vector", "TGAP 50x35 s", "search ms", "recall@35 anchors", "recall@35 clips", "memory vs Flat", "TGAP vs Flat")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    flat = {}
    for r in rows:
        if r["index"].startswith("Flat"):
            flat[r["n"]] = r
        f = flat[r["n"]]
        print(
            f"| {r['n']:,} | {r['index']} | {r['build_s']:.1f} | {r['bytes_per_vector']:.0f} | {r['tgap_s']:.3f} | "
            f"{r['search_ms']:.2f} | {r['recall_anchor']:.3f} | {r['recall_clip']:.3f} | "
            f"{r['bytes_per_vector'] / f['bytes_per_vector']:.3f}x | {r['tgap_s'] / f['tgap_s']:.2f}x |"
        )


if __name__ == "__main__":
    main()
