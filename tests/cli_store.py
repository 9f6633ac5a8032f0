"""Driving the real CLI in tests: one call that asserts its exit status, and a store with a class set."""
from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from proto_index.cli.app import app


def cli(*args, code=0):
    """Run ``proto-index ARGS`` in-process; fail with its output unless it exits with ``code``."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def store_with_classes(tmp_path: Path, corpus: Path, labels, name: str = "urban") -> Path:
    """A fake-bands store that has ingested ``corpus`` and holds class set ``name`` of ``labels``."""
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    cli("ingest", corpus, "--store", store, "--quiet")
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(labels) + "\n")
    cli("classes", "add", name, "--labels-file", labels_file, "--store", store)
    return store
