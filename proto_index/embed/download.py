"""The user cache and plain-HTTP downloads of model files (streamed, resumable, checked against a
pinned SHA-256, one writer at a time, atomic, with a progress bar)."""
from __future__ import annotations

import fcntl
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from proto_index import atomic
from proto_index.errors import Hint, ModelError

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_BASE = "https://huggingface.co"
"""Files are fetched from ``<base>/<repo>/resolve/main/<file>``; a mirror with the same layout works."""

READ_TIMEOUT_S = 30
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """$PROTO_INDEX_CACHE, else $XDG_CACHE_HOME/proto-index, else ~/.cache/proto-index (not created)."""
    if os.environ.get("PROTO_INDEX_CACHE"):
        return Path(os.environ["PROTO_INDEX_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "proto-index"


def base_url(base: str | None = None) -> str:
    """``base`` if given, else $PROTO_INDEX_DOWNLOAD_BASE, else :data:`DEFAULT_BASE`; no trailing slash."""
    return (base or os.environ.get("PROTO_INDEX_DOWNLOAD_BASE") or DEFAULT_BASE).rstrip("/")


def download(url: str, dest: Path, *, what: str, offline_hint: Hint,
             console: Console | None = None, sha256: str | None = None) -> Path:
    """Fetch ``url`` into ``dest`` via ``<dest>.part`` and an atomic rename; return ``dest``.

    ``sha256`` (hex), when given, must match the whole file before it is renamed into place; a
    mismatch deletes the partial file. A ``<dest>.part`` left by an interrupted download is resumed
    with an HTTP Range request (from scratch if the server ignores it). ``<dest>.lock`` (flock) lets
    one process at a time write the partial file; a process that waited finds ``dest`` done.
    Shows bytes, speed and ETA on stderr (or ``console``). Any failure raises :class:`ModelError`
    naming ``what`` could not be fetched and from where, with ``offline_hint`` as its hint.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock = open(dest.with_name(dest.name + ".lock"), "a")
    except OSError as e:
        raise ModelError(f"could not download {what} to {dest}: {e.strerror or e}") from e
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if dest.is_file():  # another process finished it while this one waited
            return dest
        part = dest.with_name(dest.name + ".part")
        try:
            _fetch(url, part, dest.name, console, sha256)
            atomic.replace(part, dest)
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError and timeouts are OSErrors
            if isinstance(e, urllib.error.HTTPError):
                reason = f"HTTP {e.code} {e.reason}"
            elif isinstance(e, urllib.error.URLError):
                reason = str(e.reason)
            else:
                reason = str(e) or type(e).__name__
            if part.exists() and part.stat().st_size:
                reason = f"{reason} ({part.stat().st_size} bytes kept in {part}; a rerun resumes)"
            raise ModelError(f"could not download {what} from {url}: {reason}", hint=offline_hint) from e
        except _ChecksumError as e:
            part.unlink(missing_ok=True)
            raise ModelError(f"could not download {what} from {url}: {e} (file discarded)", hint=offline_hint) from None
    return dest


class _ChecksumError(Exception):
    pass


def _fetch(url: str, part: Path, name: str, console: Console | None, sha256: str | None) -> None:
    """Append the rest of ``url`` to ``part`` (all of it if the server does not honour Range), then
    check its length and ``sha256``."""
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=READ_TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not have:
            part.unlink(missing_ok=True)
            raise
        part.unlink()  # the partial file is not a prefix the server knows: start again
        have = 0
        response = urllib.request.urlopen(url, timeout=READ_TIMEOUT_S)
    digest = hashlib.sha256()
    with response:
        resumed = have > 0 and response.status == 206
        if resumed:
            with open(part, "rb") as old:
                while chunk := old.read(_CHUNK):
                    digest.update(chunk)
        else:
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), TimeRemainingColumn(),
                            console=console or Console(stderr=True), transient=False)
        with open(part, "ab" if resumed else "wb") as out, progress:
            task = progress.add_task(f"{'resuming' if resumed else 'downloading'} {name}", total=total,
                                     completed=have)
            received = have
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress.update(task, advance=len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        raise _ChecksumError(f"SHA-256 {digest.hexdigest()} is not the published {sha256}")
