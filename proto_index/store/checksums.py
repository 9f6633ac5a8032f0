"""The recorded checksums of a store's vector file: sealing committed blocks, finding damaged ones,
and dropping the recordings whose rows were lost (see :mod:`proto_index.store.integrity`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from proto_index.errors import StoreError
from proto_index.store import integrity
from proto_index.store.schema import FileChecksum, Recording, StoreMeta, Window

if TYPE_CHECKING:
    from proto_index.store.storage import Storage


def recorded(storage: Storage, file: str) -> dict[int, FileChecksum]:
    """The checksums recorded for ``file``, by block."""
    with storage.session() as s:
        return {c.block: c for c in s.scalars(select(FileChecksum).where(FileChecksum.file == file))}


def seal_vectors(storage: Storage) -> int:
    """Record the checksum of every committed block of vector rows that has none or has grown
    (a grown block's recorded prefix is checked first; a mismatch is left for ``verify``).
    Returns how many blocks were recorded. Needs the writer lock."""
    if not storage.writing:
        raise StoreError("recording checksums needs the writer lock")
    vectors = storage.vectors
    committed = min(storage.committed_rows(), vectors.count)
    known = recorded(storage, vectors.path.name)
    mm = vectors.memmap()
    fresh: list[FileChecksum] = []
    for block in range(-(-committed // integrity.BLOCK_ROWS)):
        start, stop = integrity.block_span(block, committed)
        old = known.get(block)
        if old is not None and old.rows >= stop - start:
            continue
        if old is not None and integrity.rows_digest(mm, start, start + old.rows) != old.digest:
            continue
        fresh.append(FileChecksum(file=vectors.path.name, block=block, rows=stop - start,
                                  digest=integrity.rows_digest(mm, start, stop)))
    if fresh:
        with storage.session() as s:
            for c in fresh:
                s.merge(c)
    return len(fresh)


def bad_vector_blocks(storage: Storage) -> tuple[list[int], int]:
    """Blocks whose rows no longer match their checksum (overwritten, or cut off by a truncated
    file), and how many committed blocks have no checksum yet."""
    committed = storage.committed_rows()
    known = recorded(storage, storage.vectors.path.name)
    mm, count = storage.vectors.memmap(), storage.vectors.count
    bad = []
    for block, c in sorted(known.items()):
        start = block * integrity.BLOCK_ROWS
        if start + c.rows > count or integrity.rows_digest(mm, start, start + c.rows) != c.digest:
            bad.append(block)
    unsealed = sum(1 for b in range(-(-committed // integrity.BLOCK_ROWS)) if b not in known)
    return bad, unsealed


def drop_damaged_rows(storage: Storage, bad_blocks: list[int]) -> int:
    """Remove the recordings with a window in ``bad_blocks`` or past the end of a truncated vector
    file, forget those blocks' checksums, commit the shorter row count and drop a torn last row.
    Returns how many recordings were removed. Needs the writer lock."""
    if not storage.writing:
        raise StoreError("dropping damaged vector rows needs the writer lock")
    committed, count = storage.committed_rows(), storage.vectors.count
    block = integrity.BLOCK_ROWS
    lost = [(b * block, (b + 1) * block) for b in bad_blocks] + [(min(count, committed), committed)]
    with storage.session() as s:
        rec_ids: set[int] = set()
        for start, stop in lost:
            rec_ids |= set(s.scalars(select(Window.recording_id).where(Window.vector_row >= start, Window.vector_row < stop)))
        ordered = sorted(rec_ids)
        for at in range(0, len(ordered), 10_000):
            s.execute(delete(Recording).where(Recording.id.in_(ordered[at : at + 10_000])))
        s.execute(delete(FileChecksum).where(FileChecksum.file == storage.vectors.path.name,
                                             FileChecksum.block.in_(bad_blocks + [count // block])))
        if count < committed:
            s.merge(StoreMeta(key="vector_rows", value=str(count)))
            next_row = s.get(StoreMeta, "index_next_row")
            s.merge(StoreMeta(key="index_next_row", value=str(min(int(next_row.value) if next_row else 0, count))))
    storage.vectors.truncate(count)  # only shortens: drops a torn last row
    storage.forget_index()
    return len(rec_ids)
