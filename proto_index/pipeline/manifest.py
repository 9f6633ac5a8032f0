"""Reading a classification manifest: a CSV with at least `path` and `environment` columns."""
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


def read_manifest(manifest: Path) -> list[ManifestRow]:
    """Rows of the manifest; relative paths are taken relative to the manifest's folder."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise NotFound(f"no such manifest: {manifest}")
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InvalidInput(
                f"{manifest}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'no header'})"
            )
        rows = []
        for line, raw in enumerate(reader, start=2):
            raw = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            if not raw["path"] or not raw["environment"]:
                raise InvalidInput(f"{manifest}, line {line}: empty path or environment")
            path = Path(raw["path"])
            if not path.is_absolute():
                path = manifest.parent / path
            extra = {k: v for k, v in raw.items() if k not in REQUIRED}
            rows.append(ManifestRow(path, raw["environment"], extra))
    if not rows:
        raise InvalidInput(f"{manifest}: no rows")
    return rows
