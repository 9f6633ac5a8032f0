"""A store directory: the SQLite catalog, the exact vector file and the FAISS index, kept in agreement.

    STORE/catalog.sqlite        items, class sets, prototypes, environments (Alembic-managed schema)
    STORE/vectors.f32           exact copy of every corpus window vector (row = windows.vector_row)
    STORE/index-<id>.faiss      FAISS index over those vectors, ids = vector rows (derived data)
    STORE/writer.lock           held (flock) by the one process allowed to write

The FAISS id of a vector is its row in the vector file, so a compressed index can re-rank candidates
with the exact vectors directly; the catalog maps rows to windows (``windows.vector_row`` is unique).

Publishing: a writer saves a new index file under a fresh name, then commits its name and the rows
it covers (``index_next_row``) to the catalog, then deletes the old file. A reader loads the file the
catalog names and adds the committed rows past ``index_next_row`` from the vector file, so it never
sees a torn index and never misses a committed vector. Whatever a killed writer left (vector rows no
window points at, unpublished index files) is cleaned up when the next writer takes the lock.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from proto_index.core.index_plan import DEFAULT_MEMORY_BUDGET, IndexPlan, plan_from_factory, plan_index
from proto_index.embed.encoder import ModelIdentity
from proto_index.errors import InvalidInput, ModelMismatch, StoreError, StoreExists, StoreLocked, StoreNotFound
from proto_index.store import catalog
from proto_index.store.index import VectorIndex
from proto_index.store.schema import Recording, StoreMeta, Window
from proto_index.store.vectors import DTYPES, VectorFile

CATALOG = "catalog.sqlite"
VECTORS = "vectors.f32"
LEGACY_INDEX = "index.faiss"  # stores made before index files were versioned
LOCK = "writer.lock"


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
    """The files of one store. Reading needs nothing; writing happens inside :meth:`writer`."""

    def __init__(self, root: Path, identity: ModelIdentity, model_options: dict, engine):
        self.root = root
        self.identity = identity
        self.model_options = model_options
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        with self._sessions() as s:
            meta = {k: s.get(StoreMeta, k) for k in ("vector_file", "vector_dtype")}
        self.vector_dtype = meta["vector_dtype"].value if meta["vector_dtype"] else "float32"
        name = meta["vector_file"].value if meta["vector_file"] else VECTORS
        self.vectors = VectorFile(root / name, identity.dim, self.vector_dtype)
        self._index: VectorIndex | None = None
        self._lock = WriterLock(root / LOCK)
        self.gpu_search = True

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, identity: ModelIdentity, model_options: dict, vector_dtype: str = "float32") -> "Storage":
        """Make a new store bound to ``identity``; ``model_options`` say how to load the model again.

        ``vector_dtype`` (float32 or float16) is how the exact vectors are kept on disk.
        """
        if vector_dtype not in DTYPES:
            raise InvalidInput(f"--vector-dtype must be float32 or float16, not {vector_dtype!r}")
        root = Path(root)
        if (root / CATALOG).exists():
            raise StoreExists(f"a store already exists at {root}")
        root.mkdir(parents=True, exist_ok=True)
        engine = catalog.create_catalog_engine(root / CATALOG)
        catalog.upgrade(engine)
        with Session(engine) as s, s.begin():
            s.add(StoreMeta(key="model", value=identity.to_json()))
            s.add(StoreMeta(key="model_options", value=json.dumps(model_options, sort_keys=True)))
            s.add(StoreMeta(key="vector_dtype", value=vector_dtype))
        storage = cls(root, identity, model_options, engine)
        with storage.writer():
            storage.publish_index(VectorIndex.empty(identity.dim, storage.vectors.read))
        return storage

    @classmethod
    def open(cls, root: Path) -> "Storage":
        """Open an existing store, upgrading its schema if it is older than this version."""
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
        return cls(root, ModelIdentity.from_json(meta["model"]), json.loads(meta.get("model_options", "{}")), engine)

    def close(self) -> None:
        self._lock.release()
        self.engine.dispose()

    @contextmanager
    def writer(self, wait_s: float = 0.0, recover: bool = True) -> Iterator[None]:
        """Hold the store's writer lock; on first taking it, clean up after any killed writer
        (unless ``recover`` is False: ``verify`` looks before it repairs).

        Raises :class:`StoreLocked` if another process holds it for longer than ``wait_s`` seconds.
        Re-entrant within a process.
        """
        first = self._lock.acquire(wait_s)
        try:
            if first and recover:
                self.recover()
            yield
        finally:
            if first:
                self._lock.release()

    @property
    def writing(self) -> bool:
        return self._lock.held

    def recover(self) -> dict[str, int]:
        """Drop what a killed writer left: uncommitted vector rows, unpublished index files."""
        committed = self.committed_rows()
        dropped = max(self.vectors.count - committed, 0)
        if self.vectors.count != committed or self.vectors.path.stat().st_size % self.vectors.row_bytes:
            self.vectors.truncate(committed)
        current = self.meta("index_file")
        stale = [p for p in self.root.glob("index*.faiss*") if p.name != current]
        if current is None:  # a store from before versioned index files: keep its index until replaced
            stale = [p for p in stale if p.name != LEGACY_INDEX]
        stale += [p for p in self.root.glob("vectors*.f32*") if p.name != self.vectors.path.name]
        for p in stale:
            p.unlink(missing_ok=True)
        return {"vector_rows_dropped": dropped, "index_files_removed": len(stale)}

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def meta(self, key: str) -> str | None:
        with self._sessions() as s:
            row = s.get(StoreMeta, key)
            return None if row is None else row.value

    def check_identity(self, identity: ModelIdentity) -> None:
        """Refuse vectors from a model other than the one this store is bound to."""
        if identity != self.identity:
            raise ModelMismatch(
                f"this store holds vectors of {self.identity.describe()}, "
                f"but the model offered is {identity.describe()}"
            )

    # -- vectors and index -------------------------------------------------------------------------

    def committed_rows(self) -> int:
        """How many vector rows the catalog has committed (live or belonging to removed recordings).

        Written in the same transaction as the windows that point at the rows; stores from before
        this key fall back to one past the highest row in use.
        """
        with self._sessions() as s:
            recorded = s.get(StoreMeta, "vector_rows")
            if recorded is not None:
                return int(recorded.value)
            last = s.scalar(select(func.max(Window.vector_row)))
        return 0 if last is None else last + 1

    def live_rows(self, start: int = 0) -> np.ndarray:
        """The vector rows (from ``start`` on) some catalog window points at, ascending."""
        with self._sessions() as s:
            q = select(Window.vector_row).where(Window.vector_row >= start).order_by(Window.vector_row)
            return np.array(s.scalars(q).all(), dtype=np.int64)

    def count_live_rows(self, below: int | None = None) -> int:
        with self._sessions() as s:
            q = select(func.count()).select_from(Window)
            return s.scalar(q if below is None else q.where(Window.vector_row < below))

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
        """The published index plus every vector committed since it was published (cached).

        Searches run on a CUDA device when FAISS has GPU support, unless ``gpu_search`` is off.
        """
        if self._index is None:
            self._index = self._load_index()
            if self.gpu_search:
                self._index.to_gpu()
        return self._index

    def _load_index(self) -> VectorIndex:
        name, covered = self.meta("index_file"), self.meta("index_next_row")
        path = self.root / (name or LEGACY_INDEX)
        index = VectorIndex.load(path, self.vectors.read) if path.exists() else None
        if index is not None and index.dim == self.identity.dim:
            next_row = int(covered) if covered is not None else self.committed_rows()
            if index.ntotal == self.count_live_rows(below=next_row):
                delta = self.live_rows(next_row)
                index.add(delta, self.vectors.read(delta))
                return index
        # missing or disagreeing with the catalog: rebuild from the exact vectors
        index = VectorIndex.build(self.identity.dim, self.live_rows(), self.vectors.read, self.index_plan())
        if self.writing:
            self.publish_index(index)
        return index

    def index_plan(self, n_vectors: int | None = None) -> IndexPlan:
        """The index this store's corpus calls for: a user-chosen factory, else sized by count and budget."""
        n = self.count_live_rows() if n_vectors is None else n_vectors
        factory = self.meta("index_factory")
        if factory:
            return plan_from_factory(factory, n, self.identity.dim)
        budget = self.meta("index_memory_budget")
        return plan_index(n, self.identity.dim, int(budget) if budget else DEFAULT_MEMORY_BUDGET)

    def publish_index(self, index: VectorIndex) -> None:
        """Save ``index`` (which must hold every committed row) under a new name and point the catalog at it."""
        if not self.writing:
            raise StoreError("publishing an index needs the writer lock")
        old = self.meta("index_file")
        name = f"index-{uuid.uuid4().hex[:12]}.faiss"
        index.save(self.root / name)
        with self.session() as s:
            s.merge(StoreMeta(key="index_file", value=name))
            s.merge(StoreMeta(key="index_next_row", value=str(self.committed_rows())))
        for stale in {old, LEGACY_INDEX} - {None, name}:
            (self.root / stale).unlink(missing_ok=True)
        self._index = index

    def set_meta(self, key: str, value: str | None) -> None:
        with self.session() as s:
            if value is None:
                row = s.get(StoreMeta, key)
                if row is not None:
                    s.delete(row)
            else:
                s.merge(StoreMeta(key=key, value=value))


class WriterLock:
    """An advisory ``flock`` on a file in the store: one writer per store across processes.

    The kernel releases it when the holder dies, so a killed ingest never leaves the store locked.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait_s: float = 0.0) -> bool:
        """Take the lock; False if this object already holds it. Raises StoreLocked after ``wait_s``."""
        if self._fd is not None:
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise StoreLocked(
                        f"{self.path.parent} is being written by {holder}; "
                        "wait for it to finish (or pass --wait SECONDS)"
                    ) from None
                time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({' '.join(sys.argv[:2]) or 'python'})".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
