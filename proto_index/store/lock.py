"""The store's writer lock: one writing process per store, across processes."""
from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

from proto_index.errors import Hint, StoreLocked


class WriterLock:
    """An advisory ``flock`` on a file in the store: one writer per store across processes.

    The kernel releases it when the holder dies, so a killed ingest never leaves the store locked.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait_s: float = 0.0) -> bool:
        """Take the lock; False if this object already holds it. Raises StoreLocked after ``wait_s``."""
        if self._fd is not None:
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise StoreLocked(
                        f"{self.path.parent} is being written by {holder}; wait for it to finish",
                        hint=Hint("wait_s", "or pass {option}"),
                    ) from None
                time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({' '.join(sys.argv[:2]) or 'python'})".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
