"""A store directory: the SQLite catalog, the exact vector file and the FAISS index, kept in agreement.

    STORE/catalog.sqlite   items, class sets, prototypes, environments (Alembic-managed schema)
    STORE/vectors.f32      exact copy of every corpus window vector (row = windows.vector_row)
    STORE/index.faiss      FAISS index over those vectors, ids = vector rows (derived; rebuilt if stale)

The FAISS id of a vector is its row in the vector file, so a compressed index can re-rank candidates
with the exact vectors directly; the catalog maps rows to windows (``windows.vector_row`` is unique).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from proto_index.embed.encoder import ModelIdentity
from proto_index.errors import ModelMismatch, StoreError, StoreExists, StoreNotFound
from proto_index.store import catalog
from proto_index.store.index import VectorIndex
from proto_index.store.schema import Recording, StoreMeta, Window
from proto_index.store.vectors import VectorFile

CATALOG = "catalog.sqlite"
VECTORS = "vectors.f32"
INDEX = "index.faiss"


@dataclass(frozen=True)
class WindowAt:
    window_id: int
    path: str
    start_s: float
    end_s: float


def to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").copy()


class Storage:
    """The files of one store, opened and reconciled."""

    def __init__(self, root: Path, identity: ModelIdentity, model_options: dict, engine):
        self.root = root
        self.identity = identity
        self.model_options = model_options
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.vectors = VectorFile(root / VECTORS, identity.dim)
        self._index: VectorIndex | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, identity: ModelIdentity, model_options: dict) -> "Storage":
        """Make a new store bound to ``identity``; ``model_options`` say how to load the model again."""
        root = Path(root)
        if (root / CATALOG).exists():
            raise StoreExists(f"a store already exists at {root}")
        root.mkdir(parents=True, exist_ok=True)
        engine = catalog.create_catalog_engine(root / CATALOG)
        catalog.upgrade(engine)
        with Session(engine) as s, s.begin():
            s.add(StoreMeta(key="model", value=identity.to_json()))
            s.add(StoreMeta(key="model_options", value=json.dumps(model_options, sort_keys=True)))
        storage = cls(root, identity, model_options, engine)
        storage.save_index(VectorIndex.empty(identity.dim, storage.vectors.read))
        return storage

    @classmethod
    def open(cls, root: Path) -> "Storage":
        """Open an existing store: upgrade its schema, then repair what a crash may have left."""
        root = Path(root)
        if not (root / CATALOG).exists():
            hint = "" if not root.exists() else " (the folder exists but holds no catalog.sqlite)"
            raise StoreNotFound(f"no proto-index store at {root}{hint}; create one with `proto-index init`")
        engine = catalog.create_catalog_engine(root / CATALOG)
        catalog.upgrade(engine)
        with Session(engine) as s:
            meta = {m.key: m.value for m in s.scalars(select(StoreMeta))}
        if "model" not in meta:
            raise StoreError(f"{root / CATALOG} is not bound to a model (not a proto-index store?)")
        storage = cls(root, ModelIdentity.from_json(meta["model"]), json.loads(meta.get("model_options", "{}")), engine)
        storage._drop_uncommitted_vectors()
        return storage

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def check_identity(self, identity: ModelIdentity) -> None:
        """Refuse vectors from a model other than the one this store is bound to."""
        if identity != self.identity:
            raise ModelMismatch(
                f"this store holds vectors of {self.identity.describe()}, "
                f"but the model offered is {identity.describe()}"
            )

    # -- vectors and index -------------------------------------------------------------------------

    def committed_rows(self) -> int:
        with self._sessions() as s:
            last = s.scalar(select(func.max(Window.vector_row)))
        return 0 if last is None else last + 1

    def _drop_uncommitted_vectors(self) -> None:
        committed = self.committed_rows()
        if self.vectors.count != committed or self.vectors.path.stat().st_size % (self.identity.dim * 4):
            self.vectors.truncate(committed)

    def live_rows(self) -> np.ndarray:
        """The vector rows some catalog window points at, ascending."""
        with self._sessions() as s:
            return np.array(s.scalars(select(Window.vector_row).order_by(Window.vector_row)).all(), dtype=np.int64)

    def windows_at_rows(self, rows) -> dict[int, "WindowAt"]:
        """Where each vector row comes from: window id, recording path and span."""
        rows = [int(r) for r in np.asarray(rows).ravel()]
        found: dict[int, WindowAt] = {}
        with self._sessions() as s:
            for chunk in range(0, len(rows), 10_000):
                q = (
                    select(Window.vector_row, Window.id, Recording.path, Window.start_s, Window.end_s)
                    .join(Recording)
                    .where(Window.vector_row.in_(rows[chunk : chunk + 10_000]))
                )
                for row, wid, path, a, b in s.execute(q):
                    found[row] = WindowAt(wid, path, a, b)
        return found

    def index(self) -> VectorIndex:
        """The FAISS index, loaded once; rebuilt from the exact vectors if it disagrees with the catalog."""
        if self._index is None:
            path = self.root / INDEX
            rows = self.live_rows()
            index = VectorIndex.load(path, self.vectors.read) if path.exists() else None
            if index is None or index.ntotal != len(rows) or index.dim != self.identity.dim:
                index = VectorIndex.build(self.identity.dim, rows, self.vectors.read)
                self.save_index(index)
            self._index = index
        return self._index

    def save_index(self, index: VectorIndex) -> None:
        index.save(self.root / INDEX)
        self._index = index
