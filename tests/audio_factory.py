"""Make audio input files, good and bad, for tests. Every function returns the path it wrote."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def _tone(seconds: float, sr: int, channels: int, freq: float, seed: int) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(0.0, 0.01, size=(len(t), channels))
    return (0.5 * np.sin(2 * np.pi * freq * t)[:, None] + noise).astype(np.float32)


def write_wav(path, seconds: float, sr: int, channels: int = 1, subtype: str = "PCM_16",
              format: str | None = None, freq: float = 440.0, seed: int = 0) -> Path:
    """A sine at ``freq`` plus a little seeded noise; ``format`` None lets the extension decide."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _tone(seconds, sr, channels, freq, seed), sr, subtype=subtype, format=format)
    return path


def write_flac(path, seconds: float, sr: int, channels: int = 1, subtype: str = "PCM_16",
               freq: float = 440.0, seed: int = 0) -> Path:
    """Like :func:`write_wav`, as FLAC whatever the extension."""
    return write_wav(path, seconds, sr, channels, subtype, "FLAC", freq, seed)


def corrupt_header(path, sr: int = 16000) -> Path:
    """A WAV whose RIFF header bytes (magic, size, WAVE, fmt) are garbled."""
    path = write_wav(path, 0.5, sr)
    with open(path, "r+b") as fh:
        fh.write(b"\xde\xad\xbe\xef" * 4)
    return path


def truncated(path, sr: int = 16000) -> Path:
    """A stereo PCM_16 WAV whose header promises 1 s but whose data stops mid-frame near 0.5 s."""
    path = write_wav(path, 1.0, sr, channels=2)
    data_start = path.stat().st_size - sr * 2 * 2  # 1 s of 2 channels x 2 bytes
    with open(path, "r+b") as fh:
        fh.truncate(data_start + (sr // 2) * 4 + 3)  # 3 bytes into a 4-byte frame
    return path


def zero_length(path) -> Path:
    """A 0-byte file (named whatever ``path`` says, e.g. ``x.wav``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def text_as_wav(path) -> Path:
    """A plain-text file named as audio."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not audio\n" * 20)
    return path


def nan_wav(path, sr: int = 16000) -> Path:
    """A 0.5 s float WAV whose samples are a sine with a run of NaN in the middle."""
    data = _tone(0.5, sr, 1, 440.0, 0)
    data[sr // 8: sr // 4] = np.nan
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, subtype="FLOAT")
    return path


def empty_audio_wav(path, sr: int = 16000) -> Path:
    """A valid PCM_16 WAV header with 0 frames of audio."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros((0, 1), dtype=np.float32), sr, subtype="PCM_16")
    return path
