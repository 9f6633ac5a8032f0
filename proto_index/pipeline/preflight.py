"""Checks of a command's inputs that need only the catalog and the file system, run before the
model loads (~8 s) or any embedding starts, so a mistake costs nothing."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from sqlalchemy import select

from proto_index.errors import REPLACE, AlreadyExists, InvalidInput, NotFound
from proto_index.pipeline.catalog_views import get_class_set, get_prototype_set
from proto_index.store.schema import Environment, PrototypeSet
from proto_index.store.storage import Storage


TEXT_METHODS = ("zero-shot", "tgap", "blend")
"""Prototype methods that start from the text tower's anchors."""


def check_text_tower(storage: Storage, needs: str) -> None:
    """:class:`InvalidInput` when the store's model has no text tower; ``needs`` says what needed it."""
    identity = storage.identity
    if not identity.text:
        raise InvalidInput(f"{identity.name} has no text tower: {needs}")


def check_classify(storage: Storage, prototypes: str, environments: Iterable[str]) -> None:
    """The prototype set and every environment exist (:class:`NotFound` naming what does not)."""
    names = sorted(set(environments))
    with storage.session() as s:
        get_prototype_set(s, prototypes)
        known = set(s.scalars(select(Environment.name)))
    unknown = [n for n in names if n not in known]
    if unknown:
        listing = ", ".join(sorted(known)) or "none yet"
        raise NotFound(f"unknown environment(s): {', '.join(unknown)} (known: {listing}); "
                       "add them with `proto-index env add`")


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


def check_environment_free(storage: Storage, name: str, replace: bool) -> None:
    if not replace:
        with storage.session() as s:
            if s.scalar(select(Environment.id).where(Environment.name == name)) is not None:
                raise AlreadyExists(f"environment {name!r} already exists", hint=REPLACE)


def check_output_file(out: str | os.PathLike) -> Path:
    """``out`` can be written as a file: standard output (``-``), a pipe or character device, or a
    regular file (through a link) whose folder exists and can be written."""
    from proto_index.atomic import output_target

    target = output_target(out)
    if target.kind != "file":
        return Path(out)
    parent = target.path.absolute().parent
    if not parent.is_dir():
        raise NotFound(f"the folder of the output file does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput(f"cannot write in the output folder {parent}")
    return Path(out)
