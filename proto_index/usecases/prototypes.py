"""Class sets and prototype building: zero-shot text anchors, TGAP from the corpus, or supervised
centroids of reviewed windows (``annotate``), optionally blended with TGAP neighbours; and, for a
model without a text tower, the centroid of each class's examples (``examples``) or of the corpus
windows the model's own classifier scores highest for the labels mapped to it (``classifier``)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from proto_index.core.profiles import l2_normalize
from proto_index.core.prompt_weights import ensemble_anchors
from proto_index.core.prototypes import (
    DEFAULT_TEMPLATE,
    DEFAULT_TGAP_N,
    blend_prototype,
    class_scores,
    merge_top_n,
    no_neighbours,
    render_prompts,
    supervised_prototypes,
    tgap_prototypes,
)
from proto_index.embed.encoder import Encoder, LabelScorer
from proto_index.engine.model import LazyEncoder
from proto_index.errors import REPLACE, AlreadyExists, Hint, InvalidInput, ModelError, NotFound
from proto_index.outputs.exports import check_score_labels
from proto_index.options.prototypes import (  # noqa: F401  (METHODS, TEXT_METHODS: read here by the CLI)
    DEFAULT_MIN_CONFIRMED,
    METHODS,
    TEXT_METHODS,
    PrototypeInputs,
    PrototypeOptions,
)
from proto_index.inputs.manifest import read_table, resolve
from proto_index.store.names import check_text, claim_name
from proto_index.usecases.preflight import check_build
from proto_index.store.views import (
    ClassSetView,
    PrototypeSetView,
    class_set_view,
    get_class_set,
    prototype_set_view,
)
from proto_index.store.schema import ClassLabel, ClassSet, Prototype, PrototypeSet, TgapNeighbour, Window
from proto_index.store.storage import Storage, to_blob

SCORE_CHUNK_BYTES = 64 * 2**20
"""The classifier method reads the corpus vectors and their label scores this many bytes at a time
(~2,200 windows of a 1,024-d model with 6,522 labels), whatever the corpus size."""


def add_class_set(
    storage: Storage, name: str, labels: list[str], template: str = DEFAULT_TEMPLATE, replace: bool = False,
    drop_prototypes: bool = False,
) -> ClassSetView:
    """Store a named list of labels; duplicates, blank labels, control characters and the names of
    output columns (see :func:`~proto_index.outputs.exports.check_score_labels`) are refused.

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


def default_name(class_set: str, method: str, n: int, min_confirmed: int = DEFAULT_MIN_CONFIRMED,
                 ensemble: bool = False) -> str:
    """``CLASSES-tgapN``, ``CLASSES-supervised``, ``CLASSES-blendK``, ``CLASSES-examples``,
    ``CLASSES-classifierN`` or ``CLASSES-zero-shot``; ``-ensemble`` after those of a prompt ensemble."""
    names = {"tgap": f"{class_set}-tgap{n}", "supervised": f"{class_set}-supervised", "blend": f"{class_set}-blend{min_confirmed}",
             "examples": f"{class_set}-examples", "classifier": f"{class_set}-classifier{n}"}
    name = names.get(method, f"{class_set}-zero-shot")
    return f"{name}-ensemble" if ensemble else name


