"""Writing files so that a crash leaves either the old file or the new one, never a torn one.

Every writer of the package goes through here: content goes to a temporary file in the target's
folder (same file system, so the rename is atomic), the temporary file is fsynced, then renamed
over the target. ``durable=True`` (the default) also fsyncs the folder, so the rename itself
survives a power cut: for files a crash must not lose (store files, downloads, a user's outputs).
``durable=False`` skips that one fsync where losing the newest version is harmless (caches): after
a power cut the old file (or none) may come back, never a torn one.

An exception inside the block removes the temporary file and leaves the target as it was. A
process killed mid-write can leave its temporary file (hidden, ``.NAME.<random>.tmp``) behind.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def fsync_path(path: str | os.PathLike) -> None:
    """Flush ``path`` to disk: a file's data, or a folder's entries (a rename, a new file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make the entries of ``folder`` durable (its own name, so tests can watch folder syncs)."""
    fsync_path(folder)


def fsync_file(path: str | os.PathLike) -> None:
    """Make a file's data durable (its own name, so tests can make it fail)."""
    fsync_path(path)


def temp_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for its temporary file."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def replace(tmp: str | os.PathLike, path: str | os.PathLike, durable: bool = True) -> None:
    """fsync the finished ``tmp``, rename it over ``path`` and (``durable``) fsync the folder."""
    fsync_file(tmp)
    os.replace(tmp, path)
    if durable:
        fsync_dir(Path(path).parent)


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True, tmp: str | os.PathLike | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that take a file name (FAISS, numpy,
    matplotlib, safetensors); it is renamed over ``path`` when the block completes, removed if
    the block raises. ``tmp``: the temporary name to use (in the same folder), else a fresh one."""
    path = Path(path)
    tmp = temp_name(path) if tmp is None else Path(tmp)
    if tmp.parent != path.parent:
        raise ValueError(f"the temporary file {tmp} must be in the folder of {path}")
    try:
        yield tmp
        replace(tmp, path, durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", durable: bool = True, encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:
    """A file object whose content appears at ``path`` only when the block completes.

    ``mode`` is ``"w"`` (text, ``encoding`` and ``newline`` as for :func:`open`) or ``"wb"``. The
    temporary file is created exclusively with the process umask, as :func:`open` would.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    with atomic_path(path, durable) as tmp:
        text = {"encoding": encoding, "newline": newline} if mode == "w" else {}
        with open(tmp, mode.replace("w", "x"), **text) as f:  # "x": never onto an existing file
            yield f
