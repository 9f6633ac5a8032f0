"""`proto-index ingest` of a folder of clips, as a user runs it, before (a base commit in its own venv) and after.

Each side (the code of ``--base`` run by ``--base-python``; this checkout run by this interpreter) gets a
fresh store per run made by its own CLI (`init --model clap-tiny-random`), then `proto-index ingest
FOLDER` is timed in a fresh process, sides alternating, after one untimed warm-up each. The clips are
generated once: 10 s each, cycling through 48/44.1/32/22.05/16 kHz, mono and stereo, WAV 16/24-bit/float
and FLAC. The time includes start-up (imports, building the model) and everything ingest does. Prints
median wall and CPU seconds (user + system of the process and its threads), clips/s and the ratios.

    .venv/bin/python bench/ingest_cli.py --base 04dd654 --base-python /work/wt-base/.venv/bin/python
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import ROOT, cli, extract, installed_layout  # noqa: E402  (the same before/after harness)

MIXES = [(48_000, 1, "WAV", "PCM_16"), (44_100, 2, "WAV", "PCM_24"), (32_000, 1, "WAV", "FLOAT"),
         (22_050, 2, "FLAC", "PCM_16"), (16_000, 1, "WAV", "PCM_16"), (44_100, 1, "FLAC", "PCM_24")]


def make_clips(folder: Path, n: int, seconds: float = 10.0) -> Path:
    """``n`` clips of tones in noise under ``folder``, one format mix each in turn."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        rate, channels, fmt, subtype = MIXES[i % len(MIXES)]
        t = np.arange(int(rate * seconds)) / rate
        tone = 0.2 * np.sin(2 * np.pi * (200 + 37 * i) * t)
        audio = np.stack([tone + 0.05 * rng.standard_normal(t.size) for _ in range(channels)], axis=1)
        sf.write(folder / f"clip{i:03d}.{fmt.lower()}", audio.astype(np.float32), rate, format=fmt, subtype=subtype)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit measured as 'before'")
    parser.add_argument("--base-python", default=sys.executable, help="interpreter of the 'before' side")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ingest-cli-bench-") as tmp:
        tmp = Path(tmp)
        clips = make_clips(tmp / "clips", args.clips)
        sides = {"before": (installed_layout(extract(args.base, tmp / "base"), tmp / "before" / "code"), args.base_python),
                 "after": (installed_layout(ROOT, tmp / "after" / "code"), sys.executable)}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for run in range(args.runs + 1):
            for name, (code, python) in sides.items():
                store, cache = tmp / name / "store", tmp / name / "cache"
                shutil.rmtree(store, ignore_errors=True)
                cli(code, cache, "init", "--store", str(store), "--model", "clap-tiny-random", "--device", "cpu",
                    python=python)
                seconds, cpu = cli(code, cache, "ingest", str(clips), "--store", str(store), python=python)
                if run:  # run 0 fills the user caches
                    times[name].append((seconds, cpu))
                print(f"run {run}{' (warm-up)' if not run else ''} {name}: {seconds:.2f} s wall, {cpu:.2f} s CPU, "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
    wall = {n: statistics.median(w for w, _ in times[n]) for n in sides}
    cpu = {n: statistics.median(c for _, c in times[n]) for n in sides}
    print(f"\n{args.clips} clips of 10 s, {args.runs} runs each, {platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    for n in sides:
        print(f"{n:>6}: median {wall[n]:.2f} s wall ({args.clips / wall[n]:.2f} clips/s), {cpu[n]:.2f} s CPU")
    print(f"after/before: wall {wall['after'] / wall['before']:.2f}x, CPU {cpu['after'] / cpu['before']:.2f}x, "
          f"throughput {wall['before'] / wall['after']:.2f}x")


if __name__ == "__main__":
    main()
