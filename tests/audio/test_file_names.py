"""Fault injection: file names that are not text (bytes that are not UTF-8, terminal escape
sequences, line breaks), as archives copied from old systems or a hostile user hold them.

Every test here failed before the fix it guards (issue "Tried as a hostile user would, again").
Run in CI with the rest of the suite.
"""
from __future__ import annotations

import csv
import json
import os
import sqlite3
from pathlib import Path

import pytest
from cli_store import cli
from conftest import write

from proto_index import Store
from proto_index.cli.output import shown
from proto_index.errors import StoreError
from proto_index.filenames import as_text, from_text

LATIN1 = b"m\xff.wav"
ESCAPE = b"\x1b]0;pwned\x07\x1b[2J.wav"
NEWLINE = b"a\nb.wav"


def _put(folder: Path, name: bytes, freq: float, seed: int) -> str:
    """Write a 2 s tone and give it the file name ``name`` (bytes); returns the path as Python reads it."""
    tmp = write(folder / f"tmp{seed}.wav", [(freq, 0.5)], seed=seed)
    target = os.fsencode(folder) + b"/" + name
    os.rename(os.fsencode(tmp), target)
    return os.fsdecode(target)


@pytest.fixture
def hostile(tmp_path):
    """A folder of five plain clips and three with hostile names; returns (folder, {name bytes: path})."""
    folder = tmp_path / "archive"
    folder.mkdir()
    for i, freq in enumerate((700.0, 1500.0, 3200.0, 6500.0, 700.0)):
        write(folder / f"plain_{i}.wav", [(freq, 0.5)], seed=i)
    names = {name: _put(folder, name, freq, 10 + i) for i, (name, freq) in
             enumerate(((LATIN1, 1500.0), (ESCAPE, 3200.0), (NEWLINE, 6500.0)))}
    return folder, names


def _classified_store(tmp_path, folder) -> Path:
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    cli("ingest", folder, "--store", store, "--quiet")
    labels = tmp_path / "labels.txt"
    labels.write_text("siren\ndog bark\ndrilling\nbird song\n")
    cli("classes", "add", "urban", "--labels-file", labels, "--store", store)
    cli("prototypes", "build", "urban", "--method", "zero-shot", "--store", store)
    cli("env", "add", "park", "--store", store)
    return store


# --- 1. the catalog keeps a name that is not UTF-8, byte for byte ---------------------------------

def test_ingest_stores_a_name_that_is_not_utf8_and_recognises_it_again(tmp_path, hostile):
    folder, names = hostile
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    first = cli("ingest", folder, "--store", store, "--quiet")
    assert first.stdout.strip() == "added 8 files (8 windows), skipped 0 already stored, 0 failed"
    again = cli("ingest", folder, "--store", store, "--quiet")
    assert again.stdout.strip() == "added 0 files (0 windows), skipped 8 already stored, 0 failed"
    assert cli("verify", "--store", store).stdout.strip().endswith("ok")
    # the exact bytes: a valid UTF-8 name as TEXT, the Latin-1 one as a BLOB of its bytes
    with sqlite3.connect(store / "catalog.sqlite") as db:
        stored = dict(db.execute("SELECT path, typeof(path) FROM recordings").fetchall())
    assert stored[os.fsencode(names[LATIN1])] == "blob"
    assert stored[names[ESCAPE]] == "text" and stored[names[NEWLINE]] == "text"
    # and the API reads it back as the str that opens the file again
    s = Store.open(store)
    hits = {h.path for h in s.search("dog bark", k=8)}
    assert names[LATIN1] in hits and os.path.isfile(names[LATIN1])


def test_env_add_audio_with_a_name_that_is_not_utf8(tmp_path, hostile):
    folder, names = hostile
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    result = cli("env", "add", "old", "--audio", names[LATIN1], "--store", store)
    assert result.stdout.startswith("old")
    [env] = Store.open(store).environments()
    assert [os.fsencode(p) for p in env.audio_sources] == [os.fsencode(names[LATIN1])]


