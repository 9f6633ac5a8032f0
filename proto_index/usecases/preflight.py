"""Checks of a command's inputs that need only the catalog and the file system: each use case runs
them in its prepare step, before it touches its lazily loaded model (~8 s) or starts any embedding,
so a mistake costs nothing."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from proto_index.atomic import check_output_file  # noqa: F401  (re-exported: it lives beside output_target)
from proto_index.errors import REPLACE, AlreadyExists, InvalidInput, NotFound
from proto_index.store.views import get_class_set, get_prototype_set
from proto_index.store.schema import Environment, PrototypeSet
from proto_index.store.storage import Storage


TEXT_METHODS = ("zero-shot", "tgap", "blend")
"""Prototype methods that start from the text tower's anchors."""


def check_text_tower(storage: Storage, needs: str) -> None:
    """:class:`InvalidInput` when the store's model has no text tower; ``needs`` says what needed it."""
    identity = storage.identity
    if not identity.text:
        raise InvalidInput(f"{identity.name} has no text tower: {needs}")


def classify_inputs(s: Session, prototypes: str, environments: Iterable[str]) -> tuple[PrototypeSet, list[str]]:
    """The prototype set's row and the environments' names (sorted, once each), all known, else
    :class:`NotFound` naming what is not: classify's one lookup of them."""
    names = sorted(set(environments))
    row = get_prototype_set(s, prototypes)
    known = set(s.scalars(select(Environment.name)))
    unknown = [n for n in names if n not in known]
    if unknown:
        listing = ", ".join(sorted(known)) or "none yet"
        raise NotFound(f"unknown environment(s): {', '.join(unknown)} (known: {listing}); "
                       "add them with `proto-index env add`")
    return row, names


def check_build(storage: Storage, class_set: str, name: str | None, replace: bool, method: str | None = None) -> None:
    """The class set exists, the model can build ``method``'s prototypes and, unless ``replace``, the
    prototype set name is free."""
    if method in TEXT_METHODS:
        check_text_tower(storage, f"{method} prototypes start from text anchors; build supervised prototypes "
                                  "from annotated windows instead")
    with storage.session() as s:
        get_class_set(s, class_set)
        if name and not replace and s.scalar(select(PrototypeSet.id).where(PrototypeSet.name == name)) is not None:
            raise AlreadyExists(f"prototype set {name!r} already exists", hint=REPLACE)


def check_environment_background(storage: Storage, text: str | None, audio: list) -> None:
    """A model without a text tower takes an environment's background from recordings only."""
    if text is not None or not audio:
        check_text_tower(storage, "an environment's background must be recordings (audio), not a text description")
