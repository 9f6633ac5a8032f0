"""Ray vs local ingest on this machine, the writer's commit ceiling, and the decode rate per core.

Three measurements, in one process:

  overhead  the same N short files ingested into fresh stores with the fake band encoder
            (tests/fakes.py; cheap, so the figure is the executor's overhead, not the model's time):
            `--executor local` against `--executor ray` on a Ray started here (Ray's start-up is
            excluded; its actor start-up and model load per run are included, as a user pays them);
  ceiling   windows/s the driver commits when results arrive with their vectors precomputed
            (dim 512, float32, 6 windows per file, commit every 256 windows): the ingest commit
            path alone (vector file append + fsync, catalog transaction, index add, publication);
  decode    files/s one thread reads, hashes, decodes, resamples to 48 kHz and windows 10 s clips
            (44.1 kHz stereo FLAC, the common archive case) = the decode rate per core.

    .venv/bin/python bench/ray_ingest.py                       # 48 files, 30,000 windows, 40 clips
    .venv/bin/python bench/ray_ingest.py --files 24 --windows 6000 --clips 20
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
os.environ["PROTO_INDEX_PLUGINS"] = "fakes"

from fakes import BandEncoder, tone_mix  # noqa: E402

from proto_index import Store  # noqa: E402
from proto_index.audio.discover import Discovery  # noqa: E402
from proto_index.embed.encoder import ModelIdentity  # noqa: E402
from proto_index.engine import reading  # noqa: E402
from proto_index.engine.embedding import EmbeddedFile  # noqa: E402
from proto_index.options import ExecutorOptions  # noqa: E402
from proto_index.usecases.ingest import _ingest  # noqa: E402
from proto_index.progress import SilentProgress  # noqa: E402
from proto_index.store.storage import Storage  # noqa: E402


def overhead(root: Path, n: int) -> dict[str, float]:
    import ray

    files = root / "files"
    for i in range(n):
        files.mkdir(parents=True, exist_ok=True)
        sf.write(files / f"c{i:03d}.wav", tone_mix([(200.0 + 37 * i, 0.5)], 10.0, seed=i), 48000, subtype="PCM_16")
    ray.init(include_dashboard=False, log_to_driver=False)
    out = {}
    for kind in ("local", "ray", "local", "ray"):
        with Store.init(root / f"{kind}-{time.monotonic_ns()}", model="fake-bands", encoder=BandEncoder()) as s:
            t0 = time.perf_counter()
            report = s.ingest([files], executor=ExecutorOptions(kind=kind))
            secs = time.perf_counter() - t0
        assert report.added == n, report
        out[kind] = min(out.get(kind, secs), secs)
    ray.shutdown()
    return out


class Precomputed:
    """An Embed that hands out ready EmbeddedFiles: what a cluster of very fast workers would send."""

    def __init__(self, n_files: int, windows_per_file: int, dim: int):
        rng = np.random.default_rng(0)
        vecs = rng.standard_normal((n_files * windows_per_file, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        self.files = [EmbeddedFile(Path(f"/bench/f{i:07d}.flac"), 60.0, 44100, 2,
                                   [10.0 * w for w in range(windows_per_file)],
                                   [10.0 * (w + 1) for w in range(windows_per_file)],
                                   vecs[i * windows_per_file:(i + 1) * windows_per_file], f"{i:064x}", 1000, i)
                      for i in range(n_files)]

    def __call__(self, paths, **_):
        return iter(self.files)


def ceiling(root: Path, windows: int, dim: int = 512, per_file: int = 6) -> float:
    identity = ModelIdentity("bench-precomputed", "none", False, "sha256:" + "0" * 64, dim)
    storage = Storage.create(root / "ceiling", identity, {"model": "bench-precomputed"})
    embed = Precomputed(windows // per_file, per_file, dim)
    discovery = Discovery(files=[f.path for f in embed.files])
    t0 = time.perf_counter()
    with storage.writer():
        report = _ingest(storage, embed, discovery, SilentProgress())
    secs = time.perf_counter() - t0
    storage.close()
    return report.windows / secs


def decode_rate(root: Path, n: int) -> float:
    clips = root / "decode"
    clips.mkdir()
    for i in range(n):
        stereo = np.stack([tone_mix([(300.0 + 11 * i, 0.5)], 10.0, sr=44100, seed=i)] * 2, axis=1)
        sf.write(clips / f"d{i:03d}.flac", stereo, 44100, subtype="PCM_16")
    paths = sorted(clips.iterdir())
    hop = 480_000
    t0 = time.perf_counter()
    for p in paths:
        for message in reading.read_file(p, hop, True, None):
            assert not isinstance(message, reading.Failed), message
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=48)
    ap.add_argument("--windows", type=int, default=30_000)
    ap.add_argument("--clips", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="proto-index-ray-bench-") as tmp:
        root = Path(tmp)
        rate = decode_rate(root, args.clips)
        ceil = ceiling(root, args.windows)
        times = overhead(root, args.files)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"decode (read+hash+decode+resample+window), one thread: {rate:.1f} 10 s clips/s per core")
    print(f"writer commit ceiling (precomputed dim-512 vectors): {ceil:,.0f} windows/s")
    print(f"ingest of {args.files} 10 s files, fake encoder: local {times['local']:.2f} s, "
          f"ray {times['ray']:.2f} s, ratio ray/local {times['ray'] / times['local']:.2f}x")


if __name__ == "__main__":
    main()
