"""Reading a labels file (``classes add --labels-file``): one label per line."""
from __future__ import annotations

from pathlib import Path

from proto_index.audio.discover import open_regular
from proto_index.errors import InvalidInput, NotFound

MAX_LABELS_BYTES = 10_000_000
"""A labels file larger than this is refused unread past it (a few thousand labels take ~100 kB)."""


def read_labels_file(path: str | Path) -> list[str]:
    """One label per line (UTF-8, a byte-order mark ignored); blank lines and lines starting with #
    are skipped. :class:`NotFound` if it is missing; :class:`InvalidInput` for a folder, FIFO or
    device, non-UTF-8 text, or a file over :data:`MAX_LABELS_BYTES`."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"no such labels file: {path}")
    if not path.is_file():
        raise InvalidInput(f"{path}: not a regular file (a folder, FIFO or device)")
    try:
        with open_regular(path) as fh:
            text = fh.read(MAX_LABELS_BYTES + 1).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read: {e.strerror or e}") from None
    if len(text) > MAX_LABELS_BYTES:
        raise InvalidInput(f"{path}: larger than {MAX_LABELS_BYTES // 1_000_000} MB; not a labels file")
    lines = [ln.strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]
