"""Reading CSV inputs: classification manifests (`path`, `environment`, ...) and other path tables."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from proto_index.errors import InvalidInput, NotFound

REQUIRED = ("path", "environment")


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    environment: str
    extra: dict[str, str]


def read_table(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV's header and its rows as ``(line number, {column: stripped value})``.

    Raises NotFound for a missing file and InvalidInput naming the file for missing columns or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no such CSV file: {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'no header'})")
        rows = [(line, {(k or "").strip(): (v or "").strip() for k, v in r.items()}) for line, r in enumerate(reader, start=2)]
    if not rows:
        raise InvalidInput(f"{path}: no rows")
    return header, rows


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
