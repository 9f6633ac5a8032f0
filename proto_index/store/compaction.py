"""Compaction: copying a store's live vector rows into a new vector file and switching to it."""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import update

from proto_index.atomic import fsync_dir
from proto_index.store.schema import StoreMeta, Window
from proto_index.store.vectors import VectorFile, vector_file_name

if TYPE_CHECKING:
    from proto_index.store.storage import Storage

COPY_ROWS = 100_000


def copy_live_rows(storage: Storage) -> VectorFile | None:
    """Copy the live rows into a new vector file, then renumber the windows and point the catalog
    at it in one transaction; returns the new file (None if no row is dead). The caller switches
    to it and deletes the old file.

    Crash-safe: before the commit the new file is a stray (its name is one the store owns, so the
    next writer deletes it); after it, the old one is.
    """
    live = storage.live_rows()
    if len(live) == storage.committed_rows():
        return None
    name = vector_file_name(storage.vector_dtype, uuid.uuid4().hex[:12])
    new = VectorFile(storage.root / name, storage.identity.dim, storage.vector_dtype)
    for at in range(0, len(live), COPY_ROWS):
        new.append(storage.vectors.read(live[at : at + COPY_ROWS]))
    fsync_dir(storage.root)  # the new file's name is durable before the catalog points at it
    with storage.session() as s:
        # ascending old rows map to ascending new ranks <= old, so no update collides with a later row
        for rank, row in enumerate(live.tolist()):
            if rank != row:
                s.execute(update(Window).where(Window.vector_row == row).values(vector_row=rank))
        s.merge(StoreMeta(key="vector_file", value=name))
        s.merge(StoreMeta(key="vector_rows", value=str(len(live))))
        s.merge(StoreMeta(key="index_next_row", value="0"))
    return new
