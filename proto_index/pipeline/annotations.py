"""Reviewed verdicts (``proto-index annotate``): read a decisions CSV, store it, read confirmations back.

A decisions CSV has the columns ``path,start_s,end_s,environment,label,verdict,corrected_label``
(the report's review download). ``verdict`` is ``right`` (the label is confirmed), ``wrong``
(rejected) or ``relabel`` (``corrected_label`` is the true class). Empty ``start_s``/``end_s``
annotate the whole recording. Paths resolve to stored recordings by path, else by content hash.
"""
from __future__ import annotations

import csv
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select

from proto_index.audio.discover import file_sha256
from proto_index.errors import InvalidInput, NotFound
from proto_index.store.schema import Annotation, Recording, Window
from proto_index.store.storage import Storage

VERDICTS = ("right", "wrong", "relabel")
REQUIRED_COLUMNS = ("path", "start_s", "end_s", "label", "verdict")
OPTIONAL_COLUMNS = ("environment", "corrected_label")
TIME_TOLERANCE_S = 1e-3  # CSV offsets carry 6 decimals; windows match within a millisecond


@dataclass
class AnnotateReport:
    stored: int = 0
    replaced: int = 0  # of ``stored``: windows that already had a verdict (latest wins)
    problems: list[str] = field(default_factory=list)  # one line per row not stored


@dataclass(frozen=True)
class Confirmed:
    """Windows (or whole recordings) a person confirmed as ``label``, with their vectors."""

    labels: list[str]
    environments: list[str | None]
    vectors: np.ndarray  # (n, d)
    window_ids: list[int | None]


def annotate(storage: Storage, decisions: Path, source: str | None = None) -> AnnotateReport:
    """Store every valid row of ``decisions``; each bad row becomes one line of ``problems``."""
    decisions = Path(decisions)
    source = source or decisions.name
    rows = _read_rows(decisions)
    report = AnnotateReport()
    hashes: dict[Path, str | None] = {}
    with storage.session() as s:
        for line, row in rows:
            where = f"{decisions.name} line {line}"
            try:
                ann = _annotation(s, row, decisions.parent, hashes, source)
            except InvalidInput as e:
                report.problems.append(f"{where}: {e}")
                continue
            old = s.execute(
                delete(Annotation).where(
                    Annotation.recording_id == ann.recording_id,
                    Annotation.window_id.is_(None) if ann.window_id is None else Annotation.window_id == ann.window_id,
                )
            ).rowcount
            s.add(ann)
            s.flush()
            report.stored += 1
            report.replaced += bool(old)
    return report


def _read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        info = os.stat(path)
    except OSError as e:
        raise NotFound(f"{path}: {e.strerror or e}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"{path}: not a regular file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise InvalidInput(
                    f"{path}: missing column(s) {', '.join(missing)} (a decisions CSV has "
                    f"{','.join(REQUIRED_COLUMNS[:3])},environment,{','.join(REQUIRED_COLUMNS[3:])},corrected_label)"
                )
            reader.fieldnames = header
            return [(reader.line_num, {k: (v or "").strip() for k, v in r.items() if isinstance(k, str)}) for r in reader]
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not a UTF-8 text CSV") from None
    except csv.Error as e:
        raise InvalidInput(f"{path}: not a readable CSV ({e})") from None


def _annotation(s, row: dict[str, str], base: Path, hashes: dict, source: str) -> Annotation:
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
    rec = _recording(s, row.get("path", ""), base, hashes)
    window_id = None
    start, end = row.get("start_s", ""), row.get("end_s", "")
    if start or end:
        try:
            start_s, end_s = float(start), float(end)
        except ValueError:
            raise InvalidInput(f"start_s/end_s {start!r}/{end!r} are not numbers") from None
        window_id = s.scalar(
            select(Window.id).where(
                Window.recording_id == rec.id,
                Window.start_s.between(start_s - TIME_TOLERANCE_S, start_s + TIME_TOLERANCE_S),
                Window.end_s.between(end_s - TIME_TOLERANCE_S, end_s + TIME_TOLERANCE_S),
            )
        )
        if window_id is None:
            raise InvalidInput(f"{rec.path} has no stored window {start_s:g}-{end_s:g} s")
    return Annotation(
        recording_id=rec.id, window_id=window_id, environment=row.get("environment") or None, label=label,
        verdict=verdict, corrected_label=corrected, source=source,
    )


def _recording(s, cell: str, base: Path, hashes: dict) -> Recording:
    """The stored recording a CSV path names: by path, else by the content hash of a regular file there."""
    if not cell or "\x00" in cell:
        raise InvalidInput("empty or invalid path")
    path = Path(cell)
    if not path.is_absolute():
        path = base / path
    path = Path(os.path.abspath(path))
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
            rows = [a.window.vector_row] if a.window_id is not None else [w.vector_row for w in a.recording.windows]
            items.append((a.corrected_label if a.verdict == "relabel" else a.label, a.environment, rows, a.window_id))
    dim = storage.identity.dim
    vectors = np.zeros((len(items), dim), np.float64)
    for i, (_, _, rows, _) in enumerate(items):
        vectors[i] = np.asarray(storage.vectors.read(rows), np.float64).mean(axis=0)
    return Confirmed([t[0] for t in items], [t[1] for t in items], vectors, [t[3] for t in items])


def annotated_window_ids(storage: Storage) -> set[int]:
    """Windows that carry any verdict (blend never borrows them as neighbours)."""
    with storage.session() as s:
        return set(s.scalars(select(Annotation.window_id).where(Annotation.window_id.is_not(None))))
