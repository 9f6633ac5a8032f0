"""Small JSON files in the user cache (``cache_dir()``): read as a dict, written whole and atomically.

A cache entry that is lost or unreadable only means computing it again, so reads of a missing,
damaged or non-regular file give an empty dict and a write that fails is ignored.
"""
from __future__ import annotations

import json

from proto_index.atomic import atomic_write
from proto_index.embed.download import cache_dir


def read(name: str) -> dict:
    """The object stored in ``cache_dir()/name``, or ``{}`` (also for a FIFO or device planted there: never waited on)."""
    from proto_index.audio.discover import open_regular

    try:
        with open_regular(cache_dir() / name) as f:
            known = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def write(name: str, known: dict) -> None:
    """Replace ``cache_dir()/name`` with ``known``; an unwritable cache is ignored."""
    path = cache_dir() / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, durable=False) as f:  # a cache: the rename need not survive a power cut
            f.write(json.dumps(known, indent=1, sort_keys=True))
    except OSError:
        pass
