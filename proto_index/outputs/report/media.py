"""The report's media: a small mono WAV excerpt of one clip or window, and its spectrogram thumbnail (PNG)."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from proto_index.audio.decode import check_rate
from proto_index.errors import AudioDecodeError
from proto_index.filenames import for_library, from_text

EXCERPT_RATE = 16_000
"""Excerpts are mono 16-bit PCM at this rate (320 kB per 10 s): small enough for hundreds of rows."""
MAX_EXCERPT_S = 30.0
"""A per-file row plays at most this much of its file (its first seconds); a window plays whole."""
BLOCK_SAMPLES = 1 << 20
"""Source samples (frames x channels) read at a time: 4 MB of float32, whatever the header claims."""
MAX_SOURCE_SAMPLES = 1 << 27
"""Source samples read for one excerpt at most (30 s of 8 channels at 384 kHz fit); beyond, it is cut."""


class MediaProblem(Exception):
    """The source of a row cannot be excerpted (vanished, not a regular file, not audio)."""


def source_path(value: str, audio_root: Path) -> Path:
    """A CSV path cell as a file to read: absolute as given, else relative to ``audio_root``."""
    p = Path(from_text(value))  # a file: URI for a name that is not UTF-8 (proto_index.filenames)
    return p if p.is_absolute() else audio_root / p


def check_source(path: Path) -> None:
    """Raise ``MediaProblem`` unless ``path`` is an existing regular file (no FIFO, device or folder)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MediaProblem("audio file not found (moved or deleted since classification?)") from None
    except OSError as e:
        raise MediaProblem(f"cannot stat: {e.strerror or e}") from None
    except ValueError:  # e.g. a NUL byte in the name
        raise MediaProblem("not a valid file name") from None
    if not stat.S_ISREG(st.st_mode):
        raise MediaProblem("not a regular file")


def read_excerpt(path: Path, start_s: float | None, end_s: float | None) -> tuple[np.ndarray, bool]:
    """Mono float32 samples of [start_s, end_s) at ``EXCERPT_RATE`` (a whole file up to ``MAX_EXCERPT_S``),
    and whether the excerpt was cut short of what was asked.

    Memory is bounded whatever the header says: the source is read ``BLOCK_SAMPLES`` at a time, at
    most ``MAX_SOURCE_SAMPLES`` in all, and resampled as it is read; rates above
    :data:`~proto_index.audio.decode.MAX_SAMPLE_RATE` are refused."""
    check_source(path)
    try:
        with sf.SoundFile(for_library(path)) as snd:
            sr, channels = snd.samplerate, snd.channels
            check_rate(sr)
            first = 0 if start_s is None else max(0, int(round(start_s * sr)))
            want_end = snd.frames if end_s is None else int(round(end_s * sr))
            last = min(snd.frames, want_end, first + int(MAX_EXCERPT_S * sr), first + MAX_SOURCE_SAMPLES // channels)
            cut = last < min(snd.frames, want_end)
            if last <= first:
                raise MediaProblem(f"window {start_s}-{end_s} s lies outside the file ({snd.frames / sr:.2f} s)")
            snd.seek(first)
            mono = _read_mono(snd, last - first, max(1, BLOCK_SAMPLES // channels))
    except AudioDecodeError as e:
        raise MediaProblem(str(e)) from None
    except OSError as e:
        raise MediaProblem(f"cannot read: {e.strerror or e}") from None
    except (sf.SoundFileError, RuntimeError, ValueError) as e:
        raise MediaProblem(f"cannot decode audio: {e}") from None
    return mono, cut


def _read_mono(snd: sf.SoundFile, frames: int, block: int) -> np.ndarray:
    """``frames`` frames from the current position, mixed to mono and resampled to ``EXCERPT_RATE`` block by block."""
    sr = snd.samplerate
    stream = None if sr == EXCERPT_RATE else soxr.ResampleStream(sr, EXCERPT_RATE, 1, dtype="float32", quality="HQ")
    parts = []
    left = frames
    while left > 0:
        data = snd.read(min(block, left), dtype="float32", always_2d=True)
        if len(data) == 0:
            break
        left -= len(data)
        mono = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
        if not np.all(np.isfinite(mono)):
            raise MediaProblem("audio has non-finite samples")
        parts.append(mono if stream is None else stream.resample_chunk(mono, last=False))
    if stream is not None:
        parts.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)


def write_wav(samples: np.ndarray, out: Path) -> None:
    sf.write(str(out), np.clip(samples, -1.0, 1.0), EXCERPT_RATE, subtype="PCM_16", format="WAV")


def spectrogram(samples: np.ndarray, width: int = 240, height: int = 64) -> np.ndarray:
    """A ``(height, width)`` log-power spectrogram in [0, 1] (low frequencies at row 0)."""
    n_fft = 512
    x = samples if len(samples) >= n_fft else np.pad(samples, (0, n_fft - len(samples)))
    hop = max(1, (len(x) - n_fft) // max(1, width - 1))
    starts = np.arange(0, len(x) - n_fft + 1, hop)[:width]
    frames = np.stack([x[s : s + n_fft] for s in starts]) * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)).T ** 2  # (257, t)
    bins = power[1:].reshape(height, -1, power.shape[1]).mean(axis=1)  # 256 bins -> height rows
    db = 10 * np.log10(bins + 1e-12)
    top = db.max()
    return np.clip((db - (top - 80.0)) / 80.0, 0.0, 1.0)


def write_png(image: np.ndarray, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image as mimage

    mimage.imsave(str(out), image, cmap="magma", origin="lower", vmin=0.0, vmax=1.0, format="png")


@dataclass(frozen=True)
class Media:
    """Names, relative to the report folder, of one excerpt and its thumbnail, and the excerpt's length."""

    audio: str
    spectrogram: str
    seconds: float
    cut: bool


def write_media(path: Path, start_s: float | None, end_s: float | None, folder: Path, stem: str) -> Media:
    """Write ``audio/STEM.wav`` and ``spec/STEM.png`` under ``folder`` (``stem`` is generated, never input)."""
    samples, cut = read_excerpt(path, start_s, end_s)
    write_wav(samples, folder / "audio" / f"{stem}.wav")
    write_png(spectrogram(samples), folder / "spec" / f"{stem}.png")
    return Media(f"audio/{stem}.wav", f"spec/{stem}.png", len(samples) / EXCERPT_RATE, cut)
