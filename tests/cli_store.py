"""Driving the real CLI in tests: one call that asserts its exit status, reading a CSV it wrote, and a store
with a class set (and its prototypes)."""
from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from proto_index.cli.app import app


def cli(*args, code=0, env=None):
    """Run ``proto-index ARGS`` in-process (``env``: extra environment variables); fail with its output
    unless it exits with ``code`` and without a traceback."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def store_with_classes(tmp_path: Path, corpus: Path, labels, name: str = "urban") -> Path:
    """A fake-bands store that has ingested ``corpus`` and holds class set ``name`` of ``labels``."""
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    cli("ingest", corpus, "--store", store, "--quiet")
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(labels) + "\n")
    cli("classes", "add", name, "--labels-file", labels_file, "--store", store)
    return store


def store_with_prototypes(tmp_path: Path, corpus: Path, labels, name: str = "urban") -> Path:
    """``store_with_classes``, then the class set's zero-shot prototype set ``{name}-zero-shot``."""
    store = store_with_classes(tmp_path, corpus, labels, name)
    cli("prototypes", "build", name, "--store", store)
    return store
