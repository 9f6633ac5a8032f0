"""Fault injection on the store's files: truncate or overwrite each one, read-only folders, a full disk,
an interrupted compaction, init over an old store. Each fault is detected with one clear line, and
`verify --repair` (or the next writer) brings the store back without inventing data."""
import errno
import gc
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKGROUNDS, CLASS_FREQS, write
from fakes import BandEncoder
from sqlalchemy import delete, select
from typer.testing import CliRunner

from proto_index import IngestOptions, Store
from proto_index.cli.app import app
from proto_index.errors import DiskFull, StoreCorrupt, StoreExists, StoreReadOnly
from proto_index.usecases.maintenance import reindex, remove, verify
from proto_index.store import catalog, published as published_mod, storage as storage_mod
from proto_index.store.integrity import BLOCK_ROWS
from proto_index.store.schema import FileChecksum, Recording
from proto_index.store.storage import Storage
from proto_index.store.vectors import VectorFile
from store_checks import populate

runner = CliRunner()


def run(*args, code=0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr
    return lines[0]


@pytest.fixture
def store(tmp_path, corpus_dir):
    path = tmp_path / "store"
    run("init", "--store", path, "--model", "fake-bands")
    run("ingest", corpus_dir, "--store", path, "-q")
    return closed(path)


def closed(path: Path) -> Path:
    """As a finished command leaves a store: every catalog connection closed, so the WAL is merged."""
    gc.collect()  # the in-process commands leave their Store objects to the garbage collector
    assert not (path / "catalog.sqlite-wal").exists()
    return path


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# -- the vector file --------------------------------------------------------------------------------


def test_truncated_vector_file_is_never_lengthened_and_repair_lets_ingest_re_embed(store, corpus_dir):
    vectors = store / "vectors.f32"
    row_bytes = vectors.stat().st_size // 24
    with open(vectors, "r+b") as f:
        f.truncate(20 * row_bytes + 5)  # 4 rows lost, and a torn one
    size = vectors.stat().st_size

    for command in (("search", "siren"), ("ingest", corpus_dir), ("remove", corpus_dir / "nothing.wav"), ("reindex",)):
        line = one_line_error(run(*command, "--store", store, code=1))
        assert "holds 20 rows but the catalog committed 24" in line and "verify --repair" in line
        assert vectors.stat().st_size == size  # never filled up with invented rows
    out = run("verify", "--store", store, code=4).stdout
    assert "4 vectors were lost (the file was truncated)" in out

    # the cut block (rows 0..23) can no longer be checked against its checksum: all of its recordings go
    out = run("verify", "--repair", "--store", store).stdout
    assert "removed 24 recordings whose vectors were lost or corrupt" in out and out.rstrip().endswith("ok after repair")
    assert vectors.stat().st_size == 20 * row_bytes
    assert "added 24 files (24 windows)" in run("ingest", corpus_dir, "--store", store, "-q").stdout
    assert run("verify", "--store", store).stdout.rstrip().endswith("ok")
    hits = run("search", "siren", "-k", "3", "--store", store).stdout.strip().splitlines()
    assert len(hits) == 3 and all("siren_" in h for h in hits)


def test_truncation_only_costs_the_recordings_of_the_blocks_it_cut(tmp_path):
    path = tmp_path / "big"
    with Store.init(path, model="fake-bands", encoder=BandEncoder()):
        pass
    storage = Storage.open(path)
    n = BLOCK_ROWS + 500
    populate(storage, n, storage.identity.dim)
    with open(storage.vectors.path, "r+b") as f:
        f.truncate((BLOCK_ROWS + 100) * storage.vectors.row_bytes)
    with pytest.raises(StoreCorrupt, match="400 vectors were lost"):
        with storage.writer():
            pass
    report = verify(storage, repair=True)
    assert report.ok and "removed 500 recordings whose vectors were lost or corrupt" in " ".join(report.repaired)
    assert storage.live_rows().tolist() == list(range(BLOCK_ROWS))
    assert storage.committed_rows() == BLOCK_ROWS + 100
    assert sorted(storage.index().ids().tolist()) == list(range(BLOCK_ROWS))


def test_overwritten_vector_block_is_found_and_its_recordings_dropped(tmp_path):
    path = tmp_path / "big"
    with Store.init(path, model="fake-bands", encoder=BandEncoder()):
        pass
    storage = Storage.open(path)
    vecs = populate(storage, BLOCK_ROWS + 300, storage.identity.dim)
    with open(storage.vectors.path, "r+b") as f:  # a plausible vector, so only the checksum can tell
        f.seek((BLOCK_ROWS + 7) * storage.vectors.row_bytes)
        f.write(vecs[0].tobytes())
    report = verify(storage)
    assert "1 blocks of 4096 vector rows differ from their recorded checksum (first at row 4096)" in report.problems
    repaired = verify(storage, repair=True)
    assert repaired.ok and "removed 300 recordings" in " ".join(repaired.repaired)
    assert storage.live_rows().tolist() == list(range(BLOCK_ROWS))
    assert verify(storage).problems == []


# -- the index file ---------------------------------------------------------------------------------


def published_index(store: Path) -> Path:
    (name,) = [p for p in store.iterdir() if p.name.startswith("index-")]
    return name


def test_overwritten_index_bytes_are_caught_by_the_checksum_and_repair_rebuilds(store):
    index = published_index(store)
    data = bytearray(index.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 8] = b"\x7f" * 8  # huge scores, still a loadable index
    index.write_bytes(bytes(data))
    line = one_line_error(run("search", "siren", "--store", store, code=1))
    assert "is corrupt (its checksum differs" in line and "verify --repair" in line
    assert "is corrupt" in run("verify", "--store", store, code=4).stdout
    out = run("verify", "--repair", "--store", store).stdout
    assert "rebuilt the index from 24 exact vectors" in out
    hits = run("search", "siren", "-k", "3", "--store", store).stdout.strip().splitlines()
    assert len(hits) == 3 and all(float(h.split("\t")[0]) <= 1.0001 for h in hits)


@pytest.mark.parametrize("recorded", [True, False], ids=["checksum", "old-store-no-checksum"])
def test_garbage_index_gives_a_line_to_readers_and_is_rebuilt_by_writers(store, corpus_dir, recorded):
    if not recorded:
        with Storage.open(store).session() as s:
            s.execute(delete(FileChecksum))
    published_index(store).write_bytes(np.random.default_rng(0).bytes(5000))
    line = one_line_error(run("search", "siren", "--store", store, code=1))
    assert ("is corrupt" if recorded else "is not a readable FAISS index") in line
    assert "FAISS" not in run("verify", "--store", store, code=4).stderr
    # a writer rebuilds the index it needs from the exact vectors
    assert "skipped 24 already stored" in run("ingest", corpus_dir, "--store", store).stdout
    assert run("verify", "--store", store).stdout.rstrip().endswith("ok")


def test_a_store_without_checksums_gets_them_from_the_next_writer(store):
    storage = Storage.open(store)
    with storage.session() as s:
        s.execute(delete(FileChecksum))
    assert any("have no checksum yet" in n for n in verify(storage).notes)
    reindex(storage)
    with storage.session() as s:
        kinds = sorted((c.file.split("-")[0], c.block, c.rows) for c in s.scalars(select(FileChecksum)))
    assert kinds == [("index", 0, 24), ("vectors.f32", 0, 24)]
    assert not any("no checksum" in n for n in verify(storage).notes)


def test_migration_0003_keeps_every_row(store):
    storage = Storage.open(store)
    with storage.session() as s:
        before = s.scalars(select(Recording.sha256).order_by(Recording.id)).all()
    storage.close()
    engine = catalog.create_catalog_engine(store / "catalog.sqlite")
    from alembic import command

    cfg = catalog.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert catalog.current_revision(engine) == "0002"
    engine.dispose()
    storage = Storage.open(store)
    assert catalog.current_revision(storage.engine) == catalog.head_revision()
    with storage.session() as s:
        assert s.scalars(select(Recording.sha256).order_by(Recording.id)).all() == before


# -- the catalog ------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "half"])
def test_corrupt_catalog_is_one_line(store, damage):
    db = store / "catalog.sqlite"
    data = db.read_bytes()
    db.write_bytes(np.random.default_rng(1).bytes(len(data)) if damage == "garbage" else data[: len(data) // 2])
    for command in (("info",), ("search", "siren"), ("verify",)):
        line = one_line_error(run(*command, "--store", store, code=1))
        assert "catalog" in line and ("failed" in line or "restore it" in line)


# -- read-only stores -------------------------------------------------------------------------------


def prepare_classify(store: Path, tmp_path: Path) -> Path:
    labels = tmp_path / "labels.txt"
    labels.write_text("siren\ndrilling\n")
    run("classes", "add", "urban", "--labels-file", labels, "--store", store)
    run("prototypes", "build", "urban", "--method", "zero-shot", "--store", store)
    run("env", "add", "park", "--text", "park", "--store", store)
    clip = tmp_path / "clip.wav"
    write(clip, [(CLASS_FREQS["siren"], 0.2)] + BACKGROUNDS["park"], seconds=2.5)
    closed(store)
    return clip


def readers_work_writers_refuse(store: Path, clip: Path, corpus_dir: Path, out: Path) -> None:
    assert "corpus:       24 recordings, 24 windows" in run("info", "--store", store).stdout
    assert len(run("search", "siren", "-k", "3", "--store", store).stdout.strip().splitlines()) == 3
    assert "classified 1 files" in run("classify", clip, "-p", "urban-zero-shot", "--env", "park", "--out", out,
                                       "--store", store).stdout
    assert run("verify", "--store", store).stdout.rstrip().endswith("ok")
    line = one_line_error(run("ingest", corpus_dir, "--store", store, code=1))
    assert "read-only" in line


def test_read_only_store_serves_readers_and_writes_nothing(store, tmp_path, corpus_dir, monkeypatch):
    clip = prepare_classify(store, tmp_path)
    before = snapshot(store)
    monkeypatch.setattr(storage_mod, "store_writable", lambda root: False)  # what a read-only mount reports
    readers_work_writers_refuse(store, clip, corpus_dir, tmp_path / "out.csv")
    for command in (("verify", "--repair"), ("env", "add", "zoo", "--text", "zoo")):
        assert "read-only" in one_line_error(run(*command, "--store", store, code=1))
    assert snapshot(store) == before  # not even SQLite's -wal/-shm side files appeared


def test_read_only_mount(store, tmp_path, corpus_dir):
    clip = prepare_classify(store, tmp_path)
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(store), str(mount)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root with CAP_SYS_ADMIN)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True, capture_output=True)
        with pytest.raises(OSError):
            (mount / "probe").write_bytes(b"")
        readers_work_writers_refuse(mount, clip, corpus_dir, tmp_path / "out.csv")
    finally:
        gc.collect()
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_lock_file_that_cannot_be_created_means_read_only(store, monkeypatch):
    storage = Storage.open(store)

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(storage_mod.os, "open", refuse)
    with pytest.raises(StoreReadOnly, match="read-only"):
        with storage.writer():
            pass


# -- a full disk ------------------------------------------------------------------------------------


def test_disk_full_during_ingest_loses_nothing_committed_and_a_rerun_completes(tmp_path, corpus_dir, monkeypatch):
    path = tmp_path / "store"
    Store.init(path, model="fake-bands", encoder=BandEncoder()).close()
    real_append, calls = VectorFile.append, []

    def append_until_full(self, vectors):
        calls.append(len(vectors))
        if len(calls) == 3:  # half a batch reaches the disk, then it is full
            with open(self.path, "ab") as f:
                f.write(np.asarray(vectors, self.dtype)[: len(vectors) // 2].tobytes()[:-3])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(self, vectors)

    monkeypatch.setattr(VectorFile, "append", append_until_full)
    with Store.open(path, encoder=BandEncoder()) as s:
        with pytest.raises(DiskFull, match="nothing committed before was lost"):
            s.ingest([corpus_dir], run=IngestOptions(commit_windows=5))
    storage = Storage.open(path)
    assert storage.count_live_rows() == sum(calls[:2]) == storage.vectors.count  # no torn leftovers
    assert verify(storage).problems == []
    monkeypatch.setattr(VectorFile, "append", real_append)
    with Store.open(path, encoder=BandEncoder()) as s:
        report = s.ingest([corpus_dir])
    assert (report.added, report.skipped) == (24 - sum(calls[:2]), sum(calls[:2]))
    assert verify(storage).problems == [] and storage.count_live_rows() == 24


def test_disk_full_is_one_line_on_the_command_line(store, tmp_path, monkeypatch):
    write(tmp_path / "new" / "a.wav", [(CLASS_FREQS["siren"], 0.2)], seconds=2.5, seed=9)

    def full(self, vectors):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(VectorFile, "append", full)
    line = one_line_error(run("ingest", tmp_path / "new", "--store", store, code=1))
    assert "is full" in line and "nothing committed before was lost" in line


# -- leftovers of an interrupted compaction, init over an old store ----------------------------------


def test_interrupted_compaction_leftover_is_reported_and_only_owned_files_removed(store, corpus_dir, monkeypatch):
    storage = Storage.open(store)
    remove(storage, [p for p in sorted(corpus_dir.rglob("*.wav"))[:4]])
    (store / "notes.tmp").write_text("mine")  # files a user keeps in the folder are never touched
    (store / "vectors-backup.f32.txt").write_text("mine")
    real_unlink = Path.unlink

    def killed_before_unlink(self, missing_ok=False):
        if self.name == "vectors.f32":
            raise KeyboardInterrupt  # the process dies between switching files and deleting the old one
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", killed_before_unlink)
    with pytest.raises(KeyboardInterrupt):
        reindex(storage, compact=True)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    storage = Storage.open(store)
    assert (store / "vectors.f32").exists() and storage.vectors.path.name != "vectors.f32"
    out = run("verify", "--store", store, code=4).stdout
    assert "files left by an interrupted writer or compaction: vectors.f32" in out
    assert "removed" in run("verify", "--repair", "--store", store).stdout
    assert not (store / "vectors.f32").exists()
    assert (store / "notes.tmp").read_text() == "mine" and (store / "vectors-backup.f32.txt").exists()
    assert run("verify", "--store", store).stdout.rstrip().endswith("ok")


def test_init_refuses_a_folder_holding_an_old_stores_files(store):
    (store / "catalog.sqlite").unlink()
    before = snapshot(store)
    line = one_line_error(run("init", "--store", store, "--model", "fake-bands", code=1))
    assert "but no catalog.sqlite" in line and "vectors.f32" in line and "--discard-old-files" in line
    assert snapshot(store) == before
    with pytest.raises(StoreExists):
        Storage.create(store, BandEncoder().identity, {"model": "fake-bands"})
    (store / "keep.txt").write_text("mine")
    run("init", "--store", store, "--model", "fake-bands", "--discard-old-files")
    assert sorted(p.name for p in store.iterdir() if not p.name.startswith("catalog")) == [
        published_index(store).name, "keep.txt", "vectors.f32", "writer.lock"]
    assert (store / "vectors.f32").stat().st_size == 0 and (store / "keep.txt").read_text() == "mine"


def test_reader_follows_an_index_published_while_it_was_opening_the_old_one(store, monkeypatch):
    """A writer may publish a new index and delete the old file between a reader reading the
    catalog's pointer and opening the file: the reader must follow the pointer, not report damage."""
    reader = Storage.open(store)
    original = published_mod._read
    published = []

    def publish_first(storage, name):
        if not published:  # a concurrent writer republishes (deleting `name`) at the worst moment
            subprocess.run([sys.executable, "-c", "from proto_index.cli.app import main; main()",
                            "reindex", "--store", str(store)], check=True, capture_output=True)
            published.append(Storage.open(store).meta("index_file"))
            assert not (store / name).exists()
        return original(storage, name)

    monkeypatch.setattr(published_mod, "_read", publish_first)
    index = reader.index()
    assert index.ntotal == 24 and reader.meta("index_file") == published[0]
