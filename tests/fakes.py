"""A deterministic fake encoder whose vectors make the right answers known.

Audio maps to its spectral energy in log-spaced frequency bands, so a tone at f lands on band(f).
Text maps to the band of the frequency the vocabulary gives the first known word in it, plus a
constant "modality gap" direction that no audio has. Hence:
  * a text anchor sits off the audio clusters (the modality gap), and TGAP pulls it onto them;
  * a background tone shows up in every clip of its environment, and subtracting it helps.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Sequence

import numpy as np

from proto_index.embed.encoder import SAMPLE_RATE, ModelIdentity

N_BANDS = 30
DIM = N_BANDS + 2  # bands, the modality-gap direction, and an "unknown text" direction
GAP_DIM = N_BANDS
UNKNOWN_DIM = N_BANDS + 1
EDGES = np.geomspace(60.0, 20_000.0, N_BANDS + 1)

# Class tones sit in well separated bands; backgrounds in bands of their own.
VOCAB = {
    "siren": 700.0,
    "dog bark": 1500.0,
    "drilling": 3200.0,
    "bird song": 6500.0,
    "park": 150.0,
    "airport": 300.0,
    "metro station": 12_000.0,
}


def band_of(freq: float) -> int:
    return int(np.searchsorted(EDGES, freq) - 1)


class BandEncoder:
    """Encoder protocol implementation with known semantics (see module docstring)."""

    def __init__(self, vocab: dict[str, float] | None = None, gap: float = 1.0, **_ignored):
        self.vocab = dict(VOCAB if vocab is None else vocab)
        self.gap = gap
        digest = hashlib.sha256(json.dumps([self.vocab, gap], sort_keys=True).encode()).hexdigest()
        self.identity = ModelIdentity("fake-bands", "band-energy", False, f"sha256:{digest}", DIM)
        self.audio_calls = 0
        self.text_calls = 0

    @property
    def dim(self) -> int:
        return DIM

    def embed_waveforms(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        self.audio_calls += 1
        out = np.zeros((len(waveforms), DIM), dtype=np.float32)
        for i, w in enumerate(waveforms):
            spec = np.abs(np.fft.rfft(np.asarray(w, dtype=np.float64))) ** 2
            freqs = np.fft.rfftfreq(len(w), 1.0 / SAMPLE_RATE)
            energy = np.array([spec[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in zip(EDGES[:-1], EDGES[1:])])
            v = np.sqrt(energy)
            out[i, :N_BANDS] = v / max(np.linalg.norm(v), 1e-12)
        return out

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.text_calls += 1
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            found = [w for w in sorted(self.vocab, key=len, reverse=True) if w in text.lower()]
            if found:
                out[i, band_of(self.vocab[found[0]])] = 1.0
                out[i, GAP_DIM] = self.gap
            else:
                out[i, UNKNOWN_DIM] = 1.0
            out[i] /= np.linalg.norm(out[i])
        return out


def tone_mix(parts: list[tuple[float, float]], seconds: float, sr: int = 48_000, seed: int = 0) -> np.ndarray:
    """Sum of sines ``(freq, amplitude)`` plus faint noise, as float32 samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f, a in parts)
    x = x + 0.001 * rng.standard_normal(len(t))
    return (x / max(1.0, np.abs(x).max() / 0.9)).astype(np.float32)


class RecordingEncoder(BandEncoder):
    """A BandEncoder (model name ``fake-recording``) that keeps every batch it is given: the windows'
    samples, one list per model call, in :attr:`batches`, shared by every instance (the CLI loads its own)."""

    batches: list[list[np.ndarray]] = []

    def __init__(self, **kw):
        super().__init__(**kw)
        self.identity = dataclasses.replace(self.identity, name="fake-recording")

    def embed_waveforms(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        RecordingEncoder.batches.append([np.array(w, copy=True) for w in waveforms])
        return super().embed_waveforms(waveforms)


MODEL_LABELS = {  # a classifier head's labels (BirdNET-like names) and the band each one listens to
    "Siren_Emergency siren": 700.0,
    "Canis familiaris_Dog": 1500.0,
    "Power tool_Drill": 3200.0,
    "Turdus merula_Eurasian Blackbird": 6500.0,
    "Erithacus rubecula_European Robin": 6500.0,
    "Engine_Aircraft": 300.0,
}


class ScoringEncoder(BandEncoder):
    """A BandEncoder (model name ``fake-scorer``) with a classifier head of its own
    (:class:`~proto_index.embed.encoder.LabelScorer`): a label's score is the stored vector's
    energy share in its band, ``v[band] ** 2`` (in [0, 1] for a unit audio vector)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.identity = dataclasses.replace(self.identity, name="fake-scorer")
        self.labels = list(MODEL_LABELS)
        self.scored = []  # the number of vectors of each label_scores call

    def label_scores(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float64)
        self.scored.append(len(v))
        return np.clip(v[:, [band_of(f) for f in MODEL_LABELS.values()]] ** 2, 0.0, 1.0)


def _register() -> None:
    from proto_index.embed.registry import register_model

    register_model("fake-bands", lambda **kw: BandEncoder(), "test encoder with known semantics")
    register_model("fake-recording", lambda **kw: RecordingEncoder(), "test encoder that records its batches")
    register_model("fake-scorer", lambda **kw: ScoringEncoder(), "test encoder with a classifier head of its own")


_register()  # importing this module (e.g. via $PROTO_INDEX_PLUGINS=fakes) makes 'fake-bands' loadable