def test_a_catalog_failure_in_a_batch_leaves_no_unused_vector_rows(tmp_path, monkeypatch):
    """A batch's vectors are written before its catalog transaction: when that fails, they go too."""
    folder = tmp_path / "plain"
    for i in range(3):
        write(folder / f"clip_{i}.wav", [(700.0, 0.5)], seed=i)
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    import proto_index.usecases.ingest as ingest

    def broken(**kwargs):
        raise StoreError("the store's catalog failed (injected)")

    monkeypatch.setattr(ingest, "StoreMeta", broken)
    result = cli("ingest", folder, "--store", store, "--quiet", code=1)
    assert result.stderr.strip() == "error: the store's catalog failed (injected)"
    monkeypatch.undo()
    assert cli("verify", "--store", store).stdout == "0 windows, 0 vector rows, index Flat (exact)\nok\n"


# --- 2. every export format writes such rows (file: URI of the bytes) -----------------------------

def test_filenames_text_round_trip():
    for raw in (b"/data/m\xff.wav", b"rel/\xc3(.wav", b"file:odd.wav", b"/d/%41 100%.wav"):
        text = as_text(os.fsdecode(raw))
        text.encode("utf-8")  # always valid text
        assert os.fsencode(from_text(text)) == os.fsencode(os.path.abspath(os.fsdecode(raw)))
    assert as_text("/data/plain é.wav") == "/data/plain é.wav" == from_text("/data/plain é.wav")
    assert as_text(os.fsdecode(b"/data/m\xff.wav")) == "file:///data/m%FF.wav"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "parquet-dataset", "raven", "audacity", "kaleidoscope"])
def test_every_export_format_writes_a_name_that_is_not_utf8(tmp_path, hostile, fmt):
    folder, names = hostile
    store = _classified_store(tmp_path, folder)
    out = tmp_path / ("out" if fmt in ("audacity", "parquet-dataset") else f"out.{fmt}")
    files = sorted(str(p) for p in Path(folder).iterdir())
    cli("classify", *files, "-p", "urban-zero-shot", "--env", "park", "--format", fmt, "--out", out,
        "--store", store, "-q")
    if fmt == "csv":
        with open(out, newline="", encoding="utf-8") as f:
            paths = [r["path"] for r in csv.DictReader(f)]
    elif fmt == "kaleidoscope":
        with open(out, newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f))
        paths = [r["PATH"] for r in table]
        assert {(r["INDIR"], r["IN FILE"]) for r in table if r["PATH"].startswith("file:")} == {(str(folder), "m%FF.wav")}
    elif fmt == "jsonl":
        paths = [json.loads(line)["path"] for line in out.read_text(encoding="utf-8").splitlines()]
    elif fmt in ("parquet", "parquet-dataset"):
        import pyarrow.parquet as pq

        parts = [out] if fmt == "parquet" else sorted(out.rglob("*.parquet"))
        paths = [p for part in parts for p in pq.read_table(part, columns=["path"]).column("path").to_pylist()]
    elif fmt == "raven":
        lines = out.read_text(encoding="utf-8").splitlines()
        col = lines[0].split("\t").index("Begin Path")
        paths = [line.split("\t")[col] for line in lines[1:]]
    else:
        with open(out / "files.csv", newline="", encoding="utf-8") as f:
            paths = [r["path"] for r in csv.DictReader(f)]
    assert len(paths) == 8
    assert "file://" + os.fsdecode(os.fsencode(folder)) + "/m%FF.wav" in paths
    assert {os.fsencode(from_text(p)) for p in paths if p.startswith("file:")} == {os.fsencode(names[LATIN1])}


def test_export_reads_the_uri_back_to_find_the_recording(tmp_path, hostile):
    """`export` from classify's CSV to Raven opens each recording again for its duration."""
    folder, _ = hostile
    store = _classified_store(tmp_path, folder)
    out = tmp_path / "run.csv"
    cli("classify", *sorted(str(p) for p in folder.iterdir()), "-p", "urban-zero-shot", "--env", "park",
        "--out", out, "--store", store, "-q")
    raven = tmp_path / "run.raven.txt"
    result = cli("export", out, "--format", "raven", "--out", raven)
    assert result.stdout.strip() == f"wrote 8 rows as raven -> {raven}"
    assert "m%FF.wav\t" in raven.read_text(encoding="utf-8")


