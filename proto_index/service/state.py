"""What one server process holds: the store, its one model (batched), the index and the write lock."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from proto_index.api import Store
from proto_index.engine.model import LazyEncoder
from proto_index.service.batcher import BatchingEncoder, SerialEncoder
from proto_index.service.index_watch import IndexWatch
from proto_index.service.settings import ServiceSettings
from proto_index.store.storage import Storage


@dataclass
class ServiceState:
    settings: ServiceSettings
    store: Store
    watch: IndexWatch
    read_only: bool
    _encoder: BatchingEncoder | SerialEncoder | None = None
    _model_lock: threading.Lock = field(default_factory=threading.Lock)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: ServiceSettings) -> "ServiceState":
        store = Store.open(settings.store, device=settings.device)
        storage = store._storage  # the facade's storage: the server reads the catalog directly too
        read_only = settings.read_only or storage.read_only
        return cls(settings, store, IndexWatch(storage, settings.index_check_s), read_only)

    @property
    def storage(self) -> Storage:
        return self.store._storage

    @property
    def encoder(self):
        """The process's one model, wrapped for batching; loaded on first use."""
        with self._model_lock:
            if self._encoder is None:
                inner = self.store.encoder
                s = self.settings
                self._encoder = (BatchingEncoder(inner, s.batch_window_s, s.batch_max_items) if s.batching
                                 else SerialEncoder(inner))
                self.store._model = LazyEncoder.of(self._encoder)  # every Store method now goes through the batcher
            return self._encoder

    def warm(self) -> None:
        """Load the model and the index now, so the first request does not wait for them."""
        self.encoder
        self.watch.index()

    @contextmanager
    def writing(self):
        """The store's writer lock, one request thread at a time (the lock is per process)."""
        with self._write_lock, self.storage.writer(self.settings.write_wait_s):
            yield
        self.watch.changed()

    def close(self) -> None:
        if self._encoder is not None:
            self._encoder.close()
        self.store.close()
