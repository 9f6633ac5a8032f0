"""Checksums of the files a store publishes, and the names of the files a store owns.

The vector file is checksummed in blocks of :data:`BLOCK_ROWS` rows (a block still growing records
how many rows its digest covers); the index file as a whole. A digest is ``crc32:<hex>`` of the
bytes on disk: it finds damage (truncation, overwritten or garbage bytes) at ~2 GB/s, so checking
the index on every load costs little next to loading it (SHA-256 ran 5x slower; see
bench/RESULTS.md). It is not meant to resist someone who can also rewrite the catalog.
Only files whose names match :func:`owned_file` are ever deleted by a store.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np

BLOCK_ROWS = 4096
"""Vector rows per checksummed block (8 MiB at 512 float32 dimensions)."""

INDEX_BLOCK = 0

_OWNED = re.compile(r"^(vectors(-[0-9a-f]{1,32})?\.f(32|16)|index(-[0-9a-f]{1,32})?\.faiss)(\.tmp)?$")


def owned_file(name: str) -> bool:
    """Whether ``name`` is one a store creates in its folder (vector files, index files, their temps)."""
    return _OWNED.match(name) is not None


def digest_bytes(data) -> str:
    return f"crc32:{zlib.crc32(memoryview(data)):08x}"


def file_digest(path: Path, chunk: int = 1 << 24) -> str:
    """The digest of a whole file, read in chunks (bounded memory at any index size)."""
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            crc = zlib.crc32(block, crc)
    return f"crc32:{crc:08x}"


def block_span(block: int, committed: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of ``block`` among ``committed`` rows."""
    start = block * BLOCK_ROWS
    return start, min(start + BLOCK_ROWS, committed)


def rows_digest(mm: np.ndarray, start: int, stop: int) -> str:
    """The digest of the raw bytes of rows ``[start, stop)`` of a memory-mapped vector file."""
    return digest_bytes(np.ascontiguousarray(mm[start:stop]).view(np.uint8).ravel())
