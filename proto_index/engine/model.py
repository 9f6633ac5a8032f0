"""The store's model as a handle loaded on first use: a use case checks its inputs against the catalog
and the file system first and touches the model (~8 s to load) only then, so a mistake costs nothing."""
from __future__ import annotations

from typing import Callable

from proto_index.embed.encoder import Encoder


class LazyEncoder:
    """An :class:`~proto_index.embed.encoder.Encoder` loaded by ``load`` the first time :meth:`get` is called."""

    def __init__(self, load: Callable[[], Encoder]):
        self._load = load
        self._encoder: Encoder | None = None

    @classmethod
    def of(cls, encoder: Encoder) -> "LazyEncoder":
        """A handle on a model already loaded."""
        handle = cls(lambda: encoder)
        handle._encoder = encoder
        return handle

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def get(self) -> Encoder:
        if self._encoder is None:
            self._encoder = self._load()
        return self._encoder
