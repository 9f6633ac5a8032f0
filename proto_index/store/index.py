"""The FAISS index over corpus vectors, keyed by vector-file row, published to disk atomically.

Exact (``Flat``) or compressed (``IVF,PQ``); a compressed index returns ``rerank * k`` candidates
that are re-scored with the exact vectors, so its results are exact scores of nearly exact neighbours.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from proto_index.atomic import atomic_path
from proto_index.core.index_plan import IndexPlan, flat_plan, nprobe_for
from proto_index.store.integrity import file_digest

VectorReader = Callable[[np.ndarray], np.ndarray]
"""Exact vectors of the given rows, in order."""


def _faiss():
    import faiss

    return faiss


class VectorIndex:
    """Inner-product search over L2-normalised vectors (= cosine); ids are rows of the exact vector file."""

    def __init__(self, index, reader: VectorReader | None = None, rerank: int = 8):
        self._index = index
        self._gpu = None
        self.reader = reader
        self.rerank = rerank
        ivf = self._ivf()
        if ivf is not None:
            ivf.nprobe = nprobe_for(ivf.nlist)

    def _ivf(self):
        try:
            return _faiss().extract_index_ivf(self._index)
        except RuntimeError:
            return None

    @classmethod
    def empty(cls, dim: int, reader: VectorReader | None = None) -> "VectorIndex":
        faiss = _faiss()
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), reader)

    @classmethod
    def load(cls, path: Path, reader: VectorReader | None = None) -> "VectorIndex":
        return cls(_faiss().read_index(str(path)), reader)

    @classmethod
    def build(
        cls,
        dim: int,
        rows: np.ndarray,
        reader: VectorReader,
        plan: IndexPlan | None = None,
        chunk: int = 100_000,
        seed: int = 0,
        on_chunk: Callable[[int], None] | None = None,
    ) -> "VectorIndex":
        """Build from the exact vectors at ``rows``: train on a seeded sample if needed, add in chunks."""
        faiss = _faiss()
        plan = plan or flat_plan(dim)
        rows = np.asarray(rows, dtype=np.int64)
        if plan.exact:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        else:
            index = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
            # polysemous codes serve Hamming-filtered search, which we never use; training them is slow
            faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
            sample = np.sort(np.random.default_rng(seed).choice(rows, size=min(plan.train_size, len(rows)), replace=False))
            index.train(np.ascontiguousarray(reader(sample), dtype=np.float32))
        for at in range(0, len(rows), chunk):
            part = rows[at : at + chunk]
            index.add_with_ids(np.ascontiguousarray(reader(part), dtype=np.float32), part)
            if on_chunk:
                on_chunk(len(part))
        return cls(index, reader, plan.rerank)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def exact(self) -> bool:
        return self._ivf() is None

    @property
    def factory(self) -> str:
        """``Flat`` or ``IVF{nlist},PQ{m}``, as in :class:`~proto_index.core.index_plan.IndexPlan`."""
        ivf = self._ivf()
        if ivf is None:
            return "Flat"
        return f"IVF{ivf.nlist},PQ{_faiss().downcast_index(ivf).pq.M}"

    @property
    def description(self) -> str:
        """:attr:`factory` and how it searches, for people: ``Flat (exact)``, ``IVF64,PQ4 (nprobe 16, ...)``."""
        ivf = self._ivf()
        how = "exact" if ivf is None else f"nprobe {ivf.nprobe}, exact re-rank of {self.rerank}x candidates"
        return f"{self.factory} ({how})"

    def to_gpu(self) -> bool:
        """Move searching to the first CUDA device if FAISS was built with GPU support (the ``gpu``
        extra); returns whether it did. Adding and saving keep working on the CPU copy."""
        faiss = _faiss()
        if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
            return False
        try:
            self._gpu_res = faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._index)
        except RuntimeError:  # an index type or size this FAISS build cannot put on the GPU
            self._gpu = None
        return self._gpu is not None

    def ids(self) -> np.ndarray:
        """Every row the index holds, ascending."""
        faiss = _faiss()
        ivf = self._ivf()
        if ivf is None:
            found = faiss.vector_to_array(faiss.downcast_index(self._index).id_map)
        else:
            lists = ivf.invlists
            parts = [
                faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                for i in range(ivf.nlist)
                if lists.list_size(i)
            ]
            found = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return np.sort(found.astype(np.int64))

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        if len(rows) == 0:
            return
        self._gpu = None  # the GPU copy is stale now; searches fall back to the CPU index
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(rows, dtype=np.int64))

    def remove(self, rows: np.ndarray) -> int:
        """Remove these rows' vectors; returns how many were present."""
        self._gpu = None
        return int(self._index.remove_ids(np.asarray(rows, dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, rows) per query row, best first; missing neighbours have row -1."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, self.ntotal)
        if k == 0:
            return np.zeros((q.shape[0], 0), np.float32), np.zeros((q.shape[0], 0), np.int64)
        searcher = self._gpu if self._gpu is not None else self._index
        if self.exact or self.reader is None:
            return searcher.search(q, k)
        _, candidates = searcher.search(q, min(self.ntotal, k * self.rerank))
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        rows = np.full((q.shape[0], k), -1, dtype=np.int64)
        for i, cand in enumerate(candidates):
            cand = cand[cand >= 0]
            exact = self.reader(cand) @ q[i]
            order = np.argsort(-exact, kind="stable")[:k]
            scores[i, : len(order)], rows[i, : len(order)] = exact[order], cand[order]
        return scores, rows

    def save(self, path: Path) -> str:
        """Write to ``<path>.tmp`` (a name the store cleans up after a crash), then rename it over
        ``path`` durably: readers see old or new, never torn. Returns the file's digest
        (:func:`proto_index.store.integrity.file_digest`)."""
        path = Path(path)
        with atomic_path(path, tmp=path.with_name(path.name + ".tmp")) as tmp:
            _faiss().write_index(self._index, str(tmp))
            digest = file_digest(tmp)
        return digest
