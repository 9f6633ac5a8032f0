"""Prototype sets: list, show (with TGAP neighbours), build on demand."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from proto_index.core.prototypes import DEFAULT_TGAP_N
from proto_index.options.prototypes import DEFAULT_MIN_CONFIRMED, PrototypeOptions
from proto_index.service.routes.deps import path_text, state, writable
from proto_index.service.state import ServiceState

router = APIRouter(prefix="/api/prototypes", tags=["prototypes"])


class Build(BaseModel):
    class_set: str = Field(min_length=1, max_length=200)
    method: str = "zero-shot"
    n: int = Field(DEFAULT_TGAP_N, ge=1, le=100_000)
    name: str | None = Field(None, min_length=1, max_length=200)
    replace: bool = False
    min_confirmed: int = Field(DEFAULT_MIN_CONFIRMED, ge=1)


def set_record(ps) -> dict:
    return {"name": ps.name, "method": ps.method, "n_neighbours": ps.n_neighbours, "class_set": ps.class_set,
            "labels": list(ps.labels)}


@router.get("")
def list_sets(st: ServiceState = Depends(state)) -> dict:
    return {"prototype_sets": [set_record(ps) for ps in st.store.prototype_sets()]}


@router.get("/{name}")
def show(name: str, top: int = Query(10, ge=0), st: ServiceState = Depends(state)) -> dict:
    """The set, with each class's prompt and its first ``top`` TGAP neighbours (0: all)."""
    ps = st.store.prototype_set(name)
    classes = []
    for label, prompt, neighbours in zip(ps.labels, ps.prompts, ps.neighbours):
        shown = neighbours if top == 0 else neighbours[:top]
        classes.append({"label": label, "prompt": prompt, "neighbours_total": len(neighbours),
                        "neighbours": [{"rank": i, "score": nb.score, "window_id": nb.window_id,
                                        "path": path_text(nb.path), "start_s": nb.start_s}
                                       for i, nb in enumerate(shown, start=1)]})
    return {**set_record(ps), "classes": classes}


@router.post("", status_code=201)
def build(b: Build, st: ServiceState = Depends(writable)) -> dict:
    """Build a set: zero-shot, tgap (``n`` neighbours), supervised (confirmed verdicts), blend."""
    with st.writing():
        options = PrototypeOptions(method=b.method, n=b.n, name=b.name, replace=b.replace, min_confirmed=b.min_confirmed)
        ps = st.store.build_prototypes(b.class_set, options)
    return set_record(ps)
