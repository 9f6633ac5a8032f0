"""Keeping a store healthy: verify (and repair), remove recordings, rebuild or compact the index."""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from sqlalchemy import LargeBinary, and_, delete, func, literal, or_, select

from proto_index.audio.discover import file_sha256
from proto_index.core.index_plan import choose_plan, min_train_vectors, plan_from_factory
from proto_index.errors import InvalidInput
from proto_index.filenames import to_bytes
from proto_index.store.index import VectorIndex
from proto_index.store.integrity import BLOCK_ROWS
from proto_index.store.schema import Recording, Window
from proto_index.store.storage import Storage
from proto_index.store.vectors import VectorFile


@dataclass
class VerifyReport:
    """``problems`` found (each a line), ``repaired`` what --repair did, ``notes`` facts that are not faults."""

    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)  # problems a repair could not fix

    @property
    def ok(self) -> bool:
        return not (self.remaining if self.repaired else self.problems)


def verify(storage: Storage, repair: bool = False, wait_s: float = 0.0) -> VerifyReport:
    """Check that catalog, vector file and index agree; with ``repair``, fix what can be fixed.

    Takes the writer lock so the picture is not moving. Without ``repair`` nothing is changed, not
    even what an interrupted writer left behind (that is reported).
    """
    report = VerifyReport()
    if storage.read_only and not repair:  # nobody can write it through this mount: look without the lock
        _verify(storage, False, report)
        return report
    with storage.writer(wait_s, recover=False):
        _verify(storage, repair, report)
        if report.repaired:
            after = VerifyReport()
            _verify(storage, False, after)
            report.remaining, report.notes = after.problems, after.notes
    return report


def _verify(storage: Storage, repair: bool, report: VerifyReport) -> None:
    dim = storage.identity.dim
    row_bytes = storage.vectors.row_bytes
    size = storage.vectors.path.stat().st_size
    _check_vector_blocks(storage, repair, report)
    committed = storage.committed_rows()
    short = storage.vectors.count < committed
    leftovers = not short and (size % row_bytes or storage.vectors.count > committed)
    if leftovers:
        report.problems.append(
            f"vector file holds {size / row_bytes:g} rows but the catalog uses {committed}: "
            "rows left by an interrupted ingest"
        )
    stray = [p.name for p in storage.stray_files()]
    if stray:
        report.problems.append(f"files left by an interrupted writer or compaction: {', '.join(stray)}")
    if repair and (leftovers or stray) and not short:
        done = storage.recover()
        report.repaired.append(
            f"dropped {done['vector_rows_dropped']} uncommitted vector rows, removed {done['index_files_removed']} stray files"
        )

    with storage.session() as s:
        missing = s.scalars(select(Window.recording_id).where(Window.vector_row >= storage.vectors.count)).all()
        empty = s.scalars(select(Recording.id).where(~Recording.windows.any())).all()
    if missing:
        report.problems.append(f"{len(missing)} windows point past the end of the vector file")
    if empty:
        report.problems.append(f"{len(empty)} recordings have no windows")
    live = storage.live_rows()
    bad_rows = _non_finite_rows(storage.vectors, live[live < storage.vectors.count])
    if bad_rows:
        report.problems.append(f"{len(bad_rows)} vectors hold NaN or Inf")
    if repair and (missing or empty or bad_rows):
        with storage.session() as s:
            rec_ids = set(missing) | set(empty)
            if bad_rows:
                rec_ids |= set(s.scalars(select(Window.recording_id).where(Window.vector_row.in_(bad_rows))))
            s.execute(delete(Recording).where(Recording.id.in_(rec_ids)))
        report.repaired.append(f"removed {len(rec_ids)} broken recordings from the catalog (ingest them again)")
        live = storage.live_rows()

    dead = max(storage.committed_rows() - len(live), 0)
    if dead:
        report.notes.append(f"{dead} vector rows belong to removed recordings (a compacting reindex reclaims them)")
    covered = int(storage.meta("index_next_row") or storage.committed_rows())
    expected = live[live < covered]
    published, problem = storage.load_published_index()
    if published is None:
        report.problems.append(problem or "no published index")
        agree = False
    else:
        held = published.ids()
        agree = held.shape == expected.shape and bool(np.all(held == expected))
        if not agree:
            extra, lost = np.setdiff1d(held, expected).size, np.setdiff1d(expected, held).size
            report.problems.append(f"the index disagrees with the catalog: {extra} rows too many, {lost} missing")
    if repair and not agree:
        with storage.writer():
            storage.publish_index(VectorIndex.build(dim, live, storage.vectors.read, storage.index_plan(len(live))))
        report.repaired.append(f"rebuilt the index from {len(live)} exact vectors")
    report.notes.append(
        f"{len(live)} windows, {storage.vectors.count} vector rows, index {published.description if agree and published is not None else storage.index().description if repair else 'unusable'}"
    )


