"""Classification results in the formats of the field: CSV, JSON Lines, Parquet, Raven Pro selection
tables and Audacity label tracks. Every writer goes through a temporary file and a rename.

Every format keeps, per row, the source file, the window's [start, end) in it, the environment,
the prototype set, the adaptation and tau, the label, score and margin (Audacity keeps the
label in its track and the rest in the folder's ``files.csv``). A file-level result is one
selection over the whole file.

Raven: ONE selection table for the run. Its timeline is the run's recordings laid end to end in
sorted path order (Raven's order for a multi-file sound opened from one folder): ``Begin Time``
is the recording's start on that timeline plus the window's offset, ``Begin File``/``File
Offset (s)`` (and ``Begin Path``) locate it in its own file, so tools that read those columns
never depend on the order. One table keeps a run in one file to filter, merge and share.

Kaleidoscope (Wildlife Acoustics): ONE CSV for the run with the columns Kaleidoscope reads from an
``id.csv``/``cluster.csv``: ``INDIR`` (the folder every recording of the run is under), ``FOLDER``
(the recording's folder below it, empty at the top), ``IN FILE`` (its name), ``CHANNEL`` (0: the
audio is classified as one mono channel), ``OFFSET`` and ``DURATION`` (the window in seconds; a
file-level row spans the file), ``TOP1MATCH`` (the label) and ``TOP1DIST`` (its score: as
BirdNET-Analyzer writes it, a score where higher is better, not a distance), ``MANUAL ID`` (empty,
for the reviewer), ``MARGIN``; then proto-index's own ``ENVIRONMENT``, ``PROTOTYPES``,
``ADAPTATION``, ``TAU``, ``PATH`` (the recording, losslessly: see :mod:`proto_index.filenames`) and
one ``score:<label>`` column per class when asked (Kaleidoscope shows only the columns it knows).
A folder or file name that is not UTF-8 is written percent-encoded in INDIR/FOLDER/IN FILE.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import quote_from_bytes

from proto_index.cells import FORMULA_START, read_text_cell, text_cell  # noqa: F401  (re-exported)
from proto_index.atomic import check_output_file, fsync_dir, open_output, refuse_stdout, temp_name
from proto_index.errors import AudioDecodeError, InvalidInput, NotFound
from proto_index.filenames import as_text, from_text, is_text, to_bytes

if TYPE_CHECKING:
    import pyarrow

FORMATS = ("csv", "jsonl", "parquet", "raven", "audacity", "kaleidoscope")
ROW_FIELDS = ("path", "start_s", "end_s", "environment", "prototypes", "adaptation", "tau", "label", "score", "margin", "error")
RAVEN_COLUMNS = (
    "Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)",
    "Begin File", "File Offset (s)", "Begin Path", "Label", "Score", "Margin", "Environment", "Prototypes",
    "Adaptation", "Tau",
)
KALEIDOSCOPE_COLUMNS = (
    "INDIR", "FOLDER", "IN FILE", "CHANNEL", "OFFSET", "DURATION", "TOP1MATCH", "TOP1DIST", "MANUAL ID", "MARGIN",
    "ENVIRONMENT", "PROTOTYPES", "ADAPTATION", "TAU", "PATH",
)
AUDACITY_INDEX = "files.csv"
TEXT_FIELDS = ("path", "environment", "prototypes", "adaptation", "label", "error")


@dataclass(frozen=True)
class ExportRow:
    """One classified file or window, independent of where it came from (a run or its CSV)."""

    path: str
    start_s: float | None
    end_s: float | None
    environment: str
    prototypes: str
    adaptation: str
    tau: float | None
    label: str | None
    score: float | None
    margin: float | None
    error: str | None
    scores: dict[str, float | None] | None = None


@dataclass(frozen=True)
class AudioFacts:
    duration_s: float
    sample_rate: int


def rows_of(result, prototypes: str) -> list[ExportRow]:
    """The rows of a :class:`proto_index.usecases.classify.Classification`."""
    out = []
    for r in result.files:
        scores = dict(zip(result.labels, (float(v) for v in r.scores))) if r.scores is not None else None
        # as_text: a file name that is not UTF-8 becomes its lossless file: URI (every format is UTF-8)
        out.append(ExportRow(as_text(r.path), r.start_s, r.end_s, r.environment, prototypes, r.adaptation, _num(r.tau),
                             r.label, _num(r.score), _num(r.margin), r.error, scores))
    return out


def write_result(result, out: str | Path, fmt: str = "csv", all_scores: bool = False) -> Path:
    """Write a :class:`~proto_index.usecases.classify.Classification` to ``out`` in ``fmt``: one row
    per input (per window, with start_s and end_s, for a per-window result); ``all_scores`` adds a
    column per class (its refined score; csv, parquet and kaleidoscope). Written to a temporary file and renamed,
    so an interrupted run never leaves half a file."""
    return export(rows_of(result, result.prototypes), Path(out), fmt, result.labels if all_scores else None)


def export(rows: list[ExportRow], out: Path, fmt: str, labels: list[str] | None = None, facts=None) -> Path:
    """Write ``rows`` to ``out`` in ``fmt`` (audacity: ``out`` is a folder). ``labels``: the class
    order for per-class score columns (csv/parquet/kaleidoscope; None leaves them out).
    ``facts(path)`` gives a recording's :class:`AudioFacts` (default: read from the file's header)."""
    check_format(fmt)
    check_output(out, fmt)
    check_score_labels(labels or ())
    facts = facts or audio_facts
    writer = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet, "raven": _raven, "audacity": _audacity,
              "kaleidoscope": _kaleidoscope}[fmt]
    return writer(rows, Path(out), labels, facts)


def check_output(out, fmt: str) -> Path:
    """``out`` can be written: a file whose folder exists, or ``-`` for standard output (audacity: a
    folder, created if its parent exists; parquet and audacity cannot stream, so refuse ``-``)."""
    out = Path(out)
    if fmt in ("parquet", "audacity"):
        refuse_stdout(out, f"{fmt} output")
    if fmt != "audacity":
        return check_output_file(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InvalidInput(f"{out} exists and is not a folder (audacity output is a folder of label tracks)")
    if not out.absolute().parent.is_dir():
        raise NotFound(f"the folder that would hold {out.name} does not exist: {out.absolute().parent}")
    _earlier_tracks(out)
    return out


def check_score_labels(labels) -> None:
    """Refuse a class label that would be a per-class column named like a fixed one (``path``, ``score``...)."""
    clash = [lbl for lbl in labels if lbl in ROW_FIELDS]
    if clash:
        raise InvalidInput(f"label(s) {', '.join(map(repr, clash))} would be named like output column(s); "
                           f"a label cannot be any of {', '.join(ROW_FIELDS)}")


def check_format(fmt: str) -> None:
    """Refuse an unknown format, or parquet without pyarrow, before any work is done."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise InvalidInput("parquet output needs pyarrow: pip install 'proto-index[parquet]'") from None


