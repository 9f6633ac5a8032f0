"""Where files are read, decoded, windowed and embedded: in this process ("local") or on a Ray cluster ("ray").

Either way the caller gets the same stream of :class:`~proto_index.engine.embedding.EmbeddedFile`,
:class:`~proto_index.engine.embedding.SkippedFile` and :class:`~proto_index.engine.embedding.FailedFile`
results and stays the store's one writer: ingest commits them through the same path whatever
produced them. Ray is optional (the ``ray`` extra): :class:`~proto_index.distributed.ray_executor.RayEmbedder`,
imported only when asked for, sits above this module and builds on it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from proto_index.embed.encoder import Encoder
from proto_index.options import EXECUTORS, RAY_ADDRESS_ENV, EmbedOptions, ExecutorOptions  # noqa: F401  (the first two kept importable from here)
from proto_index.engine.embedding import EmbeddedFile, FailedFile, SkippedFile, embed_files

Result = EmbeddedFile | FailedFile | SkippedFile


@dataclass(frozen=True)
class ModelSpec:
    """What a remote worker needs to load the store's model itself: the store's model options,
    the device and precision to run it at, and the identity it must have."""

    options: dict
    device: str | None
    precision: str
    identity_json: str


class Embed(Protocol):
    """Embed ``paths`` as ``options`` say, skipping ``known_hashes``; results in input order or as they arrive."""

    def __call__(self, paths: Iterable[Path], *, options: EmbedOptions, known_hashes,
                 on_windows: Callable[[int], None] | None) -> Iterator[Result]: ...


def local_embedder(encoder: Encoder) -> Embed:
    """Embed in this process with ``encoder`` (:func:`~proto_index.engine.embedding.embed_files`)."""

    def embed(paths, *, options=EmbedOptions(), known_hashes=None, on_windows=None):
        return embed_files(paths, encoder, options=options, known_hashes=known_hashes, on_windows=on_windows)

    return embed
