"""Decoding files in worker processes, for where reader threads share one interpreter lock.

:class:`ProcessDecoders` gives the reader threads of :mod:`proto_index.engine.readahead` a
``read(path)`` that runs the same per-file reader (:func:`proto_index.engine.reading.read_file`)
in a worker process and passes its messages back one by one:
each reader thread owns one process (started on its first file, with ``spawn``, so no copy of the
caller's torch or store state), sends it one file at a time and relays what comes back. Order,
prefetch and the bounded queues stay the threads' own, so results keep input order and a long file
is still streamed: the process sends a message, and the pipe holds it until the thread takes it.

What a thread-run reader guarantees holds here too:

* a file the process cannot read or decode is a per-file failure (its reader's own message); a
  process that dies on a file (a crash in a decoder library, the OOM killer) fails that file and
  is replaced for the next one;
* duplicates are still skipped before decoding: the process asks the thread whether a hash is
  known, and the thread answers from the caller's set, so nothing about the store crosses over;
* a file given up on (cancelled, or the run closed) is stopped in the process between messages;
  :meth:`ProcessDecoders.close` ends every process and waits for it, and a process whose parent
  is killed sees its pipe close and exits, so no process outlives the run;
* the processes only read the audio files and send arrays: the store keeps its one writer.

Windows cross the pipe as int16: their samples are int16 values over 32767
(:func:`~proto_index.audio.decode.quantize_int16`), so the round trip is exact (checked in the
process per window; a window that would not survive it is sent as float32). That halves the bytes
and, measured, cuts the receiving thread's CPU per 10 s window from about 2.4 ms (a fresh 1.9 MB
float32 buffer) to about 0.3 ms, which is what lets the processes scale past what one thread takes.
"""
from __future__ import annotations

import enum
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from proto_index.audio.windows import Cutting
from proto_index.options import DECODERS, DEFAULT_DECODER  # noqa: F401  (beside EmbedOptions, which checks them)
from proto_index.engine.reading import Window, Windows

STOP_WAIT_S = 5.0
"""How long :meth:`ProcessDecoders.close` waits for a process to end after SIGTERM before SIGKILL."""

ReadFile = Callable[[Path, Cutting, bool, Callable[[str], bool] | None], Generator]
"""The per-file reader run in the process: ``read_file(path, cut, hashing, known)`` gives its
messages (:mod:`proto_index.engine.reading`'s, plain picklable values). It must be a
module-level function (it is sent to the process by name)."""


# -- what crosses the pipe besides the reader's own messages -------------------------------------


@dataclass(frozen=True)
class _File:
    """Thread to process: read this file."""

    path: str
    cut: Cutting
    hashing: bool
    asking: bool  # the thread has a known-hash check to ask


@dataclass(frozen=True)
class _Ask:
    """Process to thread: is this content hash known (skip the file undecoded)? The thread answers
    ``True`` or ``False`` (or sends :attr:`_Signal.STOP`)."""

    sha256: str


class _Signal(enum.Enum):
    """The messages that carry nothing but their kind."""

    STOP = "stop"  # thread to process: drop the current file
    STOPPED = "stopped"  # process to thread: the file was dropped (or had already ended); it waits for the next
    FINISHED = "finished"  # process to thread: every message of the file has been sent


@dataclass(frozen=True)
class _Raised:
    """Process to thread: the reader raised (a bug, or MemoryError); the thread re-raises it."""

    error: BaseException


@dataclass(frozen=True)
class _Int16Windows:
    """A :class:`~proto_index.engine.reading.Windows` message with its samples as int16."""

    windows: tuple[tuple[int, int, np.ndarray], ...]


_SCALE = np.float32(32767.0)


def _to_int16(samples: np.ndarray) -> np.ndarray | None:
    """The int16 values behind quantised samples, or None when the round trip would change them."""
    if samples.dtype != np.float32:
        return None
    packed = np.rint(samples * _SCALE).astype(np.int16)
    return packed if np.array_equal(_from_int16(packed), samples) else None


def _from_int16(packed: np.ndarray) -> np.ndarray:
    out = packed.astype(np.float32)  # quantize_int16's own arithmetic: int16 to float32, / 32767 in float32
    out /= _SCALE
    return out


def _pack(message):
    if isinstance(message, Windows):
        packed = [_to_int16(w.samples) for w in message.windows]
        exact = [p for p in packed if p is not None]  # None: a window int16 cannot carry exactly
        if len(exact) == len(packed):
            return _Int16Windows(tuple((w.start, w.end, p) for w, p in zip(message.windows, exact)))
    return message


