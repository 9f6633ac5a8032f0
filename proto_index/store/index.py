"""The FAISS index over corpus vectors, keyed by window id, published to disk atomically."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _faiss():
    import faiss

    return faiss


class VectorIndex:
    """Inner-product search over L2-normalised vectors (= cosine); ids are rows of the exact vector file."""

    def __init__(self, index):
        self._index = index

    @classmethod
    def empty(cls, dim: int) -> "VectorIndex":
        faiss = _faiss()
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path) -> "VectorIndex":
        return cls(_faiss().read_index(str(path)))

    @classmethod
    def build(cls, dim: int, ids: np.ndarray, vectors: np.ndarray) -> "VectorIndex":
        index = cls.empty(dim)
        index.add(ids, vectors)
        return index

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) per query row; missing neighbours have id -1."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, self.ntotal)
        if k == 0:
            return np.zeros((q.shape[0], 0), np.float32), np.zeros((q.shape[0], 0), np.int64)
        return self._index.search(q, k)

    def save(self, path: Path) -> None:
        """Write to a temporary file, fsync, then rename over ``path``: readers see old or new, never torn."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        _faiss().write_index(self._index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
