"""The error hierarchy. The library raises these; only the CLI turns them into messages and exit codes.

A library message never names a command-line flag: where a remedy is an option, the error carries a
:class:`Hint` naming the option's concept (the API parameter, e.g. ``replace``), and the CLI words
it with its own flag (``--replace``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hint:
    """A remedy that uses an option: ``text`` with ``{option}`` where the option's spelling goes.

    ``option`` is a concept (an API parameter or action such as ``replace``, ``n``, ``wait_s``,
    ``verify_repair``); :meth:`render` puts a spelling for it into ``text``.
    """

    option: str
    text: str = "{option}"

    def render(self, spelling: str) -> str:
        return self.text.replace("{option}", spelling)


REPLACE = Hint("replace", "use {option}")
"""The remedy of :class:`AlreadyExists` for a named object: replace it."""


class ProtoIndexError(Exception):
    """Base class of every error proto-index raises on purpose (a user mistake or a bad input).

    ``hint``: what the user can do about it, naming an option by concept (see :class:`Hint`); it is
    not part of ``str(error)``.
    """

    def __init__(self, *args, hint: Hint | None = None):
        super().__init__(*args)
        self.hint = hint


class StoreError(ProtoIndexError):
    """The store directory is missing, unreadable, or not a proto-index store."""


class StoreNotFound(StoreError):
    """No store exists at the given path."""


class StoreExists(StoreError):
    """`init` was asked to create a store where one already exists."""


class StoreLocked(StoreError):
    """Another process holds the store's writer lock."""


class ModelMismatch(StoreError):
    """Vectors from one embedding model were offered to a store bound to another."""


class ClusterError(ProtoIndexError):
    """A distributed executor cannot do the work: the cluster is unreachable, or no node left can run it."""


class ModelError(ProtoIndexError):
    """An embedding model cannot be built or loaded (unknown name, missing checkpoint, bad file)."""


class AudioDecodeError(ProtoIndexError):
    """A file could not be decoded as audio (corrupt, empty, not audio, non-finite samples)."""


class NotFound(ProtoIndexError):
    """A named object (class set, prototype set, environment, file) does not exist."""


class AlreadyExists(ProtoIndexError):
    """A named object already exists and the caller did not ask to replace it."""


class InvalidInput(ProtoIndexError):
    """An argument or input file is malformed (bad manifest, empty label list, bad N)."""


class StoreCorrupt(StoreError):
    """A store file does not match what the catalog recorded (truncated, overwritten, not SQLite)."""


class StoreReadOnly(StoreError):
    """A command that writes was run on a store whose folder or files cannot be written."""


class DiskFull(StoreError):
    """The disk filled up while writing; what was committed before is intact."""


class CatalogConflict(StoreError):
    """A catalog write broke one of its rules (a unique name, a reference): usually another process wrote first."""


class StaleVerdict(ProtoIndexError):
    """A verdict was given on what a reviewer saw, but another reviewer has changed it since."""
