"""Opening a text file the user named (a manifest or other CSV table, a labels file): one set of
checks, and one-line :mod:`proto_index.errors` for each way it can be wrong."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from proto_index.audio.discover import open_regular
from proto_index.errors import InvalidInput, NotFound


@contextmanager
def open_text_file(path: str | Path, kind: str) -> Iterator[BinaryIO]:
    """``path``, a ``kind`` (``"CSV file"``, ``"labels file"``) the user named, open for binary reading.

    :class:`NotFound` if it is missing; :class:`InvalidInput` naming the file for a folder, FIFO or
    device (never read), and for an ``OSError`` or a ``UnicodeDecodeError`` raised while the block
    reads it (decoded block by block, so the byte it names counts from the start of a block).
    """
    path = Path(path)
    if not path.exists():
        raise NotFound(f"no such {kind}: {path}")
    if not path.is_file():
        raise InvalidInput(f"{path}: not a regular file (a folder, FIFO or device), not a {kind}")
    try:
        with open_regular(path) as fh:
            yield fh
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {e.start} of a block); save it as UTF-8") from None
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read: {e.strerror or e}") from None


def read_text_file(path: str | Path, kind: str, max_bytes: int) -> str:
    """The whole of a small text file (UTF-8, a byte-order mark dropped), with :func:`open_text_file`'s
    errors, and :class:`InvalidInput` for a file over ``max_bytes`` (read no further) or one that is
    not UTF-8 (naming the byte). The size is checked before decoding, so a large file is refused as
    large, never cut short at a character boundary."""
    with open_text_file(path, kind) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidInput(f"{path}: larger than {max_bytes // 1_000_000} MB; not a {kind}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
