"""Full-state hashes of models built from a seed, known without building their text tower.

An entry is keyed by everything the hashed state follows from: the drawing scheme, the seed, the
files loaded into the model, and the versions of the libraries whose code draws the random weights. Its value comes from the package
(:mod:`~proto_index.embed.known_states`), never from the user cache, which anyone who can write to it
could make bind a store to another identity. A text tower built later is hashed and checked against
it (:func:`check`).
"""
from __future__ import annotations

import hashlib
import json

from proto_index.embed import known_states
from proto_index.embed.known_states import DRAWING_LIBRARIES, library_versions
from proto_index.errors import ModelError


def key(**parts: object) -> str:
    """The entry for ``parts`` (e.g. the seed, the heads file's hash), with the drawing libraries' versions."""
    versions = library_versions(DRAWING_LIBRARIES)
    text = json.dumps({"parts": parts, "versions": versions}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def recall(entry: str) -> str | None:
    """The full-state hash the package ships for ``entry``, or None."""
    return known_states.shipped(entry)


def check(entry: str, expected: str, actual: str, what: str) -> None:
    """:class:`ModelError` unless the whole model built later hashes to ``expected``."""
    if actual != expected:
        raise ModelError(f"{what}: the whole model hashes to {actual[:19]}, not to the identity "
                         f"{expected[:19]} shipped for it in {known_states.FILE.name} (this installation "
                         "draws other weights than the package was recorded with)")
