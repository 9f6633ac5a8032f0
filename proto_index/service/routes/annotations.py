"""Verdicts: create or change one (latest per window wins), list them."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from proto_index.errors import NotFound
from proto_index.usecases.verdicts import ANY, StoredVerdict, Verdict, list_verdicts, set_verdict
from proto_index.service.routes.deps import path_text, state, writable
from proto_index.service.state import ServiceState
from proto_index.store.schema import Annotation

router = APIRouter(prefix="/api/annotations", tags=["annotations"])


class VerdictIn(BaseModel):
    window_id: int
    label: str = Field(min_length=1, max_length=200)
    verdict: str = Field(pattern="^(right|wrong|relabel)$")
    reviewer: str = Field(min_length=1, max_length=200)
    corrected_label: str | None = Field(None, max_length=200)
    environment: str | None = Field(None, max_length=200)
    source: str = Field("web", min_length=1, max_length=100)
    expected_id: int | None = Field(None, description="the id of the window's verdict you saw (null: none); "
                                    "when given and another reviewer changed it since, 409 and nothing stored")


class Change(BaseModel):
    verdict: str = Field(pattern="^(right|wrong|relabel)$")
    reviewer: str = Field(min_length=1, max_length=200)
    corrected_label: str | None = Field(None, max_length=200)
    source: str = Field("web", min_length=1, max_length=100)


def record(v: StoredVerdict) -> dict:
    return {"id": v.id, "recording_id": v.recording_id, "window_id": v.window_id, "path": path_text(v.path),
            "start_s": v.start_s, "end_s": v.end_s, "environment": v.environment, "label": v.label,
            "verdict": v.verdict, "corrected_label": v.corrected_label, "reviewer": v.reviewer, "source": v.source,
            "created_at": v.created_at.isoformat() + "Z"}


@router.post("", status_code=201)
def create(v: VerdictIn, st: ServiceState = Depends(writable)) -> dict:
    """Store a verdict on a window now; it replaces the window's earlier one (``replaced``)."""
    fields = v.model_dump(exclude={"expected_id"})
    expected = v.expected_id if "expected_id" in v.model_fields_set else ANY
    with st.writing():
        stored, replaced = set_verdict(st.storage, Verdict(**fields), expected)
    return {"annotation": record(stored), "replaced": replaced}


@router.put("/{annotation_id}")
def change(annotation_id: int, c: Change, st: ServiceState = Depends(writable)) -> dict:
    """Change a stored verdict (its window, label and environment stay); who changed it is recorded."""
    with st.writing():
        with st.storage.session() as s:
            a = s.scalar(select(Annotation).where(Annotation.id == annotation_id))
            if a is None:
                raise NotFound(f"no annotation {annotation_id} (replaced by a later verdict, or never stored)")
            if a.window_id is None:
                raise NotFound(f"annotation {annotation_id} is on a whole recording; change it with annotate")
            window_id, label, environment = a.window_id, a.label, a.environment
        stored, _ = set_verdict(st.storage, Verdict(window_id, label, c.verdict, c.reviewer, c.corrected_label,
                                                    environment, c.source), annotation_id)
    return {"annotation": record(stored), "replaced": True}


@router.get("")
def listing(window_id: list[int] | None = Query(None), recording_id: int | None = None, reviewer: str | None = None,
            limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0),
            st: ServiceState = Depends(state)) -> dict:
    """Stored verdicts, newest first."""
    return {"annotations": [record(v) for v in list_verdicts(st.storage, window_id, recording_id, reviewer, limit, offset)]}
