"""A store directory: the SQLite catalog, the exact vector file and the FAISS index, kept in agreement.

    STORE/catalog.sqlite        items, class sets, prototypes, environments (Alembic-managed schema)
    STORE/vectors.f32|.f16      exact copy of every corpus window vector (row = windows.vector_row),
                                float32 or float16 (see :mod:`proto_index.store.vectors` for the name)
    STORE/index-<id>.faiss      FAISS index over those vectors, ids = vector rows (derived data)
    STORE/writer.lock           held (flock) by the one process allowed to write

The FAISS id of a vector is its row in the vector file, so a compressed index can re-rank candidates
with the exact vectors directly; the catalog maps rows to windows (``windows.vector_row`` is unique).

Publishing: a writer saves a new index file under a fresh name, then commits its name and the rows
it covers (``index_next_row``) to the catalog, then deletes the old file. A reader loads the file the
catalog names and adds the committed rows past ``index_next_row`` from the vector file, so it never
sees a torn index and never misses a committed vector. Whatever a killed writer left (vector rows no
window points at, unpublished index files) is cleaned up when the next writer takes the lock.

This module opens, locks and recovers a store and answers the catalog's questions about vector
rows; the index protocol is in :mod:`~proto_index.store.published`, the vector checksums in
:mod:`~proto_index.store.checksums`, compaction in :mod:`~proto_index.store.compaction` and the
lock in :mod:`~proto_index.store.lock`.
"""
from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from proto_index.core.identity import ModelIdentity
from proto_index.core.index_plan import IndexPlan
from proto_index.errors import (
    DiskFull,
    Hint,
    InvalidInput,
    ModelMismatch,
    StoreCorrupt,
    StoreError,
    StoreExists,
    StoreNotFound,
    StoreReadOnly,
)
from proto_index.store import catalog, checksums, compaction, integrity, published, queries
from proto_index.store.index import VectorIndex
from proto_index.store.lock import WriterLock
from proto_index.store.published import LEGACY_INDEX
from proto_index.store.queries import WindowAt
from proto_index.store.schema import FileChecksum, StoreMeta, from_blob, to_blob  # noqa: F401 (re-exported)
from proto_index.store.vectors import DTYPES, LEGACY_NAME, VectorFile, vector_file_name

CATALOG = "catalog.sqlite"
LOCK = "writer.lock"


def store_writable(root: Path) -> bool:
    """Whether this process may write the store folder and its catalog (False on a read-only mount)."""
    files = [root, root / CATALOG] + [root / f"{CATALOG}-{x}" for x in ("wal", "shm") if (root / f"{CATALOG}-{x}").exists()]
    return all(os.access(p, os.W_OK) for p in files)


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


