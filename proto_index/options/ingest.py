"""How an ingest treats the store: :class:`IngestOptions`, from ``Store.ingest`` to
:func:`proto_index.usecases.ingest.ingest`; it stays in the process that commits."""
from __future__ import annotations

import numbers
from dataclasses import dataclass

from proto_index.errors import Hint, InvalidInput
from proto_index.options.checks import whole as _whole

DEFAULT_COMMIT_WINDOWS = 256
DEFAULT_PUBLISH_WINDOWS = 50_000


@dataclass(frozen=True)
class IngestOptions:
    """How an ingest run treats the store; checked on creation, before the model loads.

    ``wait_s``: seconds to wait for another process holding the writer lock. ``rehash``: read and
    hash every file, even one whose path, size and mtime match a stored recording (skipped unread
    otherwise). ``commit_windows``: windows per catalog transaction (a crash loses at most the one
    in flight). ``publish_windows``: new windows between publications of the index file (it is
    also published at the end).
    """

    wait_s: float = 0.0
    rehash: bool = False
    commit_windows: int = DEFAULT_COMMIT_WINDOWS
    publish_windows: int = DEFAULT_PUBLISH_WINDOWS

    def __post_init__(self):
        wait = self.wait_s
        if isinstance(wait, bool) or not isinstance(wait, numbers.Real) or not wait >= 0:  # inf: wait for ever
            raise InvalidInput(f"the wait for another writer must be zero or more seconds, got {wait!r}", hint=Hint("wait_s"))
        if not isinstance(self.rehash, bool):
            raise InvalidInput(f"rehash must be True or False, got {self.rehash!r}", hint=Hint("rehash"))
        if not _whole(self.commit_windows, 1):
            raise InvalidInput(f"windows per catalog transaction must be a whole number of at least 1, "
                               f"got {self.commit_windows!r}", hint=Hint("commit_windows"))
        if not _whole(self.publish_windows, 1):
            raise InvalidInput(f"new windows between index publications must be a whole number of at least 1, "
                               f"got {self.publish_windows!r}", hint=Hint("publish_windows"))
        # plain Python numbers from here on, as in EmbedOptions
        object.__setattr__(self, "wait_s", float(wait))
        object.__setattr__(self, "commit_windows", int(self.commit_windows))
        object.__setattr__(self, "publish_windows", int(self.publish_windows))
