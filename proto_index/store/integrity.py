"""Checksums of the files a store publishes, and the names of the files a store owns.

The vector file is checksummed in blocks of :data:`BLOCK_ROWS` rows (a block still growing records
how many rows its digest covers); the index file as a whole. Digests are SHA-256 of the bytes on
disk. Only files whose names match :func:`owned_file` are ever deleted by a store.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np

BLOCK_ROWS = 4096
"""Vector rows per checksummed block (8 MiB at 512 float32 dimensions)."""

INDEX_BLOCK = 0

_OWNED = re.compile(r"^(vectors(-[0-9a-f]{1,32})?\.f32|index(-[0-9a-f]{1,32})?\.faiss)(\.tmp)?$")


def owned_file(name: str) -> bool:
    """Whether ``name`` is one a store creates in its folder (vector files, index files, their temps)."""
    return _OWNED.match(name) is not None


def sha256_bytes(data) -> str:
    return hashlib.sha256(memoryview(data)).hexdigest()


def block_span(block: int, committed: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of ``block`` among ``committed`` rows."""
    start = block * BLOCK_ROWS
    return start, min(start + BLOCK_ROWS, committed)


def rows_digest(mm: np.ndarray, start: int, stop: int) -> str:
    """SHA-256 of the raw bytes of rows ``[start, stop)`` of a memory-mapped vector file."""
    return sha256_bytes(np.ascontiguousarray(mm[start:stop]).view(np.uint8).ravel())
