"""What a review report shows, from a classification CSV: pure functions over rows (no audio, no HTML).

The CSV is the one ``classify`` writes: ``path,[start_s,end_s,]environment,adaptation,tau,label,score,
margin,error`` and, with ``--all-scores``, one column per class after ``error``.
"""
from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from proto_index.errors import Hint, InvalidInput
from proto_index.cells import read_text_cell
from proto_index.outputs.exports import TEXT_FIELDS

REQUIRED_COLUMNS = ("path", "environment", "adaptation", "tau", "label", "score", "margin", "error")
WINDOW_COLUMNS = ("start_s", "end_s")


@dataclass(frozen=True)
class Row:
    """One classified clip or window. ``top`` holds up to three ``(class, refined score)``, best first."""

    index: int  # 0-based data row in the CSV
    path: str  # as written in the CSV
    start_s: float | None
    end_s: float | None
    environment: str
    adaptation: str
    tau: float | None
    label: str
    score: float | None
    margin: float | None
    error: str
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Table:
    """A parsed classification CSV. ``score_labels`` is empty without ``--all-scores`` columns."""

    rows: list[Row]
    per_window: bool
    score_labels: list[str]


@dataclass(frozen=True)
class EnvironmentSummary:
    name: str
    adaptations: dict[str, int]  # adaptation -> rows
    taus: list[float]  # distinct taus used (sorted)
    rows: int


@dataclass
class Summary:
    rows: int
    failed: int
    per_window: bool
    has_all_scores: bool
    label_counts: dict[tuple[str, str], int]  # (environment, label) -> rows
    environments: list[EnvironmentSummary] = field(default_factory=list)


def _number(raw: str, column: str, line: int) -> float | None:
    if raw == "":
        return None
    try:
        x = float(raw)
    except ValueError:
        raise InvalidInput(f"line {line}: {column} {raw[:40]!r} is not a number") from None
    return x if math.isfinite(x) else None  # nan/inf: not a score the page can show


def parse_table(text: str, name: str = "CSV") -> Table:
    """Parse a classification CSV's text; a missing column or a non-number is one ``InvalidInput`` line."""
    try:
        return _parse(csv.reader(io.StringIO(text, newline="")), name)
    except csv.Error as e:
        raise InvalidInput(f"{name} is not a readable CSV: {e}") from None


def _parse(reader, name: str) -> Table:
    header = next(reader, None)
    if not header:
        raise InvalidInput(f"{name} is empty: expected a classification CSV with columns {','.join(REQUIRED_COLUMNS)}")
    header = [read_text_cell(h.strip()) for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InvalidInput(
            f"{name} is not a classification CSV: missing column(s) {', '.join(missing)} "
            f"(expected {','.join(REQUIRED_COLUMNS)}, as `proto-index classify` writes)"
        )
    pos = {c: header.index(c) for c in REQUIRED_COLUMNS}
    per_window = all(c in header for c in WINDOW_COLUMNS)
    if per_window:
        pos.update({c: header.index(c) for c in WINDOW_COLUMNS})
    score_cols = list(range(pos["error"] + 1, len(header)))
    score_labels = [header[i] for i in score_cols]
    rows: list[Row] = []
    for cells in reader:
        line = reader.line_num
        if not cells:
            continue
        if len(cells) < len(header):
            cells = cells + [""] * (len(header) - len(cells))
        get = lambda c: read_text_cell(cells[pos[c]]) if c in TEXT_FIELDS else cells[pos[c]]  # noqa: E731
        top: tuple = ()
        if score_cols:
            values = [(score_labels[j], _number(cells[k], score_labels[j], line)) for j, k in enumerate(score_cols)]
            top = tuple(sorted(((lab, v) for lab, v in values if v is not None), key=lambda t: -t[1])[:3])
        score = _number(get("score"), "score", line)
        if not top and score is not None and get("label"):
            top = ((get("label"), score),)
        rows.append(Row(
            index=len(rows),
            path=get("path"),
            start_s=_number(get("start_s"), "start_s", line) if per_window else None,
            end_s=_number(get("end_s"), "end_s", line) if per_window else None,
            environment=get("environment"),
            adaptation=get("adaptation"),
            tau=_number(get("tau"), "tau", line),
            label=get("label"),
            score=score,
            margin=_number(get("margin"), "margin", line),
            error=get("error"),
            top=top,
        ))
    return Table(rows, per_window, score_labels)


def summarise(table: Table) -> Summary:
    """Counts per environment and label, and each environment's adaptations and taus (over every row)."""
    counts: Counter = Counter()
    adaptations: dict[str, Counter] = defaultdict(Counter)
    taus: dict[str, set] = defaultdict(set)
    per_env: Counter = Counter()
    failed = 0
    for r in table.rows:
        per_env[r.environment] += 1
        adaptations[r.environment][r.adaptation] += 1
        if r.tau is not None:
            taus[r.environment].add(r.tau)
        if r.error:
            failed += 1
        else:
            counts[(r.environment, r.label)] += 1
    envs = [EnvironmentSummary(e, dict(adaptations[e]), sorted(taus[e]), per_env[e]) for e in sorted(per_env)]
    return Summary(len(table.rows), failed, table.per_window, bool(table.score_labels),
                   dict(sorted(counts.items())), envs)


def select_rows(rows: Sequence[Row], per_label: int) -> list[Row]:
    """At most ``per_label`` rows per (environment, label): the least certain half (smallest margin) and
    the rest spread evenly over the remaining margins, so a group of any size gives a bounded, representative
    sample. Order: by environment, label, then margin ascending. Deterministic."""
    if per_label < 1:
        raise InvalidInput("rows per label must be at least 1", hint=Hint("per_label"))
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(r.environment, r.label)].append(r)
    out: list[Row] = []
    for key in sorted(groups):
        g = sorted(groups[key], key=_uncertainty_key)
        if len(g) > per_label:
            least = per_label - per_label // 2
            rest = g[least:]
            spread = np.linspace(0, len(rest) - 1, per_label - least).round().astype(int) if per_label > least else []
            g = g[:least] + [rest[i] for i in sorted(set(int(i) for i in spread))]
        out.extend(g)
    return out


def _uncertainty_key(r: Row) -> tuple:
    return (math.inf if r.margin is None else r.margin, r.index)


def histogram(values: Iterable[float | None], bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of the finite values (empty arrays when there are none)."""
    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if x.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.histogram(x, bins=bins, range=(lo, hi))


def review_csv(decisions: Sequence[dict]) -> str:
    """The review download's CSV (the same text the report's JavaScript produces; ``annotate`` reads it):
    ``path,start_s,end_s,environment,label,verdict,corrected_label``."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(REVIEW_COLUMNS)
    for d in decisions:
        w.writerow([d.get(c, "") for c in REVIEW_COLUMNS])
    return buf.getvalue()


REVIEW_COLUMNS = ("path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label")
VERDICTS = ("right", "wrong", "relabel")
