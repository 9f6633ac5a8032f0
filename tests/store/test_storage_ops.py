"""Storage owns the operations that replace its vector file or drop its rows: they need the writer
lock, and leave the store consistent for the next reader."""
import numpy as np
import pytest
from fakes import BandEncoder

from proto_index import Store
from proto_index.errors import StoreError
from proto_index.usecases.maintenance import remove
from proto_index.store.storage import Storage
from store_checks import invariants


def test_compaction_and_dropping_rows_need_the_writer_lock(tmp_path):
    Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder()).close()
    storage = Storage.open(tmp_path / "s")
    with pytest.raises(StoreError, match="compacting the vector file needs the writer lock"):
        storage.compact_vectors()
    with pytest.raises(StoreError, match="dropping damaged vector rows needs the writer lock"):
        storage.drop_damaged_rows([])
    storage.close()


def test_compact_vectors_switches_files_and_keeps_the_live_vectors(tmp_path, corpus_dir):
    root = tmp_path / "s"
    with Store.init(root, model="fake-bands", encoder=BandEncoder()) as s:
        s.ingest([corpus_dir])
    storage = Storage.open(root)
    with storage.writer():
        assert storage.compact_vectors() is False  # nothing removed: the file stays
    assert storage.vectors.path.name == "vectors.f32"
    gone = sorted(corpus_dir.iterdir())[:2]
    remove(storage, gone)
    kept = {w.path: storage.vectors.read([row])[0] for row, w in storage.windows_at_rows(storage.live_rows()).items()}
    with storage.writer():
        assert storage.compact_vectors() is True
        storage.publish_index(storage.index())
    assert storage.committed_rows() == storage.vectors.count == 22
    assert not (root / "vectors.f32").exists()
    after = {w.path: storage.vectors.read([row])[0] for row, w in storage.windows_at_rows(storage.live_rows()).items()}
    assert sorted(after) == sorted(kept)
    for path, vector in kept.items():
        np.testing.assert_array_equal(after[path], vector)
    storage.close()
    assert invariants(root) == 22
