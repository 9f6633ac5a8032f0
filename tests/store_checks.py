"""Stores for tests: the invariants every store keeps after a rerun, a store of format 0001, and
one filled with known vectors without audio."""
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from suite_paths import FIXTURES

from proto_index.engine.embedding import EmbeddedFile
from proto_index.store.schema import Recording, Window
from proto_index.store.storage import Storage
from proto_index.usecases import ingest as ingest_mod
from proto_index.usecases.maintenance import verify

FIXTURE_0001 = FIXTURES / "store-0001"


def invariants(path: Path) -> int:
    """After the next writer has taken the store (as a rerun would): every window has exactly one
    vector row and one index entry, and `verify` finds nothing. Returns the window count."""
    storage = Storage.open(path)
    try:
        with storage.writer():
            storage.index()
        report = verify(storage)
        assert report.problems == [], report.problems
        with storage.session() as s:
            n = s.scalar(select(func.count()).select_from(Window))
            rows = sorted(s.scalars(select(Window.vector_row)))
            shas = list(s.scalars(select(Recording.sha256)))
        assert rows == list(range(n)), "vector rows must be 0..n-1 without gaps or duplicates"
        assert storage.vectors.count == n
        assert len(shas) == len(set(shas))
        index = storage.index()
        assert index.ntotal == n
        if n:
            scores, found = index.search(storage.vectors.read(rows), 1)
            atol = 1e-5 if storage.vector_dtype == "float32" else 1e-3  # float16 keeps ~3 decimal digits
            np.testing.assert_allclose(scores[:, 0], 1.0, atol=atol)  # each window finds itself
            assert set(found[:, 0].tolist()) <= set(rows)
        return n
    finally:
        storage.close()


def populate(storage: Storage, n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Commit n one-window recordings with clustered unit vectors (like real embeddings), as ingest would."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))
    vecs = (centres[rng.integers(0, 40, n)] + 0.5 * rng.standard_normal((n, dim))).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    files = [
        EmbeddedFile(Path(f"/synthetic/{seed}/{i}.wav"), 1.0, 48000, 1, [0.0], [1.0], vecs[i : i + 1],
                     sha256=f"{seed:08x}{i:056x}")
        for i in range(n)
    ]
    with storage.writer():
        index = storage.index()
        ingest_mod._commit(storage, index, files, ingest_mod.IngestReport())
        storage.publish_index(index)
    return vecs
