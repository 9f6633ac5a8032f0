"""Writing files so that a crash leaves either the old file or the new one, never a torn one.

Every writer of the package goes through here: content goes to a temporary file in the target's
folder (same file system, so the rename is atomic), the temporary file is fsynced, then renamed
over the target. ``durable=True`` (the default) also fsyncs the folder, so the rename itself
survives a power cut: for files a crash must not lose (store files, downloads, a user's outputs).
``durable=False`` skips that one fsync where losing the newest version is harmless (caches): after
a power cut the old file (or none) may come back, never a torn one.

An exception inside the block removes the temporary file and leaves the target as it was. A
process killed mid-write can leave its temporary file (hidden, ``.NAME.<random>.tmp``) behind.

A user's output path goes through :func:`open_output`: ``-`` (or ``/dev/stdout``) is standard output,
a FIFO or character device is written through in place, a link to a regular file is written through
(the rename replaces the file it points to, never the link), anything else is refused in one line.
"""
from __future__ import annotations

import io
import os
import secrets
import stat
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator


def fsync_path(path: str | os.PathLike) -> None:
    """Flush ``path`` to disk: a file's data, or a folder's entries (a rename, a new file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make the entries of ``folder`` durable (its own name, so tests can watch folder syncs)."""
    fsync_path(folder)


def fsync_file(path: str | os.PathLike) -> None:
    """Make a file's data durable (its own name, so tests can make it fail)."""
    fsync_path(path)


def temp_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for its temporary file."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def replace(tmp: str | os.PathLike, path: str | os.PathLike, durable: bool = True) -> None:
    """fsync the finished ``tmp``, rename it over ``path`` and (``durable``) fsync the folder."""
    fsync_file(tmp)
    os.replace(tmp, path)
    if durable:
        fsync_dir(Path(path).parent)


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True, tmp: str | os.PathLike | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that take a file name (FAISS, numpy,
    matplotlib, safetensors); it is renamed over ``path`` when the block completes, removed if
    the block raises. ``tmp``: the temporary name to use (in the same folder), else a fresh one."""
    path = Path(path)
    tmp = temp_name(path) if tmp is None else Path(tmp)
    if tmp.parent != path.parent:
        raise ValueError(f"the temporary file {tmp} must be in the folder of {path}")
    try:
        yield tmp
        replace(tmp, path, durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", durable: bool = True, encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:
    """A file object whose content appears at ``path`` only when the block completes.

    ``mode`` is ``"w"`` (text, ``encoding`` and ``newline`` as for :func:`open`) or ``"wb"``. The
    temporary file is created exclusively with the process umask, as :func:`open` would.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    with atomic_path(path, durable) as tmp:
        text: dict[str, Any] = {"encoding": encoding, "newline": newline} if mode == "w" else {}
        with open(tmp, mode.replace("w", "x"), **text) as f:  # "x": never onto an existing file
            yield f


# --- a user's output path: standard output, a stream, or a regular file written atomically -------

STDOUT = "-"
"""The output name that means standard output."""


@dataclass(frozen=True)
class OutputTarget:
    """Where an output named ``name`` goes: ``kind`` ``"stdout"``, ``"stream"`` (a FIFO or character
    device, written through in place) or ``"file"`` (``path``: the regular file, links resolved,
    written by temporary file and rename so the link itself is never replaced)."""

    name: str
    kind: str
    path: Path | None = None

    @property
    def file(self) -> Path:
        """``path`` of a ``"file"`` target."""
        if self.path is None:
            raise ValueError(f"output {self.name} is not a file")
        return self.path


def is_stdout(path: str | os.PathLike) -> bool:
    """``path`` is ``-`` or names the file, pipe or terminal that is this process's standard output
    (``/dev/stdout``, ``/dev/fd/1``, ...)."""
    if os.fspath(path) == STDOUT:
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(1))
    except (OSError, ValueError):
        return False


def output_target(path: str | os.PathLike) -> OutputTarget:
    """Where writing ``path`` goes; a folder, a link to nothing, or anything but a regular file, a
    FIFO or a character device is refused with :class:`InvalidInput` (one line)."""
    from proto_index.errors import InvalidInput

    name = os.fspath(path)
    if is_stdout(path):
        return OutputTarget(name, "stdout")
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise InvalidInput(f"output {path} is a link to nothing ({os.readlink(path)}); name a file") from None
        return OutputTarget(name, "file", path)
    except OSError as e:
        raise InvalidInput(f"output {path}: {e.strerror or e}") from None
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"output {path} is a folder; name a file in it")
    if stat.S_ISREG(mode):
        return OutputTarget(name, "file", Path(os.path.realpath(path)))
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return OutputTarget(name, "stream", path)
    raise InvalidInput(f"output {path} is not a regular file, a pipe or a character device")


def check_output_file(out: str | os.PathLike) -> Path:
    """``out`` can be written as a file: standard output (``-``), a pipe or character device, or a
    regular file (through a link) whose folder exists and can be written."""
    from proto_index.errors import InvalidInput, NotFound

    target = output_target(out)
    if target.kind != "file":
        return Path(out)
    parent = target.file.absolute().parent
    if not parent.is_dir():
        raise NotFound(f"the folder of the output file does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput(f"cannot write in the output folder {parent}")
    return Path(out)


def refuse_stdout(path: str | os.PathLike, what: str) -> None:
    """Refuse standard output (``-``) for an output that cannot stream: ``what`` says what it is."""
    if os.fspath(path) == STDOUT or is_stdout(path):
        from proto_index.errors import InvalidInput

        raise InvalidInput(f"{what} cannot be written to standard output; name a file or folder instead of {os.fspath(path)}")


@contextmanager
def open_output(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO]:
    """A user's output (see :func:`output_target`): standard output, a FIFO or character device
    written through, or a regular file (through a link) written atomically and durably."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    target = output_target(path)
    text: dict[str, Any] = {"encoding": encoding, "newline": newline} if mode == "w" else {}
    if target.kind == "file":
        with atomic_write(target.file, mode, encoding=encoding, newline=newline) as f:
            yield f
    elif target.kind == "stream":
        with open(path, mode, **text) as f:
            yield f
    else:
        yield from _stdout(mode, text)


def _stdout(mode: str, text: dict) -> Iterator[IO]:
    """Standard output's bytes as a file object (UTF-8 text, whatever the locale); left open."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    f = io.TextIOWrapper(out, write_through=True, **text) if mode == "w" else out
    try:
        yield f
    finally:
        f.flush()
        if isinstance(f, io.TextIOWrapper):  # the wrapper, not standard output's own buffer
            f.detach()
        out.flush()


@contextmanager
def output_path(path: str | os.PathLike) -> Iterator[Path]:
    """:func:`atomic_path` for a user's output that a library writes by name (a plot): a regular
    file, through a link; standard output and streams are refused."""
    from proto_index.errors import InvalidInput

    target = output_target(path)
    if target.kind != "file":
        raise InvalidInput(f"output {os.fspath(path)} must be a regular file")
    with atomic_path(target.file) as tmp:
        yield tmp