def audio_facts(path: str) -> AudioFacts:
    from proto_index.audio.decode import open_audio

    try:
        snd = open_audio(from_text(path))
    except AudioDecodeError as e:
        raise InvalidInput(f"{path}: {e}") from None
    with snd:
        return AudioFacts(snd.frames / snd.samplerate, int(snd.samplerate))


@contextmanager
def atomic(out: Path, mode: str = "w") -> Iterator:
    """A file object whose content appears at ``out`` only when the block completes (durably); ``-``:
    standard output (see :func:`proto_index.atomic.open_output`)."""
    with open_output(out, mode, newline="" if mode == "w" else None) as f:
        yield f


def _csv(rows, out, labels, facts) -> Path:
    """classify's CSV: start_s/end_s only when rows are windows; then one column per class in ``labels``."""
    fields = [k for k in ROW_FIELDS if k not in ("start_s", "end_s") or any(r.start_s is not None for r in rows)]
    with atomic(out) as f:
        w = csv.writer(f)
        w.writerow([text_cell(h) for h in fields + list(labels or [])])
        for r in rows:
            w.writerow([_csv_cell(k, getattr(r, k)) for k in fields] + [_cell((r.scores or {}).get(lbl)) for lbl in labels or []])
    return out


def _jsonl(rows, out, labels, facts) -> Path:
    with atomic(out) as f:
        for r in rows:
            obj = {k: _json(getattr(r, k)) for k in ROW_FIELDS}
            if labels and r.scores is not None:
                obj["scores"] = {lbl: _json(r.scores[lbl]) for lbl in labels}
            f.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
    return out


