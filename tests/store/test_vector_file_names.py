"""The vector file is named after its dtype (vectors.f32 / vectors.f16) and recorded in the catalog;
stores made before (the committed 0001 fixture, float16 stores whose file is vectors.f32) keep working,
read-write and read-only. Also the catalog queries the API lists through."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from fakes import BandEncoder
from sqlalchemy import delete, select, update

from proto_index import Store
from proto_index.usecases.maintenance import reindex, remove
from proto_index.store import queries, storage as storage_mod
from proto_index.store.integrity import owned_file
from proto_index.store.schema import FileChecksum, StoreMeta, Window
from proto_index.store.storage import Storage
from proto_index.store.vectors import vector_file_name
from store_checks import FIXTURE_0001, invariants
from proto_index.options import EnvironmentOptions


def test_names_by_dtype():
    assert vector_file_name("float32") == "vectors.f32" and vector_file_name("float16") == "vectors.f16"
    assert vector_file_name("float16", "0a1b") == "vectors-0a1b.f16"
    assert owned_file("vectors.f16") and owned_file("vectors-0a1b.f16.tmp") and not owned_file("vectors.f8")


@pytest.mark.parametrize("dtype, name", [("float32", "vectors.f32"), ("float16", "vectors.f16")])
def test_new_store_names_and_records_its_vector_file(tmp_path, corpus_dir, dtype, name):
    with Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder(), vector_dtype=dtype) as s:
        s.ingest([corpus_dir])
    files = sorted(p.name for p in (tmp_path / "s").iterdir() if p.name.startswith("vectors"))
    assert files == [name]
    storage = Storage.open(tmp_path / "s")
    assert storage.meta("vector_file") == name and storage.vectors.path.name == name
    assert (tmp_path / "s" / name).stat().st_size == 24 * BandEncoder().dim * (4 if dtype == "float32" else 2)
    storage.close()
    assert invariants(tmp_path / "s") == 24


def _as_made_before_names_were_recorded(root: Path) -> None:
    """Turn a float16 store into the layout older versions wrote: its file called vectors.f32, no
    recorded name (the checksums keyed by that name)."""
    storage = Storage.open(root)
    with storage.session() as s:
        s.execute(delete(StoreMeta).where(StoreMeta.key == "vector_file"))
        s.execute(update(FileChecksum).where(FileChecksum.file == "vectors.f16").values(file="vectors.f32"))
    storage.close()
    (root / "vectors.f16").rename(root / "vectors.f32")


def test_float16_store_with_the_old_name_opens_and_compacts_to_the_new_name(tmp_path, corpus_dir, monkeypatch):
    root = tmp_path / "s"
    with Store.init(root, model="fake-bands", encoder=BandEncoder(), vector_dtype="float16") as s:
        s.ingest([corpus_dir])
        expected = s.search("siren", k=3)
    _as_made_before_names_were_recorded(root)

    with Store.open(root, encoder=BandEncoder()) as s:  # read-write: a writer takes it without renaming
        assert s._storage.vectors.path.name == "vectors.f32" and s._storage.vector_dtype == "float16"
        assert [(h.path, h.score) for h in s.search("siren", k=3)] == [(h.path, h.score) for h in expected]
    assert invariants(root) == 24
    assert (root / "vectors.f32").exists() and not (root / "vectors.f16").exists()

    monkeypatch.setattr(storage_mod, "store_writable", lambda r: False)  # a read-only mount
    with Store.open(root, encoder=BandEncoder()) as s:
        assert s._storage.read_only
        assert [h.path for h in s.search("siren", k=3)] == [h.path for h in expected]
    monkeypatch.undo()

    storage = Storage.open(root)
    gone = sorted(corpus_dir.iterdir())[0]
    assert remove(storage, [gone]) == 1
    reindex(storage, compact=True)
    new = storage.vectors.path.name
    assert new.startswith("vectors-") and new.endswith(".f16") and storage.meta("vector_file") == new
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("vectors")) == [new]
    storage.close()
    assert invariants(root) == 23


def test_fixture_store_from_revision_0001_keeps_its_vector_file_read_write_and_read_only(tmp_path, monkeypatch):
    root = tmp_path / "old"
    shutil.copytree(FIXTURE_0001, root)
    before = (root / "vectors.f32").read_bytes()
    storage = Storage.open(root)  # upgrades the schema; the file keeps its name
    assert storage.vectors.path.name == "vectors.f32" and storage.vector_dtype == "float32"
    assert storage.meta("vector_file") is None
    rows = storage.live_rows()
    vectors = storage.vectors.read(rows)
    storage.close()
    assert (root / "vectors.f32").read_bytes() == before

    monkeypatch.setattr(storage_mod, "store_writable", lambda r: False)
    reader = Storage.open(root)
    assert reader.read_only and reader.vectors.path.name == "vectors.f32"
    np.testing.assert_array_equal(reader.vectors.read(rows), vectors)
    scores, found = reader.index().search(vectors, 1)
    assert found[:, 0].tolist() == rows.tolist()
    reader.close()


def test_catalog_queries_behind_info_and_listings(tmp_path, corpus_dir):
    with Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder()) as s:
        s.ingest([corpus_dir])
        s.add_classes("urban", ["siren", "dog bark"])
        s.add_classes("birds", ["bird song"])
        s.build_prototypes("urban")
        s.add_environment("park", EnvironmentOptions(text="park"))
        info = s.info()
        assert info["counts"] == {"recordings": 24, "windows": 24, "failed_files": 0, "class_sets": 2,
                                  "prototype_sets": 1, "environments": 1}
        assert info["corpus_hours"] == pytest.approx(24 * 2.0 / 3600)
        assert [c.name for c in s.class_sets()] == ["birds", "urban"]
        assert [p.name for p in s.prototype_sets()] == ["urban-zero-shot"]
        storage = s._storage
        with storage.session() as sess:
            window = sess.scalar(select(Window).where(Window.vector_row == 5))
            expected = (window.id, window.recording.path, window.start_s)
            at = queries.windows_at_rows(sess, np.array([5, 999]))
            assert queries.committed_rows(sess) == 24 and queries.count_live_rows(sess, below=10) == 10
            assert queries.live_rows(sess, 20).tolist() == [20, 21, 22, 23]
        assert list(at) == [5]
        assert (at[5].window_id, at[5].path, at[5].start_s) == expected
