"""The SQLite catalog's tables (SQLAlchemy 2 declarative). Alembic migrations in migrations/ create them.

The vector id shared by the FAISS index and the catalog is ``windows.vector_row``: the row of the
window's exact vector in the store's vector file (unique). ``windows.id`` is the catalog's own key
(prototype neighbours and annotations refer to it).
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Annotated

import numpy as np
from sqlalchemy import Float, ForeignKey, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column, relationship

from proto_index.filenames import is_text, to_bytes


def to_blob(vector: np.ndarray) -> bytes:
    """A vector as a catalog blob (little-endian float32)."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").copy()


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class PathText(TypeDecorator):
    """A TEXT column that holds file names losslessly: a valid UTF-8 name as TEXT, any other (a str
    with ``surrogateescape`` surrogates) as a BLOB of its exact bytes, read back as that same str.
    SQLite keeps the two storage classes apart (a BLOB never equals a TEXT), so the form is
    unambiguous, and the column's declared type stays TEXT (no migration)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or isinstance(value, bytes):
            return value
        value = str(value)
        return value if is_text(value) else to_bytes(value)

    def process_result_value(self, value, dialect):
        return os.fsdecode(value) if isinstance(value, bytes) else value


class Base(DeclarativeBase):
    """A column's type and nullability come from its annotation (``int`` INTEGER, ``bytes`` BLOB,
    ``datetime`` DATETIME, ``X | None`` nullable); the map holds the two that differ from
    SQLAlchemy's defaults, as the migrations create them: a ``str`` is TEXT unless the column says
    ``String(n)``, a ``float`` FLOAT (not DOUBLE)."""

    type_annotation_map = {str: Text, float: Float}


class Entity(Base):
    """A table whose rows have their own integer key, ``id`` (its first column)."""

    __abstract__ = True
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)


Created = Annotated[datetime, mapped_column(default=utcnow)]
"""When the row was written (UTC, naive)."""


def parent_key(table: str) -> MappedColumn:
    """A child row's link to the parent row that owns it (``table.id``): indexed, and deleted with
    the parent (ON DELETE CASCADE)."""
    return mapped_column(ForeignKey(f"{table}.id", ondelete="CASCADE"), index=True)


def owned(order_by: str, back_populates: str):
    """The ORM side of :func:`parent_key`: the parent's list of its child rows in ``order_by`` order,
    saved, removed and deleted with it."""
    return relationship(back_populates=back_populates, order_by=order_by, cascade="all, delete-orphan")


class StoreMeta(Base):
    """Key-value facts about the store: the bound model identity and how to load it."""

    __tablename__ = "store_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str]


class FileChecksum(Base):
    """The digest (``crc32:<hex>``) of a published index file (block 0) or of one block of vector rows."""

    __tablename__ = "file_checksums"
    file: Mapped[str] = mapped_column(String(64), primary_key=True)
    block: Mapped[int] = mapped_column(primary_key=True)
    rows: Mapped[int]
    digest: Mapped[str] = mapped_column(String(80))


class Recording(Entity):
    """One ingested audio file, deduplicated by content hash."""

    __tablename__ = "recordings"
    path: Mapped[str] = mapped_column(PathText, index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    duration_s: Mapped[float]
    sample_rate: Mapped[int]
    channels: Mapped[int]
    ingested_at: Mapped[Created]
    # The file's size and st_mtime_ns when it was read (NULL in rows from before revision 0005):
    # a resumed ingest skips the path unread while both still match.
    size_bytes: Mapped[int | None]
    mtime_ns: Mapped[int | None]
    windows: Mapped[list["Window"]] = relationship(back_populates="recording", order_by="Window.start_s")


class Window(Entity):
    """A span of a recording with one embedding; its ``vector_row`` is the vector id in the FAISS index."""

    __tablename__ = "windows"
    recording_id: Mapped[int] = parent_key("recordings")
    start_s: Mapped[float]
    end_s: Mapped[float]
    vector_row: Mapped[int] = mapped_column(unique=True)
    recording: Mapped[Recording] = relationship(back_populates="windows")


class IngestFailure(Entity):
    """A file that could not be ingested, and why; cleared when a later ingest of the path succeeds."""

    __tablename__ = "ingest_failures"
    path: Mapped[str] = mapped_column(PathText, unique=True)
    error: Mapped[str]
    failed_at: Mapped[Created]


class ClassSet(Entity):
    """A named list of class labels and the prompt template that turns each into text."""

    __tablename__ = "class_sets"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    template: Mapped[str]
    created_at: Mapped[Created]
    labels: Mapped[list["ClassLabel"]] = owned("ClassLabel.position", back_populates="class_set")


class ClassLabel(Entity):
    __tablename__ = "class_labels"
    __table_args__ = (
        UniqueConstraint("class_set_id", "position"),
        UniqueConstraint("class_set_id", "label"),
    )
    class_set_id: Mapped[int] = parent_key("class_sets")
    position: Mapped[int]
    label: Mapped[str]
    class_set: Mapped[ClassSet] = relationship(back_populates="labels")


class PrototypeSet(Entity):
    """Prototypes built for a class set by one method ('zero-shot' or 'tgap')."""

    __tablename__ = "prototype_sets"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    class_set_id: Mapped[int] = parent_key("class_sets")
    method: Mapped[str] = mapped_column(String(32))
    n_neighbours: Mapped[int | None]
    created_at: Mapped[Created]
    class_set: Mapped[ClassSet] = relationship()
    prototypes: Mapped[list["Prototype"]] = owned("Prototype.position", back_populates="prototype_set")


class Prototype(Entity):
    """One class's prototype vector, and the text anchor it started from (float32 bytes)."""

    __tablename__ = "prototypes"
    __table_args__ = (UniqueConstraint("prototype_set_id", "position"),)
    prototype_set_id: Mapped[int] = parent_key("prototype_sets")
    position: Mapped[int]
    label: Mapped[str]
    prompt: Mapped[str]
    anchor: Mapped[bytes]
    vector: Mapped[bytes]
    prototype_set: Mapped[PrototypeSet] = relationship(back_populates="prototypes")
    neighbours: Mapped[list["TgapNeighbour"]] = owned("TgapNeighbour.rank", back_populates="prototype")


