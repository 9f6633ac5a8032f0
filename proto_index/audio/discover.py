"""Find the audio files under the paths a user names, and fingerprint files by content."""
from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from proto_index.errors import NotFound

# Extensions that name a format but not the format key soundfile lists it under.
_ALIASES = {
    "AIFF": ("aif", "aifc"),
    "AU": ("snd",),
    "IRCAM": ("sf",),
    "MP3": ("mp2", "mpga"),
    "NIST": ("sph",),
    "OGG": ("oga",),
    "SVX": ("iff", "8svx"),
    "WAV": ("wave", "bwf"),
}


def _audio_extensions() -> frozenset[str]:
    formats = soundfile.available_formats()
    # RAW is header-less: it cannot be decoded without being told rate, channels and encoding.
    exts = {name.lower() for name in formats if name != "RAW"}
    for name, aliases in _ALIASES.items():
        if name in formats:
            exts.update(aliases)
    if "OGG" in formats and "OPUS" in soundfile.available_subtypes("OGG"):
        exts.add("opus")
    return frozenset("." + e for e in exts)


AUDIO_EXTENSIONS: frozenset[str] = _audio_extensions()
"""Lower-case extensions (with the dot) a folder walk picks up: what this libsndfile can read."""


@dataclass
class Discovery:
    """What :func:`find_audio_files` found.

    ``files``: absolute paths, sorted, one per distinct file (deduplicated by resolved path).
    ``problems``: ``(path, reason)`` for each folder that could not be listed (and was skipped),
    and each symbolic link with an audio extension that points nowhere.
    """

    files: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def find_audio_files(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> Discovery:
    """Collect the audio files named by ``paths`` (one path or several).

    A file is taken as given, whatever its extension; a path that is neither a folder nor a regular
    file (a FIFO, a device such as /dev/zero, a socket) is reported in ``problems``, never read. A folder is walked recursively, following
    symbolic links (each real folder is listed once, so link loops end), taking files whose
    extension is in :data:`AUDIO_EXTENSIONS` and skipping hidden (dot) files and folders.
    A file reached by several paths is reported once, under the first path reached (paths in the
    order given; in a folder, its files before its subfolders, names sorted).
    Raises :class:`NotFound` if any path does not exist, before walking.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise NotFound(f"no such file or folder: {root}")

    found: dict[str, Path] = {}  # real path -> first absolute path it was reached by
    problems: list[tuple[Path, str]] = []
    listed: set[str] = set()
    for root in roots:
        root = root.absolute()
        if root.is_dir():
            _walk(root, found, listed, problems)
        elif not root.is_file():  # a FIFO would block the reader, a device (/dev/zero) never ends
            problems.append((root, NOT_REGULAR))
        else:
            found.setdefault(os.path.realpath(root), root)
    return Discovery(files=sorted(found.values()), problems=problems)


def _walk(
    top: Path, found: dict[str, Path], listed: set[str], problems: list[tuple[Path, str]]
) -> None:
    stack = [top]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in listed:
            continue
        listed.add(real)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            problems.append((folder, exc.strerror or str(exc)))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = folder / entry.name
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue  # vanished or unstat-able: not something we can read anyway
            if is_dir:
                subfolders.append(path)
            elif path.suffix.lower() in AUDIO_EXTENSIONS:
                if is_file:
                    found.setdefault(os.path.realpath(path), path)
                elif entry.is_symlink() and not path.exists():
                    problems.append((path, "broken symbolic link"))
        stack.extend(reversed(subfolders))  # pop in name order: depth-first, sorted


NOT_REGULAR = "not a regular file (a FIFO, device or socket): not read"


class NotRegularFile(OSError):
    """A path names a FIFO, device or socket where a file was expected."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(0, NOT_REGULAR, os.fspath(path))


def open_regular(path: str | os.PathLike):
    """Open ``path`` for binary reading if it is a regular file, else :class:`NotRegularFile` (an
    OSError). Never blocks on a FIFO (it is opened non-blocking and checked on the open descriptor)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(path)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a regular file's bytes, read in ``chunk``-byte pieces; ``OSError`` if unreadable."""
    digest = hashlib.sha256()
    with open_regular(path) as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
