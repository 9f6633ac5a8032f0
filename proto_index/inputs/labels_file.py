"""Reading a labels file (``classes add --labels-file``): one label per line."""
from __future__ import annotations

from pathlib import Path

from proto_index.inputs.text_files import read_text_file

MAX_LABELS_BYTES = 10_000_000
"""A labels file larger than this is refused unread past it (a few thousand labels take ~100 kB)."""


def read_labels_file(path: str | Path) -> list[str]:
    """One label per line (UTF-8, a byte-order mark ignored); blank lines and lines starting with #
    are skipped. :class:`NotFound` if it is missing; :class:`InvalidInput` for a folder, FIFO or
    device, non-UTF-8 text, or a file over :data:`MAX_LABELS_BYTES`
    (:func:`~proto_index.inputs.text_files.read_text_file`)."""
    text = read_text_file(path, "labels file", MAX_LABELS_BYTES)
    lines = [ln.strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]
