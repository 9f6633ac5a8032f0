"""The published FAISS index of a store: reading it (plus the rows committed since), planning and
publishing a new one. See :mod:`proto_index.store.storage` for the protocol."""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import delete

from proto_index.core.index_plan import IndexPlan, choose_plan
from proto_index.errors import Hint, StoreCorrupt, StoreError
from proto_index.store import integrity
from proto_index.store.checksums import recorded
from proto_index.store.index import VectorIndex
from proto_index.store.schema import FileChecksum, StoreMeta

if TYPE_CHECKING:
    from proto_index.store.storage import Storage

LEGACY_INDEX = "index.faiss"  # stores made before index files were versioned


def index_name(storage: Storage) -> str:
    """The file name of the published index."""
    return storage.meta("index_file") or LEGACY_INDEX


def load_published(storage: Storage) -> tuple[VectorIndex | None, str | None]:
    """The published index file as saved, or None and why it cannot be used (missing, its bytes
    differ from the checksum recorded when it was published, or not a FAISS index)."""
    name = index_name(storage)
    index, problem = _read(storage, name)
    # A writer may publish a new index (and delete this one) between reading the name and the file:
    # then the name has moved on, and the new file is the one to read.
    for _ in range(3):
        if problem is None or index_name(storage) == name:
            break
        name = index_name(storage)
        index, problem = _read(storage, name)
    return index, problem


def _read(storage: Storage, name: str) -> tuple[VectorIndex | None, str | None]:
    path = storage.root / name
    missing = f"the published index file {name} is missing"
    if not path.exists():
        return None, missing
    checksum = recorded(storage, name).get(integrity.INDEX_BLOCK)
    try:
        if checksum is not None and integrity.file_digest(path) != checksum.digest:
            return None, f"the index file {name} is corrupt (its checksum differs from the one recorded when it was published)"
        return VectorIndex.load(path, storage.vectors.read), None
    except FileNotFoundError:  # deleted by a writer that published a newer index meanwhile
        return None, missing
    except (RuntimeError, ValueError, TypeError) as e:
        if not path.exists():
            return None, missing
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return None, f"the index file {name} is not a readable FAISS index ({reason[:120]})"


def load_current(storage: Storage) -> VectorIndex:
    """The published index plus the committed rows past the ones it covers; rebuilt from the exact
    vectors when it is missing or disagrees with the catalog (and published again by a writer)."""
    covered = storage.meta("index_next_row")
    storage.check_vector_count()
    index, problem = load_published(storage)
    damaged = problem is not None and (storage.root / index_name(storage)).exists()
    if damaged and not storage.writing:  # a missing index is rebuilt in memory; a damaged one is reported
        raise StoreCorrupt(problem, hint=Hint("verify_repair", "run {option} to rebuild it from the exact vectors"))
    if index is not None and index.dim == storage.identity.dim:
        next_row = int(covered) if covered is not None else storage.committed_rows()
        if index.ntotal == storage.count_live_rows(below=next_row):
            delta = storage.live_rows(next_row)
            index.add(delta, storage.vectors.read(delta))
            return index
    index = VectorIndex.build(storage.identity.dim, storage.live_rows(), storage.vectors.read, plan(storage))
    if storage.writing:
        storage.publish_index(index)
    return index


def plan(storage: Storage, n_vectors: int | None = None) -> IndexPlan:
    """The index this store's corpus calls for: a user-chosen factory, else sized by count and budget."""
    n = storage.count_live_rows() if n_vectors is None else n_vectors
    budget = storage.meta("index_memory_budget")
    return choose_plan(storage.meta("index_factory"), int(budget) if budget else None, n, storage.identity.dim)


def publish(storage: Storage, index: VectorIndex) -> None:
    """Save ``index`` (which must hold every committed row) under a new name, point the catalog at
    it (with its checksum) and delete the old file. Needs the writer lock."""
    if not storage.writing:
        raise StoreError("publishing an index needs the writer lock")
    old = storage.meta("index_file")
    name = f"index-{uuid.uuid4().hex[:12]}.faiss"
    digest = index.save(storage.root / name)
    with storage.session() as s:
        s.merge(StoreMeta(key="index_file", value=name))
        s.merge(StoreMeta(key="index_next_row", value=str(storage.committed_rows())))
        s.add(FileChecksum(file=name, block=integrity.INDEX_BLOCK, rows=index.ntotal, digest=digest))
        s.execute(delete(FileChecksum).where(FileChecksum.file.notin_([name, storage.vectors.path.name])))
    for stale in {n for n in (old, LEGACY_INDEX) if n is not None} - {name}:
        (storage.root / stale).unlink(missing_ok=True)
