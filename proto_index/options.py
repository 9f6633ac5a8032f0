"""How audio files become window embeddings: one frozen object, carried from the CLI to the readers.

:class:`EmbedOptions` travels unchanged through ``Store.ingest`` / ``Store.classify``, the pipeline
(:mod:`proto_index.pipeline.ingest`, :mod:`proto_index.pipeline.classify`), the executors and
:func:`proto_index.pipeline.embedding.embed_files`, on this machine or a Ray worker. Where the
files are embedded is :class:`proto_index.pipeline.executors.ExecutorOptions`; the model's device
and precision are chosen when the store opens (they decide which model is loaded, once).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from proto_index.embed.encoder import SAMPLE_RATE, WINDOW_SECONDS
from proto_index.errors import InvalidInput
from proto_index.pipeline.decoding import DECODERS, DEFAULT_DECODER

DEFAULT_HOP_S = WINDOW_SECONDS
"""Windows follow each other without overlap unless a hop is given."""
DEFAULT_WORKERS = 1
DEFAULT_PREFETCH = 8


@dataclass(frozen=True)
class EmbedOptions:
    """How files are cut into windows and fed to the model.

    ``hop_s``: seconds between the starts of consecutive 10 s windows (below 10: overlapping).
    ``batch_windows``: windows per model batch (None: the model's device decides, 4 on a CPU, 32
    on CUDA). ``workers``: threads reading, hashing and decoding files ahead of the model (0: all
    in the caller's thread). ``prefetch``: files read ahead of the model at most (never fewer than
    ``workers``). ``decoder``: ``threads`` (the workers decode) or ``processes`` (each worker hands
    its files to a decoding process of its own: :mod:`proto_index.pipeline.decoding`).
    """

    hop_s: float = DEFAULT_HOP_S
    batch_windows: int | None = None
    workers: int = DEFAULT_WORKERS
    prefetch: int = DEFAULT_PREFETCH
    decoder: str = DEFAULT_DECODER

    def __post_init__(self):
        hop = self.hop_s
        if isinstance(hop, bool) or not isinstance(hop, numbers.Real) or not math.isfinite(hop) \
                or round(hop * SAMPLE_RATE) < 1:
            raise InvalidInput(f"the hop between windows must be a positive number of seconds, got {hop!r}")
        if self.batch_windows is not None and not _whole(self.batch_windows, 1):
            raise InvalidInput(f"windows per model batch must be a whole number of at least 1, got {self.batch_windows!r}")
        if not _whole(self.workers, 0):
            raise InvalidInput(f"reader workers must be a whole number of at least 0, got {self.workers!r}")
        if not _whole(self.prefetch, 1):
            raise InvalidInput(f"files read ahead must be a whole number of at least 1, got {self.prefetch!r}")
        if self.decoder not in DECODERS:
            raise InvalidInput(f"unknown decoder {self.decoder!r}; choose one of {', '.join(DECODERS)}")
        # plain Python numbers from here on (numpy scalars compare and pickle the same, but print differently)
        object.__setattr__(self, "hop_s", float(hop))
        for name in ("batch_windows", "workers", "prefetch"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def hop_samples(self) -> int:
        """The hop in 48 kHz samples."""
        return round(self.hop_s * SAMPLE_RATE)


def _whole(value, least: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least
