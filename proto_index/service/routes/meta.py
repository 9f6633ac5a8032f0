"""Health and the store's overview."""
from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends

from proto_index.service.routes.deps import path_text, state
from proto_index.service.state import ServiceState

router = APIRouter(prefix="/api", tags=["meta"])


@router.get("/health")
def health(st: ServiceState = Depends(state)) -> dict:
    return {"status": "ok"}


@router.get("/info")
def info(st: ServiceState = Depends(state)) -> dict:
    """The store's model, counts, prototype sets, environments; how this server runs."""
    data = st.store.info()
    enc = st._encoder
    return {
        "store": data["store"],
        "model": asdict(data["model"]),
        "model_kind": data["model_kind"],
        "counts": dict(data["counts"]),
        "corpus_hours": data["corpus_hours"],
        "failures": [{"path": path_text(p), "error": e} for p, e in data["failures"]],
        "prototype_sets": [{"name": ps.name, "method": ps.method, "n_neighbours": ps.n_neighbours,
                            "class_set": ps.class_set, "labels": list(ps.labels)} for ps in data["prototype_sets"]],
        "environments": [{"name": e.name, "text": e.description, "background_recordings": len(e.audio_vectors),
                          "tau_audio": e.tau_audio, "tau_text": e.tau_text} for e in data["environments"]],
        "class_sets": [{"name": c.name, "template": c.template, "labels": list(c.labels)} for c in st.store.class_sets()],
        "server": {
            "read_only": st.read_only,
            "writes_need_token": st.settings.writes_need_token,
            "batching": st.settings.batching,
            "batch": enc.stats.record() if enc is not None else None,
            "index_reloads": st.watch.reloads,
        },
    }
