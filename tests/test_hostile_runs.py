"""Fault injection: runs resumed, rebuilt, killed or pointed at hostile outputs, as a user could do.

Every test here failed before the fix it guards (issue "Tried as a hostile user would, again"):
a resumed dataset mixing two runs' scores, non-finite taus stored and used, a failed reindex
persisted, and tracebacks where one line was due. Run in CI with the rest of the suite.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from cli_store import cli
from conftest import write
from fakes import BandEncoder

from proto_index import Store
from proto_index.errors import InvalidInput
from proto_index.options import CalibrateOptions
from proto_index.outputs.partitioned import DONE_FILE, partition_folder
from proto_index.options import DatasetOptions

LABELS = ["siren", "dog bark", "drilling", "bird song"]


@pytest.fixture
def store(tmp_path, corpus_dir, background_dir):
    s = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    s.ingest([corpus_dir])
    s.add_classes("urban", LABELS)
    s.build_prototypes("urban", method="zero-shot")
    s.add_environment("airport", text="airport", audio=[background_dir / "airport"])
    s.add_environment("park", text="park")
    yield s
    s.close()


@pytest.fixture
def items(tmp_path):
    """Six new clips over two environments."""
    new = tmp_path / "new"
    return [(write(new / f"n{i}.wav", [(200.0 + 150 * i, 0.5), (300.0, 0.2)], seed=50 + i), ("airport", "park")[i % 2])
            for i in range(6)]


def _rows(out: Path) -> int:
    return ds.dataset(out, format="parquet", partitioning="hive").count_rows()


def _interrupted(store, items, out, chunks_done=1):
    """A dataset run killed after ``chunks_done`` chunks of two inputs (as Ctrl-C would)."""
    real, calls = store.classify, []

    def dies(chunk, prototypes, **kwargs):
        calls.append(chunk)
        if len(calls) > chunks_done:
            raise KeyboardInterrupt
        return real(chunk, prototypes, **kwargs)

    store.classify = dies
    try:
        with pytest.raises(KeyboardInterrupt):
            store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out, files_per_chunk=2))
    finally:
        store.classify = real


# --- 1. a parquet-dataset resume never mixes two runs ---------------------------------------------

def test_a_resume_after_the_prototypes_were_rebuilt_is_refused(tmp_path, store, items):
    out = tmp_path / "ds"
    _interrupted(store, items, out)
    assert _rows(out) == 2
    # same name, new content: TGAP centroids where the zero-shot set held text anchors
    store.build_prototypes("urban", method="tgap", n=3, name="urban-zero-shot", replace=True)
    with pytest.raises(InvalidInput) as e:
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out, files_per_chunk=2))
    assert str(e.value) == (f"{out} holds a dataset of another classification run (the prototype vectors (the set "
                            "was rebuilt) differs); its rows would mix two runs: start over in a new folder "
                            "(or remove this one)")
    assert _rows(out) == 2 and not (out / DONE_FILE).exists()


def test_a_resume_after_an_environment_changed_is_refused_through_the_cli(tmp_path, store, items):
    out = tmp_path / "ds"
    _interrupted(store, items, out)
    store.close()
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["path", "environment"], *items])
    st = tmp_path / "store"
    cli("env", "add", "park", "--text", "busy road", "--replace", "--store", st)  # park's rows exist: refused
    said = cli("classify", "-p", "urban-zero-shot", "--manifest", manifest, "--store", st, "--out", out,
               "--format", "parquet-dataset", "-q", code=1)
    assert said.stderr.strip().splitlines() == [
        f"error: {out} holds rows of environment 'park' scored with another background or tau (it was changed "
        "since); its rows would mix two runs: start over in a new folder (or remove this one)"]
    assert _rows(out) == 2
    cli("env", "add", "park", "--text", "park", "--replace", "--store", st)  # back as it was: the resume goes on
    cli("classify", "-p", "urban-zero-shot", "--manifest", manifest, "--store", st, "--out", out,
        "--format", "parquet-dataset", "-q")
    assert _rows(out) == 6 and (out / DONE_FILE).exists()


def test_a_tau_change_of_an_environment_with_rows_is_refused(tmp_path, store, items):
    out = tmp_path / "ds"
    _interrupted(store, items, out)
    store.set_environment_tau("airport", audio=0.3)
    with pytest.raises(InvalidInput, match="rows of environment 'airport' scored with another background or tau"):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out))
    assert (out / partition_folder("airport") / "_proto_index_environment.json").is_file()


def test_a_rerun_that_adds_inputs_removes_success_first(tmp_path, store, items):
    out = tmp_path / "ds"
    store.classify_dataset(items[:2], "urban-zero-shot", DatasetOptions(out))
    assert (out / DONE_FILE).exists()
    seen = []
    real = store.classify

    def looks(chunk, prototypes, **kwargs):
        seen.append((out / DONE_FILE).exists())
        return real(chunk, prototypes, **kwargs)

    store.classify = looks
    _interrupted(store, items, out, chunks_done=1)  # adds inputs, then is killed
    assert seen == [False] and not (out / DONE_FILE).exists()
    store.classify = real
    report = store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out))
    assert (report.resumed, report.inputs) == (4, 2) and (out / DONE_FILE).exists()
    store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out))  # nothing to add: stays complete
    assert (out / DONE_FILE).exists() and _rows(out) == 6


# --- 2. a tau is finite wherever it enters --------------------------------------------------------

def _cli_store(tmp_path, corpus_dir):
    st = tmp_path / "cli-store"
    cli("init", "--store", st, "--model", "fake-bands")
    cli("ingest", corpus_dir, "--store", st, "--quiet")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    cli("classes", "add", "urban", "--labels-file", labels, "--store", st)
    cli("prototypes", "build", "urban", "--store", st)
    return st


@pytest.mark.parametrize("flag, value", [("--tau-text", "inf"), ("--tau-audio", "nan"), ("--tau-text", "-inf")])
def test_env_add_refuses_a_non_finite_tau(tmp_path, corpus_dir, background_dir, flag, value):
    st = _cli_store(tmp_path, corpus_dir)
    result = cli("env", "add", "e2", "--text", "park", "--audio", background_dir / "park", flag, value,
                 "--store", st, code=2)
    assert result.stderr.strip().splitlines() == [f"error: {flag} must be a finite number, not {float(value)!r}"]
    assert "e2" not in cli("env", "list", "--store", st).stdout


def test_the_python_api_refuses_non_finite_taus(store):
    from proto_index import ScoringOptions

    with pytest.raises(InvalidInput, match=r"^the tau for text backgrounds must be a finite number, not inf$"):
        store.add_environment("e2", text="park", tau_text=float("inf"))
    with pytest.raises(InvalidInput, match=r"^the tau for audio backgrounds must be a finite number, not nan$"):
        store.set_environment_tau("airport", audio=float("nan"))
    with pytest.raises(InvalidInput, match=r"^tau must be a finite number, not nan$"):
        ScoringOptions(tau=float("nan"))
    assert [e.name for e in store.environments()] == ["airport", "park"]
    assert store.environment("airport").tau_audio is None


def test_calibration_refuses_a_non_finite_grid_before_embedding(store, tmp_path, monkeypatch):
    manifest = tmp_path / "cal.csv"
    manifest.write_text("path,environment,label\n")
    from proto_index.usecases import classify as classify_module

    monkeypatch.setattr(classify_module, "file_windows", lambda *a, **k: pytest.fail("embedded before the grid was checked"))
    for call in (lambda: store.calibrate(manifest, CalibrateOptions("urban-zero-shot", grid=(0.1, float("inf")))),
                 lambda: store.calibrate_from_annotations(CalibrateOptions("urban-zero-shot", grid=(float("nan"),)))):
        with pytest.raises(InvalidInput, match=r"^tau grid: a tau grid needs at least one value, and only finite ones$"):
            call()


def test_a_non_finite_tau_already_in_the_catalog_is_refused_at_classify(tmp_path, corpus_dir):
    import sqlite3

    st = _cli_store(tmp_path, corpus_dir)
    cli("env", "add", "e2", "--text", "park", "--store", st)
    with sqlite3.connect(st / "catalog.sqlite") as db:  # as a store written before taus were checked holds it
        db.execute("UPDATE environments SET tau_text = ? WHERE name = 'e2'", (float("inf"),))
    clip = sorted(corpus_dir.iterdir())[0]
    out = tmp_path / "labels.csv"
    result = cli("classify", "-p", "urban-zero-shot", "--env", "e2", clip, "--store", st, "--out", out, "-q", code=1)
    assert result.stderr.strip().splitlines() == [
        "error: environment 'e2': its stored tau for text backgrounds must be a finite number, not inf; redefine "
        "the environment with a finite one with `proto-index env add`, or give the run a tau (use --replace)"]
    assert "RuntimeWarning" not in result.output
    assert not out.exists()
    cli("classify", "-p", "urban-zero-shot", "--env", "e2", clip, "--tau", "0.2", "--store", st, "--out", out, "-q")
    row = next(csv.DictReader(open(out, encoding="utf-8")))
    assert row["tau"] == "0.200000" and float(row["score"]) > -1 and row["margin"] != ""


# --- 3. a reindex that cannot build changes nothing -----------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--index", "IVF1,PQ1"], "index IVF1,PQ1 needs at least 256 vectors to train and the store holds 24; "
                              "choose Flat or auto until the corpus grows (nothing was changed)"),
    (["--index", "IVF4,PQ0"], "unsupported index 'IVF4,PQ0': IVF<nlist>,PQ<m> needs nlist and m of at least 1"),
    (["--memory-budget-gb", "-1"], "--memory-budget-gb must be a positive number of gigabytes, not -1.0"),
    (["--memory-budget-gb", "nan"], "--memory-budget-gb must be a positive number of gigabytes, not nan"),
])
def test_a_refused_reindex_is_one_line_and_persists_nothing(tmp_path, corpus_dir, args, message):
    from proto_index.store.storage import Storage

    st = _cli_store(tmp_path, corpus_dir)
    before = Storage.open(st)
    meta = (before.meta("index_factory"), before.meta("index_memory_budget"), before.meta("index_file"))
    before.close()
    result = cli("reindex", *args, "--store", st, code=2 if "gigabytes" in message else 1)
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    after = Storage.open(st)
    assert (after.meta("index_factory"), after.meta("index_memory_budget"), after.meta("index_file")) == meta
    after.close()
    more = tmp_path / "more"
    write(more / "late.wav", [(700.0, 0.5)], seed=7)
    assert cli("ingest", more, "--store", st, "--quiet").stdout.startswith("added 1 files")  # later ingests work
    assert "ok" in cli("verify", "--store", st).stdout


def test_a_faiss_refusal_is_one_line_and_a_stored_untrainable_choice_gives_way(tmp_path, store, monkeypatch, corpus_dir):
    from proto_index.store import index as index_module

    storage = store._storage

    def refuses(*args, **kwargs):
        raise RuntimeError("Error in void faiss::Clustering::train_encoded\n"
                           "Error: 'nx >= k' failed: Number of training points (24) should be at least as large as "
                           "number of clusters (256)")

    monkeypatch.setattr(index_module.VectorIndex, "build", classmethod(lambda cls, *a, **k: refuses()))
    with pytest.raises(InvalidInput, match=r"^FAISS could not build index Flat: Error: 'nx >= k' failed: Number of "
                                           r"training points \(24\) .* \(the store's index is unchanged\)$"):
        store.reindex("Flat", memory_budget=1 << 20)
    assert (storage.meta("index_factory"), storage.meta("index_memory_budget")) == (None, None)
    monkeypatch.undo()
    with storage.writer():  # as an earlier version left it: a choice 24 vectors cannot train
        storage.set_meta("index_factory", "IVF1,PQ1")
    assert storage.index_plan().factory == "Flat"
    assert store.reindex().factory == "Flat"  # a rebuild with it falls back rather than failing
    assert storage.meta("index_factory") == "IVF1,PQ1"  # and keeps it for when the corpus has grown
    with pytest.raises(InvalidInput, match="unsupported index 'IVF0,PQ4'"):
        store.reindex("IVF0,PQ4")
    with pytest.raises(InvalidInput, match=r"^the index memory budget must be a whole number of bytes of at least 1, got -5$"):
        store.reindex(memory_budget=-5)


# --- 4. rough edges: one line, the documented exit status, nothing lost ----------------------------

def test_classify_of_a_stored_clip_with_a_truncated_vector_file_says_verify_repair(tmp_path, corpus_dir):
    st = _cli_store(tmp_path, corpus_dir)
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
    st = _cli_store(tmp_path, corpus_dir)
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
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cli-store", "corpus", "here", "labels.csv", "labels.txt"])


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