def _parquet(rows, out, labels, facts) -> Path:
    """Flat typed columns (strings for path/environment/label, float64 times and scores): ready
    for ``pyarrow.dataset`` partitioning by environment or label."""
    table = parquet_table(rows, labels)
    import pyarrow.parquet as pq

    with atomic(out, "wb") as f:
        pq.write_table(table, f)
    return out


def parquet_table(rows, labels: list[str] | None = None) -> "pyarrow.Table":
    """``rows`` as the Parquet output's table: ROW_FIELDS, then ``score:<label>`` per class in ``labels``."""
    try:
        import pyarrow as pa
    except ImportError:
        raise InvalidInput("parquet output needs pyarrow: pip install 'proto-index[parquet]'") from None
    types = {"start_s": pa.float64(), "end_s": pa.float64(), "tau": pa.float64(), "score": pa.float64(), "margin": pa.float64()}
    cols = {k: pa.array([getattr(r, k) for r in rows], types.get(k, pa.string())) for k in ROW_FIELDS}
    for lbl in labels or []:
        cols[f"score:{lbl}"] = pa.array([(r.scores or {}).get(lbl) for r in rows], pa.float64())
    return pa.table(cols)


def _selections(rows, facts) -> list[tuple[ExportRow, float, float, AudioFacts]]:
    """Rows with a label, each with its [start, end) in its file (a file-level row spans the file)."""
    known: dict[str, AudioFacts] = {}
    problems = []
    for path in dict.fromkeys(r.path for r in rows if r.label and not r.error):
        try:
            known[path] = facts(path)
        except InvalidInput as e:
            problems.append(str(e))
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise InvalidInput(f"{len(problems)} recording(s) cannot be read for their duration: " + "; ".join(problems[:5]) + more)
    out = []
    for r in rows:
        if r.error or not r.label:
            continue
        f = known[r.path]
        start = 0.0 if r.start_s is None else r.start_s
        end = f.duration_s if r.end_s is None else min(r.end_s, f.duration_s)
        out.append((r, start, end, f))
    return out


def _raven(rows, out, labels, facts) -> Path:
    sel = _selections(rows, facts)
    durations = {r.path: f.duration_s for r, _, _, f in sel}
    offset, t = {}, 0.0
    for path in sorted(durations):
        offset[path] = t
        t += durations[path]
    with atomic(out) as fh:
        # cells are made tab- and newline-free, so plain joins (no quoting, no escapes: Raven has none)
        fh.write("\t".join(RAVEN_COLUMNS) + "\n")
        for i, (r, start, end, f) in enumerate(sorted(sel, key=lambda x: (x[0].path, x[1])), start=1):
            fh.write("\t".join(str(c) for c in [
                i, "Spectrogram 1", 1, _t(offset[r.path] + start), _t(offset[r.path] + end), 0, _t(f.sample_rate / 2),
                _tsv_text(Path(r.path).name), _t(start), _tsv_text(r.path), _tsv_text(r.label), _cell(r.score),
                _cell(r.margin), _tsv_text(r.environment), _tsv_text(r.prototypes), _tsv_text(r.adaptation), _cell(r.tau),
            ]) + "\n")
    return out


