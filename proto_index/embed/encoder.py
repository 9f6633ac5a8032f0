"""The encoder interface: what the rest of proto-index needs from an audio-text embedding model."""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

# Re-exported: the identity lives below the store and the model layer, which both need it.
from proto_index.core.identity import MIN_TAIL_SECONDS, SAMPLE_RATE, WINDOW_SECONDS, ModelIdentity  # noqa: F401


@runtime_checkable
class Encoder(Protocol):
    """An audio-text embedding model.

    ``embed_waveforms`` takes mono float32 waveforms at ``SAMPLE_RATE``, each at most
    ``WINDOW_SECONDS`` long, already quantised the way the model expects; it returns an
    ``(n, dim)`` float32 array of L2-normalised embeddings. ``embed_texts`` likewise for text.
    """

    identity: ModelIdentity

    @property
    def dim(self) -> int: ...

    def embed_waveforms(self, waveforms: Sequence[np.ndarray]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class LabelScorer(Protocol):
    """A model with a classifier head of its own (BirdNET): ``labels`` in output order, and
    ``label_scores`` turning ``(n, dim)`` STORED embeddings into ``(n, len(labels))`` scores in
    [0, 1], without the audio. Needed by the ``classifier`` prototype method only."""

    labels: list[str]

    def label_scores(self, vectors: np.ndarray) -> np.ndarray: ...