def _unpack(message):
    if isinstance(message, _Int16Windows):
        return Windows(tuple(Window(a, b, _from_int16(p)) for a, b, p in message.windows))
    return message


class _Cancel(BaseException):
    """Raised inside the process's reader when :attr:`_Signal.STOP` arrives (a BaseException, so no
    ``except Exception`` in a reader swallows it)."""


# -- the process's side --------------------------------------------------------------------------


def _serve(conn, read_file: ReadFile) -> None:
    """A decoding process: read files as the thread asks, until it says None or its pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent handles it
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if request is None:
            return
        try:
            if request is _Signal.STOP:  # a stop that came after the file had ended
                conn.send(_Signal.STOPPED)
            else:
                _serve_file(conn, read_file, request)
        except (EOFError, OSError):  # the parent is gone, or closed the pipe mid-file
            return


def _serve_file(conn, read_file: ReadFile, request: _File) -> None:
    def ask(sha: str) -> bool:
        conn.send(_Ask(sha))
        reply = conn.recv()
        if reply is _Signal.STOP:
            raise _Cancel
        return reply

    messages = read_file(Path(request.path), request.cut, request.hashing, ask if request.asking else None)
    try:
        while True:
            try:
                message = next(messages, _Signal.FINISHED)
            except _Cancel:
                conn.send(_Signal.STOPPED)
                return
            except BaseException as e:  # the reader's own error (a pipe error in ask() ends up here too)
                conn.send(_Raised(_picklable(e)))
                return
            if message is _Signal.FINISHED:
                conn.send(message)
                return
            conn.send(_pack(message))
            if conn.poll():  # only a STOP can arrive while a file is being sent
                conn.recv()
                conn.send(_Signal.STOPPED)
                return
    finally:
        messages.close()


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


# -- the thread's side ---------------------------------------------------------------------------


class _Worker:
    """One decoding process and the parent's end of its pipe (used by one reader thread only)."""

    def __init__(self, read_file: ReadFile):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_serve, args=(child, read_file), name="proto-index-decoder", daemon=True)
        self.process.start()
        child.close()  # the process's end lives in the process only: its exit closes the pipe
        self._ending = threading.Lock()

    def end(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and reap it; safe to call twice, from any thread."""
        with self._ending:
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(STOP_WAIT_S)
            if self.process.is_alive():
                self.process.kill()
            self.process.join()


class ProcessDecoders:
    """``read(path)`` runs ``read_file(path, cut, hashing, known)`` in the calling thread's own process.

    ``failed(reason)`` makes the reader's failure message, for a file whose process died. Call
    :meth:`close` when done (also from another thread while reads are under way).
    """

    def __init__(self, read_file: ReadFile, cut: Cutting, hashing: bool, known: Callable[[str], bool] | None,
                 failed: Callable[[str], object]):
        self._read_file, self._cut, self._hashing, self._known = read_file, cut, hashing, known
        self._failed = failed
        self._local = threading.local()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._closed = False

    def _worker(self) -> _Worker | None:
        worker = getattr(self._local, "worker", None)
        if worker is not None and worker.process.is_alive():
            return worker
        with self._lock:
            if self._closed:
                return None
            worker = self._local.worker = _Worker(self._read_file)
            self._workers.append(worker)
            return worker

    def read(self, path: Path) -> Generator:
        """The messages of one file, decoded in this thread's process."""
        worker = self._worker()
        if worker is None:  # closed: the run is over
            return
        conn = worker.conn
        settled = False  # the process is between files: nothing to stop or drain
        try:
            conn.send(_File(os.fspath(path), self._cut, self._hashing, self._known is not None))
            while True:
                message = conn.recv()
                if isinstance(message, _Ask):
                    conn.send(self._known is not None and bool(self._known(message.sha256)))
                elif message is _Signal.FINISHED:
                    settled = True
                    return
                elif isinstance(message, _Raised):
                    settled = True
                    raise message.error
                else:
                    yield _unpack(message)
        except (EOFError, OSError):  # the process died (or was ended by close)
            settled = True
            worker.end()
            if not self._closed:
                yield self._failed(f"the decoding process ended on this file (exit code {worker.process.exitcode})")
        finally:
            if not settled:
                self._stop(worker)

    def _stop(self, worker: _Worker) -> None:
        """Tell the process to drop its file, and read what it had sent until it says it did."""
        try:
            worker.conn.send(_Signal.STOP)
            while worker.conn.recv() is not _Signal.STOPPED:
                pass
        except (EOFError, OSError):
            worker.end()

    def close(self) -> None:
        """End every process and reap it; reads still under way end (without a failure message)."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        for worker in workers:
            worker.end()
