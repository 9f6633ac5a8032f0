"""The modality gap of a stored prototype set against the store's corpus (``proto-index gap``)."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from proto_index.core.gap import GapReport, modality_gap
from proto_index.errors import Hint, InvalidInput
from proto_index.store.views import get_prototype_set, prototype_set_view
from proto_index.store.storage import Storage

CHUNK_ROWS = 65_536


def _corpus_chunks(storage: Storage, rows: np.ndarray) -> Iterator[np.ndarray]:
    for i in range(0, len(rows), CHUNK_ROWS):
        yield storage.vectors.read(rows[i : i + CHUNK_ROWS])


def prototype_gap(storage: Storage, prototypes: str, k: int = 10) -> tuple[str, GapReport]:
    """``(method, report)``: the set's text anchors and prototypes against every corpus window, exactly
    (one pass over the vector file, not the possibly compressed index)."""
    if k < 1:
        raise InvalidInput("K must be at least 1")
    with storage.session() as s:
        view = prototype_set_view(s, get_prototype_set(s, prototypes), with_neighbours=False)
    rows = storage.live_rows()
    if len(rows) < k:
        raise InvalidInput(f"K={k} exceeds the corpus size ({len(rows)} windows)", hint=Hint("k", "ingest audio or lower {option}"))
    return view.method, modality_gap(view.labels, view.anchors, view.matrix, _corpus_chunks(storage, rows), k)
