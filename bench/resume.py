"""A no-op re-ingest of many small files: seconds with the stat check against reading and hashing every file.

Writes N tiny distinct WAVs (one header, 400 samples at 8 kHz, a counter in the first samples, so no
two files share content), ingests them once with a trivial encoder (setup, not timed), then times,
alternating, `Store.ingest` of the same folder with the default stat check ("after") and with
``run=IngestOptions(rehash=True)`` (every file read and hashed, as every rerun did before:
"before"). Both runs find nothing to add. The page cache is warm for both (the setup read every file); a cold cache makes
"before" slower still, while "after" only stats.

    .venv/bin/python bench/resume.py                 # 100,000 files
    .venv/bin/python bench/resume.py --files 2000 --repeats 1
"""
from __future__ import annotations

import argparse
import os
import platform
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from proto_index import EmbedOptions, IngestOptions, Store  # noqa: E402
from proto_index.embed.encoder import ModelIdentity  # noqa: E402

RATE, FRAMES = 8000, 400


class TinyEncoder:
    """Any vector will do here: the bench times finding and skipping files, not the model."""

    identity = ModelIdentity("bench-tiny", "first-samples", False, "sha256:" + "0" * 64, 8)
    dim = 8

    def embed_waveforms(self, waveforms):
        out = np.stack([np.asarray(w[:8], dtype=np.float32) + 1.0 for w in waveforms])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_texts(self, texts):
        return np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8)


def write_files(folder: Path, n: int) -> None:
    data = bytearray(np.sin(np.arange(FRAMES) * 0.3).__mul__(8000).astype("<i2").tobytes())
    header = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " +
              struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16) + b"data" + struct.pack("<I", len(data)))
    for i in range(n):
        sub = folder / f"{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        data[:4] = struct.pack("<I", i)  # distinct content per file
        with open(sub / f"f{i:06d}.wav", "wb") as fh:
            fh.write(header + data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="proto-index-resume-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_files(root / "corpus", args.files)
        print(f"wrote {args.files} files in {time.perf_counter() - t0:.1f} s")
        store = Store.init(root / "store", model="bench-tiny", encoder=TinyEncoder())
        t0 = time.perf_counter()
        first = store.ingest([root / "corpus"], options=EmbedOptions(batch_windows=64),
                              run=IngestOptions(commit_windows=4096))
        print(f"setup ingest: {first.added} files in {time.perf_counter() - t0:.1f} s")
        assert first.added == args.files, first
        times = {"after (stat check)": [], "before (rehash)": []}
        for _ in range(args.repeats):
            for name, rehash in (("after (stat check)", False), ("before (rehash)", True)):
                t0 = time.perf_counter()
                report = store.ingest([root / "corpus"], run=IngestOptions(rehash=rehash))
                times[name].append(time.perf_counter() - t0)
                assert (report.added, report.skipped) == (0, args.files), report
        store.close()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    best = {k: min(v) for k, v in times.items()}
    for name, secs in best.items():
        print(f"{name:20s} {secs:8.2f} s  ({args.files / secs:,.0f} files/s)  runs: {', '.join(f'{s:.2f}' for s in times[name])}")
    print(f"speed-up: {best['before (rehash)'] / best['after (stat check)']:.1f}x")


if __name__ == "__main__":
    main()
