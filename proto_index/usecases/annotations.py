"""Reviewed verdicts (``proto-index annotate``): read a decisions CSV, store it, read confirmations back.

A decisions CSV has the columns ``path,start_s,end_s,environment,label,verdict,corrected_label``
(the report's review download). ``verdict`` is ``right`` (the label is confirmed), ``wrong``
(rejected) or ``relabel`` (``corrected_label`` is the true class). Empty ``start_s``/``end_s``
annotate the whole recording. Paths resolve to stored recordings by path, else by content hash.
"""
from __future__ import annotations

import bisect
import csv
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import delete, insert, select

from proto_index.audio.discover import file_sha256
from proto_index.cells import read_text_cell
from proto_index.errors import InvalidInput, NotFound
from proto_index.filenames import from_text
from proto_index.progress import Progress
from proto_index.store.schema import Annotation, ClassLabel, Environment, Recording, Window, utcnow
from proto_index.store.storage import Storage

VERDICTS = ("right", "wrong", "relabel")
REQUIRED_COLUMNS = ("path", "start_s", "end_s", "label", "verdict")
OPTIONAL_COLUMNS = ("environment", "corrected_label")
TIME_TOLERANCE_S = 1e-3  # CSV offsets carry 6 decimals; windows match within a millisecond


@dataclass
class AnnotateReport:
    stored: int = 0
    replaced: int = 0  # of ``stored``: windows that already had a verdict (latest wins)
    problems: list[str] = field(default_factory=list)  # one line per row not stored (the first MAX_PROBLEMS_KEPT)
    not_stored: int = 0  # every row not stored


@dataclass(frozen=True)
class Confirmed:
    """Windows (or whole recordings) a person confirmed as ``label``, with their vectors."""

    labels: list[str]
    environments: list[str | None]
    vectors: np.ndarray  # (n, d)
    window_ids: list[int | None]


BATCH_ROWS = 5000
"""Rows per transaction: other writers wait at most one batch, and a crash loses at most one."""
MAX_PROBLEMS_KEPT = 1000
"""Problem lines kept in the report (all are counted, and each goes to ``progress.note`` as it is met)."""
_IN_CHUNK = 500  # ids per SQL ``IN (...)``, well under SQLite's variable limit


def annotate(storage: Storage, decisions: Path, source: str | None = None, progress: Progress | None = None,
             batch_rows: int = BATCH_ROWS) -> AnnotateReport:
    """Store every valid row of ``decisions``; each bad row becomes one line of ``problems``.

    A row is bad when its recording, window, verdict, environment (not one of the store's) or label
    or corrected label (in no class set of the store) is. Rows are stored ``batch_rows`` at a time,
    each batch committed; a rerun of the same file stores the same verdicts (latest wins per window).
    """
    decisions = Path(decisions)
    source = source or decisions.name
    total = _count_rows(decisions)
    report = AnnotateReport()
    with storage.session() as s:
        known = _Known(set(s.scalars(select(Environment.name))), set(s.scalars(select(ClassLabel.label))))
    if progress is not None:
        progress.start(total, f"annotate {decisions.name}")
    for batch in _batches(_read_rows(decisions), batch_rows):
        with storage.session() as s:
            _store_batch(s, batch, decisions, source, known, report, progress)
        if progress is not None:
            progress.advance(len(batch))
    return report


@dataclass(frozen=True)
class _Known:
    environments: set[str]
    labels: set[str]


def _store_batch(s, batch, decisions: Path, source: str, known: _Known, report: AnnotateReport, progress) -> None:
    """Check and store one batch in session ``s``: earlier verdicts on its windows are replaced."""
    lookup = _Lookup(s, decisions.parent)
    lookup.prefetch([row.get("path", "") for _, row in batch])
    pending: dict[tuple[int, int | None], dict] = {}
    for line, row in batch:
        try:
            ann = _annotation(lookup, row, known, source)
        except InvalidInput as e:
            report.not_stored += 1
            message = f"{decisions.name} line {line}: {e}"
            if len(report.problems) < MAX_PROBLEMS_KEPT:
                report.problems.append(message)
            if progress is not None:
                progress.note(message)
            continue
        key = (ann["recording_id"], ann["window_id"])
        report.stored += 1
        report.replaced += pending.pop(key, None) is not None
        pending[key] = ann
    old = _existing(s, list(pending))
    report.replaced += len(old)
    for chunk in _chunks(sorted(old), _IN_CHUNK):
        s.execute(delete(Annotation).where(Annotation.id.in_(chunk)))
    if pending:
        s.execute(insert(Annotation), list(pending.values()))


