"""The file hash that becomes a store's model identity, remembered by the file's stat (checkpoints are
read by :mod:`proto_index.clap.checkpoint`)."""
from __future__ import annotations

import os
from pathlib import Path

from proto_index.audio.discover import file_sha256
from proto_index.embed import json_cache

HASHES = "sha256.json"
"""The user-cache file of remembered checkpoint hashes (:func:`checkpoint_sha256`)."""


def _stamp(stat: os.stat_result) -> dict[str, int]:
    """What must not change for a remembered hash to hold: size, mtime, and the inode and ctime, which a
    file rewritten in place or replaced (even with its old size and mtime set back) cannot keep."""
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
            "inode": stat.st_ino, "device": stat.st_dev}


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a checkpoint (its identity), remembered in ``cache_dir()/sha256.json`` by path and :func:`_stamp`."""
    path = Path(path).resolve()
    stamp = _stamp(path.stat())
    known = json_cache.read(HASHES)
    entry = known.get(str(path))
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()) and "sha256" in entry:
        return entry["sha256"]

    result = "sha256:" + file_sha256(path)
    known[str(path)] = {**stamp, "sha256": result}
    json_cache.write(HASHES, known)  # a lost entry only means hashing again
    return result
