"""Decode audio files into what the CLAP audio tower consumes: 48 kHz mono float32, int16-quantised.

The result matches laion_clap's own file path (``librosa.load(sr=48000)`` then its int16 round
trip) sample for sample, except that the length is exactly ``round(frames * 48000 / sr)``:
librosa can return one extra zero sample (480001 for 10 s at 44.1 kHz), which laion_clap would then
treat as longer than its 10 s window.

Two ways in: :func:`load_audio` / :func:`prepare` decode a whole file at once (short files), and
:func:`stream_prepared` yields the same samples block by block with bounded memory (long recordings).
Both resample with soxr 'HQ'; soxr's streaming resampler gives the one-shot output bit for bit, and
mixdown and quantisation are per sample, so the two paths agree exactly.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from proto_index.audio.discover import open_regular
from proto_index.core.identity import SAMPLE_RATE
from proto_index.errors import AudioDecodeError
from proto_index.filenames import for_library

BLOCK_FRAMES = 1 << 18
"""Source frames read per block when streaming (about 5.5 s at 48 kHz)."""
MAX_SAMPLE_RATE = 768_000
"""The highest source rate read (ultrasonic recorders go to 384-768 kHz); a header claiming more is
refused, as its reads and resampling would be sized by it."""


def check_rate(sample_rate: int) -> None:
    """:class:`AudioDecodeError` unless ``sample_rate`` is a rate this tool reads (1 Hz to ``MAX_SAMPLE_RATE``)."""
    if not 1 <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(f"sample rate {sample_rate} Hz is not one this tool reads (at most {MAX_SAMPLE_RATE} Hz)")


def check_readable(path: str | os.PathLike) -> None:
    """:class:`AudioDecodeError` naming the reason when ``path`` cannot be opened for reading.

    libsndfile reports a missing or unreadable file only as "System error."; ``open()`` says which.
    """
    try:
        with open_regular(path):  # a FIFO or device (/dev/zero) is refused, never read
            pass
    except OSError as e:
        raise AudioDecodeError(f"cannot open file: {e.strerror or e}") from e


def open_audio(source: str | os.PathLike | BinaryIO) -> sf.SoundFile:
    """Open ``source`` (a path, or a binary file object such as ``io.BytesIO``) with libsndfile.

    Raises :class:`AudioDecodeError` when it is not audio libsndfile can read, or holds no frames.
    """
    opened: str | bytes | BinaryIO
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        check_readable(name)
        opened = for_library(name)  # a file name that is not UTF-8 goes as its bytes
    else:
        opened = source
    try:
        snd = sf.SoundFile(opened)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as e:
        raise _not_audio(e) from e
    if snd.frames == 0:
        snd.close()
        raise AudioDecodeError("empty audio (0 samples)")
    try:
        check_rate(snd.samplerate)
    except AudioDecodeError:
        snd.close()
        raise
    return snd


def _not_audio(e: Exception) -> AudioDecodeError:
    # libsndfile's message names the file; error_string is the reason alone.
    reason = getattr(e, "error_string", None) or str(e)
    return AudioDecodeError(f"not an audio file soundfile can read: {reason}")


def output_length(frames: int, sample_rate: int, rate: int = SAMPLE_RATE) -> int:
    """Samples at ``rate`` (the model's; 48 kHz) for ``frames`` source frames at ``sample_rate``."""
    return frames if sample_rate == rate else round(frames * rate / sample_rate)


def _mono(data: np.ndarray) -> np.ndarray:
    """``(frames, channels)`` float32 to mono float32; NaN/Inf rejected.

    The values are librosa.to_mono's (``mean(axis=0)`` of the ``(channels, frames)`` view) bit for
    bit: numpy sums a short, strided reduction axis one channel after the other in float32, then
    divides by the count, which is what the explicit sum below does, without the strided reduce.
    """
    channels = data.shape[1]
    if channels == 1:
        mono = data[:, 0]  # x / 1 is x
    elif channels < 8:  # from 8 on numpy sums pairwise
        mono = data[:, 0] + data[:, 1]
        for c in range(2, channels):
            mono += data[:, c]
        mono /= np.float32(channels)
    else:
        mono = data.T.mean(axis=0)
    # A sum over the samples is finite unless one of them is not (audio is nowhere near float32's
    # overflow); only then is every sample checked, so the common case costs one pass.
    if not np.isfinite(np.add.reduce(mono, dtype=np.float64)) and not np.isfinite(data).all():
        raise AudioDecodeError("non-finite samples (NaN or Inf)")
    return mono


def load_audio(source: str | os.PathLike | BinaryIO, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode ``source`` (a path or a binary file object) to a mono float32 waveform at ``rate`` (48 kHz).

    Channels are averaged; other rates are resampled with soxr 'HQ' (librosa's default).
    Raises :class:`AudioDecodeError` for unreadable files, empty audio and NaN/Inf samples.
    """
    with open_audio(source) as snd:
        return read_whole(snd, rate)


def read_whole(snd: sf.SoundFile, rate: int = SAMPLE_RATE) -> np.ndarray:
    """:func:`load_audio` for a file already open: all of it (from the current position) at once."""
    try:
        data = snd.read(dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise _not_audio(e) from e
    sr = snd.samplerate
    if data.shape[0] == 0:
        raise AudioDecodeError("empty audio (0 samples)")
    mono = _mono(data)
    if sr == rate:
        return np.ascontiguousarray(mono, dtype=np.float32)
    n_out = output_length(data.shape[0], sr, rate)
    resampled = soxr.resample(mono, sr, rate, quality="HQ")
    out = np.zeros(n_out, dtype=np.float32)
    n = min(n_out, len(resampled))
    out[:n] = resampled[:n]
    return out


def quantize_int16(wave: np.ndarray) -> np.ndarray:
    """Round-trip through int16 exactly as laion_clap does (clip to [-1, 1], scale by 32767, truncate).

    laion_clap divides in float64 and rounds to float32; dividing in float32 gives the same values
    (double rounding is harmless for division when 53 >= 2 * 24 + 2 bits; checked for all 65536).
    """
    if np.asarray(wave).dtype != np.float32:  # laion_clap's own arithmetic for any other input type
        return (np.clip(wave, a_min=-1.0, a_max=1.0) * 32767.0).astype(np.int16).astype(np.float32) / np.float32(32767.0)
    scaled = np.clip(wave, a_min=-1.0, a_max=1.0)
    scaled *= np.float32(32767.0)
    out = scaled.astype(np.int16).astype(np.float32)
    out /= np.float32(32767.0)
    return out


def prepare(source: str | os.PathLike | BinaryIO, rate: int = SAMPLE_RATE) -> np.ndarray:
    """What the model gets for a file: :func:`load_audio` then :func:`quantize_int16`."""
    return quantize_int16(load_audio(source, rate))


def stream_prepared(snd: sf.SoundFile, block_frames: int = BLOCK_FRAMES, rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Yield :func:`prepare`'s samples for an open file as consecutive float32 chunks.

    Memory stays at about one block whatever the file's length. Reads from the current position
    (open files start at frame 0). The chunks add up to exactly ``output_length(frames read, sr)``
    samples and equal :func:`prepare` of the whole file. Raises :class:`AudioDecodeError` for
    NaN/Inf samples or a file with no frames, when it meets them (after earlier chunks were yielded).
    """
    sr = snd.samplerate
    stream = None if sr == rate else soxr.ResampleStream(sr, rate, 1, dtype="float32", quality="HQ")
    cap = output_length(snd.frames, sr, rate)  # the header's count; files never decode more than it
    frames_in = 0
    produced = 0
    try:
        blocks = snd.blocks(blocksize=block_frames, dtype="float32", always_2d=True)
        for data in blocks:
            if data.shape[0] == 0:
                continue
            frames_in += data.shape[0]
            mono = np.ascontiguousarray(_mono(data), dtype=np.float32)
            chunk = mono if stream is None else stream.resample_chunk(mono, last=False)
            chunk = chunk[: max(cap - produced, 0)]
            if len(chunk):
                produced += len(chunk)
                yield quantize_int16(chunk)
    except (sf.SoundFileError, RuntimeError) as e:
        raise _not_audio(e) from e
    if frames_in == 0:
        raise AudioDecodeError("empty audio (0 samples)")
    n_out = output_length(frames_in, sr, rate)
    tail = np.zeros(0, np.float32) if stream is None else stream.resample_chunk(np.zeros(0, np.float32), last=True)
    # The resampler lags its input, so before the flush it has produced fewer than n_out samples;
    # the flush supplies the rest (trimmed, or zero-padded if short, as load_audio does).
    missing = max(n_out - produced, 0)
    final = np.zeros(missing, np.float32)
    n = min(missing, len(tail))
    final[:n] = tail[:n]
    if missing:
        yield quantize_int16(final)
