"""Decode audio files into what the CLAP audio tower consumes: 48 kHz mono float32, int16-quantised.

The result matches laion_clap's own file path (``librosa.load(sr=48000)`` then its int16 round
trip) sample for sample, except that the length is exactly ``round(frames * 48000 / sr)``:
librosa can return one extra zero sample (480001 for 10 s at 44.1 kHz), which laion_clap would then
treat as longer than its 10 s window.
"""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import soxr

from proto_index.embed.encoder import SAMPLE_RATE
from proto_index.errors import AudioDecodeError


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` to a mono float32 waveform at 48 kHz.

    Channels are averaged; other rates are resampled with soxr 'HQ' (librosa's default).
    Raises :class:`AudioDecodeError` for unreadable files, empty audio and NaN/Inf samples.
    """
    path = os.fspath(path)
    try:
        # libsndfile reports a missing or unreadable file only as "System error."; open() says which.
        with open(path, "rb"):
            pass
    except OSError as e:
        raise AudioDecodeError(f"cannot open file: {e.strerror or e}") from e
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        # libsndfile's message names the file; error_string is the reason alone.
        reason = getattr(e, "error_string", None) or str(e)
        raise AudioDecodeError(f"not an audio file soundfile can read: {reason}") from e
    if data.shape[0] == 0:
        raise AudioDecodeError("empty audio (0 samples)")
    if not np.isfinite(data).all():
        raise AudioDecodeError("non-finite samples (NaN or Inf)")

    # Same reduction as librosa.to_mono on its (channels, frames) view, so values agree bit for bit.
    mono = data.T.mean(axis=0)
    if sr == SAMPLE_RATE:
        return np.ascontiguousarray(mono, dtype=np.float32)
    n_out = round(data.shape[0] * SAMPLE_RATE / sr)
    resampled = soxr.resample(mono, sr, SAMPLE_RATE, quality="HQ")
    out = np.zeros(n_out, dtype=np.float32)
    n = min(n_out, len(resampled))
    out[:n] = resampled[:n]
    return out


def quantize_int16(wave: np.ndarray) -> np.ndarray:
    """Round-trip through int16 exactly as laion_clap does (clip to [-1, 1], scale by 32767, truncate)."""
    as_int16 = (np.clip(wave, a_min=-1.0, a_max=1.0) * 32767.0).astype(np.int16)
    return (as_int16 / 32767.0).astype(np.float32)


def prepare(path: str | os.PathLike) -> np.ndarray:
    """What the model gets for a file: :func:`load_audio` then :func:`quantize_int16`."""
    return quantize_int16(load_audio(path))
