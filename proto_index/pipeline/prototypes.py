"""Class sets and prototype building: zero-shot text anchors, or TGAP from the corpus."""
from __future__ import annotations

import numpy as np
from sqlalchemy import select

from proto_index.core.profiles import l2_normalize
from proto_index.core.prototypes import DEFAULT_TEMPLATE, DEFAULT_TGAP_N, render_prompts, tgap_prototypes
from proto_index.embed.encoder import Encoder
from proto_index.errors import AlreadyExists, InvalidInput
from proto_index.pipeline.catalog_views import (
    ClassSetView,
    PrototypeSetView,
    class_set_view,
    get_class_set,
    prototype_set_view,
)
from proto_index.store.schema import ClassLabel, ClassSet, Prototype, PrototypeSet, TgapNeighbour
from proto_index.store.storage import Storage, to_blob

METHODS = ("zero-shot", "tgap")


def add_class_set(
    storage: Storage, name: str, labels: list[str], template: str = DEFAULT_TEMPLATE, replace: bool = False
) -> ClassSetView:
    """Store a named list of labels; duplicates and empty labels are refused."""
    labels = [lbl.strip() for lbl in labels]
    if not labels or any(not lbl for lbl in labels):
        raise InvalidInput("a class set needs at least one label, and labels cannot be empty")
    dupes = sorted({lbl for lbl in labels if labels.count(lbl) > 1})
    if dupes:
        raise InvalidInput(f"duplicate labels: {', '.join(dupes)}")
    try:
        render_prompts(labels, template)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    with storage.session() as s:
        existing = s.scalar(select(ClassSet).where(ClassSet.name == name))
        if existing is not None:
            if not replace:
                raise AlreadyExists(f"class set {name!r} exists; pass --replace to overwrite it")
            s.delete(existing)
            s.flush()
        cs = ClassSet(name=name, template=template)
        cs.labels = [ClassLabel(position=i, label=lbl) for i, lbl in enumerate(labels)]
        s.add(cs)
        return class_set_view(cs)


def build_prototypes(
    storage: Storage,
    encoder: Encoder,
    class_set: str,
    method: str = "zero-shot",
    n: int = DEFAULT_TGAP_N,
    name: str | None = None,
    replace: bool = False,
) -> PrototypeSetView:
    """Embed the class prompts; for TGAP, replace each anchor by the centroid of its N nearest corpus windows."""
    if method not in METHODS:
        raise InvalidInput(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    storage.check_identity(encoder.identity)
    name = name or (f"{class_set}-tgap{n}" if method == "tgap" else f"{class_set}-zero-shot")
    with storage.session() as s:
        cs = class_set_view(get_class_set(s, class_set))
        if s.scalar(select(PrototypeSet.id).where(PrototypeSet.name == name)) is not None and not replace:
            raise AlreadyExists(f"prototype set {name!r} exists; pass --replace to rebuild it or --name to pick another")

    prompts = render_prompts(cs.labels, cs.template)
    anchors = np.asarray(encoder.embed_texts(prompts), dtype=np.float32)
    neighbour_ids = neighbour_scores = None
    if method == "zero-shot":
        vectors = anchors
    else:
        if n < 1:
            raise InvalidInput("--n must be at least 1")
        index = storage.index()
        if index.ntotal < n:
            raise InvalidInput(
                f"TGAP with N={n} needs at least {n} corpus windows; the corpus has {index.ntotal} "
                "(ingest more audio or lower --n)"
            )
        neighbour_scores, rows = index.search(l2_normalize(anchors), n)
        vectors = tgap_prototypes(storage.vectors.read(rows.ravel()).reshape(len(cs.labels), n, -1)).astype(np.float32)
        window_of = storage.windows_at_rows(rows.ravel())
        neighbour_ids = np.vectorize(lambda r: window_of[int(r)].window_id)(rows)

    with storage.session() as s:
        old = s.scalar(select(PrototypeSet).where(PrototypeSet.name == name))
        if old is not None:
            s.delete(old)
            s.flush()
        ps = PrototypeSet(
            name=name,
            class_set=get_class_set(s, class_set),
            method=method,
            n_neighbours=n if method == "tgap" else None,
        )
        for k, (label, prompt) in enumerate(zip(cs.labels, prompts)):
            proto = Prototype(position=k, label=label, prompt=prompt, anchor=to_blob(anchors[k]), vector=to_blob(vectors[k]))
            if neighbour_ids is not None:
                proto.neighbours = [
                    TgapNeighbour(rank=r, window_id=int(wid), score=float(sc))
                    for r, (wid, sc) in enumerate(zip(neighbour_ids[k], neighbour_scores[k]))
                ]
            ps.prototypes.append(proto)
        s.add(ps)
        s.flush()
        return prototype_set_view(s, ps)

