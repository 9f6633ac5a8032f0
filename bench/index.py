"""Index at scale on synthetic CLAP-like vectors: the index proto-index builds vs exact search.

For each corpus size the vectors are written (in chunks, float16 by default, as ``--vector-dtype
float16`` stores keep them) to a :class:`VectorFile` on disk, then the index is built the way a
store builds it: ``VectorIndex.build`` reading the exact vectors from the file, with the plan
``Storage.index_plan`` would pick (``plan_index`` and the store's memory budget) or, with
``--index FACTORY``, the one ``reindex --index FACTORY`` builds. Reported: build time, wall and
CPU (split into training and adding; CPU seconds stay meaningful on a shared machine), bytes per
vector of the saved index, peak anonymous memory, TGAP (50 classes, N=35: search the text anchors,
read the exact neighbours, take centroids), single-query search latency, recall@35.

The baseline, measured in the same run after the index, is exact brute force over the vector file
in chunks (never a float32 copy of the corpus); it also gives the ground truth. A FAISS ``Flat``
index is built too while its float32 copy fits ``--flat-max-gib`` (at 10M it would need 19 GiB).
The vectors are clustered unit vectors; queries are either "anchors" (cluster centres pushed off
the audio manifold by a shared modality-gap vector, as text anchors are) or in-distribution clips.

    .venv/bin/python bench/index.py                                   # 1M vectors (the plan: Flat)
    .venv/bin/python bench/index.py --sizes 10000000 --workdir /tmp   # needs 1 KB per vector on disk
    .venv/bin/python bench/index.py --vectors FILE --index IVF1024,PQ128   # reuse a written file
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proto_index.core.index_plan import DEFAULT_MEMORY_BUDGET, flat_plan, plan_from_factory, plan_index  # noqa: E402
from proto_index.core.prototypes import tgap_prototypes  # noqa: E402
from proto_index.store.index import VectorIndex  # noqa: E402
from proto_index.store.vectors import VectorFile  # noqa: E402
from timing import median_seconds  # noqa: E402

DIM = 512
N_CLUSTERS = 2_000
N_CLASSES = 50
N_CLIPS = 200
TGAP_N = 35
GiB = 1 << 30


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class AnonPeak:
    """Peak anonymous memory (RssAnon) of this process, sampled every 0.2 s. ``ru_maxrss`` would count
    the memory-mapped vector file's pages too: page cache the kernel reclaims, not the process's own."""

    def __init__(self) -> None:
        self.peak_kib = 0
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            with open("/proc/self/status") as f:
                kib = next((int(line.split()[1]) for line in f if line.startswith("RssAnon:")), 0)
            self.peak_kib = max(self.peak_kib, kib)
            time.sleep(0.2)

    def gib(self) -> float:
        return self.peak_kib / (1 << 20)


ANON = AnonPeak() if Path("/proc/self/status").exists() else None


def peak_rss_gib() -> float:
    """Peak anonymous memory so far (Linux), else the peak RSS."""
    if ANON is not None:
        return ANON.gib()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)


def write_corpus(vf: VectorFile, n: int, centres: np.ndarray, seed: int, chunk: int = 100_000) -> None:
    rng = np.random.default_rng(seed)
    for at in range(0, n, chunk):
        m = min(chunk, n - at)
        labels = rng.integers(0, len(centres), m)
        vf.append(unit(centres[labels] + 0.06 * rng.standard_normal((m, DIM), dtype=np.float32)))


def brute_force(vf: VectorFile, queries: np.ndarray, k: int, chunk: int = 200_000) -> np.ndarray:
    """Exact top-``k`` rows per query by inner product, one float32 chunk of the file at a time."""
    mm = vf.memmap()
    q = np.ascontiguousarray(queries, dtype=np.float32)
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for at in range(0, mm.shape[0], chunk):
        scores = q @ np.asarray(mm[at : at + chunk], dtype=np.float32).T
        kk = min(k, scores.shape[1])
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(scores, top, 1)], axis=1)
        best_i = np.concatenate([best_i, top + at], axis=1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


def measure(name: str, n: int, index, vf: VectorFile, anchors, clips, workdir: Path, build: dict) -> dict:
    """Size, TGAP and search latency of ``index``, and its neighbours for the recall queries."""
    path = workdir / "probe.faiss"
    index.save(path)
    bytes_per_vector = path.stat().st_size / n
    path.unlink()

    def tgap():
        _, nb = index.search(anchors, TGAP_N)
        return tgap_prototypes(vf.read(nb.ravel()).reshape(N_CLASSES, TGAP_N, DIM))

    tgap_s = median_seconds(tgap)
    lat = []
    for q in clips[:50]:
        t = time.perf_counter()
        index.search(q, 10)
        lat.append(time.perf_counter() - t)
    row = {
        "n": n, "index": name, **build, "bytes_per_vector": bytes_per_vector, "tgap_s": tgap_s,
        "search_ms": 1000 * statistics.median(lat), "peak_rss_gib": peak_rss_gib(),
        "found_anchor": index.search(anchors, TGAP_N)[1], "found_clip": index.search(clips, TGAP_N)[1],
    }
    log(f"[{n}] {name}: build {build}, {bytes_per_vector:.0f} B/vector, TGAP {tgap_s:.3f} s, search {row['search_ms']:.2f} ms")
    return row


def build_planned(n: int, plan, vf: VectorFile, rows: np.ndarray) -> tuple[VectorIndex, dict]:
    """Build ``plan`` as a store does (``VectorIndex.build``), timing training and adding apart."""
    stamps: list[float] = []
    cpu_stamps: list[float] = []
    t, cpu = time.perf_counter(), time.process_time()

    def progress(_: int) -> None:
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
        if len(stamps) == 1 or len(stamps) % 10 == 0:
            log(f"[{n}] {plan.factory}: {len(stamps)} chunks added, {stamps[-1] - t:.0f} s "
                f"({cpu_stamps[-1] - cpu:.0f} CPU s) since the build began")

    index = VectorIndex.build(DIM, rows, vf.read, plan, on_chunk=progress)
    build_s, build_cpu = time.perf_counter() - t, time.process_time() - cpu
    if plan.exact:
        return index, {"build_s": build_s, "build_cpu_s": build_cpu}
    # the first chunk's timestamp closes training + one chunk; later chunks time the adding alone
    chunks = max(len(stamps) - 1, 1)
    train_s = stamps[0] - t - (stamps[-1] - stamps[0]) / chunks
    train_cpu = cpu_stamps[0] - cpu - (cpu_stamps[-1] - cpu_stamps[0]) / chunks
    return index, {"build_s": build_s, "train_s": train_s, "add_s_per_m": (build_s - train_s) * 1e6 / n,
                   "build_cpu_s": build_cpu, "train_cpu_s": train_cpu, "add_cpu_s_per_m": (build_cpu - train_cpu) * 1e6 / n}


def run(n: int, workdir: Path, vf: VectorFile, args) -> list[dict]:
    """The index first (the long part), then the exact baseline: ground truth, recall, timings."""
    rng = np.random.default_rng(0)
    centres = unit(rng.standard_normal((N_CLUSTERS, DIM)).astype(np.float32))
    gap = unit(rng.standard_normal(DIM).astype(np.float32))
    anchors = unit(centres[:N_CLASSES] + 1.2 * gap)  # cos(anchor, its cluster) ~ 0.6: a modality gap
    clips = unit(centres[rng.integers(0, N_CLUSTERS, N_CLIPS)] + 0.06 * rng.standard_normal((N_CLIPS, DIM)).astype(np.float32))
    if vf.count == 0:
        t = time.perf_counter()
        write_corpus(vf, n, centres, seed=1)
        log(f"[{n}] wrote {n} {vf.dtype} vectors ({vf.path.stat().st_size / GiB:.1f} GiB) in {time.perf_counter() - t:.1f} s")
    rows = np.arange(n, dtype=np.int64)
    results = []

    flat = flat_plan(DIM)
    if flat.memory_bytes(n) <= args.flat_max_gib * GiB:
        index, build = build_planned(n, flat, vf, rows)
        results.append(measure("Flat (exact)", n, index, vf, anchors, clips, workdir, build))
        del index
    else:
        log(f"[{n}] Flat not built: it needs {flat.memory_bytes(n) / GiB:.1f} GiB of RAM (> --flat-max-gib)")

    if args.index == "auto":  # what Storage.index_plan picks (the store's memory budget setting)
        plan, how = plan_index(n, DIM, args.memory_budget_mib << 20), "auto"
    else:  # what `reindex --index FACTORY` builds
        plan, how = plan_from_factory(args.index, n, DIM), "reindex --index"
    if not plan.exact:
        index, build = build_planned(n, plan, vf, rows)
        name = f"{plan.factory} ({how}) +rerank x{plan.rerank}, nprobe {plan.nprobe}, trained on {plan.train_size:,}"
        results.append(measure(name, n, index, vf, anchors, clips, workdir, build))
        del index

    # the exact baseline: brute force over the file in chunks (also the ground truth)
    t = time.perf_counter()
    truth_all = brute_force(vf, np.concatenate([anchors, clips]), TGAP_N)
    log(f"[{n}] ground truth for {N_CLASSES + N_CLIPS} queries in {time.perf_counter() - t:.1f} s")
    for r in results:
        r["recall_anchor"] = recall(r.pop("found_anchor"), truth_all[:N_CLASSES])
        r["recall_clip"] = recall(r.pop("found_clip"), truth_all[N_CLASSES:])
        log(f"[{n}] {r['index']}: recall@35 anchors {r['recall_anchor']:.3f}, clips {r['recall_clip']:.3f}")
    exact_tgap_s = median_seconds(
        lambda: tgap_prototypes(vf.read(brute_force(vf, anchors, TGAP_N).ravel()).reshape(N_CLASSES, TGAP_N, DIM)), 1
    )
    exact_search_s = median_seconds(lambda: brute_force(vf, clips[:1], 10), 3 if n < 2_000_000 else 1)
    exact = {
        "n": n, "index": "exact brute force (chunked, no index)", "bytes_per_vector": 0.0, "tgap_s": exact_tgap_s,
        "search_ms": 1000 * exact_search_s, "recall_anchor": 1.0, "recall_clip": 1.0, "peak_rss_gib": peak_rss_gib(),
    }
    log(f"[{n}] {exact}")
    return [exact] + results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--vector-dtype", default="float16", choices=("float16", "float32"))
    parser.add_argument("--flat-max-gib", type=float, default=6.0, help="build a Flat index only below this much RAM")
    parser.add_argument("--memory-budget-mib", type=int, default=DEFAULT_MEMORY_BUDGET >> 20,
                        help="the store's index memory budget (default: the product's)")
    parser.add_argument("--workdir", default=None, help="where to put the temporary vector file")
    parser.add_argument("--index", default="auto", help="auto (the store's plan) or a factory as `reindex --index` takes")
    parser.add_argument("--vectors", default=None,
                        help="an existing vector file (of --vector-dtype) to index instead of writing one; kept")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        if args.vectors:
            if not Path(args.vectors).is_file() or Path(args.vectors).stat().st_size < DIM * 2:
                parser.error(f"--vectors {args.vectors}: no such vector file, or empty")
            vf = VectorFile(Path(args.vectors), DIM, args.vector_dtype)
            results += run(vf.count, Path(tmp), vf, args)
        for n in ([] if args.vectors else (int(s) for s in args.sizes.split(","))):
            vf = VectorFile(Path(tmp) / f"vectors-{n}.{args.vector_dtype}", DIM, args.vector_dtype)
            results += run(n, Path(tmp), vf, args)
            vf.path.unlink()
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores; vectors {args.vector_dtype}; {time.strftime('%Y-%m-%d')}")
    head = ("vectors", "index", "build s (train s, add s/M); same in CPU s", "index B/vector", "peak anon GiB", "TGAP 50x35 s",
            "search ms", "recall@35 anchors", "recall@35 clips", "TGAP vs exact", "search vs exact")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    exact = {}
    for r in results:
        if r["index"].startswith("exact"):
            exact[r["n"]] = r
        e = exact[r["n"]]
        build = "-" if "build_s" not in r else f"{r['build_s']:.1f}"
        if "train_s" in r:
            build += f" ({r['train_s']:.0f}, {r['add_s_per_m']:.0f}); CPU s {r['build_cpu_s']:.0f} ({r['train_cpu_s']:.0f}, {r['add_cpu_s_per_m']:.0f})"
        print(
            f"| {r['n']:,} | {r['index']} | {build} | {r['bytes_per_vector']:.0f} | {r['peak_rss_gib']:.1f} | "
            f"{r['tgap_s']:.3f} | {r['search_ms']:.2f} | {r['recall_anchor']:.3f} | {r['recall_clip']:.3f} | "
            f"{r['tgap_s'] / e['tgap_s']:.3f}x | {r['search_ms'] / e['search_ms']:.3f}x |"
        )


if __name__ == "__main__":
    main()