def build_prototypes(
    storage: Storage,
    model: LazyEncoder,
    class_set: str,
    options: PrototypeOptions = PrototypeOptions(),
    sources: Sources | None = None,
) -> PrototypeSetView:
    """Embed the class prompts; for TGAP, replace each anchor by the centroid of its N nearest corpus windows.

    ``supervised``: each class's centroid of its confirmed windows (:func:`proto_index.usecases.annotations.confirmed`).
    ``blend``: as supervised, but a class with fewer than ``min_confirmed`` confirmations borrows the
    corpus windows nearest its text anchor (not annotated at all) until it has ``min_confirmed`` members.
    ``examples`` and ``classifier`` embed no text (see :func:`read_sources`; ``options.inputs`` names
    their files, ``sources`` is what :func:`read_sources` read of them, if already read): each class's
    "anchor" is then its prototype itself, and its prompt says where the prototype came from.
    Nothing is stored unless every check passes, and ``model`` loads only once they all have.
    """
    method, n, min_confirmed, inputs = options.method, options.n, options.min_confirmed, options.inputs
    check_ensemble(method, inputs)
    check_build(storage, class_set, None, True, method)  # a method the model cannot build
    name = check_text(options.name or default_name(class_set, method, n, min_confirmed, inputs.prompt_ensemble is not None),
                      "prototype set name")
    with storage.session() as s:
        cs = class_set_view(get_class_set(s, class_set))
        if s.scalar(select(PrototypeSet.id).where(PrototypeSet.name == name)) is not None and not options.replace:
            raise AlreadyExists(f"prototype set {name!r} already exists", hint=REPLACE)
    sources = sources or read_sources(method, cs, inputs)
    encoder = model.get()
    storage.check_identity(encoder.identity)

    neighbour_ids = neighbour_scores = None
    if method == "classifier":
        vectors, prompts, neighbour_ids, neighbour_scores = _classifier(storage, encoder, cs, sources.mapping or {}, n)
        anchors = vectors
    elif method == "examples":
        vectors, prompts = _examples(storage, encoder, cs, sources.examples or [], inputs)
        anchors = vectors
    elif inputs.prompt_ensemble is not None:
        anchors, prompts = _ensemble_anchors(storage, encoder, cs, inputs.prompt_ensemble)
        vectors, neighbour_ids, neighbour_scores = _text_method(storage, cs, anchors, method, n, min_confirmed)
    else:
        prompts = render_prompts(cs.labels, cs.template)
        anchors = np.asarray(encoder.embed_texts(prompts), dtype=np.float32) if storage.identity.text else None
        vectors, neighbour_ids, neighbour_scores = _text_method(storage, cs, anchors, method, n, min_confirmed)
        anchors = vectors if anchors is None else anchors  # no text tower: each prototype is its own anchor

    with claim_name(storage, PrototypeSet, name, "prototype set", options.replace) as s:
        ps = PrototypeSet(
            name=name,
            class_set=get_class_set(s, class_set),
            method=method,
            n_neighbours={"tgap": n, "blend": min_confirmed, "classifier": n}.get(method),
        )
        for k, (label, prompt) in enumerate(zip(cs.labels, prompts)):
            proto = Prototype(position=k, label=label, prompt=prompt, anchor=to_blob(anchors[k]), vector=to_blob(vectors[k]))
            if neighbour_ids is not None and neighbour_scores is not None:
                proto.neighbours = [
                    TgapNeighbour(rank=r, window_id=int(wid), score=float(sc))
                    for r, (wid, sc) in enumerate(zip(neighbour_ids[k], neighbour_scores[k]))
                ]
            ps.prototypes.append(proto)
        s.add(ps)
        s.flush()
        return prototype_set_view(s, ps)


ENSEMBLE_METHODS = ("zero-shot", "tgap")
ENSEMBLE_WINDOWS = 4096
"""The prompt ensemble's weights are fitted on at most this many corpus windows, evenly spaced."""


MAX_TEMPLATE_CHARS = 200


def check_ensemble(method: str, inputs: PrototypeInputs) -> None:
    """A prompt ensemble only for the methods with text anchors, of templates on one line each."""
    if inputs.prompt_ensemble is None:
        return
    if method not in ENSEMBLE_METHODS:
        raise InvalidInput(f"a prompt ensemble makes text anchors for {' and '.join(ENSEMBLE_METHODS)} prototypes, "
                           f"not {method}")
    for t in inputs.prompt_ensemble:
        check_text(t, "a prompt template")
        if len(t) > MAX_TEMPLATE_CHARS:
            raise InvalidInput(f"a prompt template holds at most {MAX_TEMPLATE_CHARS} characters, not {len(t)}")


