"""Audio files to window embeddings: decode, cut into windows, embed in batches across files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import soundfile as sf

from proto_index.audio.decode import prepare
from proto_index.audio.windows import window_bounds
from proto_index.embed.encoder import SAMPLE_RATE, WINDOW_SECONDS, Encoder
from proto_index.errors import AudioDecodeError

WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)


@dataclass
class EmbeddedFile:
    """One file's window embeddings ``(w, d)`` with each window's [start, end) in seconds."""

    path: Path
    duration_s: float
    sample_rate: int
    channels: int
    starts_s: list[float]
    ends_s: list[float]
    vectors: np.ndarray

    def pooled(self) -> np.ndarray:
        """The file's single vector: the mean of its window embeddings."""
        return self.vectors.mean(axis=0)


@dataclass
class FailedFile:
    path: Path
    error: str


@dataclass
class _Decoded:
    path: Path
    info: sf._SoundFileInfo
    bounds: list[tuple[int, int]]
    wave: np.ndarray


def _decode(path: Path) -> _Decoded:
    wave = prepare(path)
    info = sf.info(str(path))
    return _Decoded(path, info, window_bounds(len(wave), window=WINDOW_SAMPLES, hop=WINDOW_SAMPLES), wave)


def embed_files(
    paths: Iterable[Path],
    encoder: Encoder,
    batch_windows: int = 16,
    decode: Callable[[Path], _Decoded] = _decode,
) -> Iterator[EmbeddedFile | FailedFile]:
    """Yield each file's embeddings (or why it failed) in input order.

    Windows of consecutive files share model batches of about ``batch_windows`` windows, so short
    clips do not run the model one at a time.
    """
    pending: list[_Decoded] = []
    n_windows = 0
    for path in paths:
        try:
            decoded = decode(Path(path))
        except AudioDecodeError as e:
            yield from _flush(pending, encoder)
            pending, n_windows = [], 0
            yield FailedFile(Path(path), str(e))
            continue
        pending.append(decoded)
        n_windows += len(decoded.bounds)
        if n_windows >= batch_windows:
            yield from _flush(pending, encoder)
            pending, n_windows = [], 0
    yield from _flush(pending, encoder)


def _flush(pending: list[_Decoded], encoder: Encoder) -> Iterator[EmbeddedFile]:
    if not pending:
        return
    segments = [d.wave[a:b] for d in pending for a, b in d.bounds]
    vectors = encoder.embed_waveforms(segments)
    at = 0
    for d in pending:
        w = len(d.bounds)
        yield EmbeddedFile(
            path=d.path,
            duration_s=len(d.wave) / SAMPLE_RATE,
            sample_rate=int(d.info.samplerate),
            channels=int(d.info.channels),
            starts_s=[a / SAMPLE_RATE for a, _ in d.bounds],
            ends_s=[b / SAMPLE_RATE for _, b in d.bounds],
            vectors=np.asarray(vectors[at : at + w], dtype=np.float32),
        )
        at += w
