"""The state-dict shapes of a text tower left for later, remembered between runs.

A checkpoint's RoBERTa tower is built on the first text embedding; until then a
:class:`~proto_index.embed.build.PendingTextTower` holds the shapes its weights must have, to check
the checkpoint at load. Learning them means building RoBERTa on the ``meta`` device, which imports
transformers' model code (1-2 s). They follow from the tower's config and the library versions
alone, so they are remembered in ``cache_dir()/text-tower-shapes.json`` under that key. The tower,
when built, is loaded strictly, so a wrong entry cannot go unnoticed.
"""
from __future__ import annotations

from proto_index.embed import identity_cache, json_cache

FILE_NAME = "text-tower-shapes.json"

Shapes = dict[str, tuple[int, ...]]


def key(tower: str, config: dict) -> str:
    """The entry for ``tower`` built from ``config`` with the installed libraries."""
    return identity_cache.key(kind="text-tower-shapes", tower=tower, config=config)


def recall(entry: str) -> Shapes | None:
    """The shapes remembered for ``entry``, or None (also for an entry that is not a name -> shape map)."""
    value = json_cache.read(FILE_NAME).get(entry)
    if not isinstance(value, dict) or not value:
        return None
    if not all(isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape) for shape in value.values()):
        return None
    return {name: tuple(shape) for name, shape in value.items()}


def remember(entry: str, shapes: Shapes) -> None:
    """Remember ``shapes`` for ``entry``; an unwritable cache is ignored."""
    known = json_cache.read(FILE_NAME)
    known[entry] = {name: list(shape) for name, shape in shapes.items()}
    json_cache.write(FILE_NAME, known)
