"""Decode rate per core: 10 s files read, hashed, decoded, resampled to 48 kHz mono and windowed.

Generates 10 s clips in four encodings (WAV 16-bit 44.1 kHz stereo, FLAC 16-bit 44.1 kHz stereo,
MP3 and Ogg Vorbis 44.1 kHz stereo) and, per encoding, measures what ingest does to each file
before the model (the reader of :mod:`proto_index.engine.reading`: read once, sha256, decode,
soxr HQ to 48 kHz, mixdown, int16 quantisation, 10 s windows):

  cpu/clip   CPU time of that work in one thread (``time.thread_time``): the decode cost per core,
             robust to other load on the machine; 1000 / it is clips/s per core
  N threads    wall clips/s through ``embed_files`` with a free encoder (zeros), N decoding threads
  N processes  the same with N decoding processes (``decoder="processes"``)
  CPU          CPU time per clip of each arm, this process and its (reaped) children together:
               what decoding in processes costs on top; and this process's alone: the part that
               shares one interpreter (and its GIL) with the model's thread

Every arm runs all the clips and half of them; rates and CPU per clip are taken from the
difference (the steady state of a long ingest: the processes' start, about a second each, and
any other fixed cost drop out; "start s" is what is left of the half run).

Under load from other jobs, wall-clock rates fall and scale less than the cores would allow; the
CPU figures hold. Run on an idle machine for wall-clock scaling.

The free encoder makes the pipeline's decoding its only work, so these are decoding's ceiling for
an ingest. Ratios are against the 1-thread arm of the same repeat.

    .venv/bin/python bench/decode_rate.py                 # 48 clips per encoding, 3 repeats, 1-2 workers
    .venv/bin/python bench/decode_rate.py --clips 24 --repeats 2 --formats wav,mp3
    python bench/decode_rate.py --clips 400 --workers 1,2,4,8,16    # on a 16-core (GPU) box
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
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ENCODINGS = {  # name: (suffix, format, subtype)
    "wav": ("wav", "WAV", "PCM_16"),
    "flac": ("flac", "FLAC", "PCM_16"),
    "mp3": ("mp3", "MP3", "MPEG_LAYER_III"),
    "ogg": ("ogg", "OGG", "VORBIS"),
}
RATE, CHANNELS, SECONDS = 44_100, 2, 10.0


def make_clips(folder: Path, encoding: str, n: int) -> list[Path]:
    """``n`` distinct 10 s 44.1 kHz stereo clips (tones and noise) in ``encoding``."""
    suffix, fmt, subtype = ENCODINGS[encoding]
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(SECONDS * RATE)) / RATE
    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        x = 0.3 * np.sin(2 * np.pi * (200 + 37 * i) * t) + 0.1 * np.sin(2 * np.pi * 3.3 * (200 + 37 * i) * t)
        data = (x[:, None] + rng.normal(0, 0.05, (len(t), CHANNELS))).astype(np.float32)
        path = folder / f"clip{i:04d}.{suffix}"
        sf.write(path, data, RATE, format=fmt, subtype=subtype)
        paths.append(path)
    return paths


class Free:
    """An encoder that costs nothing: decoding is the pipeline's only work."""

    dim = 8
    device = "cpu"

    def embed_waveforms(self, waveforms):
        return np.zeros((len(waveforms), self.dim), np.float32)


def cpu_per_clip(paths: list[Path]) -> float:
    """Seconds of this thread's CPU per clip for the reader's work, run inline."""
    from proto_index.engine.reading import WINDOW_SAMPLES, read_file

    start = time.thread_time()
    for p in paths:
        for _ in read_file(p, WINDOW_SAMPLES, True, None):
            pass
    return (time.thread_time() - start) / len(paths)


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds of this process, and of this process with its reaped children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = own.ru_utime + own.ru_stime
    return mine, mine + children.ru_utime + children.ru_stime


def pipeline(paths: list[Path], workers: int, decoder: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds with reaped children, and CPU seconds of this process alone, of
    ``embed_files`` over ``paths`` with the free encoder."""
    from proto_index.options import EmbedOptions
    from proto_index.engine.embedding import embed_files

    (mine, cpu), start = cpu_seconds(), time.perf_counter()
    options = EmbedOptions(batch_windows=32, workers=workers, decoder=decoder)
    results = list(embed_files(paths, Free(), options=options, hash_files=True))
    elapsed, (mine2, cpu2) = time.perf_counter() - start, cpu_seconds()
    assert len(results) == len(paths) and all(hasattr(r, "vectors") for r in results), results[:2]
    return elapsed, cpu2 - cpu, mine2 - mine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=48, help="clips per encoding")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians reported")
    parser.add_argument("--formats", default=",".join(ENCODINGS))
    parser.add_argument("--workers", default="1,2", help="decoding threads / processes to try (e.g. 1,2,4,8,16)")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    arms = [(w, "threads") for w in counts] + [(w, "processes") for w in counts if w > 1]

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        per_encoding, per_arm = [], []
        for encoding in args.formats.split(","):
            paths = make_clips(Path(tmp) / encoding, encoding, args.clips)
            half = args.clips // 2
            size = sum(p.stat().st_size for p in paths) / len(paths)
            cpu, runs = [], {arm: [] for arm in arms}
            pipeline(paths[:4], 2, "processes")  # warm the page cache and the import path
            for _ in range(args.repeats):
                cpu.append(cpu_per_clip(paths))
                for arm in arms:  # all clips and half of them: the difference is the steady state, starts excluded
                    runs[arm].append((pipeline(paths, *arm), pipeline(paths[:half], *arm)))
            per_encoding.append((encoding, size, statistics.median(cpu)))
            n = args.clips - half

            def steady(arm, i):
                return statistics.median((full[i] - part[i]) / n for full, part in runs[arm])

            base = steady((1, "threads"), 0)
            for arm in arms:
                wall = steady(arm, 0)
                start = statistics.median(part[0] for _, part in runs[arm]) - half * wall
                per_arm.append((encoding, arm, 1 / wall, base / wall, 1000 * steady(arm, 1), 1000 * steady(arm, 2), start))
            print(f"  {encoding} done, load average {os.getloadavg()[0]:.1f}", flush=True)
    print()
    print("| encoding (10 s, 44.1 kHz stereo) | KiB/file | CPU ms/clip, inline | clips/s per core |")
    print("|---|---|---|---|")
    for encoding, size, cpu_s in per_encoding:
        print(f"| {encoding} | {size / 1024:.0f} | {1000 * cpu_s:.1f} | {1 / cpu_s:.0f} |")
    print()
    print("| encoding | decoding | clips/s, steady | vs 1 thread | CPU ms/clip, all | CPU ms/clip, this process "
          "| start s |")
    print("|---|---|---|---|---|---|---|")
    for encoding, (w, decoder), rate, ratio, cpu_ms, own_ms, start in per_arm:
        print(f"| {encoding} | {w} {decoder if w > 1 else decoder[:-1]} | {rate:.0f} | {ratio:.2f}x | {cpu_ms:.1f} "
              f"| {own_ms:.1f} | {start:.2f} |")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
