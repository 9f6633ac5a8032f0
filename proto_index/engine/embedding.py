"""Audio files to window embeddings: files are read and decoded ahead in worker threads, embedded in the caller's.

Each file is read once by a reader (:func:`proto_index.engine.reading.read_file`: hashed and
decoded from the same read, resampled to 48 kHz mono, cut into the model's windows every ``hop``
seconds), run ahead of the model by :mod:`proto_index.engine.readahead`. The caller's thread only
runs the model, on batches of exactly ``batch_windows`` windows taken across file boundaries, while
the workers prepare the next files. Where the model leaves a core free (a GPU, or more cores than
torch uses) decoding then takes no time of its own; where torch keeps every core busy, as on a
2-core CPU, it still costs its CPU time (about 5 ms per 10 s clip; measurements in bench/RESULTS.md).

Memory is bounded whatever the corpus: at most ``prefetch`` files are read ahead, each holding at
most a few windows (a long file's worker waits for the model), plus one batch.
"""
from __future__ import annotations

import inspect
import os
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from proto_index.audio.windows import Cutting
from proto_index.embed.encoder import Encoder
from proto_index.options import DEFAULT_HOP_S, DEFAULT_WORKERS, EmbedOptions, default_workers  # noqa: F401  (the first two kept importable from here)
from proto_index.engine.decoding import ProcessDecoders
from proto_index.engine.readahead import Inline, Readers
from proto_index.engine.reading import Done, Failed, Known, Message, Opened, Windows, read_file


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


def load_encoder_for(options: dict, device: str | None, precision: str = "fp32") -> Encoder:
    """The model a store's ``options`` name, at ``device`` (None: the model's default) and ``precision``."""
    from proto_index.embed.registry import default_device, load_encoder

    device = device or default_device(options["model"])  # a CPU-only model never imports torch to probe CUDA
    # Built at its device's default batch (4 CPU, 32 CUDA); ingest/classify set a --batch-size on it.
    return load_encoder(
        options["model"], checkpoint=options.get("checkpoint"), tokenizer_dir=options.get("tokenizer_dir"), device=device,
        precision=precision, batch_size=default_batch_size(device),
    )


def batch_windows_for(encoder: Encoder, batch_windows: int | None) -> int:
    """The windows per model batch to use with ``encoder`` (None: its device's default)."""
    size = default_batch_windows(encoder) if batch_windows is None else int(batch_windows)
    if size < 1:
        raise ValueError(f"batch_windows must be positive, got {size}")
    return size


def takes_batch_size(encoder: Encoder) -> bool:
    """Whether ``encoder.embed_waveforms`` takes a ``batch_size`` keyword: an encoder that splits its
    input into forwards of its own size (as the CLAP encoders do) is then told the pipeline's size per
    call, so the windows batched together reach the model as one forward, and the encoder is not changed."""
    try:
        return "batch_size" in inspect.signature(encoder.embed_waveforms).parameters
    except (TypeError, ValueError):  # a callable without a signature Python can read
        return False