def _existing(s, keys: list[tuple[int, int | None]]) -> list[int]:
    """Ids of the stored annotations on any of ``keys`` (recording_id, window_id or None: whole recording)."""
    windows = [w for _, w in keys if w is not None]
    whole = [r for r, w in keys if w is None]
    ids = []
    for chunk in _chunks(windows, _IN_CHUNK):
        ids += s.scalars(select(Annotation.id).where(Annotation.window_id.in_(chunk)))
    for chunk in _chunks(whole, _IN_CHUNK):
        ids += s.scalars(select(Annotation.id).where(Annotation.window_id.is_(None), Annotation.recording_id.in_(chunk)))
    return ids


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _batches(rows: Iterator, n: int) -> Iterator[list]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _open_csv(path: Path):
    try:
        info = os.stat(path)
    except OSError as e:
        raise NotFound(f"{path}: {e.strerror or e}") from None
    except ValueError:  # a NUL byte in the name
        raise InvalidInput(f"{path!r}: not a valid file name") from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"{path}: not a regular file")
    return open(path, newline="", encoding="utf-8-sig")


def _count_rows(path: Path) -> int:
    """Data rows of the CSV (the progress total), read through once before anything is stored, so a
    file that is not a readable decisions CSV stores nothing."""
    return sum(1 for _ in _read_rows(path))


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of each data row, read as they are needed (bounded memory)."""
    try:
        with _open_csv(path) as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise InvalidInput(
                    f"{path}: missing column(s) {', '.join(missing)} (a decisions CSV has "
                    f"{','.join(REQUIRED_COLUMNS[:3])},environment,{','.join(REQUIRED_COLUMNS[3:])},corrected_label)"
                )
            reader.fieldnames = header
            first = reader.line_num + 1  # a row's first line (a quoted cell can span several)
            for r in reader:
                # text cells as the report's page writes them: a leading ' stops a spreadsheet formula
                yield first, {k: read_text_cell((v or "").strip()) for k, v in r.items() if isinstance(k, str)}
                first = reader.line_num + 1
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not a UTF-8 text CSV") from None
    except csv.Error as e:
        raise InvalidInput(f"{path}: not a readable CSV ({e})") from None


def _annotation(lookup: "_Lookup", row: dict[str, str], known: _Known, source: str) -> dict:
    verdict = row.get("verdict", "").lower()
    if verdict not in VERDICTS:
        raise InvalidInput(f"verdict {row.get('verdict', '')!r} is not one of {', '.join(VERDICTS)}")
    label, corrected = row.get("label", ""), row.get("corrected_label", "") or None
    if not label:
        raise InvalidInput("empty label")
    if verdict == "relabel" and not corrected:
        raise InvalidInput("verdict relabel needs a corrected_label")
    if verdict != "relabel":
        corrected = None
    environment = row.get("environment") or None
    if environment is not None and environment not in known.environments:
        raise InvalidInput(f"environment {environment!r} is not one of this store's environments "
                           "(add it with `env add`, or leave the cell empty)")
    for column, value in (("label", label), ("corrected_label", corrected)):
        if value is not None and value not in known.labels:
            raise InvalidInput(f"{column} {value!r} is in no class set of this store (see `classes list`)")
    rec_id, rec_path = lookup.recording(row.get("path", ""))
    window_id = None
    start, end = row.get("start_s", ""), row.get("end_s", "")
    if start or end:
        try:
            start_s, end_s = float(start), float(end)
        except ValueError:
            raise InvalidInput(f"start_s/end_s {start!r}/{end!r} are not numbers") from None
        window_id = lookup.window(rec_id, start_s, end_s)
        if window_id is None:
            raise InvalidInput(f"{rec_path} has no stored window {start_s:g}-{end_s:g} s")
    return dict(recording_id=rec_id, window_id=window_id, environment=environment, label=label, verdict=verdict,
                corrected_label=corrected, source=source, created_at=utcnow())


class _Lookup:
    """Recordings and windows of one batch, each looked up once (a batch's worth of memory)."""

    def __init__(self, s, base: Path):
        self.s, self.base = s, base
        self.recordings: dict[str, tuple[int, str]] = {}
        self.windows: dict[int, list[tuple[float, float, int]]] = {}
        self.hashes: dict[Path, str | None] = {}

    def prefetch(self, cells: list[str]) -> None:
        """Look up the recordings the batch names by path, and their windows, a few queries in all."""
        wanted: dict[str, list[str]] = {}  # stored path -> the cells that may name it
        for cell in set(cells):
            if cell and "\x00" not in cell:
                path = from_text(cell)  # a file: URI stands for a name that is not UTF-8
                for name in (path, _absolute(path, self.base)):
                    wanted.setdefault(name, []).append(cell)
        found: dict[str, tuple[int, str]] = {}
        for chunk in _chunks(list(wanted), _IN_CHUNK):
            for rec_id, path in self.s.execute(select(Recording.id, Recording.path).where(Recording.path.in_(chunk))):
                found[path] = (rec_id, path)
        for path, rec in found.items():
            for cell in wanted[path]:
                if cell not in self.recordings or cell == path:  # the cell as written wins over its absolute form
                    self.recordings[cell] = rec
        ids = sorted({rec_id for rec_id, _ in found.values()})
        for chunk in _chunks(ids, _IN_CHUNK):
            for rec_id in chunk:
                self.windows[rec_id] = []
            for w in self.s.execute(select(Window.recording_id, Window.start_s, Window.end_s, Window.id)
                                    .where(Window.recording_id.in_(chunk))):
                self.windows[w[0]].append((w[1], w[2], w[3]))
        for spans in self.windows.values():
            spans.sort()

    def recording(self, cell: str) -> tuple[int, str]:
        if cell not in self.recordings:
            rec = _recording(self.s, from_text(cell), self.base, self.hashes)
            self.recordings[cell] = (rec.id, rec.path)
        return self.recordings[cell]

    def window(self, rec_id: int, start_s: float, end_s: float) -> int | None:
        if rec_id not in self.windows:
            self.windows[rec_id] = sorted(tuple(w) for w in self.s.execute(
                select(Window.start_s, Window.end_s, Window.id).where(Window.recording_id == rec_id)))
        spans = self.windows[rec_id]
        i = bisect.bisect_left(spans, (start_s - TIME_TOLERANCE_S,))
        while i < len(spans) and spans[i][0] <= start_s + TIME_TOLERANCE_S:
            if abs(spans[i][1] - end_s) <= TIME_TOLERANCE_S:
                return spans[i][2]
            i += 1
        return None


def _absolute(cell: str, base: Path) -> str:
    """A CSV path cell as an absolute path (relative ones are relative to the CSV's folder)."""
    path = Path(cell)
    return os.path.abspath(path if path.is_absolute() else base / path)


def _recording(s, cell: str, base: Path, hashes: dict) -> Recording:
    """The stored recording a CSV path names: by path, else by the content hash of a regular file there."""
    if not cell or "\x00" in cell:
        raise InvalidInput("empty or invalid path")
    path = Path(_absolute(cell, base))
    rec = s.scalar(select(Recording).where(Recording.path.in_([cell, str(path)])).limit(1))
    if rec is not None:
        return rec
    if path not in hashes:
        try:
            hashes[path] = file_sha256(path) if stat.S_ISREG(os.stat(path).st_mode) else None
        except OSError:
            hashes[path] = None
    rec = s.scalar(select(Recording).where(Recording.sha256 == hashes[path])) if hashes[path] else None
    if rec is None:
        raise InvalidInput(f"{cell}: not a recording of this store's corpus (ingest it, then annotate)")
    return rec


def confirmed(storage: Storage, environment: str | None = None) -> Confirmed:
    """Every confirmation: ``right`` -> its label, ``relabel`` -> its corrected label (``wrong`` left out).

    A window annotation's vector is the window's; a whole-recording annotation's is the mean of
    the recording's windows (as classify's clip vector). Ordered by annotation id.
    """
    with storage.session() as s:
        q = select(Annotation).where(Annotation.verdict != "wrong").order_by(Annotation.id)
        if environment is not None:
            q = q.where(Annotation.environment == environment)
        anns = list(s.scalars(q))
        items = []
        for a in anns:
            rows = [a.window.vector_row] if a.window is not None else [w.vector_row for w in a.recording.windows]
            label = a.corrected_label if a.verdict == "relabel" and a.corrected_label else a.label  # relabel has one
            items.append((label, a.environment, rows, a.window_id))
    dim = storage.identity.dim
    vectors = np.zeros((len(items), dim), np.float64)
    for i, (_, _, rows, _) in enumerate(items):
        vectors[i] = np.asarray(storage.vectors.read(rows), np.float64).mean(axis=0)
    return Confirmed([t[0] for t in items], [t[1] for t in items], vectors, [t[3] for t in items])


def annotated_window_ids(storage: Storage) -> set[int]:
    """Windows that carry any verdict (blend never borrows them as neighbours)."""
    with storage.session() as s:
        return set(s.scalars(select(Annotation.window_id).where(Annotation.window_id.is_not(None))))