class TgapNeighbour(Entity):
    """A corpus window that went into a TGAP prototype, with its cosine to the text anchor."""

    __tablename__ = "tgap_neighbours"
    prototype_id: Mapped[int] = parent_key("prototypes")
    rank: Mapped[int]
    window_id: Mapped[int]  # no FK: the prototype stays valid if a window is removed
    score: Mapped[float]
    prototype: Mapped[Prototype] = relationship(back_populates="neighbours")


class Environment(Entity):
    """An acoustic environment (park, airport...) with its background data and tau overrides."""

    __tablename__ = "environments"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None]
    tau_audio: Mapped[float | None]
    tau_text: Mapped[float | None]
    created_at: Mapped[Created]
    backgrounds: Mapped[list["BackgroundVector"]] = owned("BackgroundVector.id", back_populates="environment")


class BackgroundVector(Entity):
    """One background embedding of an environment: a text prompt's or a background recording's."""

    __tablename__ = "background_vectors"
    environment_id: Mapped[int] = parent_key("environments")
    kind: Mapped[str] = mapped_column(String(8))  # 'text' or 'audio'
    source: Mapped[str] = mapped_column(PathText)  # the prompt, or the recording's path
    sha256: Mapped[str | None] = mapped_column(String(64))
    vector: Mapped[bytes]
    environment: Mapped[Environment] = relationship(back_populates="backgrounds")


class Annotation(Entity):
    """A person's verdict on one classified window (or whole recording, when ``window_id`` is NULL).

    verdict: 'right' (label confirmed), 'wrong' (label rejected), 'relabel' (``corrected_label`` is
    the true class). One annotation per window: re-annotating replaces it (latest wins).
    """

    __tablename__ = "annotations"
    recording_id: Mapped[int] = parent_key("recordings")
    window_id: Mapped[int | None] = parent_key("windows")
    environment: Mapped[str | None]
    label: Mapped[str]
    verdict: Mapped[str] = mapped_column(String(16))
    corrected_label: Mapped[str | None]
    source: Mapped[str]
    created_at: Mapped[Created]
    recording: Mapped[Recording] = relationship()
    window: Mapped[Window | None] = relationship()
