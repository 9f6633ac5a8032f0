"""Text-to-audio retrieval over the corpus index."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proto_index.core.profiles import l2_normalize
from proto_index.engine.model import LazyEncoder
from proto_index.errors import Hint, InvalidInput
from proto_index.usecases.preflight import check_text_tower
from proto_index.store.storage import Storage


@dataclass(frozen=True)
class SearchHit:
    path: str
    start_s: float
    end_s: float
    score: float
    window_id: int


def search(storage: Storage, model: LazyEncoder, text: str, k: int = 10) -> list[SearchHit]:
    """The ``k`` corpus windows most similar (cosine) to the text's embedding, best first; the
    inputs are checked before ``model`` loads."""
    check_text_tower(storage, "text search embeds the query with one")
    if not text.strip():
        raise InvalidInput("the search text is empty")
    if k < 1:
        raise InvalidInput("k must be at least 1", hint=Hint("k"))
    encoder = model.get()
    storage.check_identity(encoder.identity)
    return search_vector(storage, np.asarray(encoder.embed_texts([text]), dtype=np.float32)[0], k)


def search_vector(storage: Storage, vector: np.ndarray, k: int = 10, exclude_window: int | None = None) -> list[SearchHit]:
    """The ``k`` corpus windows most similar (cosine) to ``vector``, best first (without ``exclude_window``)."""
    if k < 1:
        raise InvalidInput("k must be at least 1", hint=Hint("k"))
    query = l2_normalize(np.asarray(vector, dtype=np.float32).reshape(1, -1))
    scores, rows = storage.index().search(query, k + (exclude_window is not None))
    located = storage.windows_at_rows(rows[0][rows[0] >= 0])
    hits = [
        SearchHit(w.path, w.start_s, w.end_s, float(sc), w.window_id)
        for r, sc in zip(rows[0], scores[0])
        if (w := located.get(int(r))) is not None and w.window_id != exclude_window
    ]
    return hits[:k]
