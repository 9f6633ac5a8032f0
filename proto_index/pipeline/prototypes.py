"""Class sets and prototype building: zero-shot text anchors, TGAP from the corpus, or supervised
centroids of reviewed windows (``annotate``), optionally blended with TGAP neighbours."""
from __future__ import annotations

import dataclasses

import numpy as np
from sqlalchemy import select

from proto_index.core.profiles import l2_normalize
from proto_index.core.prototypes import (
    DEFAULT_TEMPLATE,
    DEFAULT_TGAP_N,
    blend_prototype,
    render_prompts,
    supervised_prototypes,
    tgap_prototypes,
)
from proto_index.embed.encoder import Encoder
from proto_index.errors import REPLACE, AlreadyExists, Hint, InvalidInput
from proto_index.exports import check_score_labels
from proto_index.pipeline.naming import check_text, claim_name
from proto_index.pipeline.preflight import check_build
from proto_index.pipeline.catalog_views import (
    ClassSetView,
    PrototypeSetView,
    class_set_view,
    get_class_set,
    prototype_set_view,
)
from proto_index.store.schema import ClassLabel, ClassSet, Prototype, PrototypeSet, TgapNeighbour
from proto_index.store.storage import Storage, to_blob

METHODS = ("zero-shot", "tgap", "supervised", "blend")
DEFAULT_MIN_CONFIRMED = 5


def add_class_set(
    storage: Storage, name: str, labels: list[str], template: str = DEFAULT_TEMPLATE, replace: bool = False,
    drop_prototypes: bool = False,
) -> ClassSetView:
    """Store a named list of labels; duplicates, blank labels, control characters and the names of
    output columns (see :func:`~proto_index.exports.check_score_labels`) are refused.

    Replacing a class set that prototype sets were built on is refused, naming them, unless
    ``drop_prototypes`` (they are then deleted with it: see :func:`prototype_sets_on`; the view
    names them in ``dropped_prototypes``).
    """
    name = check_text(name, "class set name")
    if not labels:
        raise InvalidInput("a class set needs at least one label")
    labels = [check_text(lbl, "a label") for lbl in labels]
    dupes = sorted({lbl for lbl in labels if labels.count(lbl) > 1})
    if dupes:
        raise InvalidInput(f"duplicate labels: {', '.join(dupes)}")
    check_score_labels(labels)
    try:
        render_prompts(labels, template)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    dropped: list[str] = []

    def keep_prototypes(s, old) -> None:
        built = prototype_sets_on(s, old.name)
        dropped[:] = built
        if built and not drop_prototypes:
            raise AlreadyExists(f"class set {name!r} has prototype sets built on it ({', '.join(built)}); "
                                "replacing it would delete them", hint=Hint("drop_prototypes", "use {option} to do so"))

    with claim_name(storage, ClassSet, name, "class set", replace, keep_prototypes) as s:
        cs = ClassSet(name=name, template=template)
        cs.labels = [ClassLabel(position=i, label=lbl) for i, lbl in enumerate(labels)]
        s.add(cs)
        s.flush()
        return dataclasses.replace(class_set_view(cs), dropped_prototypes=tuple(dropped))


def prototype_sets_on(s, class_set: str) -> list[str]:
    """Names of the prototype sets built on the class set ``class_set``, sorted."""
    return sorted(s.scalars(select(PrototypeSet.name).join(ClassSet).where(ClassSet.name == class_set)))


def default_name(class_set: str, method: str, n: int, min_confirmed: int = DEFAULT_MIN_CONFIRMED) -> str:
    """``CLASSES-tgapN``, ``CLASSES-supervised``, ``CLASSES-blendK`` or ``CLASSES-zero-shot``."""
    names = {"tgap": f"{class_set}-tgap{n}", "supervised": f"{class_set}-supervised", "blend": f"{class_set}-blend{min_confirmed}"}
    return names.get(method, f"{class_set}-zero-shot")