def _check_vector_blocks(storage: Storage, repair: bool, report: VerifyReport) -> None:
    """Rows lost to a truncated vector file or changed since their block's checksum was recorded;
    with ``repair``, drop the recordings they belong to (a later ingest embeds them again)."""
    committed, count = storage.committed_rows(), storage.vectors.count
    bad_blocks, unsealed = storage.bad_vector_blocks()
    if count < committed:
        report.problems.append(
            f"the vector file holds {count} rows but the catalog committed {committed}: "
            f"{committed - count} vectors were lost (the file was truncated)"
        )
    if bad_blocks:
        report.problems.append(
            f"{len(bad_blocks)} blocks of {BLOCK_ROWS} vector rows differ from their recorded checksum "
            f"(first at row {bad_blocks[0] * BLOCK_ROWS})"
        )
    if unsealed and not repair:
        report.notes.append(f"{unsealed} blocks of vector rows have no checksum yet (the next writer records them)")
    if not repair:
        return
    if count < committed or bad_blocks:
        removed = storage.drop_damaged_rows(bad_blocks)
        report.repaired.append(
            f"removed {removed} recordings whose vectors were lost or corrupt (ingest them again to re-embed them)"
        )
    storage.seal_vectors()


def _non_finite_rows(vectors: VectorFile, rows: np.ndarray, chunk: int = 100_000) -> list[int]:
    """The rows whose vector holds NaN or Inf, read in chunks (bounded memory at any corpus size)."""
    bad: list[int] = []
    for at in range(0, len(rows), chunk):
        part = rows[at : at + chunk]
        bad += part[~np.isfinite(vectors.read(part)).all(axis=1)].tolist()
    return bad


def _blob_under(folder: str):
    """Names kept as bytes (not UTF-8, :class:`~proto_index.store.schema.PathText`) under ``folder``:
    SQLite's LIKE never matches such a BLOB, so compare its leading bytes."""
    prefix = to_bytes(folder)
    return and_(func.typeof(Recording.path) == "blob",
                func.substr(Recording.path, 1, len(prefix)) == literal(prefix, LargeBinary))


def remove(storage: Storage, paths: Iterable[Path], wait_s: float = 0.0) -> int:
    """Remove recordings from catalog and index: by path (files, or everything under a folder) and,
    for files that still exist, by content. Returns how many recordings were removed."""
    paths = [Path(p).absolute() for p in paths]
    if not paths:
        raise InvalidInput("nothing to remove")
    with storage.writer(wait_s):
        with storage.session() as s:
            ids: set[int] = set()
            for p in paths:
                folder = str(p).rstrip(os.sep) + os.sep
                match = [Recording.path == str(p), Recording.path.startswith(folder, autoescape=True),
                         _blob_under(folder)]
                if p.is_file():
                    match.append(Recording.sha256 == file_sha256(p))
                ids.update(s.scalars(select(Recording.id).where(or_(*match))))
            ordered = sorted(ids)
            rows: list[int] = []
            for at in range(0, len(ordered), 10_000):
                chunk = ordered[at : at + 10_000]
                rows += s.scalars(select(Window.vector_row).where(Window.recording_id.in_(chunk))).all()
                s.execute(delete(Recording).where(Recording.id.in_(chunk)))
        if ids:
            index = storage.index()
            index.remove(np.array(rows, np.int64))
            storage.publish_index(index)
        return len(ids)


def reindex(
    storage: Storage,
    factory: str | None = None,
    memory_budget: int | None = None,
    compact: bool = False,
    wait_s: float = 0.0,
) -> VectorIndex:
    """Rebuild the index from the exact vectors (``factory``: 'auto', 'Flat' or 'IVF<n>,PQ<m>';
    ``memory_budget``: bytes, for 'auto'). Both are checked first and remembered only once the index
    has been built: a refused or failed choice leaves the store's as it was.

    ``compact`` first rewrites the vector file without the rows of removed recordings.
    """
    dim = storage.identity.dim
    if factory is not None and factory != "auto":
        try:
            plan_from_factory(factory, 0, dim)
        except ValueError as e:
            raise InvalidInput(str(e)) from None
    if memory_budget is not None and (not isinstance(memory_budget, numbers.Integral) or isinstance(memory_budget, bool)
                                      or memory_budget < 1):
        raise InvalidInput(f"the index memory budget must be a whole number of bytes of at least 1, got {memory_budget!r}")
    with storage.writer(wait_s):
        chosen = storage.meta("index_factory") if factory is None else None if factory == "auto" else factory
        stored_budget = storage.meta("index_memory_budget")
        budget = int(memory_budget) if memory_budget is not None else int(stored_budget) if stored_budget else None
        if factory not in (None, "auto"):
            n = storage.count_live_rows()
            need = min_train_vectors(plan_from_factory(factory, n, dim))
            if n < need:
                raise InvalidInput(f"index {factory} needs at least {need} vectors to train and the store holds {n}; "
                                   "choose Flat or auto until the corpus grows (nothing was changed)")
        if compact:
            storage.compact_vectors()
        live = storage.live_rows()
        plan = choose_plan(chosen, budget, len(live), dim)
        try:
            index = VectorIndex.build(dim, live, storage.vectors.read, plan)
        except RuntimeError as e:  # FAISS refusing a plan; its message ends with the reason
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise InvalidInput(f"FAISS could not build index {plan.factory}: {reason} (the store's index is unchanged)") from None
        if factory is not None:
            storage.set_meta("index_factory", chosen)
        if memory_budget is not None:
            storage.set_meta("index_memory_budget", str(int(memory_budget)))
        storage.publish_index(index)
        return index
