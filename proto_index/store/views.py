"""Read-side views of catalog objects as plain dataclasses (numpy arrays, no ORM sessions)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from proto_index.errors import NotFound
from proto_index.store.schema import ClassSet, Environment, PrototypeSet, Recording, Window
from proto_index.store.storage import from_blob


@dataclass(frozen=True)
class ClassSetView:
    name: str
    template: str
    labels: list[str]
    dropped_prototypes: tuple[str, ...] = ()  # the prototype sets deleted as this set replaced an older one


@dataclass(frozen=True)
class Neighbour:
    window_id: int
    path: str | None  # None when the window has since been removed from the corpus
    start_s: float | None
    score: float


@dataclass(frozen=True)
class PrototypeSetView:
    """A prototype set: one row of ``matrix`` (and of ``anchors``, the text anchors) per label."""

    name: str
    class_set: str
    method: str
    n_neighbours: int | None
    labels: list[str]
    prompts: list[str]
    matrix: np.ndarray
    anchors: np.ndarray
    neighbours: list[list[Neighbour]]


@dataclass(frozen=True)
class EnvironmentView:
    name: str
    description: str | None
    tau_audio: float | None
    tau_text: float | None
    text_sources: list[str]
    text_vectors: np.ndarray
    audio_sources: list[str]
    audio_vectors: np.ndarray

    @property
    def taus(self) -> dict[str, float | None]:
        return {"audio": self.tau_audio, "text": self.tau_text}


def _names(s: Session, model) -> list[str]:
    return list(s.scalars(select(model.name).order_by(model.name)))


def _missing(kind: str, name: str, known: list[str], hint: str) -> NotFound:
    listing = ", ".join(known) if known else "none yet"
    return NotFound(f"no {kind} named {name!r} (known: {listing}); {hint}")


def get_class_set(s: Session, name: str) -> ClassSet:
    cs = s.scalar(select(ClassSet).where(ClassSet.name == name).options(selectinload(ClassSet.labels)))
    if cs is None:
        raise _missing("class set", name, _names(s, ClassSet), "add one with `proto-index classes add`")
    return cs


def class_set_view(cs: ClassSet) -> ClassSetView:
    return ClassSetView(cs.name, cs.template, [lbl.label for lbl in cs.labels])


def get_prototype_set(s: Session, name: str) -> PrototypeSet:
    ps = s.scalar(select(PrototypeSet).where(PrototypeSet.name == name))
    if ps is None:
        raise _missing("prototype set", name, _names(s, PrototypeSet), "build one with `proto-index prototypes build`")
    return ps


def prototype_set_view(s: Session, ps: PrototypeSet, with_neighbours: bool = True) -> PrototypeSetView:
    neighbours: list[list[Neighbour]] = []
    for proto in ps.prototypes:
        if not with_neighbours or not proto.neighbours:
            neighbours.append([])
            continue
        ids = [n.window_id for n in proto.neighbours]
        located: dict[int, tuple[str | None, float | None]] = {
            wid: (path, start)
            for wid, path, start in s.execute(
                select(Window.id, Recording.path, Window.start_s).join(Recording).where(Window.id.in_(ids))
            )
        }
        neighbours.append(
            [
                Neighbour(n.window_id, *located.get(n.window_id, (None, None)), n.score)
                for n in proto.neighbours
            ]
        )
    return PrototypeSetView(
        name=ps.name,
        class_set=ps.class_set.name,
        method=ps.method,
        n_neighbours=ps.n_neighbours,
        labels=[p.label for p in ps.prototypes],
        prompts=[p.prompt for p in ps.prototypes],
        matrix=np.stack([from_blob(p.vector) for p in ps.prototypes]),
        anchors=np.stack([from_blob(p.anchor) for p in ps.prototypes]),
        neighbours=neighbours,
    )


def get_environment(s: Session, name: str) -> Environment:
    env = s.scalar(select(Environment).where(Environment.name == name))
    if env is None:
        raise _missing("environment", name, _names(s, Environment), "add one with `proto-index env add`")
    return env


def environment_view(env: Environment, dim: int) -> EnvironmentView:
    def pick(kind: str) -> tuple[list[str], np.ndarray]:
        rows = [b for b in env.backgrounds if b.kind == kind]
        vecs = np.stack([from_blob(b.vector) for b in rows]) if rows else np.zeros((0, dim), np.float32)
        return [b.source for b in rows], vecs

    text_sources, text_vectors = pick("text")
    audio_sources, audio_vectors = pick("audio")
    return EnvironmentView(
        env.name, env.description, env.tau_audio, env.tau_text, text_sources, text_vectors, audio_sources, audio_vectors
    )
