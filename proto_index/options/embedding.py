"""How audio files become window embeddings (:class:`EmbedOptions`, which travels with the files to
every reader, here or on a Ray worker) and where that work runs (:class:`ExecutorOptions`, which only
the store uses, to pick the embedder)."""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

from proto_index.audio.windows import Cutting
from proto_index.core.identity import SAMPLE_RATE, ModelIdentity
from proto_index.errors import InvalidInput
from proto_index.options.checks import whole as _whole

DECODERS = ("threads", "processes")
"""Where the embedding pipeline decodes files: in reader threads, or in one worker process per reader thread."""

DEFAULT_DECODER = "threads"
"""Threads by default: on a 2-core machine processes bought nothing measurable and cost a start of
1.7-3.5 s each (spawn and imports) plus relaying every window (bench/decode_rate.py, bench/RESULTS.md);
processes are for many cores, where threads contend for the interpreter lock with the model's thread."""

DEFAULT_HOP_S = None
"""Windows follow each other without overlap (the hop is the model's window) unless a hop is given."""
DEFAULT_WORKERS = 1
"""Reader threads on a CPU, where the model needs the cores; on CUDA see :func:`default_workers`."""
GPU_MAX_WORKERS = 16
DEFAULT_PREFETCH = 8


@dataclass(frozen=True)
class EmbedOptions:
    """How files are cut into windows and fed to the model.

    ``hop_s``: seconds between the starts of consecutive windows (None: the model's window, 10 s
    for CLAP, 3 s for BirdNET; below it: overlapping).
    ``batch_windows``: windows per model batch (None: the model's device decides, 4 on a CPU, 32
    on CUDA). ``workers``: threads reading, hashing and decoding files ahead of the model (0: all
    in the caller's thread; None: the model's device decides, see :func:`default_workers`). ``prefetch``: files read ahead of the model at most (never fewer than
    ``workers``). ``decoder``: ``threads`` (the workers decode) or ``processes`` (each worker hands
    its files to a decoding process of its own: :mod:`proto_index.engine.decoding`).
    """

    hop_s: float | None = DEFAULT_HOP_S
    batch_windows: int | None = None
    workers: int | None = None
    prefetch: int = DEFAULT_PREFETCH
    decoder: str = DEFAULT_DECODER

    def __post_init__(self):
        hop = self.hop_s
        if hop is not None and (isinstance(hop, bool) or not isinstance(hop, numbers.Real) or not math.isfinite(hop)
                                or round(hop * SAMPLE_RATE) < 1):
            raise InvalidInput(f"the hop between windows must be a positive number of seconds, got {hop!r}")
        if self.batch_windows is not None and not _whole(self.batch_windows, 1):
            raise InvalidInput(f"windows per model batch must be a whole number of at least 1, got {self.batch_windows!r}")
        if self.workers is not None and not _whole(self.workers, 0):
            raise InvalidInput(f"reader workers must be a whole number of at least 0, got {self.workers!r}")
        if not _whole(self.prefetch, 1):
            raise InvalidInput(f"files read ahead must be a whole number of at least 1, got {self.prefetch!r}")
        if self.decoder not in DECODERS:
            raise InvalidInput(f"unknown decoder {self.decoder!r}; choose one of {', '.join(DECODERS)}")
        # plain Python numbers from here on (numpy scalars compare and pickle the same, but print differently)
        object.__setattr__(self, "hop_s", None if hop is None else float(hop))
        for name in ("batch_windows", "workers", "prefetch"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))

    def cutting(self, identity: ModelIdentity | None) -> Cutting:
        """How the model of ``identity`` gets its windows, every :attr:`hop_s` seconds."""
        return Cutting.for_model(identity, self.hop_s)


def default_workers(device: str, cpus: int | None) -> int:
    """Reader threads when none are asked for: 1 on a CPU (the model needs the cores), and on CUDA
    every core but one, up to :data:`GPU_MAX_WORKERS` (one thread decodes 60-160 10 s clips/s,
    bench/RESULTS.md, far below what a GPU embeds)."""
    if not str(device).startswith("cuda"):
        return DEFAULT_WORKERS
    return max(1, min(GPU_MAX_WORKERS, (cpus or 1) - 1))


EXECUTORS = ("local", "ray")
RAY_ADDRESS_ENV = "PROTO_INDEX_RAY_ADDRESS"


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
