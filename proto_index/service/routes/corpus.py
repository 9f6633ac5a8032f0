"""Recordings and windows: browse them, and stream audio excerpts (range requests)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from proto_index.errors import NotFound
from proto_index.service.audio import RangeNotSatisfiable, byte_range, spectrogram_png, wav_excerpt
from proto_index.service.routes.deps import path_text, state
from proto_index.service.state import ServiceState
from proto_index.store.schema import Recording, Window

router = APIRouter(prefix="/api", tags=["corpus"])


def recording_record(r: Recording, windows: int | None = None) -> dict:
    out = {"id": r.id, "path": path_text(r.path), "duration_s": r.duration_s, "sample_rate": r.sample_rate,
           "channels": r.channels, "sha256": r.sha256}
    if windows is not None:
        out["windows"] = windows
    return out


@router.get("/recordings")
def recordings(limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0),
               st: ServiceState = Depends(state)) -> dict:
    with st.storage.session() as s:
        total = s.scalar(select(func.count()).select_from(Recording))
        counts = select(Window.recording_id, func.count().label("n")).group_by(Window.recording_id).subquery()
        q = (select(Recording, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.recording_id == Recording.id)
             .order_by(Recording.id).limit(limit).offset(offset))
        return {"total": total, "recordings": [recording_record(r, n) for r, n in s.execute(q)]}


@router.get("/recordings/{recording_id}")
def recording(recording_id: int, st: ServiceState = Depends(state)) -> dict:
    with st.storage.session() as s:
        r = s.get(Recording, recording_id)
        if r is None:
            raise NotFound(f"no recording {recording_id} in this store")
        return {**recording_record(r), "windows": [window_record(w) for w in r.windows]}


def window_record(w: Window) -> dict:
    return {"id": w.id, "recording_id": w.recording_id, "start_s": w.start_s, "end_s": w.end_s}


@router.get("/windows/{window_id}")
def window(window_id: int, st: ServiceState = Depends(state)) -> dict:
    with st.storage.session() as s:
        w = s.get(Window, window_id)
        if w is None:
            raise NotFound(f"no window {window_id} in this store")
        return {**window_record(w), "path": path_text(w.recording.path)}


@router.get("/audio/{recording_id}", responses={200: {"content": {"audio/wav": {}}}, 206: {"content": {"audio/wav": {}}}})
async def audio(request: Request, recording_id: int, start_s: float = Query(0.0, ge=0), end_s: float | None = None,
                st: ServiceState = Depends(state)) -> Response:
    """A span of a stored recording as WAV (``Range: bytes=a-b`` gives 206 and those bytes)."""
    with st.storage.session() as s:
        r = s.get(Recording, recording_id)
        if r is None:
            raise NotFound(f"no recording {recording_id} in this store")
        path = r.path  # the catalog's path: a request never names a file
    body = await run_in_threadpool(wav_excerpt, path, start_s, end_s)
    return ranged(body, request.headers.get("range"))


@router.get("/audio/window/{window_id}")
async def window_audio(request: Request, window_id: int, st: ServiceState = Depends(state)) -> Response:
    """One stored window's audio as WAV (range requests as above)."""
    with st.storage.session() as s:
        w = s.get(Window, window_id)
        if w is None:
            raise NotFound(f"no window {window_id} in this store")
        path, a, b = w.recording.path, w.start_s, w.end_s
    body = await run_in_threadpool(wav_excerpt, path, a, b)
    return ranged(body, request.headers.get("range"))


@router.get("/spectrogram/window/{window_id}", responses={200: {"content": {"image/png": {}}}})
async def window_spectrogram(window_id: int, st: ServiceState = Depends(state)) -> Response:
    """One stored window's log-power spectrogram thumbnail, as PNG."""
    with st.storage.session() as s:
        w = s.get(Window, window_id)
        if w is None:
            raise NotFound(f"no window {window_id} in this store")
        path, a, b = w.recording.path, w.start_s, w.end_s
    png = await run_in_threadpool(spectrogram_png, path, a, b)
    return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=3600"})


def ranged(body: bytes, header: str | None) -> Response:
    size = len(body)
    headers = {"accept-ranges": "bytes", "cache-control": "private, max-age=3600"}
    try:
        span = byte_range(header, size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "content-range": f"bytes */{size}"})
    if span is None:
        return Response(body, media_type="audio/wav", headers=headers)
    a, b = span
    return Response(body[a : b + 1], status_code=206, media_type="audio/wav",
                    headers={**headers, "content-range": f"bytes {a}-{b}/{size}"})
