"""Grow a store to N vectors in minutes, for load tests at scale (`bench/serve.py --store`).

Builds the small store `bench/serve.py` uses (8 generated clips, class set urban, prototypes
urban-tgap4, environments park and airport) in ``DIR/store``, then adds synthetic recordings whose
windows are clustered unit vectors (2,000 clusters, as `bench/index.py`) instead of embedded audio.
They go through ingest's own commit path (``proto_index.usecases.ingest.ingest`` with an embedder
that makes vectors rather than reading files; the store's writer lock, catalog rows, vector file,
index publication), then ``reindex`` builds the index asked for (IVF4096,PQ128 by default, the
compressed index of "Index at scale" in bench/RESULTS.md).

The synthetic recordings are empty placeholder files under ``DIR/synthetic``: searchable windows
whose audio cannot be played. Needs about 1.1 KB per vector on disk (float16 vectors, catalog) and,
while growing, 2 KB per vector for the interim Flat index.

    .venv/bin/python bench/grow_store.py /tmp/serve3-1m --vectors 1000000
    .venv/bin/python bench/serve.py --store /tmp/serve3-1m/store
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fakes  # noqa: E402,F401  (registers fake-bands, for a quick run)
from serve_server import small_store  # noqa: E402

from proto_index import Store  # noqa: E402
from proto_index.options import IngestOptions  # noqa: E402
from proto_index.usecases import ingest as ingest_pipeline  # noqa: E402
from proto_index.engine.embedding import EmbeddedFile  # noqa: E402

N_CLUSTERS = 2_000
HOP_S = 10.0


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def synthetic_embedder(dim: int, windows_per_file: int, remaining: int, seed: int):
    """An ingest embedder: each placeholder file becomes ``windows_per_file`` windows of clustered unit
    vectors (the last file takes what is left of ``remaining``)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((N_CLUSTERS, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def embed(paths, options=None, known_hashes=frozenset(), on_windows=None):
        left = remaining
        for path in paths:
            w = min(windows_per_file, left)
            if w <= 0:
                return
            left -= w
            x = centres[rng.integers(0, N_CLUSTERS, w)] + 0.06 * rng.standard_normal((w, dim), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            st = os.stat(path)
            starts = [i * HOP_S for i in range(w)]
            yield EmbeddedFile(path=path, duration_s=w * HOP_S, sample_rate=48_000, channels=1, starts_s=starts,
                               ends_s=[s + HOP_S for s in starts], vectors=x,
                               sha256=hashlib.sha256(f"synthetic:{seed}:{path.name}".encode()).hexdigest(),
                               size_bytes=st.st_size, mtime_ns=st.st_mtime_ns)
    return embed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=Path, help="a new folder: the store is DIR/store")
    ap.add_argument("--vectors", type=int, default=1_000_000, help="vectors in the grown store")
    ap.add_argument("--model", default="clap-tiny-demo")
    ap.add_argument("--windows-per-recording", type=int, default=1_000)
    ap.add_argument("--index", default="IVF4096,PQ128", help="what reindex builds ('auto': the store's plan)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.dir.exists():
        sys.exit(f"{args.dir} exists: give a new folder")
    args.dir.mkdir(parents=True)
    t0 = time.perf_counter()
    store_path = small_store(args.dir, model=args.model, vector_dtype="float16")
    log(f"small store built in {time.perf_counter() - t0:.0f} s")
    with Store.open(store_path) as store:
        storage = store._storage  # the writer ingest uses; Store.ingest takes no custom embedder
        have = storage.count_live_rows()
        add = max(0, args.vectors - have)
        files = -(-add // args.windows_per_recording)
        src = args.dir / "synthetic"
        src.mkdir()
        for i in range(files):
            (src / f"synthetic-{i:06d}.wav").touch()
        t0 = time.perf_counter()
        report = ingest_pipeline.ingest(
            storage, None, [src], embed=synthetic_embedder(storage.identity.dim, args.windows_per_recording, add, args.seed),
            run=IngestOptions(commit_windows=50_000, publish_windows=10 ** 12))
        log(f"added {report.windows} windows in {report.added} recordings in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        index = store.reindex(None if args.index == "auto" else args.index)
        log(f"reindex as {index.factory} in {time.perf_counter() - t0:.0f} s")
        print(f"{store_path}: {store.info()['counts']}, index {index.factory}")


if __name__ == "__main__":
    main()
