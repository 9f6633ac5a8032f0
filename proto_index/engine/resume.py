"""Resuming an ingest without rereading: a path whose size and mtime match its stored recording is skipped unread.

The content hash stays a recording's identity; (path, size, st_mtime_ns) is only a cache in front of
it. A file whose stat differs (or that was stored before the catalog kept stats) is read and hashed
as before: new content is embedded, known content skipped, and a stored recording at the same path
gets its stat refreshed so the next run skips it unread. Like rsync's quick check, this trusts that
a file rewritten with the same size inside one mtime tick is unchanged; ``rehash`` turns it off.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import bindparam, select, update

from proto_index.engine.embedding import SkippedFile
from proto_index.store.schema import Recording
from proto_index.store.storage import Storage


def stored_stats(storage: Storage) -> dict[str, set[tuple[int, int]]]:
    """Path -> the (size, mtime_ns) pairs its stored recordings were read at (rows with a stat only)."""
    stats: dict[str, set[tuple[int, int]]] = {}
    with storage.session() as s:
        rows = s.execute(select(Recording.path, Recording.size_bytes, Recording.mtime_ns)
                         .where(Recording.size_bytes.is_not(None), Recording.mtime_ns.is_not(None)))
        for path, size, mtime in rows:
            if size is not None and mtime is not None:  # always (the query's condition): for the type checker
                stats.setdefault(path, set()).add((size, mtime))
    return stats


def split_unchanged(files: Sequence[Path], stats: dict[str, set[tuple[int, int]]]) -> tuple[list[Path], list[Path]]:
    """``(to_read, unchanged)``: files whose current stat is among their path's stored ones are unchanged.

    Only ``os.stat`` is called; a file that cannot be stat'ed goes to ``to_read`` (its read reports why).
    """
    to_read: list[Path] = []
    unchanged: list[Path] = []
    for path in files:
        known = stats.get(str(path))
        if known:
            try:
                st = os.stat(path)
            except OSError:
                to_read.append(path)
                continue
            if (st.st_size, st.st_mtime_ns) in known:
                unchanged.append(path)
                continue
        to_read.append(path)
    return to_read, unchanged


def refresh_stats(storage: Storage, skipped: Sequence[SkippedFile]) -> None:
    """Record the stat of files re-read and found stored under the same path (touched, or from before stats)."""
    rows = [{"p": str(f.path), "h": f.sha256, "size": f.size_bytes, "mtime": f.mtime_ns}
            for f in skipped if f.size_bytes is not None and f.mtime_ns is not None]
    if not rows:
        return
    stmt = (update(Recording)
            .where(Recording.path == bindparam("p"), Recording.sha256 == bindparam("h"))
            .values(size_bytes=bindparam("size"), mtime_ns=bindparam("mtime")))
    with storage.session() as s:
        s.connection().execute(stmt, rows)
