"""The user cache and plain-HTTP downloads of model files (streamed, atomic, with a progress bar)."""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from proto_index.errors import ModelError

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


def download(url: str, dest: Path, *, what: str, offline_hint: str,
             console: Console | None = None) -> Path:
    """Fetch ``url`` into ``dest`` via ``<dest>.part`` and an atomic rename; return ``dest``.

    Shows bytes, speed and ETA on stderr (or ``console``). Any failure removes the partial file and
    raises :class:`ModelError` naming ``what`` could not be fetched, from where, and ``offline_hint``.
    """
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(),
                        console=console or Console(stderr=True), transient=False)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=READ_TIMEOUT_S) as response, \
                open(part, "wb") as out, progress:
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            task = progress.add_task(f"downloading {dest.name}", total=total)
            received = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                progress.update(task, advance=len(chunk))
            if total is not None and received != total:
                raise OSError(f"connection closed after {received} of {total} bytes")
        os.replace(part, dest)
    except (OSError, ValueError, http.client.HTTPException) as e:  # URLError and timeouts are OSErrors
        part.unlink(missing_ok=True)
        if isinstance(e, urllib.error.HTTPError):
            reason = f"HTTP {e.code} {e.reason}"
        elif isinstance(e, urllib.error.URLError):
            reason = e.reason
        else:
            reason = str(e) or type(e).__name__
        raise ModelError(f"could not download {what} from {url}: {reason}. "
                         f"To work offline, {offline_hint}") from e
    return dest
