"""Named catalog objects (class sets, prototype sets, environments) created without races.

The check that a name is free and the insert happen in one transaction, under the store's writer
lock, so two processes adding the same name at once cannot both succeed or silently replace each
other: the second waits for the first, then finds the name taken. (Database errors arrive as domain
errors: :mod:`proto_index.store.db_errors`.)
"""
from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from proto_index.errors import REPLACE, AlreadyExists, CatalogConflict, InvalidInput
from proto_index.store.storage import Storage

CATALOG_WAIT_S = 60.0
"""How long adding a named object waits for another writer (an ingest) before giving up."""


def check_text(value: str, what: str) -> str:
    """``value`` without a UTF-8 byte-order mark and surrounding blanks; :class:`InvalidInput` if
    that leaves nothing, or if it holds a line break, tab or other control character (they would
    break the tab-separated listings)."""
    value = value.replace("\ufeff", "").strip()
    if not value:
        raise InvalidInput(f"{what} cannot be empty or blank")
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise InvalidInput(f"{what} {value!r} holds a control character ({bad!r}); use plain text on one line")
    return value


@contextmanager
def claim_name(storage: Storage, model, name: str, what: str, replace: bool,
               before_replace: Callable[[Session, object], None] | None = None,
               wait_s: float = CATALOG_WAIT_S) -> Iterator[Session]:
    """A session in which ``name`` is free for a new ``model`` row: an old one is deleted when
    ``replace`` (after ``before_replace(session, old)``, which may refuse), else
    :class:`AlreadyExists`. Committed when the block ends without error."""
    check_text(name, f"{what} name")
    try:
        with storage.writer(wait_s, recover=False), storage.session() as s:
            old = s.scalar(select(model).where(model.name == name))
            if old is not None:
                if not replace:
                    raise AlreadyExists(f"{what} {name!r} already exists", hint=REPLACE)
                if before_replace is not None:
                    before_replace(s, old)
                s.delete(old)
                s.flush()
            yield s
            s.flush()
    except CatalogConflict:  # the unique name, if a writer ignored the lock
        raise AlreadyExists(f"{what} {name!r} already exists", hint=REPLACE) from None
