"""Where files are read, decoded, windowed and embedded: in this process ("local") or on a Ray cluster ("ray").

Either way the caller gets the same stream of :class:`~proto_index.engine.embedding.EmbeddedFile`,
:class:`~proto_index.engine.embedding.SkippedFile` and :class:`~proto_index.engine.embedding.FailedFile`
results and stays the store's one writer: ingest commits them through the same path whatever
produced them. Ray is optional (the ``ray`` extra): :class:`~proto_index.distributed.ray_executor.RayEmbedder`,
imported only when asked for, sits above this module and builds on it.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from proto_index.embed.encoder import Encoder
from proto_index.errors import InvalidInput
from proto_index.options import EmbedOptions
from proto_index.engine.embedding import EmbeddedFile, FailedFile, SkippedFile, embed_files

EXECUTORS = ("local", "ray")
RAY_ADDRESS_ENV = "PROTO_INDEX_RAY_ADDRESS"

Result = EmbeddedFile | FailedFile | SkippedFile


@dataclass(frozen=True)
class ExecutorOptions:
    """Where to run the embedding work (how files are embedded is :class:`~proto_index.options.EmbedOptions`).

    Only the store picks an embedder with it (:meth:`proto_index.Store.ingest`); it does not travel
    further, unlike EmbedOptions, which reaches every reader.

    ``kind``: ``local`` (threads in this process) or ``ray``. For Ray: ``address`` of the cluster
    (None: $PROTO_INDEX_RAY_ADDRESS, else a Ray started on this machine); ``actors``: embedding
    tasks run at once (None: as many as the cluster's resources allow, at ``cpus_per_actor`` CPUs
    and ``gpus_per_actor`` GPUs each, e.g. 1 on GPU workers); ``files_per_task``: files per task;
    ``capacity_wait_s``: how long the run waits, once no live node has the resources of one task
    (the nodes that had them were lost), for such a node to (re)join before it stops with an error.
    """

    kind: str = "local"
    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    files_per_task: int = 8
    capacity_wait_s: float = 300.0

    def __post_init__(self):
        if self.kind not in EXECUTORS:
            raise InvalidInput(f"unknown executor {self.kind!r}; choose one of {', '.join(EXECUTORS)}")
        if self.files_per_task < 1 or (self.actors is not None and self.actors < 1):
            raise InvalidInput("files_per_task and actors must be positive")
        if not self.capacity_wait_s >= 0:
            raise InvalidInput("capacity_wait_s must be zero or more")

    def ray_address(self) -> str | None:
        return self.address or os.environ.get(RAY_ADDRESS_ENV) or None


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
