"""The index held by the server: loaded once, reloaded when a writer publishes a new one.

A writer (the CLI's ``ingest`` beside the server, or this server) commits vector rows and
publishes index files through the catalog (:mod:`proto_index.store.published`); the pair
(published index file, committed vector rows) changes whenever the corpus does, and reading it
is two small catalog queries (well under a millisecond), so by default it is checked on every
request: whatever a writer has committed when a request arrives is searched. ``check_s`` > 0
checks at most that often instead.
"""
from __future__ import annotations

import math
import threading
import time

from proto_index.store.index import VectorIndex
from proto_index.store.storage import Storage


class IndexWatch:
    def __init__(self, storage: Storage, check_s: float = 0.5):
        self._storage = storage
        self._check_s = check_s
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._checked = -math.inf
        self.reloads = 0

    def key(self) -> tuple:
        """What identifies the corpus the index must cover."""
        return (self._storage.meta("index_file"), self._storage.committed_rows())

    def index(self) -> VectorIndex:
        """The current index, reloaded first if the store has moved on since it was loaded."""
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= self._check_s or self._key is None:
                self._checked = now
                key = self.key()
                if key != self._key:
                    if self._key is not None:
                        self._storage.forget_index()
                        self.reloads += 1
                    self._key = key
            return self._storage.index()

    def changed(self) -> None:
        """This process wrote the store: check at the next request."""
        with self._lock:
            self._checked = -math.inf
