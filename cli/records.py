"""``--json`` output: the data a listing command shows, as one JSON document on stdout.

Each ``*_record`` turns a library view into plain JSON values (no vectors); the keys are the
table's columns in words. :func:`proto_index.cli.output.echo_json` prints the document.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from proto_index.store.views import ClassSetView, EnvironmentView, PrototypeSetView

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of the table.")]


def class_set_record(cs: ClassSetView) -> dict[str, Any]:
    return {"name": cs.name, "template": cs.template, "labels": list(cs.labels)}


def prototype_set_record(ps: PrototypeSetView) -> dict[str, Any]:
    return {"name": ps.name, "method": ps.method, "n_neighbours": ps.n_neighbours, "class_set": ps.class_set,
            "labels": list(ps.labels)}


def prototype_set_detail(ps: PrototypeSetView, top: int) -> dict[str, Any]:
    """The set with, per class, its prompt and its first ``top`` neighbours (0: all), as `show` prints."""
    classes = []
    for label, prompt, neighbours in zip(ps.labels, ps.prompts, ps.neighbours):
        shown = neighbours if top == 0 else neighbours[:top]
        classes.append({
            "label": label, "prompt": prompt, "neighbours_total": len(neighbours),
            "neighbours": [{"rank": rank, "score": nb.score, "window_id": nb.window_id, "path": nb.path,
                            "start_s": nb.start_s} for rank, nb in enumerate(shown, start=1)],
        })
    return {**prototype_set_record(ps), "classes": classes}


def environment_record(e: EnvironmentView) -> dict[str, Any]:
    return {
        "name": e.name,
        "text": e.description if len(e.text_vectors) else None,
        "background_recordings": len(e.audio_vectors),
        "audio_sources": list(e.audio_sources),
        "tau_audio": e.tau_audio,
        "tau_text": e.tau_text,
    }


def hit_record(hit) -> dict[str, Any]:
    """A :class:`~proto_index.usecases.search.SearchHit`."""
    return {"score": hit.score, "path": hit.path, "start_s": hit.start_s, "end_s": hit.end_s, "window_id": hit.window_id}


def info_record(data: dict) -> dict[str, Any]:
    """``Store.info()``: every failed file (the table shows the first 20)."""
    return {
        "store": data["store"],
        "model": asdict(data["model"]),
        "counts": dict(data["counts"]),
        "corpus_hours": data["corpus_hours"],
        "failures": [{"path": path, "error": why} for path, why in data["failures"]],
        "prototype_sets": [prototype_set_record(ps) for ps in data["prototype_sets"]],
        "environments": [environment_record(e) for e in data["environments"]],
    }


def gap_record(prototypes: str, method: str, r) -> dict[str, Any]:
    """A :class:`~proto_index.core.gap.GapReport` of the set named ``prototypes``."""
    return {
        "prototypes": prototypes, "method": method, "corpus_size": r.corpus_size, "k": r.k,
        "classes": [{"label": label, "anchor": r.anchors.neighbour_cosine[i], "prototype": r.prototypes.neighbour_cosine[i]}
                    for i, label in enumerate(r.labels)],
        "mean": {"anchor": r.anchors.mean_neighbour_cosine, "prototype": r.prototypes.mean_neighbour_cosine},
        "centroid_distance": {"anchors": r.anchors.centroid_distance, "prototypes": r.prototypes.centroid_distance},
    }
