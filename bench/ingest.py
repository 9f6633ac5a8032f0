"""Ingest throughput with clap-tiny-random against the model alone and against laion_clap's own file path.

Generates its own 10 s clips (mixed rates, channel counts and formats), builds the model once, and
then, in ONE process, at the same batch size, for each precision, repeatedly and interleaved:

  forward  the model alone (ClapEncoder.embed_waveforms, which includes laion_clap's own feature
           preparation) on the same clips already decoded, resampled and quantised in memory;
  ingest   Store.ingest into a fresh store: find, hash, decode, resample, window, embed, write the
           vectors, catalog and index (model loading and store creation excluded);
  laion    laion_clap's CLAP_Module.get_audio_embedding_from_filelist over the same files, called
           batch by batch, wrapped around the same model object (built without its __init__, as
           tests/clap/test_clap_parity.py does), under the same autocast for bf16.

bf16 for proto-index means ClapEncoder(precision="bf16"): a bfloat16 copy of the audio tower under
CPU autocast with its spectrogram front end kept in float32 (see embed/clap.py); bf16 for laion_clap
means its own code under torch.autocast('cpu', bfloat16) with the float32 weights, the most a user
of laion_clap can do without changing it.

It reports medians, clips/s, the ratios the issue sets targets for, and the achieved GFLOP/s
(14.1 GFLOP per 10 s clip) over a big matmul's peak measured in the same run at that precision.
Two more tables compare ways of overlapping decoding with the model (no workers, threads, a worker
process) on ingest at one precision, with the model on every core and on one core.

    .venv/bin/python bench/ingest.py                       # defaults: 64 clips, batch 4, 5 repeats
    .venv/bin/python bench/ingest.py --clips 32 --repeats 3 --no-overlap-table
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

GFLOP_PER_CLIP = 14.1
"""HTSAT-tiny audio tower, one 10 s clip at 48 kHz (FACTS.md)."""

FORMATS = [  # (rate, channels, container, subtype)
    (48000, 1, "WAV", "PCM_16"),
    (44100, 2, "FLAC", "PCM_16"),
    (32000, 1, "WAV", "PCM_24"),
    (16000, 1, "FLAC", "PCM_16"),
    (22050, 2, "WAV", "PCM_16"),
    (48000, 2, "WAV", "FLOAT"),
    (44100, 1, "WAV", "PCM_16"),
    (16000, 2, "WAV", "PCM_16"),
]


def make_clips(folder: Path, n: int, seconds: float = 10.0) -> list[Path]:
    """``n`` clips of ``seconds``: a chirp, a few partials and noise, cycling through FORMATS."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        sr, channels, container, subtype = FORMATS[i % len(FORMATS)]
        rng = np.random.default_rng(i)
        t = np.arange(round(seconds * sr)) / sr
        f0 = 150 + 40 * i
        x = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.05 * t)) + 0.1 * np.sin(2 * np.pi * 3.1 * f0 * t)
        data = x[:, None] + rng.normal(0, 0.05, (len(t), channels))
        path = folder / f"clip{i:04d}.{'flac' if container == 'FLAC' else 'wav'}"
        sf.write(path, data.astype(np.float32), sr, subtype=subtype, format=container)
        paths.append(path)
    return paths


