"""Classification: the stored windows (the browser), or an uploaded clip."""
from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from proto_index.core.drift import DEFAULT_WEIGHT as DEFAULT_DRIFT_WEIGHT
from proto_index.errors import AudioDecodeError
from proto_index.options import ScoringOptions
from proto_index.usecases.verdicts import list_verdicts
from proto_index.usecases.window_labels import classify_windows
from proto_index.service.routes.deps import num, path_text, state
from proto_index.service.routes.uploads import uploaded_clip
from proto_index.service.state import ServiceState

router = APIRouter(prefix="/api/classify", tags=["classify"])
ORDERS = ("uncertain", "confident", "id")


@router.get("/windows")
def stored_windows(
    prototypes: str, environment: str, label: str | None = None, recording_id: int | None = None,
    order: str = Query("uncertain", pattern="^(uncertain|confident|teach|id)$"), unreviewed: bool = False,
    compare: str | None = None,
    limit: int = Query(50, ge=1, le=5000), offset: int = Query(0, ge=0), st: ServiceState = Depends(state),
) -> dict:
    """The corpus's windows classified in ``environment`` with ``prototypes`` (least certain first by
    default), each with its stored verdict; ``counts``: windows per label. ``compare``: a second
    prototype set, whose label each window also gets (``other_label``); ``order=teach`` puts the
    windows the two sets disagree on first, then the least certain (what a verdict teaches most)."""
    scope = None if recording_id is None else [recording_id]
    result = classify_windows(st.storage, prototypes, environment, ScoringOptions(), scope)
    other = {} if compare is None else {
        w.window_id: w.label for w in classify_windows(st.storage, compare, environment, ScoringOptions(), scope).windows}
    rows = result.windows
    counts = {lab: 0 for lab in result.labels}
    for w in rows:
        counts[w.label] += 1
    if label is not None:
        rows = [w for w in rows if w.label == label]
    if order == "uncertain":
        rows = sorted(rows, key=lambda w: (_margin(w), w.window_id))
    elif order == "teach":
        rows = sorted(rows, key=lambda w: (other.get(w.window_id, w.label) == w.label, _margin(w), w.window_id))
    elif order == "confident":
        rows = sorted(rows, key=lambda w: (-_margin(w), w.window_id))
    verdicts = {v.window_id: v for v in list_verdicts(st.storage, [w.window_id for w in rows])} if rows else {}
    if unreviewed:
        rows = [w for w in rows if w.window_id not in verdicts]
    total = len(rows)
    page = rows[offset : offset + limit]
    return {
        "prototypes": prototypes, "environment": environment, "adaptation": result.adaptation,
        "labels": result.labels, "counts": counts, "total": total,
        "windows": [{"window_id": w.window_id, "recording_id": w.recording_id, "path": path_text(w.path),
                     "start_s": w.start_s, "end_s": w.end_s, "label": w.label, "score": num(w.score), "margin": num(w.margin), "other_label": other.get(w.window_id),
                     "verdict": _verdict(verdicts.get(w.window_id))} for w in page],
    }


def _verdict(v) -> dict | None:
    if v is None:
        return None
    return {"id": v.id, "verdict": v.verdict, "label": v.label, "corrected_label": v.corrected_label,
            "reviewer": v.reviewer, "source": v.source, "created_at": v.created_at.isoformat() + "Z"}


@router.post("/audio")
async def uploaded(request: Request, prototypes: str, environment: str, per_window: bool = False,
                   drift: bool = False, drift_weight: float = DEFAULT_DRIFT_WEIGHT,
                   st: ServiceState = Depends(state)) -> dict:
    """Classify an uploaded clip (multipart field ``file``, or the raw body) as recorded in ``environment``;
    ``drift``: drift-augmented scoring, as `classify --drift [--drift-weight W]`."""
    scoring = ScoringOptions(per_window=per_window, drift=drift, drift_weight=drift_weight)  # checked before the upload
    async with uploaded_clip(request) as path:
        result = await run_in_threadpool(st.store.classify, [(path, environment)], prototypes, scoring=scoring)
    if result.files and all(f.error is not None for f in result.files):
        raise AudioDecodeError(f"the upload could not be classified: {result.files[0].error}")
    return {
        "prototypes": prototypes, "environment": environment, "labels": result.labels,
        "results": [{"start_s": f.start_s, "end_s": f.end_s, "label": f.label, "score": num(f.score),
                     "margin": num(f.margin), "adaptation": f.adaptation, "tau": num(f.tau), "error": f.error,
                     "scores": None if f.scores is None else [float(x) for x in f.scores]} for f in result.files],
    }


def _margin(w) -> float:
    return 0.0 if math.isnan(w.margin) else w.margin
