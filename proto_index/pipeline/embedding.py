"""Audio files to window embeddings: read, hash, decode and window files in worker threads, embed in the caller's.

Each file is read once by a worker thread: its bytes are hashed (when asked) and decoded from the
same read, resampled to 48 kHz mono and cut into windows of 10 s every ``hop`` seconds. Short files
are decoded in one go (:func:`proto_index.audio.decode.prepare`, sample for sample laion_clap's own
path); long ones are streamed block by block (:func:`proto_index.audio.decode.stream_prepared`, the
same samples) so a two-hour recording never sits in memory. The caller's thread only runs the model,
on batches of exactly ``batch_windows`` windows taken across file boundaries, while the workers
prepare the next files. Where the model leaves a core free (a GPU, or more cores than torch uses)
decoding then takes no time of its own; where torch keeps every core busy, as on a 2-core CPU, it
still costs its CPU time (about 5 ms per 10 s clip; measurements in bench/RESULTS.md).

Memory is bounded whatever the corpus: at most ``prefetch`` files are read ahead, each holding at
most a few windows (a long file's worker waits for the model), plus one batch.
"""
from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from proto_index.audio.decode import open_audio, output_length, quantize_int16, read_whole, stream_prepared
from proto_index.audio.discover import file_sha256, open_regular
from proto_index.audio.windows import stream_windows, window_bounds
from proto_index.embed.encoder import SAMPLE_RATE, WINDOW_SECONDS, Encoder
from proto_index.errors import AudioDecodeError

WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)
DEFAULT_HOP_S = WINDOW_SECONDS
"""Windows follow each other without overlap unless a hop is given."""

ONE_READ_BYTES = 32 << 20
"""Files up to this size are read into memory once, hashed and decoded from those bytes; larger
ones are hashed in one pass and decoded in a second, streaming one."""

ONE_SHOT_SAMPLES = 3 * WINDOW_SAMPLES
"""Files that decode to at most this many 48 kHz samples (30 s) are decoded whole; longer ones streamed."""

ONE_SHOT_VALUES = 8 << 20
"""...and whose source holds at most this many values (frames x channels, 32 MiB as float32)."""

MIN_SAMPLES = 1024
"""Files shorter than this at 48 kHz (21 ms, one frame of the model's STFT) are refused as too short:
the model would only see a few samples repeated to 10 s."""

STREAM_MESSAGE_WINDOWS = 2
"""Windows a streaming worker hands over at a time."""

QUEUE_MESSAGES = 4
"""Messages a worker may have ready per file before it waits for the model to catch up: all of a
short file's (head, windows, end), so a worker moves on to the next file without waiting; for a
streamed file, at most QUEUE_MESSAGES x STREAM_MESSAGE_WINDOWS = 8 windows (15 MB)."""

DEFAULT_WORKERS = 1
DEFAULT_PREFETCH = 8


@dataclass
class EmbeddedFile:
    """One file's window embeddings ``(w, d)`` with each window's [start, end) in seconds.

    ``sha256`` is the hex SHA-256 of the file's bytes when :func:`embed_files` was asked to hash.
    """

    path: Path
    duration_s: float
    sample_rate: int
    channels: int
    starts_s: list[float]
    ends_s: list[float]
    vectors: np.ndarray
    sha256: str | None = None
    size_bytes: int | None = None
    mtime_ns: int | None = None
    """The file's size and st_mtime_ns, taken before it was read (so never newer than the content)."""

    def pooled(self) -> np.ndarray:
        """The file's single vector: the mean of its window embeddings."""
        return self.vectors.mean(axis=0)


@dataclass
class FailedFile:
    path: Path
    error: str


@dataclass
class SkippedFile:
    """A file not embedded because its content was already known: stored, or an earlier file of the run."""

    path: Path
    sha256: str
    size_bytes: int | None = None
    mtime_ns: int | None = None


