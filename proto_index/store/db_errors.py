"""Database errors as domain errors, in one place.

:func:`install` hooks a catalog engine so that every error SQLAlchemy or SQLite raises through it
(at connect, on a query, a flush or a commit) reaches the caller as a :mod:`proto_index.errors`
error with one line of explanation, never as a driver exception: a caller (the CLI) needs to know
only the domain errors.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError

from proto_index.errors import (
    CatalogConflict,
    DiskFull,
    Hint,
    ProtoIndexError,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReadOnly,
)

_CORRUPT = ("file is not a database", "malformed", "no such table", "no such column", "file is encrypted")


def domain_error(error: BaseException, catalog: Path) -> ProtoIndexError:
    """The domain error for ``error`` (a DBAPI exception, or SQLAlchemy's wrapper of one) raised by
    the catalog at ``catalog``."""
    orig = getattr(error, "orig", None) or error
    reason = (str(orig).splitlines() or [type(orig).__name__])[0]
    root = catalog.parent
    if isinstance(error, IntegrityError) or type(orig).__name__ == "IntegrityError":
        return CatalogConflict(f"the catalog refused a write ({reason}); nothing was changed")
    lowered = reason.lower()
    if "disk is full" in lowered:
        return DiskFull(f"the disk holding {root} is full ({reason})")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreReadOnly(f"{root} is read-only: this command writes to the store")
    if "database is locked" in lowered or "busy" in lowered:
        return StoreLocked(f"the catalog of {root} stayed locked by another process ({reason})",
                           hint=Hint("wait_s", "try again, or pass {option}"))
    if any(word in lowered for word in _CORRUPT):
        return StoreCorrupt(f"{catalog} cannot be read as a proto-index catalog ({reason}); restore it from a backup")
    return StoreError(f"the store's catalog failed ({reason})")


def install(engine: Engine, catalog: Path) -> Engine:
    """Make ``engine`` raise :func:`domain_error`'s errors in place of database exceptions."""

    @event.listens_for(engine, "handle_error")
    def _as_domain_error(context) -> None:
        raise domain_error(context.sqlalchemy_exception or context.original_exception, Path(catalog)) from context.original_exception

    return engine