# --- 3. control characters never reach a terminal raw ---------------------------------------------

def test_shown_escapes_controls_and_undecodable_bytes():
    assert shown(os.fsdecode(ESCAPE)) == "\\x1b]0;pwned\\x07\\x1b[2J.wav"
    assert shown(os.fsdecode(LATIN1)) == "m\\xff.wav"
    assert shown("a\nb\tc", keep="\t") == "a\\x0ab\tc"
    assert shown("right\u202egnp.exe") == "right\\u202egnp.exe"
    assert shown("plain é 名前.wav") == "plain é 名前.wav"


def test_search_info_and_failure_lines_escape_control_characters(tmp_path, hostile):
    folder, names = hostile
    bad = _put(folder, b"\x1b]0;pwned\x07bad.wav", 700.0, 99)
    Path(bad).write_bytes(b"not audio")
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    ingest = cli("ingest", folder, "--store", store, "--quiet", code=3)
    assert "\x1b" not in ingest.stderr and "\\x1b]0;pwned\\x07bad.wav: " in ingest.stderr
    search = cli("search", "bird song", "-k", "8", "--store", store)
    lines = search.stdout.splitlines()
    assert len(lines) == 8 and all(len(line.split("\t")) == 3 for line in lines)
    paths = {line.split("\t")[1] for line in lines}
    base = str(folder)
    assert {f"{base}/a\\x0ab.wav", f"{base}/\\x1b]0;pwned\\x07\\x1b[2J.wav", f"{base}/m\\xff.wav"} <= paths
    info = cli("info", "--store", store).stdout
    assert "\x1b" not in info and f"  {base}/\\x1b]0;pwned\\x07bad.wav: " in info
    # --json stays lossless: the control characters as JSON escapes, the Latin-1 name as its URI
    hits = json.loads(cli("search", "bird song", "-k", "8", "--store", store, "--json").stdout)
    assert {names[NEWLINE], names[ESCAPE], as_text(names[LATIN1])} <= {h["path"] for h in hits}


def test_report_shows_names_that_are_not_text(tmp_path, hostile):
    """The review report of a run whose rows and TGAP neighbours have such names is written."""
    folder, names = hostile
    store = _classified_store(tmp_path, folder)
    cli("prototypes", "build", "urban", "--method", "tgap", "--n", "3", "--store", store)
    out = tmp_path / "labels.csv"
    cli("classify", *sorted(names.values()), "-p", "urban-tgap3", "--env", "park", "--out", out, "--store", store, "-q")
    cli("report", out, "--out", tmp_path / "rep", "--store", store, "-p", "urban-tgap3")
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert "\x1b" not in page and as_text(names[LATIN1]) in page


def test_annotate_reads_the_uri_of_a_name_that_is_not_utf8(tmp_path, hostile):
    """A decisions CSV names such a file as the report's page and the exports write it (its URI)."""
    folder, names = hostile
    store = _classified_store(tmp_path, folder)
    decisions = tmp_path / "decisions.csv"
    with open(decisions, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label"])
        w.writerow([as_text(names[LATIN1]), "", "", "park", "dog bark", "right", ""])
    cli("annotate", decisions, "--store", store, "-q")
    with sqlite3.connect(store / "catalog.sqlite") as db:
        [(path,)] = db.execute("SELECT r.path FROM annotations a JOIN recordings r ON r.id = a.recording_id").fetchall()
    assert path == os.fsencode(names[LATIN1])


def test_remove_of_a_folder_takes_its_names_that_are_not_utf8_too(tmp_path, hostile):
    folder, names = hostile
    store = _classified_store(tmp_path, folder)
    cli("remove", folder, "--store", store)
    with sqlite3.connect(store / "catalog.sqlite") as db:
        assert db.execute("SELECT count(*) FROM recordings").fetchone() == (0,)
    assert cli("verify", "--store", store).stdout.strip().endswith("ok")
