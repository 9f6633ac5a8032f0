"""Whole ingest, files to committed store, with thread and process decoding, and the model's share.

Generates 10 s clips (44.1 kHz stereo, cycling through WAV 16-bit, FLAC, MP3 and Ogg Vorbis) and
times ``Store.ingest`` of their folder into a fresh store with the library's defaults (find, read,
hash, decode, resample, window, embed, append and fsync the vectors, catalog, index), store creation
and model loading excluded, for each decoding arm and each encoder:

  free       an encoder that costs nothing: the ceiling of everything but the model (decoding,
             hashing, the store's writes)
  gpu-like   a fixed 1/934 s per window spent in ``time.sleep`` (the GIL released, as while a CUDA
             kernel runs), with the CUDA default batch of 32: the H100 bf16 rate of
             bench/gpu_embed.py, so the arm shows whether decoding here could feed that GPU
  model      clap-tiny-random on this machine's CPU at bf16 (``--no-model`` leaves it out)

Decoding arms: 1 thread (the default), 2 threads, 2 processes (``decoder="processes"``; their start,
about a second, is inside the timing, as a user sees it). Reports files/s and windows/s, the time
spent inside the encoder as a share of the wall time, and the CPU of this process per file (with
process decoding: what is left in the interpreter the model's thread shares, i.e. batching,
relaying and the store's writes). Ratios are against the default arm of the same encoder and repeat.

    .venv/bin/python bench/ingest_e2e.py                  # 32 clips, 3 repeats
    .venv/bin/python bench/ingest_e2e.py --clips 64 --repeats 2 --no-model
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from decode_rate import ENCODINGS, make_clips  # noqa: E402

H100_BF16_CLIPS_PER_S = 934.0
"""clap-tiny-random, bf16, batch 32, on one H100 (bench/gpu_embed.py; bench/RESULTS.md)."""

ARMS = {"1 thread (default)": (1, "threads"), "2 threads": (2, "threads"), "2 processes": (2, "processes")}


class FixedCost:
    """An encoder that spends ``seconds_per_window`` per window in ``time.sleep`` and returns unit vectors."""

    dim = 16

    def __init__(self, name: str, seconds_per_window: float, device: str):
        from proto_index.embed.encoder import ModelIdentity

        self.seconds_per_window, self.device = seconds_per_window, device
        self.identity = ModelIdentity(name, "fixed-cost", False, "sha256:" + "0" * 64, self.dim)

    def embed_waveforms(self, waveforms):
        if self.seconds_per_window:
            time.sleep(self.seconds_per_window * len(waveforms))
        out = np.zeros((len(waveforms), self.dim), np.float32)
        out[:, 0] = 1.0
        return out

    def embed_texts(self, texts):
        return self.embed_waveforms(texts)


class Timed:
    """Counts the seconds ``encoder.embed_waveforms`` takes (the model's share of an ingest)."""

    def __init__(self, encoder):
        self.seconds = 0.0
        inner = encoder.embed_waveforms

        def embed_waveforms(waveforms):
            start = time.perf_counter()
            try:
                return inner(waveforms)
            finally:
                self.seconds += time.perf_counter() - start

        encoder.embed_waveforms = embed_waveforms


def cpu_seconds() -> float:
    """CPU seconds of this process alone (the consumer, the relaying threads, the store's writes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def ingest(encoder, folder: Path, store_dir: Path, workers: int, decoder: str) -> dict:
    """One ingest into a fresh store with defaults but for the decoding arm; its timings."""
    from proto_index import Store
    from proto_index.options import EmbedOptions

    timer = Timed(encoder)
    store = Store.init(store_dir, model=encoder.identity.name, encoder=encoder)
    try:
        cpu, start = cpu_seconds(), time.perf_counter()
        report = store.ingest([folder], options=EmbedOptions(workers=workers, decoder=decoder))
        wall = time.perf_counter() - start
        cpu = cpu_seconds() - cpu
    finally:
        store.close()
        del encoder.embed_waveforms
    assert report.added and not report.failed, report
    return {"wall": wall, "model": timer.seconds, "cpu": cpu, "files": report.added, "windows": report.windows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-model", action="store_true", help="leave out the real model's arm")
    args = parser.parse_args()

    encoders = {"free": FixedCost("bench-free", 0.0, "cpu"),
                "gpu-like": FixedCost("bench-gpu-like", 1 / H100_BF16_CLIPS_PER_S, "cuda")}
    if not args.no_model:
        from proto_index.embed.seeded import random_encoder

        encoders["model"] = random_encoder("clap-tiny-random", fusion=False, device="cpu", precision="bf16")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        encodings = list(ENCODINGS)
        for k, encoding in enumerate(encodings):  # round robin over the encodings
            make_clips(folder / encoding, encoding, args.clips // 4 + (k < args.clips % 4))
        n_stores = 0
        results: dict[tuple[str, str], list[dict]] = {}
        for name, encoder in encoders.items():  # warm up: page cache, kernels, imports
            n_stores += 1
            ingest(encoder, folder, Path(tmp) / f"s{n_stores}", 1, "threads")
        for rep in range(args.repeats):
            for name, encoder in encoders.items():
                for arm, (workers, decoder) in ARMS.items():
                    n_stores += 1
                    results.setdefault((name, arm), []).append(
                        ingest(encoder, folder, Path(tmp) / f"s{n_stores}", workers, decoder))
            print(f"  repeat {rep + 1}/{args.repeats}, load average {os.getloadavg()[0]:.1f}", flush=True)

    print()
    print("| encoder | decoding | median s | files/s | windows/s | model share of wall | this process's CPU ms per file | vs default |")
    print("|---|---|---|---|---|---|---|---|")
    for name in encoders:
        base = [r["wall"] for r in results[(name, "1 thread (default)")]]
        for arm in ARMS:
            runs = results[(name, arm)]
            wall = statistics.median(r["wall"] for r in runs)
            files, windows = runs[0]["files"], runs[0]["windows"]
            share = statistics.median(r["model"] / r["wall"] for r in runs)
            cpu = statistics.median(r["cpu"] / r["files"] for r in runs)
            ratio = statistics.median(b / r["wall"] for b, r in zip(base, runs))
            print(f"| {name} | {arm} | {wall:.2f} | {files / wall:.1f} | {windows / wall:.1f} | {100 * share:.0f}% | "
                  f"{1000 * cpu:.1f} | {ratio:.2f}x |")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
