"""File names that are not text: how a path is kept in the catalog and written in machine formats.

A POSIX file name is bytes. Python reads one that is not valid UTF-8 as a str holding lone
surrogates (U+DC80-U+DCFF, one per undecodable byte: PEP 383 ``surrogateescape``), which opens the
file again but cannot be encoded as UTF-8 text. Two lossless forms are used:

* the catalog (:class:`~proto_index.store.schema.PathText`) keeps a valid UTF-8 name as TEXT and any
  other as a BLOB of its exact bytes; the storage class tells the two apart;
* machine formats (CSV, JSON Lines, Parquet, Raven, Audacity) write :func:`as_text`: the path as it
  is, or, when it is not valid UTF-8 (or itself begins with ``file:``), a ``file:`` URI of its
  absolute path with the bytes percent-encoded (``file:///data/m%FF.wav``); :func:`from_text`
  turns either back into the path.
"""
from __future__ import annotations

import os
from urllib.parse import quote_from_bytes, unquote_to_bytes

URI = "file:"


def to_bytes(path: str | os.PathLike) -> bytes:
    """The exact bytes of the file name ``path`` (undoing ``surrogateescape``)."""
    return os.fsencode(path)


def for_library(path: str | os.PathLike) -> str | bytes:
    """``path`` for a library that encodes a str path as strict UTF-8 (libsndfile through soundfile):
    the str when it is text, else its bytes."""
    name = os.fspath(path)
    return name if isinstance(name, bytes) or is_text(name) else to_bytes(name)


def is_text(name: str) -> bool:
    """True when ``name`` is valid Unicode text (no lone surrogates), i.e. encodable as UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def as_text(path: str | os.PathLike) -> str:
    """``path`` as UTF-8-safe text, losslessly: unchanged if it is valid UTF-8 and does not begin
    with ``file:``, else the ``file:`` URI of its absolute path, bytes percent-encoded."""
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if is_text(name) and not name.startswith(URI):
        return name
    return URI + "//" + quote_from_bytes(to_bytes(os.path.abspath(name)), safe="/")


def from_text(text: str) -> str:
    """The path :func:`as_text` wrote as ``text`` (a str that opens the file, surrogates and all)."""
    if text.startswith(URI + "//"):
        return os.fsdecode(unquote_to_bytes(text[len(URI) + 2:]))
    return text
