"""What the store's checksums cost: loading the published index with its checksum check against
FAISS's own read_index, and recording vector-block checksums against appending the same rows;
and the throughput of the digest used (crc32) against SHA-256 on the same bytes.
Ratios are against the unchecked operation, measured in the same run (median of 3).

    .venv/bin/python bench/checksums.py              # 200k vectors of 512 float32 (400 MB)
    .venv/bin/python bench/checksums.py --n 1000000
"""
from __future__ import annotations

import argparse
import hashlib
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proto_index.store import integrity  # noqa: E402
from timing import median_seconds  # noqa: E402
from proto_index.store.index import VectorIndex  # noqa: E402
from proto_index.store.vectors import VectorFile  # noqa: E402

DIM = 512


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((args.n, DIM), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vf = VectorFile(root / "vectors.f32", DIM)
        append_s = median_seconds(lambda: (vf.truncate(0), vf.append(vecs)), repeats=1)
        index = VectorIndex.build(DIM, np.arange(args.n), vf.read)
        digest = index.save(root / "index.faiss")

        def checked():
            assert integrity.file_digest(root / "index.faiss") == digest
            VectorIndex.load(root / "index.faiss")

        def sha256_file():
            h = hashlib.sha256()
            with open(root / "index.faiss", "rb") as f:
                while block := f.read(1 << 24):
                    h.update(block)

        plain_s = median_seconds(lambda: VectorIndex.load(root / "index.faiss"))
        checked_s = median_seconds(checked)
        sha_s = median_seconds(sha256_file)
        crc_s = median_seconds(lambda: integrity.file_digest(root / "index.faiss"))

        def seal():
            mm = vf.memmap()
            for b in range(-(-args.n // integrity.BLOCK_ROWS)):
                integrity.rows_digest(mm, *integrity.block_span(b, args.n))

        seal_s = median_seconds(seal)
    mb = args.n * DIM * 4 / 1e6
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}; "
          f"{args.n} vectors x {DIM} float32 ({mb:.0f} MB)")
    print(f"index load, faiss.read_index:          {plain_s:.3f} s")
    print(f"index load with its checksum checked:  {checked_s:.3f} s  (x{checked_s / plain_s:.2f})")
    print(f"digest of the index file: crc32 {crc_s:.3f} s, sha256 {sha_s:.3f} s (sha256 x{sha_s / crc_s:.1f})")
    print(f"vector append (fsync):                 {append_s:.3f} s")
    print(f"vector block checksums:                {seal_s:.3f} s  (x{seal_s / append_s:.2f} of append, "
          f"{mb / seal_s:.0f} MB/s)")


if __name__ == "__main__":
    main()
