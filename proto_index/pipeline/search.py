"""Text-to-audio retrieval over the corpus index."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from proto_index.core.profiles import l2_normalize
from proto_index.embed.encoder import Encoder
from proto_index.errors import InvalidInput
from proto_index.store.schema import Recording, Window
from proto_index.store.storage import Storage


@dataclass(frozen=True)
class SearchHit:
    path: str
    start_s: float
    end_s: float
    score: float
    window_id: int


def search(storage: Storage, encoder: Encoder, text: str, k: int = 10) -> list[SearchHit]:
    """The ``k`` corpus windows most similar (cosine) to the text's embedding, best first."""
    if not text.strip():
        raise InvalidInput("the search text is empty")
    if k < 1:
        raise InvalidInput("-k must be at least 1")
    storage.check_identity(encoder.identity)
    query = l2_normalize(np.asarray(encoder.embed_texts([text]), dtype=np.float32))
    scores, ids = storage.index().search(query, k)
    ids = [int(i) for i in ids[0] if i >= 0]
    with storage.session() as s:
        where = {
            wid: (path, a, b)
            for wid, path, a, b in s.execute(
                select(Window.id, Recording.path, Window.start_s, Window.end_s).join(Recording).where(Window.id.in_(ids))
            )
        }
    return [SearchHit(*where[i], score=float(sc), window_id=i) for i, sc in zip(ids, scores[0]) if i in where]