def _ensemble_anchors(storage: Storage, encoder: Encoder, cs: ClassSetView, templates: tuple[str, ...]):
    """Each class's anchor from every template (the class set's own first), weighted without labels
    by the entropy of the corpus windows' predictions; each prompt records the weights."""
    templates = tuple(dict.fromkeys((cs.template, *templates)))
    rows = storage.live_rows()
    if len(rows) == 0:
        raise InvalidInput("a prompt ensemble weighs its templates by the corpus audio, and the corpus is empty; "
                           "ingest audio first")
    sample = np.asarray(rows)[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), ENSEMBLE_WINDOWS)).astype(np.int64))]
    k = len(cs.labels)
    texts = [p for t in templates for p in render_prompts(cs.labels, t)]
    embedded = np.asarray(encoder.embed_texts(texts), dtype=np.float64).reshape(len(templates), k, -1)
    anchors, weights = ensemble_anchors(embedded, storage.vectors.read(sample))
    order = np.argsort(-weights.weights, kind="stable")
    head = f"prompt ensemble, entropy weights over {len(sample)} corpus windows: "
    prompts = [head + " | ".join(f"{weights.weights[j]:.3f} {render_prompts([label], templates[j])[0]}" for j in order)
               for label in cs.labels]
    return anchors.astype(np.float32), prompts


def _text_method(storage: Storage, cs: ClassSetView, anchors: np.ndarray | None, method: str, n: int, min_confirmed: int):
    """The prototype vectors of a method that starts from the text anchors (None for a model without a
    text tower, which builds only supervised ones: check_build refused the rest), with its neighbours (or None)."""
    neighbour_ids = neighbour_scores = None
    if anchors is None:
        vectors = _supervised(storage, cs.labels, None, method, min_confirmed)[0]
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
    return vectors, neighbour_ids, neighbour_scores


def _supervised(storage: Storage, labels: list[str], anchors: np.ndarray | None, method: str, min_confirmed: int):
    """Supervised (or blended) prototype vectors, and for blend each class's borrowed neighbours."""
    from proto_index.usecases.annotations import annotated_window_ids, confirmed

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
    if anchors is None:  # check_build refuses blend for a model without a text tower
        raise InvalidInput("blend prototypes start from text anchors, which this model has none of")
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


# -- methods without a text anchor ----------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    """One example of ``label``: an audio file (``path``) or a stored window (``window_id``)."""

    label: str
    path: Path | None = None
    window_id: int | None = None


@dataclass(frozen=True)
class Sources:
    """What :func:`read_sources` read: ``mapping`` (class -> model labels, file order) or ``examples``."""

    table: Path | None = None
    mapping: dict[str, list[str]] | None = None
    examples: list[Example] | None = None


