"""verify / --repair, remove, reindex (compressed, compacted) and the writer lock."""
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import BandEncoder
from sqlalchemy import delete, select
from store_checks import populate

from proto_index import Store
from proto_index.errors import InvalidInput, StoreLocked
from proto_index.usecases.maintenance import reindex, remove, verify
from proto_index.store.index import VectorIndex
from proto_index.store.schema import FileChecksum, Window
from proto_index.store.storage import Storage


@pytest.fixture
def store_path(tmp_path, corpus_dir):
    path = tmp_path / "store"
    with Store.init(path, model="fake-bands", encoder=BandEncoder()) as s:
        s.ingest([corpus_dir])
    return path


def test_healthy_store_verifies_clean(store_path):
    storage = Storage.open(store_path)
    report = verify(storage)
    assert report.problems == [] and report.ok
    assert any("24 windows, 24 vector rows" in n for n in report.notes)


def test_verify_finds_and_repairs_interrupted_writer_leftovers(store_path):
    storage = Storage.open(store_path)
    with open(storage.vectors.path, "ab") as f:
        f.write(b"\x01" * (storage.identity.dim * 4 * 2 + 7))  # two uncommitted rows and a torn one
    (store_path / "index-deadbeef.faiss").write_bytes(b"partial")
    report = verify(storage)
    assert len(report.problems) == 2 and "interrupted ingest" in report.problems[0]
    assert "index-deadbeef.faiss" in report.problems[1]
    assert storage.vectors.count == 26  # plain verify changes nothing
    fixed = verify(storage, repair=True)
    assert fixed.ok and "dropped 2 uncommitted vector rows" in fixed.repaired[0]
    assert verify(storage).problems == []


def test_verify_repairs_an_index_that_disagrees(store_path):
    storage = Storage.open(store_path)
    rows = storage.live_rows()
    with storage.writer():
        storage.publish_index(VectorIndex.build(storage.identity.dim, rows[:-3], storage.vectors.read))
    report = verify(storage)
    assert report.problems == ["the index disagrees with the catalog: 0 rows too many, 3 missing"]
    assert verify(storage, repair=True).repaired == ["rebuilt the index from 24 exact vectors"]
    assert verify(storage).problems == []


def test_verify_removes_recordings_without_windows(store_path):
    storage = Storage.open(store_path)
    with storage.session() as s:
        s.execute(delete(Window).where(Window.vector_row == 5))
    problems = verify(storage).problems
    assert "1 recordings have no windows" in problems
    report = verify(storage, repair=True)
    assert any("removed 1 broken recordings" in r for r in report.repaired)
    clean = verify(storage)
    assert clean.problems == [] and any("1 vector rows belong to removed recordings" in n for n in clean.notes)


def test_remove_by_file_folder_and_content(store_path, corpus_dir, tmp_path):
    with Store.open(store_path, encoder=BandEncoder()) as store:
        storage = store._storage
        assert remove(storage, [corpus_dir / "siren_0.wav"]) == 1
        copy = tmp_path / "elsewhere.wav"
        shutil.copy(corpus_dir / "siren_1.wav", copy)
        assert remove(storage, [copy]) == 1  # same content, other path
        hits = store.search("siren", k=24)
        assert {Path(h.path).name for h in hits if "siren" in h.path} == {f"siren_{i}.wav" for i in range(2, 6)}
        assert remove(storage, [corpus_dir]) == 22
        assert store.info()["counts"]["windows"] == 0 and storage.index().ntotal == 0
        with pytest.raises(InvalidInput):
            remove(storage, [])
    assert verify(Storage.open(store_path)).problems == []


def test_reindex_compressed_then_compacted_keeps_results(tmp_path):
    with Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder()) as store:
        storage = store._storage
        vecs = populate(storage, 12_000, storage.identity.dim)
        queries = vecs[:20]
        exact_rows = storage.index().search(queries, 10)[1]
        index = reindex(storage, factory="IVF64,PQ8")
        assert index.factory == "IVF64,PQ8" and storage.meta("index_factory") == "IVF64,PQ8"
        reopened = Storage.open(tmp_path / "s")
        assert reopened.index().factory == "IVF64,PQ8"
        rows = reopened.index().search(queries, 10)[1]
        assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, exact_rows)]) >= 0.95
        # remove the first 1000 recordings, then compact: rows renumbered, vectors unchanged
        with storage.session() as s:
            doomed = s.scalars(select(Window.recording_id).where(Window.vector_row < 1000)).all()
        assert remove(storage, [Path(f"/synthetic/0/{i}.wav") for i in range(1000)]) == len(doomed) == 1000
        reindex(storage, factory="auto", compact=True)
        assert storage.meta("index_factory") is None and storage.index().factory == "Flat"
        assert storage.vectors.count == 11_000 and list(storage.live_rows()[:3]) == [0, 1, 2]
        assert not (tmp_path / "s" / "vectors.f32").exists()
        found = storage.windows_at_rows([0])[0]
        assert found.path == "/synthetic/0/1000.wav"
        np.testing.assert_allclose(storage.vectors.read([0])[0], vecs[1000])
        assert verify(storage).problems == []


def test_reindex_rejects_unknown_factory(store_path):
    with pytest.raises(InvalidInput, match="unsupported index 'HNSW32'"):
        reindex(Storage.open(store_path), factory="HNSW32")


def test_second_writer_fails_clearly_or_waits(store_path):
    first, second = Storage.open(store_path), Storage.open(store_path)
    with first.writer():
        with pytest.raises(StoreLocked, match=r"is being written by pid \d+"):
            with second.writer():
                pass
        threading.Timer(0.3, first._lock.release).start()
        started = time.monotonic()
        with second.writer(wait_s=5):
            assert time.monotonic() - started >= 0.25


def test_verify_finds_non_finite_vectors_and_repair_drops_their_recording(store_path):
    storage = Storage.open(store_path)
    with storage.session() as s:  # a store from before checksums (they would flag the whole block)
        s.execute(delete(FileChecksum))
    row_bytes = storage.vectors.row_bytes
    with open(storage.vectors.path, "r+b") as f:
        f.seek(3 * row_bytes)
        f.write(np.full(storage.identity.dim, np.nan, np.float32).tobytes())
    assert "1 vectors hold NaN or Inf" in verify(storage).problems
    report = verify(storage, repair=True)
    assert any("removed 1 broken recordings" in r for r in report.repaired) and report.ok
    assert 3 not in set(storage.live_rows().tolist())
