"""Where and how results are written beyond one file: :class:`DatasetOptions` (``classify --format
parquet-dataset``) and :class:`ReportOptions` (the review report)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from proto_index.errors import InvalidInput

if TYPE_CHECKING:
    from proto_index.core.gap import GapReport
    from proto_index.core.identity import ModelIdentity

DEFAULT_ROWS_PER_FILE = 100_000
"""Rows per Parquet part of a partitioned dataset, at most."""
DEFAULT_PER_LABEL = 50
DEFAULT_NEIGHBOURS = 5


@dataclass(frozen=True)
class DatasetOptions:
    """Where and how: ``out`` folder; at most ``rows_per_file`` rows a part; ``files_per_chunk``
    inputs classified (and held) at a time; ``all_scores``: one ``score:<label>`` column per class."""

    out: Path
    rows_per_file: int = DEFAULT_ROWS_PER_FILE
    files_per_chunk: int = 1000
    all_scores: bool = False

    def __post_init__(self):
        if self.rows_per_file < 1 or self.files_per_chunk < 1:
            raise InvalidInput("rows per file and files per chunk must be positive")


class ReportStore(Protocol):
    """What a report reads from an open store (:class:`proto_index.Store` is one); the layer above
    hands it in, so the report never imports the API."""

    @property
    def path(self) -> Path: ...

    @property
    def identity(self) -> ModelIdentity: ...

    def environments(self) -> list[Any]: ...

    def prototype_set(self, name: str) -> Any: ...

    def modality_gap(self, prototypes: str, k: int = 10) -> tuple[str, GapReport]: ...


@dataclass(frozen=True)
class ReportOptions:
    """What to build. ``store`` (an open ``proto_index.Store``) and ``prototypes`` add the summary's store,
    model and environments and the prototype-set page; without them the report shows the CSV alone."""

    csv: Path
    out: Path
    per_label: int = DEFAULT_PER_LABEL
    audio_root: Path | None = None  # relative CSV paths are relative to this (default: the current folder)
    store: ReportStore | None = None
    prototypes: str | None = None
    neighbours: int = DEFAULT_NEIGHBOURS
    gap_k: int = 10
