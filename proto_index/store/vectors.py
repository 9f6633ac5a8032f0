"""The exact copy of every corpus vector: a flat, append-only file of float32 (or float16) rows.

The file is named after what it holds: ``vectors.f32`` or ``vectors.f16`` (``vectors-<hex>.f32``
/ ``.f16`` after a compaction); the catalog records the name (``store_meta.vector_file``). Stores
made before the name was recorded use ``vectors.f32`` whatever their dtype (:data:`LEGACY_NAME`).

Centroids (TGAP) are computed from these exact vectors whatever the FAISS index compresses. Rows are
appended and fsynced before the catalog commits the windows that point at them, so after a crash the
file can only hold extra rows at its end, which ``truncate`` drops.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from proto_index.errors import Hint, StoreCorrupt

DTYPES: dict[str, np.dtype] = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
"""float16 halves the disk and page cache a corpus needs; its rounding (~5e-4 relative) is far
below the differences that decide a nearest neighbour or a class."""

SUFFIXES = {"float32": ".f32", "float16": ".f16"}
LEGACY_NAME = "vectors.f32"
"""The vector file of a store whose catalog records no ``vector_file`` (made before it was recorded)."""


def vector_file_name(dtype: str, tag: str | None = None) -> str:
    """``vectors.f32`` / ``vectors.f16``, or ``vectors-<tag>.<suffix>`` for a compacted copy."""
    return f"vectors{'' if tag is None else '-' + tag}{SUFFIXES[dtype]}"


class VectorFile:
    """Append-only exact vectors of dimension ``dim`` stored at ``path``; reads return float32."""

    def __init__(self, path: Path, dim: int, dtype: str = "float32"):
        if dtype not in DTYPES:
            raise ValueError(f"vector dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        self.path = Path(path)
        self.dim = dim
        self.dtype = DTYPES[dtype]
        self.row_bytes = dim * self.dtype.itemsize
        self._row_bytes = self.row_bytes
        if not self.path.exists():
            self.path.touch()

    @property
    def count(self) -> int:
        """Number of complete rows in the file (a torn last row is not counted)."""
        return self.path.stat().st_size // self._row_bytes

    def append(self, vectors: np.ndarray) -> int:
        """Append ``(n, dim)`` vectors durably; returns the row number of the first one."""
        v = np.ascontiguousarray(vectors, dtype=self.dtype)
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise ValueError(f"expected vectors shaped (n, {self.dim}), got {v.shape}")
        first = self.count
        with open(self.path, "r+b") as f:
            f.seek(first * self._row_bytes)  # overwrite any torn partial row
            f.write(v.tobytes())
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
        return first

    def read(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The vectors at the given rows, in that order, as float32 ``(len(rows), dim)``."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        mm = self.memmap()
        if rows.min() < 0:
            raise IndexError(f"vector row {int(rows.min())} out of range")
        if rows.max() >= mm.shape[0]:  # rows the catalog committed: the file lost them
            raise StoreCorrupt(
                f"the vector file {self.path.name} holds {mm.shape[0]} rows but row {int(rows.max())} is needed: "
                "vectors were lost (the file was truncated)",
                hint=Hint("verify_repair", "run {option} to drop the recordings they belong to, then ingest them again"),
            )
        return np.array(mm[rows], dtype=np.float32)

    def memmap(self) -> np.ndarray:
        """A read-only memory map of all complete rows."""
        n = self.count
        if n == 0:
            return np.zeros((0, self.dim), dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(n, self.dim))

    def truncate(self, rows: int) -> None:
        """Drop every row from ``rows`` on (used to discard vectors a crash left uncommitted)."""
        with open(self.path, "r+b") as f:
            f.truncate(rows * self._row_bytes)
            f.flush()
            os.fsync(f.fileno())
