"""Remembered full-state hashes of models built from a seed, so a command that needs only a model's
audio tower need not build its text tower to know the model's identity.

An entry is keyed by everything the hashed state follows from: the hash of the parts that *are*
built (hashed again at every start), the seed, the files loaded into the model, and the versions of
the libraries whose code draws the random weights. A text tower built later is hashed and checked
against the remembered value (:func:`check`), so a wrong entry cannot go unnoticed once text is used.
"""
from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata

from proto_index.embed import json_cache
from proto_index.embed.download import cache_dir
from proto_index.errors import ModelError

FILE_NAME = "model-identity.json"


@functools.lru_cache(maxsize=None)
def library_versions(dists: tuple[str, ...]) -> dict[str, str | None]:
    """The installed version of each distribution in ``dists`` (None if not installed), read once."""
    found = {}
    for dist in dists:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def key(**parts: object) -> str:
    """The entry for ``parts`` (e.g. the built parts' hash, the seed), with the libraries' versions."""
    versions = library_versions(("torch", "laion_clap", "transformers", "numpy"))
    text = json.dumps({"parts": parts, "versions": versions}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def recall(entry: str) -> str | None:
    """The full-state hash remembered for ``entry``, or None."""
    value = json_cache.read(FILE_NAME).get(entry)
    return value if isinstance(value, str) and value.startswith("sha256:") else None


def remember(entry: str, weights: str | None) -> None:
    """Remember ``weights`` for ``entry`` (None forgets it); an unwritable cache is ignored."""
    known = json_cache.read(FILE_NAME)
    if weights is None:
        known.pop(entry, None)
    else:
        known[entry] = weights
    json_cache.write(FILE_NAME, known)


def check(entry: str, expected: str, actual: str, what: str) -> None:
    """:class:`ModelError` (and the entry forgotten) unless the whole model built later hashes to ``expected``."""
    if actual != expected:
        remember(entry, None)
        raise ModelError(f"{what}: the whole model hashes to {actual[:19]}, not to the remembered identity "
                         f"{expected[:19]} (a stale entry in {cache_dir() / FILE_NAME}, now removed; run again)")
