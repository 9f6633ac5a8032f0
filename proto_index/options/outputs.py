"""Where and how results are written beyond one file: :class:`DatasetOptions` (``classify --format
parquet-dataset``) and :class:`ReportOptions` (the review report)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from proto_index.errors import InvalidInput

if TYPE_CHECKING:
    from proto_index.core.gap import GapReport
    from proto_index.store.views import EnvironmentView, PrototypeSetView

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


@dataclass(frozen=True)
class ReportCatalog:
    """What a report shows of the store its CSV came from, gathered by that store
    (:meth:`proto_index.Store.report_catalog`) and handed down as plain values: the store's folder,
    its model, the model's window, the environments and, for the prototype page, the prototype
    set's view with its modality gap (or why the gap could not be measured)."""

    store: Path
    model: str  # the identity, described
    window_s: float
    environments: tuple[EnvironmentView, ...] = ()
    prototypes: PrototypeSetView | None = None
    gap: GapReport | None = None
    gap_error: str | None = None


@dataclass(frozen=True)
class ReportOptions:
    """What to build. ``catalog`` (what the store shows: :class:`ReportCatalog`) adds the summary's
    store, model and environments and, when it holds a prototype set, the prototype-set page; without
    it the report shows the CSV alone."""

    csv: Path
    out: Path
    per_label: int = DEFAULT_PER_LABEL
    audio_root: Path | None = None  # relative CSV paths are relative to this (default: the current folder)
    catalog: ReportCatalog | None = None
    neighbours: int = DEFAULT_NEIGHBOURS
