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

import errno
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
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from proto_index.core.index_plan import DEFAULT_MEMORY_BUDGET, IndexPlan, plan_from_factory, plan_index
from proto_index.embed.encoder import ModelIdentity
from proto_index.errors import (
    DiskFull,
    InvalidInput,
    ModelMismatch,
    StoreCorrupt,
    StoreError,
    StoreExists,
    StoreLocked,
    StoreNotFound,
    StoreReadOnly,
)
from proto_index.store import catalog, integrity
from proto_index.store.index import VectorIndex
from proto_index.store.schema import FileChecksum, Recording, StoreMeta, Window
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


def store_writable(root: Path) -> bool:
    """Whether this process may write the store folder and its catalog (False on a read-only mount)."""
    files = [root, root / CATALOG] + [root / f"{CATALOG}-{x}" for x in ("wal", "shm") if (root / f"{CATALOG}-{x}").exists()]
    return all(os.access(p, os.W_OK) for p in files)


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").copy()


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
        name = meta["vector_file"].value if meta["vector_file"] else VECTORS
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
            raise InvalidInput(f"--vector-dtype must be float32 or float16, not {vector_dtype!r}")
        root = Path(root)
        for old in cls.check_new(root, discard_old_files):
            old.unlink()
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

    @staticmethod
    def check_new(root: Path, discard_old_files: bool = False) -> list[Path]:
        """Refuse to make a store where one exists, or where an earlier store's files lie without
        its catalog (unless ``discard_old_files``); returns those files."""
        root = Path(root)
        if (root / CATALOG).exists():
            raise StoreExists(f"a store already exists at {root}")
        left = sorted(p for p in root.iterdir() if integrity.owned_file(p.name)) if root.is_dir() else []
        if left and not discard_old_files:
            raise StoreExists(
                f"{root} holds store files ({', '.join(p.name for p in left)}) but no {CATALOG}: the catalog of an "
                "earlier store was deleted or lost; init will not overwrite them (restore the catalog, or pass "
                "--discard-old-files to start over)"
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
        try:
            engine = catalog.create_catalog_engine(root / CATALOG, read_only)
            if not read_only:
                catalog.upgrade(engine)
            elif catalog.current_revision(engine) != catalog.head_revision():
                raise StoreReadOnly(
                    f"{root} is read-only and its catalog needs a schema upgrade that this version would write; "
                    "open it once where it can be written"
                )
            with Session(engine) as s:
                meta = {m.key: m.value for m in s.scalars(select(StoreMeta))}
        except DatabaseError as e:
            raise StoreCorrupt(
                f"{root / CATALOG} cannot be read as a proto-index catalog ({e.orig or e}); restore it from a backup"
            ) from None
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
        except (OSError, OperationalError) as e:
            full = e.errno in _FULL if isinstance(e, OSError) else "disk is full" in str(e.orig)
            if not (first and full):
                raise
            self._index = None
            try:
                self.recover()
            except Exception:  # best effort: the next writer recovers anyway
                pass
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
                f"{committed}: {committed - self.vectors.count} vectors were lost (the file was truncated); run "
                "`proto-index verify --repair` to drop the recordings they belong to, then ingest them again"
            )
        return committed

    # -- checksums -------------------------------------------------------------------------------------

    def checksums(self, file: str) -> dict[int, FileChecksum]:
        with self._sessions() as s:
            return {c.block: c for c in s.scalars(select(FileChecksum).where(FileChecksum.file == file))}

    def seal_vectors(self) -> int:
        """Record the checksum of every committed block of vector rows that has none or has grown
        (a grown block's recorded prefix is checked first; a mismatch is left for ``verify``).
        Returns how many blocks were recorded. Needs the writer lock."""
        if not self.writing:
            raise StoreError("recording checksums needs the writer lock")
        committed = min(self.committed_rows(), self.vectors.count)
        known = self.checksums(self.vectors.path.name)
        mm = self.vectors.memmap()
        fresh: list[FileChecksum] = []
        for block in range(-(-committed // integrity.BLOCK_ROWS)):
            start, stop = integrity.block_span(block, committed)
            old = known.get(block)
            if old is not None and old.rows >= stop - start:
                continue
            if old is not None and integrity.rows_digest(mm, start, start + old.rows) != old.digest:
                continue
            fresh.append(FileChecksum(file=self.vectors.path.name, block=block, rows=stop - start,
                                      digest=integrity.rows_digest(mm, start, stop)))
        if fresh:
            with self.session() as s:
                for c in fresh:
                    s.merge(c)
        return len(fresh)

    def bad_vector_blocks(self) -> tuple[list[int], int]:
        """Blocks whose rows no longer match their checksum (overwritten, or cut off by a truncated
        file), and how many committed blocks have no checksum yet."""
        committed = self.committed_rows()
        known = self.checksums(self.vectors.path.name)
        mm, count = self.vectors.memmap(), self.vectors.count
        bad = []
        for block, c in sorted(known.items()):
            start = block * integrity.BLOCK_ROWS
            if start + c.rows > count or integrity.rows_digest(mm, start, start + c.rows) != c.digest:
                bad.append(block)
        unsealed = sum(1 for b in range(-(-committed // integrity.BLOCK_ROWS)) if b not in known)
        return bad, unsealed

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        try:
            with self._sessions() as s, s.begin():
                yield s
        except OperationalError as e:
            if self.read_only and "readonly" in str(e.orig):
                raise StoreReadOnly(f"{self.root} is read-only: this command writes to the store") from None
            raise

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

    def load_published_index(self) -> tuple[VectorIndex | None, str | None]:
        """The published index file as saved, or None and why it cannot be used (missing, its bytes
        differ from the checksum recorded when it was published, or not a FAISS index)."""
        name = self.meta("index_file") or LEGACY_INDEX
        index, problem = self._read_index_file(name)
        # A writer may publish a new index (and delete this one) between reading the name and the file:
        # then the name has moved on, and the new file is the one to read.
        for _ in range(3):
            if problem is None or (self.meta("index_file") or LEGACY_INDEX) == name:
                break
            name = self.meta("index_file") or LEGACY_INDEX
            index, problem = self._read_index_file(name)
        return index, problem

    def _read_index_file(self, name: str) -> tuple[VectorIndex | None, str | None]:
        path = self.root / name
        missing = f"the published index file {name} is missing"
        if not path.exists():
            return None, missing
        recorded = self.checksums(name).get(integrity.INDEX_BLOCK)
        try:
            if recorded is not None and integrity.file_digest(path) != recorded.digest:
                return None, f"the index file {name} is corrupt (its checksum differs from the one recorded when it was published)"
            return VectorIndex.load(path, self.vectors.read), None
        except FileNotFoundError:  # deleted by a writer that published a newer index meanwhile
            return None, missing
        except (RuntimeError, ValueError, TypeError) as e:
            if not path.exists():
                return None, missing
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            return None, f"the index file {name} is not a readable FAISS index ({reason[:120]})"

    def _load_index(self) -> VectorIndex:
        covered = self.meta("index_next_row")
        self.check_vector_count()
        index, problem = self.load_published_index()
        damaged = problem is not None and (self.root / (self.meta("index_file") or LEGACY_INDEX)).exists()
        if damaged and not self.writing:  # a missing index is rebuilt in memory; a damaged one is reported
            raise StoreCorrupt(f"{problem}; run `proto-index verify --repair` to rebuild it from the exact vectors")
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
        digest = index.save(self.root / name)
        with self.session() as s:
            s.merge(StoreMeta(key="index_file", value=name))
            s.merge(StoreMeta(key="index_next_row", value=str(self.committed_rows())))
            s.add(FileChecksum(file=name, block=integrity.INDEX_BLOCK, rows=index.ntotal, digest=digest))
            s.execute(delete(FileChecksum).where(FileChecksum.file.notin_([name, self.vectors.path.name])))
        for stale in {old, LEGACY_INDEX} - {None, name}:
            (self.root / stale).unlink(missing_ok=True)
        self._index = index
        self.seal_vectors()

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