def embed_files(
    paths: Iterable[Path],
    encoder: Encoder,
    *,
    options: EmbedOptions = EmbedOptions(),
    hash_files: bool = False,
    known_hashes: Iterable[str] | None = None,
    on_windows: Callable[[int], None] | None = None,
) -> Iterator[EmbeddedFile | FailedFile | SkippedFile]:
    """Yield each file's embeddings (or why it failed) in input order, as ``options`` say.

    Windows of consecutive files share model batches of ``options.batch_windows`` windows (None:
    :func:`default_batch_windows`), so short clips do not run the model one at a time; an encoder
    that takes a batch size per call is given that one (:func:`takes_batch_size`).
    ``options.workers`` threads read and decode up to ``options.prefetch`` files ahead of the model
    (0 workers: everything in the caller's thread, one file at a time; None: 1 on a CPU, more on
    CUDA, :func:`~proto_index.options.default_workers`); windows start every
    ``options.hop_s`` seconds. ``options.decoder == "processes"``: each worker thread hands its
    files to a worker process of its own (:mod:`proto_index.engine.decoding`), for when decoding
    needs more cores than threads get; same results, same order.

    With ``hash_files`` each :class:`EmbeddedFile` carries its content hash. With ``known_hashes``
    (a set, or anything supporting ``in``; implies hashing; read, never modified) a file whose hash
    is among them, or equals an earlier file's in this call, is yielded as a :class:`SkippedFile`
    and neither decoded nor embedded. ``on_windows(n)`` is called after each model batch with the
    number of windows it embedded.
    """
    batch_windows = batch_windows_for(encoder, options.batch_windows)
    cut = options.cutting(getattr(encoder, "identity", None))
    dedupe = known_hashes is not None
    stored = known_hashes if known_hashes is None or hasattr(known_hashes, "__contains__") else set(known_hashes)
    claimed: set[str] = set()  # hashes taken by earlier files of this call, in input order

    def known(sha: str | None) -> bool:
        return dedupe and sha is not None and (sha in claimed or (stored is not None and sha in stored))

    def read(path: Path) -> Generator[Message, None, None]:
        return read_file(path, cut, hash_files or dedupe, known)

    workers = options.workers
    if workers is None:
        workers = default_workers(str(getattr(encoder, "device", "cpu")), os.cpu_count())
    decoders = None
    if workers > 0 and options.decoder == "processes":
        decoders = ProcessDecoders(read_file, cut, hash_files or dedupe, known if dedupe else None, failed=Failed)
        read = decoders.read
    readers = Readers(paths, read, workers, options.prefetch) if workers > 0 else Inline(paths, read)
    batch = _Batch(encoder, batch_windows, on_windows)
    order: deque[_FileState] = deque()
    try:
        for job in readers:
            state = _FileState(job.path, cut)
            order.append(state)
            for message in job.messages():
                match message:
                    case Opened(sha256=str() as sha) if known(sha):
                        state.result = SkippedFile(state.path, sha, message.size_bytes, message.mtime_ns)
                        job.cancel()
                        break
                    case Opened():
                        if dedupe and message.sha256 is not None:
                            claimed.add(message.sha256)
                        state.opened = message
                    case Known():
                        state.result = SkippedFile(state.path, message.sha256, message.size_bytes, message.mtime_ns)
                    case Windows():
                        for window in message.windows:
                            state.bounds.append((window.start, window.end))
                            if batch.add(state, window.samples):
                                batch.run()
                                yield from _completed(order)
                    case Done():
                        state.n_samples = message.n_samples
                    case Failed():
                        state.result = FailedFile(state.path, message.reason)
            yield from _completed(order)
        batch.run()
        yield from _completed(order)
    finally:
        readers.close()
        if decoders is not None:
            decoders.close()


# -- the caller's side: files in order, windows in batches ---------------------------------------


@dataclass
class _FileState:
    path: Path
    cut: Cutting
    opened: Opened | None = None
    bounds: list[tuple[int, int]] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    n_samples: int | None = None  # set when every window has been read
    result: EmbeddedFile | FailedFile | SkippedFile | None = None

    def done(self) -> bool:
        if self.result is not None:
            return True
        if self.n_samples is None or len(self.vectors) < len(self.bounds):
            return False
        rate, opened = self.cut.sample_rate, self.opened
        assert opened is not None  # every window was read, so the file was opened
        self.result = EmbeddedFile(
            path=self.path,
            duration_s=self.n_samples / rate,
            sample_rate=opened.sample_rate,
            channels=opened.channels,
            starts_s=[a / rate for a, _ in self.bounds],
            ends_s=[b / rate for _, b in self.bounds],
            vectors=np.asarray(np.stack(self.vectors), dtype=np.float32),
            sha256=opened.sha256,
            size_bytes=opened.size_bytes,
            mtime_ns=opened.mtime_ns,
        )
        self.vectors = []
        return True


def _completed(order: deque[_FileState]) -> Iterator[EmbeddedFile | FailedFile | SkippedFile]:
    while order and order[0].done():
        result = order.popleft().result
        assert result is not None  # done() set it
        yield result


class _Batch:
    def __init__(self, encoder: Encoder, size: int, on_windows: Callable[[int], None] | None):
        self.encoder, self.size, self.on_windows = encoder, size, on_windows
        self.per_call = {"batch_size": size} if takes_batch_size(encoder) else {}
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
        vectors = np.asarray(self.encoder.embed_waveforms(self.samples, **self.per_call), dtype=np.float32)
        for owner, vector in zip(self.owners, vectors):
            owner.vectors.append(vector)  # a file that failed later keeps them unused
        if self.on_windows is not None:
            self.on_windows(len(self.samples))
        self.owners, self.samples = [], []
