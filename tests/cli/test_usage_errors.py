"""Errors at the command line are one line each with the documented exit status: classify's bad
manifests, --out, unknown names and bad options, found before the model loads; a truncated vector file,
report folders that cannot be written, init on a file or FIFO."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_store import cli, store_with_prototypes
from conftest import write

import proto_index.api


@pytest.fixture
def ready_store(fake_store, tmp_path, monkeypatch):
    """A store with class set c, prototype set c-zero-shot and environment park; from here on,
    loading the model fails the test (every check below must come before it)."""
    cli("classes", "add", "c", "-l", "siren", "-l", "dog bark", "--store", fake_store)
    cli("prototypes", "build", "c", "--method", "zero-shot", "--store", fake_store)
    cli("env", "add", "park", "--store", fake_store)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(proto_index.api, "_load_encoder", no_model)
    monkeypatch.chdir(tmp_path)
    return fake_store


def _clip(tmp_path):
    return write(tmp_path / "x.wav", [(700.0, 0.5)], seconds=2.0)


def _classify_error(store, *args, code=1) -> str:
    result = cli("classify", *args, "--store", store, code=code)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_manifests_that_are_not_utf8_csv_files(tmp_path, ready_store):
    clip = _clip(tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"path,environment\n{clip.name},parc\xe9\n".encode("latin-1"))
    assert "not UTF-8 text" in _classify_error(ready_store, "-p", "c-zero-shot", "--manifest", latin, "-o", "o.csv")
    extra = tmp_path / "extra.csv"
    extra.write_text(f"path,environment\n{clip.name},park,oops\n")
    assert _classify_error(ready_store, "-p", "c-zero-shot", "--manifest", extra, "-o", "o.csv") == \
        f"error: {extra}, line 2: 1 more field(s) than the header has (quote a value that holds a comma)"
    assert _classify_error(ready_store, "-p", "c-zero-shot", "--manifest", tmp_path, "-o", "o.csv") == \
        f"error: {tmp_path}: not a regular file (a folder, FIFO or device), not a CSV file"
    fifo = tmp_path / "m.csv"
    os.mkfifo(fifo)
    assert "not a regular file" in _classify_error(ready_store, "-p", "c-zero-shot", "--manifest", fifo, "-o", "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_out_in_a_missing_folder_or_naming_a_folder_is_refused_first(tmp_path, ready_store):
    clip = _clip(tmp_path)
    (tmp_path / "corpus").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _classify_error(ready_store, clip, "-p", "c-zero-shot", "--env", "park", "--out", "corpus") == \
        "error: output corpus is a folder; name a file in it"
    assert _classify_error(ready_store, clip, "-p", "c-zero-shot", "--env", "park", "--out", "nowhere/o.csv") == \
        f"error: the folder of the output file does not exist: {tmp_path / 'nowhere'}"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no corpus.tmp, nothing else


def test_unknown_names_are_reported_before_the_model_loads(tmp_path, ready_store):
    clip = _clip(tmp_path)
    assert _classify_error(ready_store, clip, "-p", "nope", "--env", "park", "-o", "o.csv") == \
        "error: no prototype set named 'nope' (known: c-zero-shot); build one with `proto-index prototypes build`"
    assert _classify_error(ready_store, clip, "-p", "c-zero-shot", "--env", "beach", "-o", "o.csv").startswith(
        "error: unknown environment(s): beach (known: park)")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,environment\n{clip.name},harbour\n")
    assert _classify_error(ready_store, "-p", "c-zero-shot", "--manifest", manifest, "-o", "o.csv") == \
        "error: unknown environment(s): harbour (known: park); add them with `proto-index env add`"
    assert "nope" in cli("prototypes", "build", "nope", "--store", ready_store, code=1).stderr
    assert cli("prototypes", "build", "c", "--method", "zero-shot", "--store", ready_store, code=1).stderr.strip() \
        == "error: prototype set 'c-zero-shot' already exists (use --replace)"
    assert cli("env", "add", "park", "--store", ready_store, code=1).stderr.strip() == \
        "error: environment 'park' already exists (use --replace)"


@pytest.mark.parametrize("args, message", [
    (["--env", "park", "--tau", "often"], "tau must be a number or one of auto, auto-clip, not 'often' (--adapt, --tau, --prototype-norm, --drift-weight)"),
    (["--env", "park", "--adapt", "sideways"], "unknown adaptation 'sideways'; choose one of auto, audio, text, none (--adapt, --tau, --prototype-norm, --drift-weight)"),
    ([], "give exactly one of --env NAME (with PATHs) or --manifest CSV"),
])
def test_usage_errors_exit_2(tmp_path, ready_store, args, message):
    clip = _clip(tmp_path)
    assert _classify_error(ready_store, clip, "-p", "c-zero-shot", *args, "-o", "o.csv", code=2) == f"error: {message}"


# --- rough edges: one line, the documented exit status, nothing lost ------------------------------

LABELS = ["siren", "dog bark", "drilling", "bird song"]


def test_classify_of_a_stored_clip_with_a_truncated_vector_file_says_verify_repair(tmp_path, corpus_dir):
    st = store_with_prototypes(tmp_path, corpus_dir, LABELS)
    cli("env", "add", "park", "--store", st)
    vectors = st / "vectors.f32"
    with open(vectors, "r+b") as f:
        f.truncate(vectors.stat().st_size // 2)  # rows 12..23 lost
    clip = sorted(corpus_dir.iterdir())[-1]  # siren_5.wav: ingested last, its row is gone
    result = cli("classify", "-p", "urban-zero-shot", "--env", "park", clip, "--store", st,
                 "--out", tmp_path / "o.csv", "-q", code=1)
    assert result.stderr.strip().splitlines() == [
        "error: the vector file vectors.f32 holds 12 rows but row 23 is needed: vectors were lost (the file was "
        "truncated) (run `proto-index verify --repair` to drop the recordings they belong to, then ingest them again)"]
    assert not (tmp_path / "o.csv").exists()


@pytest.fixture
def classified(tmp_path, corpus_dir):
    """A store and the CSV classify wrote for three of its clips."""
    st = store_with_prototypes(tmp_path, corpus_dir, LABELS)
    cli("env", "add", "park", "--store", st)
    labels = tmp_path / "labels.csv"
    cli("classify", "-p", "urban-zero-shot", "--env", "park", *sorted(corpus_dir.iterdir())[:3], "--store", st,
        "--out", labels, "-q")
    return st, labels


def test_report_into_the_current_empty_folder(tmp_path, classified, monkeypatch):
    _, labels = classified
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert "report of 3 rows" in cli("report", labels, "--out", ".").stdout
    names = sorted(p.name for p in here.iterdir())
    assert "index.html" in names and "audio" in names and not [n for n in names if n.startswith(".")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["corpus", "here", "labels.csv", "labels.txt", "store"])


def test_report_and_classify_report_into_an_unwritable_folder_are_one_line_before_any_work(tmp_path, classified,
                                                                                             monkeypatch, corpus_dir):
    st, labels = classified
    # Tests run as root, whom chmod does not stop: a path under a file (ENOTDIR) is one unwritable
    # place, and os.access answering no for one folder (as a read-only mount would) the other.
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = cli("report", labels, "--out", blocker / "rep", code=1)
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write the report folder {blocker / 'rep'}: {blocker} is not a folder (nothing was written)"]
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw))
    result = cli("report", labels, "--out", locked / "rep", code=1)
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write the report folder {locked / 'rep'}: {locked} is not writable (nothing was written)"]
    from proto_index.usecases import classify as classify_module

    monkeypatch.setattr(classify_module, "file_windows", lambda *a, **k: pytest.fail("embedded before the check"))
    out = tmp_path / "again.csv"
    result = cli("classify", "-p", "urban-zero-shot", "--env", "park", sorted(corpus_dir.iterdir())[0], "--store", st,
                 "--out", out, "--report", locked / "rep", "-q", code=1)
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write the report folder {locked / 'rep'}: {locked} is not writable (nothing was written)"]
    assert not out.exists() and list(locked.iterdir()) == []


@pytest.mark.parametrize("kind", ["file", "fifo", "under-a-file"])
def test_init_on_a_file_or_fifo_is_one_line(tmp_path, kind):
    target = tmp_path / "thing"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.write_text("the user's file")
    store = target / "store" if kind == "under-a-file" else target
    result = cli("init", "--store", store, "--model", "fake-bands", code=1)
    where = f"is inside {target}, which is" if kind == "under-a-file" else "is"
    assert result.stderr.strip().splitlines() == [
        f"error: {store} {where} not a folder; choose a new store folder (nothing was written)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thing"]
    if kind != "fifo":
        assert target.read_text() == "the user's file"