def build_prototypes(
    storage: Storage,
    encoder: Encoder,
    class_set: str,
    method: str = "zero-shot",
    n: int = DEFAULT_TGAP_N,
    name: str | None = None,
    replace: bool = False,
    min_confirmed: int = DEFAULT_MIN_CONFIRMED,
) -> PrototypeSetView:
    """Embed the class prompts; for TGAP, replace each anchor by the centroid of its N nearest corpus windows.

    ``supervised``: each class's centroid of its confirmed windows (:func:`proto_index.pipeline.annotations.confirmed`).
    ``blend``: as supervised, but a class with fewer than ``min_confirmed`` confirmations borrows the
    corpus windows nearest its text anchor (not annotated at all) until it has ``min_confirmed`` members.
    """
    if method not in METHODS:
        raise InvalidInput(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    storage.check_identity(encoder.identity)
    check_build(storage, class_set, None, True, method)  # a method the model cannot build
    name = check_text(name or default_name(class_set, method, n, min_confirmed), "prototype set name")
    with storage.session() as s:
        cs = class_set_view(get_class_set(s, class_set))
        if s.scalar(select(PrototypeSet.id).where(PrototypeSet.name == name)) is not None and not replace:
            raise AlreadyExists(f"prototype set {name!r} already exists", hint=REPLACE)

    prompts = render_prompts(cs.labels, cs.template)
    neighbour_ids = neighbour_scores = None
    anchors = np.asarray(encoder.embed_texts(prompts), dtype=np.float32) if storage.identity.text else None
    if anchors is None:  # supervised (check_build refused the rest): each prototype is its own anchor
        anchors = vectors = _supervised(storage, cs.labels, None, method, min_confirmed)[0]
    elif method == "zero-shot":
        vectors = anchors
    elif method in ("supervised", "blend"):
        vectors, neighbour_ids, neighbour_scores = _supervised(storage, cs.labels, anchors, method, min_confirmed)
    else:
        if n < 1:
            raise InvalidInput("TGAP N must be at least 1", hint=Hint("n"))
        index = storage.index()
        if index.ntotal < n:
            raise InvalidInput(
                f"TGAP with N={n} needs at least {n} corpus windows; the corpus has {index.ntotal}",
                hint=Hint("n", "ingest more audio or lower {option}"),
            )
        neighbour_scores, rows = index.search(l2_normalize(anchors), n)
        vectors = tgap_prototypes(storage.vectors.read(rows.ravel()).reshape(len(cs.labels), n, -1)).astype(np.float32)
        window_of = storage.windows_at_rows(rows.ravel())
        neighbour_ids = np.vectorize(lambda r: window_of[int(r)].window_id)(rows)

    with claim_name(storage, PrototypeSet, name, "prototype set", replace) as s:
        ps = PrototypeSet(
            name=name,
            class_set=get_class_set(s, class_set),
            method=method,
            n_neighbours={"tgap": n, "blend": min_confirmed}.get(method),
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



def _supervised(storage: Storage, labels: list[str], anchors: np.ndarray | None, method: str, min_confirmed: int):
    """Supervised (or blended) prototype vectors, and for blend each class's borrowed neighbours."""
    from proto_index.pipeline.annotations import annotated_window_ids, confirmed

    conf = confirmed(storage)
    keep = [i for i, lbl in enumerate(conf.labels) if lbl in labels]
    vecs, labs = conf.vectors[keep], [conf.labels[i] for i in keep]
    if method == "supervised":
        try:
            return supervised_prototypes(vecs, labs, labels).astype(np.float32), None, None
        except ValueError as e:
            raise InvalidInput(str(e), hint=Hint("method_blend", "annotate windows of them, or use {option}")) from None
    if min_confirmed < 1:
        raise InvalidInput("the minimum of confirmed members must be at least 1", hint=Hint("min_confirmed"))
    annotated = annotated_window_ids(storage)
    index = storage.index()
    out = np.zeros((len(labels), anchors.shape[1]), np.float32)
    ids, scores = [], []
    for k, label in enumerate(labels):
        mine = vecs[[i for i, lbl in enumerate(labs) if lbl == label]]
        need = max(0, min_confirmed - len(mine))
        picked: list[tuple[int, int, float]] = []  # (vector row, window id, cosine to the anchor)
        if need:
            depth = min(index.ntotal, need + len(annotated))
            if depth > 0:
                sc, rows = index.search(l2_normalize(anchors[k : k + 1]), depth)
                window_of = storage.windows_at_rows(rows.ravel())
                for r, c in zip(rows[0], sc[0]):
                    wid = window_of[int(r)].window_id if int(r) in window_of else None
                    if wid is not None and wid not in annotated and len(picked) < need:
                        picked.append((int(r), wid, float(c)))
            if len(picked) < need:
                raise InvalidInput(
                    f"class {label!r}: {len(mine)} confirmed, and the corpus has only {len(picked)} "
                    f"unannotated windows to reach {min_confirmed} members", hint=Hint("min_confirmed", "lower {option}")
                )
        borrowed = storage.vectors.read([r for r, _, _ in picked])
        out[k] = blend_prototype(mine, borrowed)
        ids.append([w for _, w, _ in picked])
        scores.append([c for _, _, c in picked])
    return out, ids, scores