class Storage:
    """The files of one store. Reading needs nothing; writing happens inside :meth:`writer`."""

    def __init__(self, root: Path, identity: ModelIdentity, model_options: dict, engine, read_only: bool = False):
        self.root = root
        self.read_only = read_only
        self.identity = identity
        self.model_options = model_options
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        with self._sessions() as s:
            meta = {k: s.get(StoreMeta, k) for k in ("vector_file", "vector_dtype")}
        self.vector_dtype = meta["vector_dtype"].value if meta["vector_dtype"] else "float32"
        name = meta["vector_file"].value if meta["vector_file"] else LEGACY_NAME
        self.vectors = VectorFile(root / name, identity.dim, self.vector_dtype)
        self._index: VectorIndex | None = None
        self._lock = WriterLock(root / LOCK)
        self.gpu_search = True

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, identity: ModelIdentity, model_options: dict, vector_dtype: str = "float32",
               discard_old_files: bool = False) -> "Storage":
        """Make a new store bound to ``identity``; ``model_options`` say how to load the model again.

        ``vector_dtype`` (float32 or float16) is how the exact vectors are kept on disk.
        ``discard_old_files``: delete the vector and index files of an earlier store whose catalog is gone.
        """
        if vector_dtype not in DTYPES:
            raise InvalidInput(f"the vector dtype must be float32 or float16, not {vector_dtype!r}", hint=Hint("vector_dtype"))
        root = Path(root)
        for old in cls.check_new(root, discard_old_files):
            old.unlink()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreReadOnly(f"cannot create the store folder {root}: {e.strerror}") from None
        engine = catalog.create_catalog_engine(root / CATALOG)
        catalog.upgrade(engine)
        with Session(engine) as s, s.begin():
            s.add(StoreMeta(key="model", value=identity.to_json()))
            s.add(StoreMeta(key="model_options", value=json.dumps(model_options, sort_keys=True)))
            s.add(StoreMeta(key="vector_dtype", value=vector_dtype))
            s.add(StoreMeta(key="vector_file", value=vector_file_name(vector_dtype)))
        storage = cls(root, identity, model_options, engine)
        with storage.writer():
            storage.publish_index(VectorIndex.empty(identity.dim, storage.vectors.read))
        return storage

    @staticmethod
    def check_new(root: Path, discard_old_files: bool = False) -> list[Path]:
        """Refuse to make a store where one exists, or where an earlier store's files lie without
        its catalog (unless ``discard_old_files``); returns those files."""
        root = Path(root)
        holder = root.absolute()
        while not (holder.exists() or holder.is_symlink()) and holder != holder.parent:
            holder = holder.parent
        if not holder.is_dir():  # a file, FIFO or device where the store (or a folder above it) would go
            where = "is" if holder == root.absolute() else f"is inside {holder}, which is"
            raise InvalidInput(f"{root} {where} not a folder; choose a new store folder (nothing was written)")
        if (root / CATALOG).exists():
            raise StoreExists(f"a store already exists at {root}")
        left = sorted(p for p in root.iterdir() if integrity.owned_file(p.name)) if root.is_dir() else []
        if left and not discard_old_files:
            raise StoreExists(
                f"{root} holds store files ({', '.join(p.name for p in left)}) but no {CATALOG}: the catalog of an "
                "earlier store was deleted or lost; init will not overwrite them",
                hint=Hint("discard_old_files", "restore the catalog, or pass {option} to start over"),
            )
        return left

    @classmethod
    def open(cls, root: Path) -> "Storage":
        """Open an existing store, upgrading its schema if it is older than this version."""
        root = Path(root)
        if not (root / CATALOG).exists():
            hint = "" if not root.exists() else " (the folder exists but holds no catalog.sqlite)"
            raise StoreNotFound(f"no proto-index store at {root}{hint}; create one with `proto-index init`")
        read_only = not store_writable(root)
        engine = catalog.create_catalog_engine(root / CATALOG, read_only)  # a damaged catalog: StoreCorrupt below
        current = catalog.current_revision(engine)
        if current not in (None, catalog.head_revision()) and not catalog.known_revision(current):
            engine.dispose()
            raise StoreError(
                f"{root} was written by a newer proto-index (catalog schema {current}; this version knows "
                f"up to {catalog.head_revision()}); upgrade proto-index to open it"
            )
        if current != catalog.head_revision() and not read_only:
            catalog.upgrade(engine)
        elif current != catalog.head_revision():
            raise StoreReadOnly(
                f"{root} is read-only and its catalog needs a schema upgrade that this version would write; "
                "open it once where it can be written"
            )
        with Session(engine) as s:
            meta = {m.key: m.value for m in s.scalars(select(StoreMeta))}
        if "model" not in meta:
            raise StoreError(f"{root / CATALOG} is not bound to a model (not a proto-index store?)")
        return cls(root, ModelIdentity.from_json(meta["model"]), json.loads(meta.get("model_options", "{}")), engine,
                   read_only)

    def close(self) -> None:
        self._lock.release()
        self.engine.dispose()

    @contextmanager
    def writer(self, wait_s: float = 0.0, recover: bool = True) -> Iterator[None]:
        """Hold the store's writer lock; on first taking it, clean up after any killed writer
        (unless ``recover`` is False: ``verify`` looks before it repairs).

        Raises :class:`StoreLocked` if another process holds it for longer than ``wait_s`` seconds.
        Re-entrant within a process. Raises :class:`StoreReadOnly` on a read-only store and
        :class:`DiskFull` when the disk fills up (after dropping the uncommitted rows).
        """
        if self.read_only:
            raise StoreReadOnly(f"{self.root} is read-only: this command writes to the store (reading commands work)")
        try:
            first = self._lock.acquire(wait_s)
        except OSError as e:
            if e.errno in _READ_ONLY:
                raise StoreReadOnly(f"{self.root} is read-only ({e.strerror}): this command writes to the store") from None
            raise
        try:
            if first and recover:
                self.recover()
            yield
        except BaseException as e:
            if not first:
                raise
            # the catalog's "disk is full" arrives as DiskFull (db_errors)
            full = isinstance(e, DiskFull) or (isinstance(e, OSError) and e.errno in _FULL)
            if recover or full:
                # Whatever failed (a catalog write, the disk, an interrupt), drop the vector rows and
                # index files the failed batch wrote, so the store is consistent at once, not only
                # after the next writer recovers it.
                self._index = None
                try:
                    self.recover()
                except Exception:  # best effort: the next writer recovers anyway
                    pass
            if not full:
                raise
            raise DiskFull(
                f"the disk holding {self.root} is full: the batch being written was not committed, nothing "
                "committed before was lost and the store is consistent; free some space and run the command again"
            ) from None
        finally:
            if first:
                self._lock.release()

    @property
    def writing(self) -> bool:
        return self._lock.held

    def recover(self) -> dict[str, int]:
        """Drop what a killed writer left: uncommitted vector rows, unpublished index files, the old
        vector file of an interrupted compaction. Never lengthens the vector file: one shorter than
        the catalog says raises :class:`StoreCorrupt`."""
        committed = self.check_vector_count()
        dropped = max(self.vectors.count - committed, 0)
        if self.vectors.count != committed or self.vectors.path.stat().st_size % self.vectors.row_bytes:
            self.vectors.truncate(committed)
        stale = self.stray_files()
        for p in stale:
            p.unlink(missing_ok=True)
        return {"vector_rows_dropped": dropped, "index_files_removed": len(stale)}

    def stray_files(self) -> list[Path]:
        """Files named as the store names its own (see :func:`integrity.owned_file`) that the catalog
        does not point at: left by a killed writer or an interrupted compaction."""
        current = self.meta("index_file")
        keep = {current or LEGACY_INDEX, self.vectors.path.name}
        return sorted(p for p in self.root.iterdir() if integrity.owned_file(p.name) and p.name not in keep)

    def check_vector_count(self) -> int:
        """The committed row count, after checking the vector file holds that many rows."""
        committed = self.committed_rows()
        if self.vectors.count < committed:
            raise StoreCorrupt(
                f"the vector file {self.vectors.path.name} holds {self.vectors.count} rows but the catalog committed "
                f"{committed}: {committed - self.vectors.count} vectors were lost (the file was truncated)",
                hint=Hint("verify_repair", "run {option} to drop the recordings they belong to, then ingest them again"),
            )
        return committed

    # -- checksums (see proto_index.store.checksums) ----------------------------------------------

    def checksums(self, file: str) -> dict[int, FileChecksum]:
        return checksums.recorded(self, file)

    def seal_vectors(self) -> int:
        """Record the checksums of committed vector blocks that have none or have grown (writer lock)."""
        return checksums.seal_vectors(self)

    def bad_vector_blocks(self) -> tuple[list[int], int]:
        """Blocks whose rows no longer match their checksum, and how many blocks have none yet."""
        return checksums.bad_vector_blocks(self)

    def drop_damaged_rows(self, bad_blocks: list[int]) -> int:
        """Remove the recordings whose vectors were lost or damaged; returns how many (writer lock)."""
        return checksums.drop_damaged_rows(self, bad_blocks)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error (database errors
        arrive as domain errors: :mod:`proto_index.store.db_errors`)."""
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
        """How many vector rows the catalog has committed (see :func:`queries.committed_rows`)."""
        with self._sessions() as s:
            return queries.committed_rows(s)

    def live_rows(self, start: int = 0) -> np.ndarray:
        """The vector rows (from ``start`` on) some catalog window points at, ascending."""
        with self._sessions() as s:
            return queries.live_rows(s, start)

    def count_live_rows(self, below: int | None = None) -> int:
        with self._sessions() as s:
            return queries.count_live_rows(s, below)

    def windows_at_rows(self, rows) -> dict[int, WindowAt]:
        """Where each vector row comes from: window id, recording path and span."""
        with self._sessions() as s:
            return queries.windows_at_rows(s, rows)

    def index(self) -> VectorIndex:
        """The published index plus every vector committed since it was published (cached).

        Searches run on a CUDA device when FAISS has GPU support, unless ``gpu_search`` is off.
        """
        if self._index is None:
            self._index = published.load_current(self)
            if self.gpu_search:
                self._index.to_gpu()
        return self._index

    def load_published_index(self) -> tuple[VectorIndex | None, str | None]:
        """The published index file as saved, or None and why it cannot be used."""
        return published.load_published(self)

    def index_plan(self, n_vectors: int | None = None) -> IndexPlan:
        """The index this store's corpus calls for: a user-chosen factory, else sized by count and budget."""
        return published.plan(self, n_vectors)

    def publish_index(self, index: VectorIndex) -> None:
        """Save ``index`` (which must hold every committed row) under a new name, point the catalog at
        it and seal the vector blocks. Needs the writer lock."""
        published.publish(self, index)
        self._index = index
        self.seal_vectors()

    def forget_index(self) -> None:
        """Drop the cached index: the next :meth:`index` reads the published one again."""
        self._index = None

    def compact_vectors(self) -> bool:
        """Rewrite the vector file without the rows of removed recordings and switch to it (the
        index must be rebuilt after). Returns whether anything was dropped. Needs the writer lock."""
        if not self.writing:
            raise StoreError("compacting the vector file needs the writer lock")
        new = compaction.copy_live_rows(self)
        if new is None:
            return False
        old, self.vectors = self.vectors.path, new
        self._index = None
        old.unlink(missing_ok=True)
        return True

    def set_meta(self, key: str, value: str | None) -> None:
        with self.session() as s:
            if value is None:
                row = s.get(StoreMeta, key)
                if row is not None:
                    s.delete(row)
            else:
                s.merge(StoreMeta(key=key, value=value))
