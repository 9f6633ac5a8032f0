"""Reading CSV inputs: classification manifests (`path`, `environment`, ...) and other path tables."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from proto_index.errors import InvalidInput
from proto_index.inputs.text_files import open_text_file

REQUIRED = ("path", "environment")


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    environment: str
    extra: dict[str, str]


def read_table(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV's header and its rows as ``(line number, {column: stripped value})``.

    Raises :func:`~proto_index.inputs.text_files.open_text_file`'s errors (a missing file, one
    that is not a regular file or not UTF-8) and InvalidInput naming the file for one that is not
    CSV, has missing columns, a row with more fields than the header, or no rows.
    """
    path = Path(path)
    try:
        with open_text_file(path, "CSV file") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, restkey=_EXTRA)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'no header'})")
            rows = []
            for r in reader:
                if _EXTRA in r:
                    raise InvalidInput(f"{path}, line {reader.line_num}: {len(r[_EXTRA])} more field(s) than the "
                                       "header has (quote a value that holds a comma)")
                rows.append((reader.line_num, {(k or "").strip(): (v or "").strip() for k, v in r.items()}))
    except csv.Error as e:
        raise InvalidInput(f"{path}: not a readable CSV file ({e})") from None
    if not rows:
        raise InvalidInput(f"{path}: no rows")
    return header, rows


_EXTRA = "\0extra"  # the key csv.DictReader puts the surplus fields of a long row under


def resolve(table: Path, value: str) -> Path:
    """A path from a CSV cell: absolute as given, else relative to the CSV's folder."""
    p = Path(value)
    return p if p.is_absolute() else Path(table).parent / p


def read_manifest(manifest: Path) -> list[ManifestRow]:
    """Rows of the manifest; relative paths are taken relative to the manifest's folder."""
    _, rows = read_table(manifest, REQUIRED)
    out = []
    for line, raw in rows:
        if not raw["path"] or not raw["environment"]:
            raise InvalidInput(f"{manifest}, line {line}: empty path or environment")
        extra = {k: v for k, v in raw.items() if k not in REQUIRED}
        out.append(ManifestRow(resolve(manifest, raw["path"]), raw["environment"], extra))
    return out