def check_method(method: str) -> None:
    if method not in METHODS:
        raise InvalidInput(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def read_sources(method: str, cs: ClassSetView, inputs: PrototypeInputs) -> Sources:
    """Read and check the file ``method`` needs (only the catalog and the file system: before the
    model loads). :class:`InvalidInput` for a file given to a method that does not read it, a
    missing one, a class of the set with no row, and each way a row can be wrong."""
    check_method(method)
    needs = {"classifier": "mapping", "examples": "examples"}.get(method)
    for field in ("mapping", "examples"):
        if getattr(inputs, field) is not None and field != needs:
            raise InvalidInput(f"a {field} file is read by the {_METHOD_OF[field]} method only, not {method}")
    if needs is None:
        return Sources()
    table = getattr(inputs, needs)
    if table is None:
        hint = Hint("mapping", "give it with {option}") if needs == "mapping" else Hint("examples", "give it with {option}")
        raise InvalidInput(f"the {method} method needs a {needs} file ({_FORMS[needs]})", hint=hint)
    if needs == "mapping":
        return Sources(table, mapping=_read_mapping(table, cs))
    return Sources(table, examples=_read_examples(table, cs))


_METHOD_OF = {"mapping": "classifier", "examples": "examples"}
_FORMS = {"mapping": "a CSV with columns class,model_label", "examples": "a CSV with columns class and path or window"}


def _read_mapping(table: Path, cs: ClassSetView) -> dict[str, list[str]]:
    """``class -> [model labels]`` of a ``class,model_label`` CSV; classes not in the set are ignored
    (one mapping can serve several class sets), a class of the set without a row is refused."""
    _, rows = read_table(table, ("class", "model_label"))
    mapping: dict[str, list[str]] = {}
    for line, r in rows:
        if not r["class"] or not r["model_label"]:
            raise InvalidInput(f"{table}, line {line}: empty class or model_label")
        labels = mapping.setdefault(r["class"], [])
        if r["model_label"] not in labels:
            labels.append(r["model_label"])
    _check_every_class(table, cs, mapping, "no model label")
    return mapping


def _read_examples(table: Path, cs: ClassSetView) -> list[Example]:
    """The rows of an examples CSV: ``class`` and either ``path`` (relative to the CSV's folder) or
    ``window`` (a stored window id) each; classes not in the set are left out."""
    header, rows = read_table(table, ("class",))
    if "path" not in header and "window" not in header:
        raise InvalidInput(f"{table}: missing column path or window (found: {', '.join(header)})")
    out = []
    for line, r in rows:
        label, path, window = r["class"], r.get("path", ""), r.get("window", "")
        if not label:
            raise InvalidInput(f"{table}, line {line}: empty class")
        if bool(path) == bool(window):
            raise InvalidInput(f"{table}, line {line}: give a path or a window id (one of them)")
        if window and not (window.isascii() and window.isdigit() and int(window) < 2**63):  # SQLite's integers
            raise InvalidInput(f"{table}, line {line}: window {window!r} is not a window id (a whole number)")
        if label in cs.labels:
            out.append(Example(label, resolve(table, path) if path else None, int(window) if window else None))
    _check_every_class(table, cs, {e.label for e in out}, "no example")
    from proto_index.usecases.classify import check_inputs

    check_inputs([e.path for e in out if e.path is not None])
    return out


def _check_every_class(table: Path, cs: ClassSetView, found, what: str) -> None:
    missing = [c for c in cs.labels if c not in found]
    if missing:
        raise InvalidInput(f"{table}: {len(missing)} class(es) of class set {cs.name!r} with {what}: {_first(missing)}")


def _first(items: list, shown: int = 5) -> str:
    """The first few of ``items``, quoted, and how many more."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(map(repr, items[:shown])) + more


def _classifier(storage: Storage, encoder: Encoder, cs: ClassSetView, mapping: dict[str, list[str]], n: int):
    """Each class's N corpus windows that the model's own classifier scores highest (the maximum
    over the model labels mapped to the class), and their centroid: TGAP with a classifier anchor.
    The corpus is read :data:`SCORE_CHUNK_BYTES` at a time."""
    if not isinstance(encoder, LabelScorer):
        raise InvalidInput(f"model {encoder.identity.name!r} has no classifier of its own (label scores), which the "
                           "classifier method needs; use the examples method instead", hint=Hint("method_examples"))
    model_labels = list(encoder.labels)
    column = {lbl: i for i, lbl in enumerate(model_labels)}
    unknown = list(dict.fromkeys(lbl for c in cs.labels for lbl in mapping[c] if lbl not in column))
    if unknown:
        raise InvalidInput(f"{len(unknown)} model label(s) mapped to a class that model {encoder.identity.name!r} "
                           f"does not have (it has {len(model_labels)}): {_first(unknown, 3)}")
    columns = [[column[lbl] for lbl in mapping[c]] for c in cs.labels]
    if n < 1:
        raise InvalidInput("N must be at least 1", hint=Hint("n"))
    rows = storage.live_rows()
    if len(rows) < n:
        raise InvalidInput(f"classifier prototypes with N={n} need at least {n} corpus windows; the corpus has {len(rows)}",
                           hint=Hint("n", "ingest more audio or lower {option}"))
    step = max(1, SCORE_CHUNK_BYTES // (4 * (storage.identity.dim + len(model_labels))))
    best = no_neighbours(len(cs.labels))
    for a in range(0, len(rows), step):
        chunk = rows[a : a + step]
        scores = np.asarray(encoder.label_scores(storage.vectors.read(chunk)))
        if scores.shape != (len(chunk), len(model_labels)) or not np.all(np.isfinite(scores)):
            raise ModelError(f"model {encoder.identity.name!r} gave label scores shaped {scores.shape} (or not finite) "
                             f"for {len(chunk)} vectors; expected ({len(chunk)}, {len(model_labels)}) finite scores")
        best = merge_top_n(best, class_scores(scores, columns), chunk, n)
    vectors = tgap_prototypes(storage.vectors.read(best.indices.ravel()).reshape(len(cs.labels), n, -1)).astype(np.float32)
    window_of = storage.windows_at_rows(best.indices.ravel())
    ids = [[window_of[int(r)].window_id for r in rs] for rs in best.indices]
    prompts = [f"model labels: {'; '.join(mapping[c])}" for c in cs.labels]
    return vectors, prompts, ids, best.scores


def _examples(storage: Storage, encoder: Encoder, cs: ClassSetView, examples: list[Example], inputs: PrototypeInputs):
    """Each class's centroid of its examples' window vectors (every window weighs the same): a file
    already in the corpus (same content) gives its stored windows, another is embedded as
    ``inputs.embed`` says; a stored window gives its vector."""
    from proto_index.usecases.classify import file_windows

    paths = list(dict.fromkeys(e.path for e in examples if e.path is not None))
    window_ids = list(dict.fromkeys(e.window_id for e in examples if e.window_id is not None))
    row_of: dict[int, int] = {}
    with storage.session() as s:
        for a in range(0, len(window_ids), 500):
            chunk = window_ids[a : a + 500]
            row_of.update((w, r) for w, r in s.execute(select(Window.id, Window.vector_row).where(Window.id.in_(chunk))))
    missing = [w for w in window_ids if w not in row_of]
    if missing:
        raise NotFound(f"{len(missing)} example window id(s) not in the corpus: {_first(missing)}")
    windows = file_windows(storage, encoder, paths, options=inputs.embed) if paths else {}
    failed = [f"{p}: {w}" for p, w in windows.items() if isinstance(w, str)]
    if failed:
        raise InvalidInput(f"{len(failed)} example file(s) cannot be embedded: {'; '.join(failed[:3])}"
                           + (f"; and {len(failed) - 3} more" if len(failed) > 3 else ""))
    stored = dict(zip(window_ids, storage.vectors.read([row_of[w] for w in window_ids])))
    vectors, labels, counts = [], [], {c: [0, 0, 0] for c in cs.labels}  # files, windows given, vectors
    for e in examples:
        if e.path is not None:
            w = windows[e.path]
            assert not isinstance(w, str)  # files that failed were refused above
            got = w.vectors
        else:
            assert e.window_id is not None  # an example names a file or a window
            got = stored[e.window_id][None]
        vectors.append(got)
        labels += [e.label] * len(got)
        counts[e.label][0 if e.path is not None else 1] += 1
        counts[e.label][2] += len(got)
    centroids = supervised_prototypes(np.concatenate(vectors), labels, cs.labels).astype(np.float32)
    prompts = [f"examples: {f} file(s), {w} stored window(s); {v} window vectors" for f, w, v in (counts[c] for c in cs.labels)]
    return centroids, prompts