def _kaleidoscope(rows, out, labels, facts) -> Path:
    """One CSV of labelled windows, sorted by recording and offset (columns: the module docstring)."""
    sel = _selections(rows, facts)
    where = {r.path: os.path.split(os.path.abspath(from_text(r.path))) for r, *_ in sel}
    indir = os.path.commonpath([folder for folder, _ in where.values()]) if where else ""
    with atomic(out) as fh:
        w = csv.writer(fh)
        w.writerow([*KALEIDOSCOPE_COLUMNS, *(text_cell(f"score:{lbl}") for lbl in labels or [])])
        for r, start, end, _ in sorted(sel, key=lambda x: (x[0].path, x[1])):
            folder, name = where[r.path]
            below = os.path.relpath(folder, indir)
            w.writerow([
                *(text_cell(_name_cell(x)) for x in (indir, "" if below == "." else below, name)), 0, _t(start),
                _t(end - start), text_cell(r.label), _cell(r.score), "", _cell(r.margin),
                *map(text_cell, (r.environment, r.prototypes, r.adaptation)), _cell(r.tau), text_cell(r.path),
                *(_cell((r.scores or {}).get(lbl)) for lbl in labels or []),
            ])
    return out


def _name_cell(name: str) -> str:
    """A folder or file name as UTF-8 text: as it is, or percent-encoded when it is not UTF-8."""
    return name if is_text(name) else quote_from_bytes(to_bytes(name), safe="/")


def _audacity(rows, out, labels, facts) -> Path:
    """One label track per recording, named ``NNNN_<safe stem>.txt`` (never the input path), and
    ``files.csv`` mapping each track to its recording, environment, prototype set and adaptation.

    The folder is written under a hidden name beside ``out`` and renamed into place, so it holds one
    run's files: an earlier export there (its ``files.csv`` and the tracks it lists, nothing else)
    is replaced; a folder holding anything else is refused."""
    out = Path(os.path.abspath(out))  # a name to rename to, even for "."
    earlier = _earlier_tracks(out)
    by_path: dict[str, list] = {}
    for r, start, end, f in _selections(rows, facts):
        by_path.setdefault(r.path, []).append((start, end, r))
    tmp = temp_name(out)
    os.mkdir(tmp)
    written = []
    try:
        with atomic(tmp / AUDACITY_INDEX) as index:
            written.append(AUDACITY_INDEX)
            w = csv.writer(index)
            w.writerow(["label_track", "path", "environment", "prototypes", "adaptation", "tau"])
            for n, (path, spans) in enumerate(sorted(by_path.items()), start=1):
                name = f"{n:04d}_{safe_stem(path)}.txt"
                written.append(name)
                with atomic(tmp / name) as fh:
                    for start, end, r in sorted(spans, key=lambda s: s[0]):
                        fh.write(f"{_t(start)}\t{_t(end)}\t{_tsv(r.label)}\n")
                first = spans[0][2]
                taus = sorted({_cell(r.tau) for _, _, r in spans})
                w.writerow([name, *map(text_cell, (path, first.environment, first.prototypes, first.adaptation)), ";".join(taus)])
        _swap_in(tmp, out, earlier)
    except BaseException:
        _remove(tmp, written)
        raise
    return out


TRACK_NAME = re.compile(r"[0-9]{4,}_[A-Za-z0-9._-]*\.txt")


def _earlier_tracks(out: Path) -> list[str] | None:
    """The files of an earlier audacity export at ``out`` (None: no folder, or an empty one);
    :class:`InvalidInput` if ``out`` holds anything an export did not write."""
    if not out.is_dir():
        return None
    names = set(os.listdir(out))
    if not names:
        return None
    if AUDACITY_INDEX not in names:
        raise InvalidInput(f"{out} is not empty and holds no earlier label tracks ({AUDACITY_INDEX}); choose an empty folder")
    try:
        with open(out / AUDACITY_INDEX, newline="", encoding="utf-8") as f:
            listed = {read_text_cell(r.get("label_track") or "") for r in csv.DictReader(f)}
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InvalidInput(f"{out / AUDACITY_INDEX}: not an earlier export's index ({e})") from None
    own = {AUDACITY_INDEX} | {n for n in listed if TRACK_NAME.fullmatch(n)}
    foreign = sorted(n for n in names if n not in own or not stat.S_ISREG(os.lstat(out / n).st_mode))
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise InvalidInput(f"{out} holds files no earlier export wrote ({', '.join(foreign[:3])}{more}); choose an empty folder")
    return sorted(names)


