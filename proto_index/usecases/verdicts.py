"""One reviewer's verdict on one stored window, stored at once (the server's live review).

The same rows as ``annotate`` writes (:mod:`proto_index.usecases.annotations`), one at a time:
one verdict per window, the latest replacing the earlier. The catalog's ``source`` column holds
``source:reviewer`` (``web:alice``), so who gave a verdict is kept beside where it came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from proto_index.errors import InvalidInput, NotFound, StaleVerdict
from proto_index.usecases.annotations import VERDICTS
from proto_index.store.schema import Annotation, ClassLabel, Environment, Recording, Window, utcnow
from proto_index.store.storage import Storage

MAX_NAME = 200
SEPARATOR = ":"
ANY = -1
"""``expected_id`` for "whatever is stored": no check that the reviewer saw the current verdict."""


@dataclass(frozen=True)
class Verdict:
    window_id: int
    label: str
    verdict: str
    reviewer: str
    corrected_label: str | None = None
    environment: str | None = None
    source: str = "web"


@dataclass(frozen=True)
class StoredVerdict:
    id: int
    recording_id: int
    window_id: int | None
    path: str
    start_s: float | None
    end_s: float | None
    environment: str | None
    label: str
    verdict: str
    corrected_label: str | None
    source: str
    reviewer: str | None
    created_at: datetime


def _check(s, v: Verdict) -> None:
    if v.verdict not in VERDICTS:
        raise InvalidInput(f"verdict {v.verdict!r} is not one of {', '.join(VERDICTS)}")
    for what, value in (("reviewer", v.reviewer), ("source", v.source), ("label", v.label)):
        if not value or not value.strip() or len(value) > MAX_NAME:
            raise InvalidInput(f"the {what} must be 1 to {MAX_NAME} characters")
    if SEPARATOR in v.source:
        raise InvalidInput(f"the source must not contain {SEPARATOR!r}")
    if v.verdict == "relabel" and not v.corrected_label:
        raise InvalidInput("verdict relabel needs a corrected_label")
    labels = set(s.scalars(select(ClassLabel.label)))
    named: tuple[tuple[str, str | None], ...] = (("label", v.label),
                                                ("corrected_label", v.corrected_label if v.verdict == "relabel" else None))
    for column, label in named:
        if label is not None and label not in labels:
            raise InvalidInput(f"{column} {label!r} is in no class set of this store")
    if v.environment is not None and s.scalar(select(Environment.id).where(Environment.name == v.environment)) is None:
        raise InvalidInput(f"environment {v.environment!r} is not one of this store's environments")


def set_verdict(storage: Storage, v: Verdict, expected_id: int | None = ANY) -> tuple[StoredVerdict, bool]:
    """Store ``v`` (needs the writer lock); returns it as stored and whether it replaced one.

    ``expected_id``: the id of the window's verdict the reviewer saw (None: they saw none); when the
    stored one differs, another reviewer wrote first: :class:`StaleVerdict`, and nothing is stored.
    """
    with storage.session() as s:
        _check(s, v)
        window = s.get(Window, v.window_id)
        if window is None:
            raise NotFound(f"no window {v.window_id} in this store")
        old = s.scalars(select(Annotation).where(Annotation.window_id == v.window_id)).all()
        current = old[-1] if old else None
        if expected_id != ANY and (current.id if current else None) != expected_id:
            raise StaleVerdict(_stale(v.window_id, current))
        for a in old:
            s.delete(a)
        ann = Annotation(recording_id=window.recording_id, window_id=window.id, environment=v.environment,
                         label=v.label, verdict=v.verdict,
                         corrected_label=v.corrected_label if v.verdict == "relabel" else None,
                         source=f"{v.source}{SEPARATOR}{v.reviewer.strip()}", created_at=utcnow())
        s.add(ann)
        s.flush()
        return _view(ann, window.recording.path, window), bool(old)


def _stale(window_id: int, current: Annotation | None) -> str:
    if current is None:
        return f"window {window_id}'s verdict was removed since you loaded it; load it again"
    source, _, reviewer = current.source.partition(SEPARATOR)
    return (f"window {window_id}'s verdict was changed to {current.verdict} by {reviewer or source} since you "
            "loaded it; load it again")


def list_verdicts(storage: Storage, window_ids: list[int] | None = None, recording_id: int | None = None,
                  reviewer: str | None = None, limit: int = 1000, offset: int = 0) -> list[StoredVerdict]:
    """Stored verdicts, newest first, filtered by window, recording or reviewer."""
    with storage.session() as s:
        q = (select(Annotation, Recording.path, Window).join(Recording, Annotation.recording_id == Recording.id)
             .outerjoin(Window, Annotation.window_id == Window.id).order_by(Annotation.id.desc()))
        if window_ids is not None:
            q = q.where(Annotation.window_id.in_(window_ids))
        if recording_id is not None:
            q = q.where(Annotation.recording_id == recording_id)
        if reviewer is not None:
            q = q.where(Annotation.source.endswith(f"{SEPARATOR}{reviewer}", autoescape=True))
        rows = s.execute(q.limit(limit).offset(offset)).all()
        return [_view(a, path, w) for a, path, w in rows]


def _view(a: Annotation, path: str, window: Window | None) -> StoredVerdict:
    source, _, reviewer = a.source.partition(SEPARATOR)
    return StoredVerdict(a.id, a.recording_id, a.window_id, path, window.start_s if window else None,
                         window.end_s if window else None, a.environment, a.label, a.verdict, a.corrected_label,
                         source, reviewer or None, a.created_at)
