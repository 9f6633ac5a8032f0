"""Search the corpus: by text, by an uploaded clip, by a stored window."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from proto_index.errors import NotFound
from proto_index.usecases.search import search_vector
from proto_index.service.routes.deps import path_text, state
from proto_index.service.routes.uploads import uploaded_clip
from proto_index.service.state import ServiceState
from proto_index.store.schema import Window

router = APIRouter(prefix="/api/search", tags=["search"])
MAX_K = 1000


class TextQuery(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    k: int = Field(10, ge=1, le=MAX_K)


def hits_record(hits) -> dict:
    return {"hits": [{"score": h.score, "path": path_text(h.path), "start_s": h.start_s, "end_s": h.end_s,
                      "window_id": h.window_id} for h in hits]}


@router.post("/text")
def by_text(q: TextQuery, st: ServiceState = Depends(state)) -> dict:
    """The ``k`` windows nearest the text's embedding (cosine), best first."""
    st.watch.index()
    return hits_record(st.store.search(q.text, q.k))


@router.post("/audio")
async def by_audio(request: Request, k: int = Query(10, ge=1, le=MAX_K), st: ServiceState = Depends(state)) -> dict:
    """The windows nearest an uploaded clip (multipart field ``file``, or the raw body): its windows' mean."""
    async with uploaded_clip(request) as path:
        def work():
            st.watch.index()
            return search_vector(st.storage, st.store.embed_audio([path])[0], k)

        return hits_record(await run_in_threadpool(work))


@router.get("/window/{window_id}")
def by_window(window_id: int, k: int = Query(10, ge=1, le=MAX_K), st: ServiceState = Depends(state)) -> dict:
    """The windows nearest a stored window (itself left out)."""
    with st.storage.session() as s:
        w = s.get(Window, window_id)
        if w is None:
            raise NotFound(f"no window {window_id} in this store")
        row = w.vector_row
    st.watch.index()
    vector = st.storage.vectors.read([row])[0]
    return hits_record(search_vector(st.storage, vector, k, exclude_window=window_id))
