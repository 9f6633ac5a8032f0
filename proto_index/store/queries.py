"""Read-only queries on the catalog: which vector rows are committed and live, where a row comes
from, and the overview the API lists (class sets, prototype sets, counts, failures).

Each takes an open :class:`~sqlalchemy.orm.Session`; the caller chooses the transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from proto_index.store.schema import ClassSet, Environment, IngestFailure, PrototypeSet, Recording, StoreMeta, Window

IN_CHUNK = 10_000
"""Most values in one SQL ``IN (...)``."""


@dataclass(frozen=True)
class WindowAt:
    window_id: int
    path: str
    start_s: float
    end_s: float


def committed_rows(s: Session) -> int:
    """How many vector rows the catalog has committed (live or belonging to removed recordings).

    Written in the same transaction as the windows that point at the rows; stores from before
    this key fall back to one past the highest row in use.
    """
    recorded = s.get(StoreMeta, "vector_rows")
    if recorded is not None:
        return int(recorded.value)
    last = s.scalar(select(func.max(Window.vector_row)))
    return 0 if last is None else last + 1


def live_rows(s: Session, start: int = 0) -> np.ndarray:
    """The vector rows (from ``start`` on) some catalog window points at, ascending."""
    q = select(Window.vector_row).where(Window.vector_row >= start).order_by(Window.vector_row)
    return np.array(s.scalars(q).all(), dtype=np.int64)


def count_live_rows(s: Session, below: int | None = None) -> int:
    q = select(func.count()).select_from(Window)
    return s.scalar(q if below is None else q.where(Window.vector_row < below)) or 0


def windows_at_rows(s: Session, rows) -> dict[int, WindowAt]:
    """Where each vector row comes from: window id, recording path and span."""
    rows = [int(r) for r in np.asarray(rows).ravel()]
    found: dict[int, WindowAt] = {}
    for chunk in range(0, len(rows), IN_CHUNK):
        q = (
            select(Window.vector_row, Window.id, Recording.path, Window.start_s, Window.end_s)
            .join(Recording)
            .where(Window.vector_row.in_(rows[chunk : chunk + IN_CHUNK]))
        )
        for row, wid, path, a, b in s.execute(q):
            found[row] = WindowAt(wid, path, a, b)
    return found


def class_sets(s: Session) -> list[ClassSet]:
    """Every class set, by name."""
    return list(s.scalars(select(ClassSet).order_by(ClassSet.name)))


def prototype_sets(s: Session) -> list[PrototypeSet]:
    """Every prototype set, by name."""
    return list(s.scalars(select(PrototypeSet).order_by(PrototypeSet.name)))


def counts(s: Session) -> dict[str, int]:
    """How many recordings, windows, failed files, class sets, prototype sets and environments."""
    tables = {"recordings": Recording, "windows": Window, "failed_files": IngestFailure, "class_sets": ClassSet,
              "prototype_sets": PrototypeSet, "environments": Environment}
    return {name: s.scalar(select(func.count()).select_from(table)) or 0 for name, table in tables.items()}


def corpus_seconds(s: Session) -> float:
    """The summed duration of every recording."""
    return float(s.scalar(select(func.coalesce(func.sum(Recording.duration_s), 0.0))) or 0.0)


def ingest_failures(s: Session) -> list[tuple[str, str]]:
    """``(path, error)`` of every file the last ingests could not read, by path."""
    return [(f.path, f.error) for f in s.scalars(select(IngestFailure).order_by(IngestFailure.path))]