def _swap_in(tmp: Path, out: Path, earlier: list[str] | None) -> None:
    """Rename the finished folder ``tmp`` to ``out``; an earlier export there (its files ``earlier``) goes."""
    old = None
    if earlier is not None:
        old = temp_name(out)
        os.rename(out, old)
    try:
        os.rename(tmp, out)  # onto an empty folder, or none
    except OSError as e:
        if old is not None:
            os.rename(old, out)
        raise InvalidInput(f"{out}: cannot put the label tracks in place ({e.strerror or e}); choose an empty folder") from None
    fsync_dir(out.absolute().parent)
    if old is not None:
        _remove(old, earlier or [])


def _remove(folder: Path, names: list[str]) -> None:
    """Delete the files ``names`` this or an earlier export wrote in ``folder``, then the folder if empty."""
    for name in names:
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # something else appeared in it meanwhile: left as it is


def safe_stem(path: str, limit: int = 60) -> str:
    """A file-name-safe stand-in for a recording's stem: ASCII letters, digits, ``-``, ``_``, ``.``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem).strip("._") or "recording"
    return stem[:limit]


def _tsv(text) -> str:
    """A cell for a tab-separated table: tabs and line breaks become spaces."""
    return re.sub(r"[\t\r\n]", " ", str(text if text is not None else ""))


def _tsv_text(text) -> str:
    """A text cell of a tab-separated table meant for spreadsheets too (Raven's)."""
    return text_cell(_tsv(text))


def _csv_cell(field: str, value) -> str:
    if field in ("start_s", "end_s"):
        return _time_cell(value)
    return text_cell(value) if field in TEXT_FIELDS else _cell(value)


def _t(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") if x else "0"


def _time_cell(x: float | None) -> str:
    return "" if x is None else _t(x)


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _cell(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:.6f}"
    return str(x)


def _json(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def read_classification(path: Path) -> tuple[list[ExportRow], list[str]]:
    """The rows of a CSV written by ``classify`` (with per-class score columns, if any: their labels)."""
    import stat

    path = Path(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise InvalidInput(f"{path}: not a regular file")
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [read_text_cell(h) for h in reader.fieldnames or []]
            repeated = sorted({h for h in header if header.count(h) > 1})
            if repeated:
                raise InvalidInput(f"{path}: column(s) {', '.join(map(repr, repeated))} appear more than once; "
                                   "not a classification CSV")
            reader.fieldnames = header
            missing = [c for c in ("path", "environment", "label") if c not in header]
            if missing:
                raise InvalidInput(f"{path}: not a classification CSV (missing column(s) {', '.join(missing)})")
            labels = [h for h in header if h and h not in ROW_FIELDS]
            rows = []
            for r in reader:
                try:
                    num = {k: _parse(r.get(k)) for k in ("start_s", "end_s", "tau", "score", "margin")}
                    scores = {lbl: _parse(r.get(lbl)) for lbl in labels} if labels and r.get("label") else None
                except ValueError as e:
                    raise InvalidInput(f"{path} line {reader.line_num}: {e}") from None
                text = {k: read_text_cell(r.get(k) or "") for k in TEXT_FIELDS}
                rows.append(ExportRow(text["path"], num["start_s"], num["end_s"], text["environment"], text["prototypes"],
                                      text["adaptation"], num["tau"], text["label"] or None, num["score"], num["margin"],
                                      text["error"] or None, scores))
    except OSError as e:
        raise InvalidInput(f"{path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise InvalidInput(f"{path}: not a readable CSV ({e})") from None
    return rows, labels


def _parse(cell: str | None) -> float | None:
    if cell is None or cell == "":
        return None
    try:
        x = float(cell)
    except ValueError:
        raise ValueError(f"{cell!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{cell!r} is not a finite number")
    return x
