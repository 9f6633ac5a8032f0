"""One audio file to messages: read, hash, decode, resample to 48 kHz mono and cut into windows.

:func:`read_file` is what a reader (a thread of :mod:`proto_index.engine.readahead`, or the
caller's own thread) does with one file. It yields typed messages, in this order::

    Opened, Windows..., Done       the file decoded; its windows, then its length
    Known                          its content hash is already known: not decoded
    Failed                         at any point: why the file cannot be embedded

Short files are decoded in one go (:func:`proto_index.audio.decode.prepare`'s path, sample for
sample laion_clap's own); long ones are streamed block by block
(:func:`proto_index.audio.decode.stream_prepared`, the same samples), so a two-hour recording never
sits in memory. Messages hold only plain values and arrays, so they can cross a process boundary.
"""
from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from proto_index.audio.decode import open_audio, output_length, quantize_int16, read_whole, stream_prepared
from proto_index.audio.discover import file_sha256, open_regular
from proto_index.audio.windows import WINDOW as WINDOW_SAMPLES
from proto_index.audio.windows import Cutting, stream_windows
from proto_index.errors import AudioDecodeError

ONE_READ_BYTES = 32 << 20
"""Files up to this size are read into memory once, hashed and decoded from those bytes; larger
ones are hashed in one pass and decoded in a second, streaming one."""

ONE_SHOT_SAMPLES = 3 * WINDOW_SAMPLES
"""Files that decode to at most this many samples (30 s at 48 kHz) are decoded whole; longer ones streamed."""

ONE_SHOT_VALUES = 8 << 20
"""...and whose source holds at most this many values (frames x channels, 32 MiB as float32)."""

MIN_SAMPLES = 1024
"""Files shorter than this at 48 kHz (21 ms, one frame of the model's STFT) are refused as too short:
the model would only see a few samples repeated to 10 s."""

STREAM_MESSAGE_WINDOWS = 2
"""Windows a streaming reader hands over at a time."""


# -- the messages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """The file decodes: its content hash (None unless asked to hash), source format and stat
    (size and st_mtime_ns, taken before the read, so never newer than the content)."""

    sha256: str | None
    sample_rate: int
    channels: int
    size_bytes: int
    mtime_ns: int


@dataclass(frozen=True, eq=False)
class Window:
    """One window: samples [start, end) of the 48 kHz mono signal, and those samples."""

    start: int
    end: int
    samples: np.ndarray


@dataclass(frozen=True)
class Windows:
    """The next windows of the file, in order."""

    windows: tuple[Window, ...]


@dataclass(frozen=True)
class Done:
    """Every window has been sent; the file decoded to ``n_samples`` 48 kHz samples."""

    n_samples: int


@dataclass(frozen=True)
class Known:
    """The file's content hash is already known (stored, or an earlier file's): it was not decoded."""

    sha256: str
    size_bytes: int
    mtime_ns: int


@dataclass(frozen=True)
class Failed:
    """The file cannot be embedded, and why (one line for the user)."""

    reason: str


Message = Opened | Windows | Done | Known | Failed
Reader = Callable[[Path], Generator[Message, None, None]]
"""What reads one file: ``read(path)`` gives its messages."""


# -- reading one file ----------------------------------------------------------------------------


def read_file(path: Path, cut: Cutting, hashing: bool, known: Callable[[str], bool] | None) -> Generator[Message, None, None]:
    """The messages of one file (see the module's docstring), at the model's rate, cut as ``cut`` says.

    With ``hashing`` the file's SHA-256 is taken from the same read. ``known(sha)`` True gives
    :class:`Known` instead of decoding; it may be asked before an earlier copy is claimed, so the
    consumer asks again, in order, on :class:`Opened`.
    """
    try:
        with open_regular(path) as fh:  # a FIFO or device is refused here, never read
            st = os.fstat(fh.fileno())  # before the read: a later change leaves a newer mtime than the one stored
            size, mtime_ns = st.st_size, st.st_mtime_ns
            if size <= ONE_READ_BYTES:
                data = fh.read()
        if size <= ONE_READ_BYTES:
            sha = hashlib.sha256(data).hexdigest() if hashing else None
            source: io.BytesIO | Path = io.BytesIO(data)
            del data
        else:
            sha = file_sha256(path) if hashing else None
            source = path
    except OSError as e:
        yield Failed(f"cannot read file: {e.strerror or e}")
        return
    if known is not None and sha is not None and known(sha):
        yield Known(sha, size, mtime_ns)  # stored, or a copy of a file already taken: not even decoded
        return
    try:
        snd = open_audio(source)
    except AudioDecodeError as e:
        yield Failed(str(e))
        return
    with snd:
        length = output_length(snd.frames, snd.samplerate, cut.sample_rate)
        if length < max(MIN_SAMPLES, cut.min_clip):
            yield Failed(_too_short(snd, cut))
            return
        yield Opened(sha, int(snd.samplerate), int(snd.channels), size, mtime_ns)
        try:
            if length <= ONE_SHOT_SAMPLES and snd.frames * snd.channels <= ONE_SHOT_VALUES:
                yield from _one_shot(snd, cut)
            else:
                yield from _streamed(snd, cut)
        except AudioDecodeError as e:
            yield Failed(str(e))


def _too_short(snd, cut: Cutting) -> str:
    if cut.min_clip > MIN_SAMPLES:
        return (f"shorter than the model's {cut.min_clip / cut.sample_rate:g} s window "
                f"({snd.frames / snd.samplerate:.3g} s); nothing was stored")
    plural = "" if snd.frames == 1 else "s"
    return f"too short to embed ({snd.frames} sample{plural} at {snd.samplerate} Hz)"


def _one_shot(snd, cut: Cutting) -> Iterator[Message]:
    wave = quantize_int16(read_whole(snd, cut.sample_rate))
    bounds = cut.bounds(len(wave))
    yield Windows(tuple(Window(a, b, wave[a:b]) for a, b in bounds))
    yield Done(len(wave))


def _streamed(snd, cut: Cutting) -> Iterator[Message]:
    total = 0

    def counted(chunks):
        nonlocal total
        for chunk in chunks:
            total += len(chunk)
            yield chunk

    pending: list[Window] = []
    chunks = counted(stream_prepared(snd, rate=cut.sample_rate))
    for start, end, samples in stream_windows(chunks, window=cut.window, hop=cut.hop, min_tail=cut.min_tail):
        pending.append(Window(start, end, samples))
        if len(pending) >= STREAM_MESSAGE_WINDOWS:
            yield Windows(tuple(pending))
            pending = []
    if pending:
        yield Windows(tuple(pending))
    yield Done(total)