def default_batch_windows(encoder: Encoder) -> int:
    """Windows per model batch when none is asked for: 4 on a CPU, 32 on CUDA.

    On the CPU, HTSAT-tiny runs fastest per clip at batches of 2 to 4 and slower beyond (measured on
    2 cores: 105 ms/clip at 4, 124 at 8, 137 at 16 in float32; 52, 59, 72 in bfloat16), while a GPU
    needs bigger batches to be busy.
    """
    return default_batch_size(str(getattr(encoder, "device", "cpu")))


def default_batch_size(device: str | None) -> int:
    """:func:`default_batch_windows` for a device name (None: cuda when torch sees one, else cpu)."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return 4 if str(device).startswith("cpu") else 32


def fit_encoder_batch(encoder: Encoder, batch_windows: int | None) -> int:
    """The batch size to use with ``encoder`` (None: its device's default), made the model's own.

    An encoder that splits its input into batches of its own (``encoder.batch_size``, as
    :class:`~proto_index.embed.clap.ClapEncoder` does) is set to split at this size, so the windows
    the pipeline batches together reach the model's forward as one batch.
    """
    size = default_batch_windows(encoder) if batch_windows is None else int(batch_windows)
    if size < 1:
        raise ValueError(f"batch_windows must be positive, got {size}")
    if isinstance(getattr(encoder, "batch_size", None), int):
        encoder.batch_size = size
    return size


def embed_files(
    paths: Iterable[Path],
    encoder: Encoder,
    batch_windows: int | None = None,
    *,
    hop_s: float = DEFAULT_HOP_S,
    workers: int = DEFAULT_WORKERS,
    prefetch: int = DEFAULT_PREFETCH,
    hash_files: bool = False,
    known_hashes: Iterable[str] | None = None,
    on_windows: Callable[[int], None] | None = None,
) -> Iterator[EmbeddedFile | FailedFile | SkippedFile]:
    """Yield each file's embeddings (or why it failed) in input order.

    Windows of consecutive files share model batches of ``batch_windows`` windows (None:
    :func:`default_batch_windows`), so short clips do not run the model one at a time; the encoder
    is set to run its forward on batches of that size (:func:`fit_encoder_batch`).
    ``workers`` threads read and decode up to ``prefetch`` files ahead of the model (``workers=0``:
    everything in the caller's thread, one file at a time). ``hop_s``: seconds between window
    starts (10 s windows; a hop below 10 s overlaps them).

    With ``hash_files`` each :class:`EmbeddedFile` carries its content hash. With ``known_hashes``
    (a set, or anything supporting ``in``; implies hashing; read, never modified) a file whose hash
    is among them, or equals an earlier file's in this call, is yielded as a :class:`SkippedFile`
    and neither decoded nor embedded. ``on_windows(n)`` is called after each model batch with the
    number of windows it embedded.
    """
    batch_windows = fit_encoder_batch(encoder, batch_windows)
    hop = round(hop_s * SAMPLE_RATE)
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop_s} s")
    dedupe = known_hashes is not None
    stored = known_hashes if known_hashes is None or hasattr(known_hashes, "__contains__") else set(known_hashes)
    claimed: set[str] = set()  # hashes taken by earlier files of this call, in input order

    def known(sha: str) -> bool:
        return dedupe and (sha in claimed or sha in stored)

    def read(path: Path) -> Iterator[tuple]:
        return _read_file(path, hop, hash_files or dedupe, known)

    readers = _Readers(paths, read, workers, prefetch) if workers > 0 else _Inline(paths, read)
    batch = _Batch(encoder, batch_windows, on_windows)
    order: deque[_FileState] = deque()
    try:
        for job in readers:
            state = _FileState(job.path)
            order.append(state)
            for message in job.messages():
                kind = message[0]
                if kind == "head":
                    _, sha, info, stat = message
                    if known(sha):
                        state.result = SkippedFile(state.path, sha, *stat)
                        job.cancel()
                        break
                    if dedupe:
                        claimed.add(sha)
                    state.sha256, state.sample_rate, state.channels = sha, info[0], info[1]
                    state.stat = stat
                elif kind == "skip":
                    state.result = SkippedFile(state.path, message[1], *message[2])
                elif kind == "windows":
                    for start, end, samples in message[1]:
                        state.bounds.append((start, end))
                        if batch.add(state, samples):
                            batch.run()
                            yield from _completed(order)
                elif kind == "end":
                    state.n_samples = message[1]
                elif kind == "fail":
                    state.result = FailedFile(state.path, message[1])
            yield from _completed(order)
        batch.run()
        yield from _completed(order)
    finally:
        readers.close()


# -- what a worker does with one file ------------------------------------------------------------


def _read_file(path: Path, hop: int, hashing: bool, known: Callable[[str], bool] | None) -> Iterator[tuple]:
    """Messages about one file, in order: ("head", sha, (rate, channels), (size, mtime_ns)),
    ("windows", [...])..., ("end", n).

    Or ("skip", sha, (size, mtime_ns)) when ``known(sha)``, or ("fail", reason) at any point. ``known`` may be asked
    before an earlier copy is claimed; the consumer asks again, in order, on "head".
    """
    try:
        with open_regular(path) as fh:  # a FIFO or device is refused here, never read
            st = os.fstat(fh.fileno())  # before the read: a later change leaves a newer mtime than the one stored
            stat, size = (st.st_size, st.st_mtime_ns), st.st_size
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
        yield ("fail", f"cannot read file: {e.strerror or e}")
        return
    if known is not None and sha is not None and known(sha):
        yield ("skip", sha, stat)  # stored, or a copy of a file already taken: not even decoded
        return
    try:
        snd = open_audio(source)
    except AudioDecodeError as e:
        yield ("fail", str(e))
        return
    with snd:
        if output_length(snd.frames, snd.samplerate) < MIN_SAMPLES:
            plural = "" if snd.frames == 1 else "s"
            yield ("fail", f"too short to embed ({snd.frames} sample{plural} at {snd.samplerate} Hz)")
            return
        yield ("head", sha, (int(snd.samplerate), int(snd.channels)), stat)
        try:
            if output_length(snd.frames, snd.samplerate) <= ONE_SHOT_SAMPLES and snd.frames * snd.channels <= ONE_SHOT_VALUES:
                yield from _one_shot(snd, hop)
            else:
                yield from _streamed(snd, hop)
        except AudioDecodeError as e:
            yield ("fail", str(e))


def _one_shot(snd, hop: int) -> Iterator[tuple]:
    wave = quantize_int16(read_whole(snd))
    bounds = window_bounds(len(wave), window=WINDOW_SAMPLES, hop=hop)
    yield ("windows", [(a, b, wave[a:b]) for a, b in bounds])
    yield ("end", len(wave))


def _streamed(snd, hop: int) -> Iterator[tuple]:
    total = 0

    def counted(chunks):
        nonlocal total
        for chunk in chunks:
            total += len(chunk)
            yield chunk

    pending = []
    for window in stream_windows(counted(stream_prepared(snd)), window=WINDOW_SAMPLES, hop=hop):
        pending.append(window)
        if len(pending) >= STREAM_MESSAGE_WINDOWS:
            yield ("windows", pending)
            pending = []
    if pending:
        yield ("windows", pending)
    yield ("end", total)


# -- the caller's side: files in order, windows in batches ---------------------------------------


@dataclass
class _FileState:
    path: Path
    sha256: str | None = None
    sample_rate: int = 0
    channels: int = 0
    stat: tuple[int, int] | tuple[None, None] = (None, None)
    bounds: list[tuple[int, int]] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    n_samples: int | None = None  # set when every window has been read
    result: EmbeddedFile | FailedFile | SkippedFile | None = None

    def done(self) -> bool:
        if self.result is not None:
            return True
        if self.n_samples is None or len(self.vectors) < len(self.bounds):
            return False
        self.result = EmbeddedFile(
            path=self.path,
            duration_s=self.n_samples / SAMPLE_RATE,
            sample_rate=self.sample_rate,
            channels=self.channels,
            starts_s=[a / SAMPLE_RATE for a, _ in self.bounds],
            ends_s=[b / SAMPLE_RATE for _, b in self.bounds],
            vectors=np.asarray(np.stack(self.vectors), dtype=np.float32),
            sha256=self.sha256,
            size_bytes=self.stat[0],
            mtime_ns=self.stat[1],
        )
        self.vectors = []
        return True


def _completed(order: deque[_FileState]) -> Iterator[EmbeddedFile | FailedFile | SkippedFile]:
    while order and order[0].done():
        yield order.popleft().result


class _Batch:
    def __init__(self, encoder: Encoder, size: int, on_windows: Callable[[int], None] | None):
        self.encoder, self.size, self.on_windows = encoder, size, on_windows
        self.owners: list[_FileState] = []
        self.samples: list[np.ndarray] = []

    def add(self, owner: _FileState, samples: np.ndarray) -> bool:
        """Queue a window; True when the batch is full."""
        self.owners.append(owner)
        self.samples.append(samples)
        return len(self.samples) >= self.size

    def run(self) -> None:
        if not self.samples:
            return
        vectors = np.asarray(self.encoder.embed_waveforms(self.samples), dtype=np.float32)
        for owner, vector in zip(self.owners, vectors):
            owner.vectors.append(vector)  # a file that failed later keeps them unused
        if self.on_windows is not None:
            self.on_windows(len(self.samples))
        self.owners, self.samples = [], []


# -- running readers ahead of the model ----------------------------------------------------------

_END = object()


class _Job:
    def __init__(self, path: Path, maxsize: int = QUEUE_MESSAGES):
        self.path = Path(path)
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def messages(self) -> Iterator[tuple]:
        while True:
            message = self.queue.get()
            if message is _END:
                return
            if message[0] == "error":
                raise message[1]
            yield message


class _Readers:
    """``workers`` daemon threads run ``read`` on the paths, at most ``prefetch`` files ahead of the consumer.

    Iterating gives one job per path, in input order; the consumer reads each job's messages to
    the end (or cancels it) before taking the next. Each job's queue is bounded, so a worker on a
    long file waits for the consumer instead of decoding ahead without limit.
    """

    def __init__(self, paths: Iterable[Path], read: Callable[[Path], Iterator[tuple]], workers: int, prefetch: int):
        self._paths = iter(paths)
        self._read = read
        self._prefetch = max(prefetch, 1)
        self._todo: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"proto-index-reader-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def __iter__(self) -> Iterator[_Job]:
        ahead: deque[_Job] = deque()
        exhausted = False
        while True:
            while not exhausted and len(ahead) <= self._prefetch:
                path = next(self._paths, None)
                if path is None:
                    exhausted = True
                    break
                job = _Job(path)
                ahead.append(job)
                self._todo.put(job)
            if not ahead:
                return
            job = ahead.popleft()
            yield job
            job.cancel()  # read to the end by now, unless the consumer gave up on it

    def _work(self) -> None:
        while not self._stop.is_set():
            job = self._todo.get()
            if job is None:
                return
            messages = self._read(job.path)
            try:
                for message in messages:
                    if not self._put(job, message):
                        break
            except BaseException as e:  # a bug, or MemoryError: the consumer re-raises it
                self._put(job, ("error", e))
            finally:
                messages.close()
                self._put(job, _END)

    def _put(self, job: _Job, message) -> bool:
        while not (self._stop.is_set() or job.cancelled):
            try:
                job.queue.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        self._stop.set()
        for _ in self._threads:
            self._todo.put(None)


class _InlineJob:
    def __init__(self, path: Path, read: Callable[[Path], Iterator[tuple]]):
        self.path = Path(path)
        self._messages = read(self.path)

    def cancel(self) -> None:
        self._messages.close()

    def messages(self) -> Iterator[tuple]:
        return self._messages


class _Inline:
    """The same interface as :class:`_Readers`, reading each file in the consumer's thread when asked."""

    def __init__(self, paths: Iterable[Path], read: Callable[[Path], Iterator[tuple]]):
        self._paths, self._read = paths, read

    def __iter__(self) -> Iterator[_InlineJob]:
        for path in self._paths:
            yield _InlineJob(path, self._read)

    def close(self) -> None:
        pass
