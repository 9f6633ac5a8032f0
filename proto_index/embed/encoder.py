"""The encoder interface: what the rest of proto-index needs from an audio-text embedding model."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

SAMPLE_RATE = 48_000
"""Every CLAP tower consumes 48 kHz mono audio."""

WINDOW_SECONDS = 10.0
"""The audio tower's receptive field: one embedding covers at most this much audio."""


@dataclass(frozen=True)
class ModelIdentity:
    """What a store is bound to: vectors from a model with another identity are refused.

    ``weights`` is a content hash of the checkpoint file (``sha256:...``) or, for the offline
    random-weight model, a hash of its initialised state dict.
    """

    name: str
    architecture: str
    fusion: bool
    weights: str
    dim: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelIdentity":
        return cls(**json.loads(text))

    def describe(self) -> str:
        fusion = "fusion" if self.fusion else "no fusion"
        return f"{self.name} ({self.architecture}, {fusion}, weights {self.weights[:19]}, dim {self.dim})"


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
