"""Running a reader over many files ahead of the consumer: in worker threads, or inline.

Both kinds give one job per path, in input order; the consumer reads each job's messages to the end
(or cancels it) before taking the next. Memory stays bounded: at most ``prefetch`` files are read
ahead, and each job's queue holds at most :data:`QUEUE_MESSAGES` messages, so a worker on a long
file waits for the consumer instead of decoding ahead without limit.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from proto_index.engine.reading import Message, Reader

QUEUE_MESSAGES = 4
"""Messages a worker may have ready per file before it waits for the model to catch up: all of a
short file's (Opened, Windows, Done), so a worker moves on to the next file without waiting; for a
streamed file, at most QUEUE_MESSAGES x STREAM_MESSAGE_WINDOWS = 8 windows (15 MB)."""


@dataclass(frozen=True)
class _Raised:
    """A worker's reader raised (a bug, or MemoryError): the consumer re-raises it."""

    error: BaseException


@dataclass(frozen=True)
class _End:
    """The worker is done with the job (read to the end, or stopped)."""


class Job:
    """One file being read in a worker thread: its messages, in order, through a bounded queue."""

    def __init__(self, path: Path, maxsize: int = QUEUE_MESSAGES):
        self.path = Path(path)
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.cancelled = False

    def cancel(self) -> None:
        """Tell the worker to stop reading this file (it drops what it would still send)."""
        self.cancelled = True

    def messages(self) -> Iterator[Message]:
        while True:
            message = self.queue.get()
            if isinstance(message, _End):
                return
            if isinstance(message, _Raised):
                raise message.error
            yield message


class Readers:
    """``workers`` daemon threads run ``read`` on the paths, at most ``prefetch`` files ahead of the consumer."""

    def __init__(self, paths: Iterable[Path], read: Reader, workers: int, prefetch: int):
        self._paths = iter(paths)
        self._read = read
        self._prefetch = max(prefetch, workers, 1)  # fewer files ahead than workers would leave workers idle
        self._todo: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"proto-index-reader-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def __iter__(self) -> Iterator[Job]:
        ahead: deque[Job] = deque()
        exhausted = False
        while True:
            while not exhausted and len(ahead) <= self._prefetch:
                path = next(self._paths, None)
                if path is None:
                    exhausted = True
                    break
                job = Job(path)
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
                self._put(job, _Raised(e))
            finally:
                messages.close()
                self._put(job, _End())

    def _put(self, job: Job, message) -> bool:
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


class InlineJob:
    """One file read in the consumer's thread, message by message as the consumer asks."""

    def __init__(self, path: Path, read: Reader):
        self.path = Path(path)
        self._messages = read(self.path)

    def cancel(self) -> None:
        self._messages.close()

    def messages(self) -> Iterator[Message]:
        return self._messages


class Inline:
    """The same interface as :class:`Readers`, reading each file in the consumer's thread when asked."""

    def __init__(self, paths: Iterable[Path], read: Reader):
        self._paths, self._read = paths, read

    def __iter__(self) -> Iterator[InlineJob]:
        for path in self._paths:
            yield InlineJob(path, self._read)

    def close(self) -> None:
        pass
