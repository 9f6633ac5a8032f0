"""The SQLite catalog's tables (SQLAlchemy 2 declarative). Alembic migrations in migrations/ create them.

The vector id shared by the FAISS index and the catalog is ``windows.vector_row``: the row of the
window's exact vector in the store's vector file (unique). ``windows.id`` is the catalog's own key
(prototype neighbours and annotations refer to it).
"""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def to_blob(vector: np.ndarray) -> bytes:
    """A vector as a catalog blob (little-endian float32)."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").copy()


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class StoreMeta(Base):
    """Key-value facts about the store: the bound model identity and how to load it."""

    __tablename__ = "store_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class FileChecksum(Base):
    """The digest (``crc32:<hex>``) of a published index file (block 0) or of one block of vector rows."""

    __tablename__ = "file_checksums"
    file: Mapped[str] = mapped_column(String(64), primary_key=True)
    block: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(80))


class Recording(Base):
    """One ingested audio file, deduplicated by content hash."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    duration_s: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The file's size and st_mtime_ns when it was read (NULL in rows from before revision 0005):
    # a resumed ingest skips the path unread while both still match.
    size_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mtime_ns: Mapped[int | None] = mapped_column(Integer, nullable=True)
    windows: Mapped[list["Window"]] = relationship(back_populates="recording", order_by="Window.start_s")


class Window(Base):
    """A span of a recording with one embedding; its ``vector_row`` is the vector id in the FAISS index."""

    __tablename__ = "windows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    vector_row: Mapped[int] = mapped_column(Integer, unique=True)
    recording: Mapped[Recording] = relationship(back_populates="windows")


class IngestFailure(Base):
    """A file that could not be ingested, and why; cleared when a later ingest of the path succeeds."""

    __tablename__ = "ingest_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClassSet(Base):
    """A named list of class labels and the prompt template that turns each into text."""

    __tablename__ = "class_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    template: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    labels: Mapped[list["ClassLabel"]] = relationship(
        back_populates="class_set", order_by="ClassLabel.position", cascade="all, delete-orphan"
    )


class ClassLabel(Base):
    __tablename__ = "class_labels"
    __table_args__ = (
        UniqueConstraint("class_set_id", "position"),
        UniqueConstraint("class_set_id", "label"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_set_id: Mapped[int] = mapped_column(ForeignKey("class_sets.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)
    class_set: Mapped[ClassSet] = relationship(back_populates="labels")


class PrototypeSet(Base):
    """Prototypes built for a class set by one method ('zero-shot' or 'tgap')."""

    __tablename__ = "prototype_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    class_set_id: Mapped[int] = mapped_column(ForeignKey("class_sets.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(32))
    n_neighbours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    class_set: Mapped[ClassSet] = relationship()
    prototypes: Mapped[list["Prototype"]] = relationship(
        back_populates="prototype_set", order_by="Prototype.position", cascade="all, delete-orphan"
    )


class Prototype(Base):
    """One class's prototype vector, and the text anchor it started from (float32 bytes)."""

    __tablename__ = "prototypes"
    __table_args__ = (UniqueConstraint("prototype_set_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prototype_set_id: Mapped[int] = mapped_column(ForeignKey("prototype_sets.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    anchor: Mapped[bytes] = mapped_column(LargeBinary)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    prototype_set: Mapped[PrototypeSet] = relationship(back_populates="prototypes")
    neighbours: Mapped[list["TgapNeighbour"]] = relationship(
        back_populates="prototype", order_by="TgapNeighbour.rank", cascade="all, delete-orphan"
    )


class TgapNeighbour(Base):
    """A corpus window that went into a TGAP prototype, with its cosine to the text anchor."""

    __tablename__ = "tgap_neighbours"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prototype_id: Mapped[int] = mapped_column(ForeignKey("prototypes.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    window_id: Mapped[int] = mapped_column(Integer)  # no FK: the prototype stays valid if a window is removed
    score: Mapped[float] = mapped_column(Float)
    prototype: Mapped[Prototype] = relationship(back_populates="neighbours")


class Environment(Base):
    """An acoustic environment (park, airport...) with its background data and tau overrides."""

    __tablename__ = "environments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    tau_audio: Mapped[float | None] = mapped_column(Float, nullable=True)
    tau_text: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    backgrounds: Mapped[list["BackgroundVector"]] = relationship(
        back_populates="environment", order_by="BackgroundVector.id", cascade="all, delete-orphan"
    )


class BackgroundVector(Base):
    """One background embedding of an environment: a text prompt's or a background recording's."""

    __tablename__ = "background_vectors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # 'text' or 'audio'
    source: Mapped[str] = mapped_column(Text)  # the prompt, or the recording's path
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    environment: Mapped[Environment] = relationship(back_populates="backgrounds")


class Annotation(Base):
    """A person's verdict on one classified window (or whole recording, when ``window_id`` is NULL).

    verdict: 'right' (label confirmed), 'wrong' (label rejected), 'relabel' (``corrected_label`` is
    the true class). One annotation per window: re-annotating replaces it (latest wins).
    """

    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id", ondelete="CASCADE"), nullable=True, index=True)
    environment: Mapped[str | None] = mapped_column(Text, nullable=True)
    label: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str] = mapped_column(String(16))
    corrected_label: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    recording: Mapped[Recording] = relationship()
    window: Mapped[Window | None] = relationship()