def matmul_peak(dtype, n: int = 4096, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n`` x ``n`` matmul at ``dtype`` over a few runs (the peak this run can reach)."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def laion_module(encoder, float_output: bool = False):
    """laion_clap's CLAP_Module around its own model holding ``encoder``'s weights, without its __init__
    (which downloads roberta-base).

    ``float_output``: laion_clap turns the embeddings into numpy, which has no bfloat16, so under
    autocast the model's output is cast to float32 on its way out (512 values per clip; nothing else
    changes).
    """
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from laion_reference import encoder_state, laion_clap_module  # laion_clap's own module holding the encoder's weights

    class FloatOutput(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.inner = model

        def get_audio_embedding(self, data):
            return self.inner.get_audio_embedding(data).float()

    module = laion_clap_module(encoder_state(encoder), fusion=encoder.identity.fusion)
    if float_output:
        module.model = FloatOutput(module.model)
    return module


def autocast(precision: str):
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


class Bench:
    def __init__(self, encoder, paths: list[Path], batch: int, workdir: Path):
        from proto_index.audio.decode import prepare

        self.encoder, self.paths, self.batch, self.workdir = encoder, paths, batch, workdir
        self.decoded = [prepare(p) for p in paths]  # each clip is one 10 s window
        self.laion = self.laion_autocast = None
        if importlib.util.find_spec("laion_clap"):  # installed by PROTO_INDEX_PARITY=1 scripts/setup.sh only
            self.laion = laion_module(encoder)
            self.laion_autocast = laion_module(encoder, float_output=True)
        self.stores = 0

    def forward(self) -> None:
        for i in range(0, len(self.decoded), self.batch):
            self.encoder.embed_waveforms(self.decoded[i : i + self.batch])

    def ingest(self, workers: int | None = None, decoder: str = "threads") -> None:
        from proto_index import Store
        from proto_index.options import DEFAULT_WORKERS, EmbedOptions

        self.stores += 1
        store = Store.init(self.workdir / f"store{self.stores}", model=self.encoder.identity.name, encoder=self.encoder)
        try:
            start = time.perf_counter()
            options = EmbedOptions(batch_windows=self.batch, workers=DEFAULT_WORKERS if workers is None else workers,
                                   decoder=decoder)
            report = store.ingest([self.paths[0].parent], options=options)
            elapsed = time.perf_counter() - start
        finally:
            store.close()
        assert report.added == len(self.paths) and not report.failed, report
        return elapsed

    def laion_filelist(self, precision: str) -> None:
        files = [str(p) for p in self.paths]
        module = self.laion if precision == "fp32" else self.laion_autocast
        with autocast(precision):
            for i in range(0, len(files), self.batch):
                module.get_audio_embedding_from_filelist(files[i : i + self.batch])


def timed(fn, *args) -> float:
    start = time.perf_counter()
    out = fn(*args)
    return out if isinstance(out, float) else time.perf_counter() - start


def machine() -> str:
    import torch

    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}, load average {load:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=64, help="10 s clips to generate (a multiple of --batch)")
    parser.add_argument("--batch", type=int, default=4, help="windows per model batch, for every path")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions; medians are reported")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--overlap-precision", default="bf16", help="precision of the overlap comparison")
    parser.add_argument("--no-overlap-table", action="store_true", help="skip the workers/threads/process comparison")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    precisions = args.precisions.split(",")

    import torch

    from proto_index.embed.seeded import random_encoder

    tmp = tempfile.TemporaryDirectory(dir=args.workdir)
    workdir = Path(tmp.name)
    t0 = time.perf_counter()
    paths = make_clips(workdir / "clips", args.clips)
    print(f"machine: {machine()}")
    print(f"{len(paths)} clips of 10 s ({len(FORMATS)} rate/channel/format mixes) written in "
          f"{time.perf_counter() - t0:.1f} s; batch {args.batch}; {args.repeats} repeats")
    encoder = random_encoder("clap-tiny-random", fusion=False, batch_size=args.batch, device="cpu")
    bench = Bench(encoder, paths, args.batch, workdir)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}

    times: dict[tuple[str, str], list[float]] = {}
    for precision in precisions:  # warm up each path once (oneDNN builds its kernels on first use)
        encoder.precision = precision
        bench.forward(), bench.ingest()
        if bench.laion:
            bench.laion_filelist(precision)
    paths_timed = ("forward", "ingest", "laion") if bench.laion else ("forward", "ingest")
    if not bench.laion:
        print("laion_clap is not installed: its rows are left out (PROTO_INDEX_PARITY=1 scripts/setup.sh installs it)")
    for rep in range(args.repeats):
        for precision in precisions:
            encoder.precision = precision
            times.setdefault((precision, "forward"), []).append(timed(bench.forward))
            times.setdefault((precision, "ingest"), []).append(timed(bench.ingest))
            if bench.laion:
                times.setdefault((precision, "laion"), []).append(timed(bench.laion_filelist, precision))
        print(f"  repeat {rep + 1}/{args.repeats} done ({time.perf_counter() - t0:.0f} s)", flush=True)

    n = len(paths)
    med = {k: statistics.median(v) for k, v in times.items()}
    names = {"forward": "model forward alone (decoded in memory)", "ingest": "proto-index ingest (whole)",
             "laion": "laion_clap get_audio_embedding_from_filelist"}
    print()
    print(f"| precision | path | median s | min s | clips/s | GFLOP/s | % of matmul peak ({', '.join(f'{p} {peaks[p]:.0f}' for p in precisions)} GFLOP/s) |")
    print("|---|---|---|---|---|---|---|")
    for precision in precisions:
        for what in paths_timed:
            m = med[(precision, what)]
            rate = n / m
            print(f"| {precision} | {names[what]} | {m:.2f} | {min(times[(precision, what)]):.2f} | {rate:.2f} | "
                  f"{rate * GFLOP_PER_CLIP:.0f} | {100 * rate * GFLOP_PER_CLIP / peaks[precision]:.0f}% |")
    print()
    print("| ratio (throughput) | median-based | per-repeat ratios | target |")
    print("|---|---|---|---|")

    def ratio(label, num, den, target):
        per = [d / u for u, d in zip(times[num], times[den])]
        print(f"| {label} | {med[den] / med[num]:.2f}x | {' '.join(f'{r:.2f}' for r in per)} | {target} |")

    for precision in precisions:
        ratio(f"ingest / forward, {precision}", (precision, "ingest"), (precision, "forward"), ">= 0.9x")
    for precision in precisions if bench.laion else ():
        ratio(f"ingest / laion_clap, {precision}", (precision, "ingest"), (precision, "laion"), ">= 1.0x")
    if "fp32" in precisions and "bf16" in precisions:
        ratio("ingest bf16 / ingest fp32", ("bf16", "ingest"), ("fp32", "ingest"), ">= 2x")
        ratio("forward bf16 / forward fp32", ("bf16", "forward"), ("fp32", "forward"), "")
        if bench.laion:
            ratio("ingest bf16 / laion_clap fp32", ("bf16", "ingest"), ("fp32", "laion"), ">= 2x")

    if args.no_overlap_table:
        return
    precision = args.overlap_precision
    encoder.precision = precision
    variants = {"no workers (decode in the model's thread)": (0, "threads"), "1 worker thread (default)": (1, "threads"),
                "2 worker threads": (2, "threads"), "1 worker process (--decoder processes; its start included)": (1, "processes")}
    overlap: dict[str, list[float]] = {}
    for _ in range(max(3, args.repeats // 2 + 1)):
        overlap.setdefault("forward", []).append(timed(bench.forward))
        for label, (workers, decoder) in variants.items():
            overlap.setdefault(label, []).append(bench.ingest(workers, decoder))
    # The same with the model on one thread, leaving the other core free: what overlap does when
    # the model does not occupy every core (a GPU, or more cores than torch threads).
    threads = torch.get_num_threads()
    one_core: dict[str, list[float]] = {}
    torch.set_num_threads(1)
    try:
        bench.forward()
        for _ in range(2):
            one_core.setdefault("forward", []).append(timed(bench.forward))
            one_core.setdefault("no workers (decode in the model's thread)", []).append(bench.ingest(0))
            one_core.setdefault("1 worker thread (default)", []).append(bench.ingest(1))
    finally:
        torch.set_num_threads(threads)

    for title, table in ((f"model on {threads} threads", overlap), ("model on 1 thread, 1 core left free", one_core)):
        forward = statistics.median(table.pop("forward"))
        print()
        print(f"| ingest, {precision}, batch {args.batch}, {title} | median s | clips/s | ingest / forward |")
        print("|---|---|---|---|")
        print(f"| model forward alone | {forward:.2f} | {n / forward:.2f} | 1.00x |")
        for label, values in table.items():
            m = statistics.median(values)
            print(f"| {label} | {m:.2f} | {n / m:.2f} | {forward / m:.2f}x |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
