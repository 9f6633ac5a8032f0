"""Storage: round trips, crash and resume, bad inputs, schema upgrade of an old store."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_factory import corrupt_header, text_as_wav, truncated, write_wav, zero_length
from fakes import BandEncoder
from sqlalchemy import text
from store_checks import FIXTURE_0001, invariants

from proto_index import EmbedOptions, IngestOptions, Store
from proto_index.engine.model import LazyEncoder
from proto_index.errors import StoreCorrupt, StoreError, StoreExists, StoreNotFound
from proto_index.usecases import ingest as ingest_mod
from proto_index.store import catalog
from proto_index.store.storage import Storage
from proto_index.store.vectors import VectorFile
from proto_index.options import EnvironmentOptions, PrototypeOptions

class CrashAfter(BandEncoder):
    """Dies like a killed process in the middle of the ``calls``-th model batch."""

    def __init__(self, calls: int):
        super().__init__()
        self.left = calls

    def embed_waveforms(self, waveforms):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return super().embed_waveforms(waveforms)


def test_vector_file_round_trip_and_torn_tail(tmp_path):
    vf = VectorFile(tmp_path / "v.f32", 3)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert vf.append(a) == 0 and vf.append(a + 10) == 2
    np.testing.assert_array_equal(vf.read([3, 0]), [[13, 14, 15], [0, 1, 2]])
    with open(vf.path, "ab") as f:
        f.write(b"\x00" * 5)  # a torn partial row
    assert vf.count == 4
    assert vf.append(a[:1]) == 4 and vf.path.stat().st_size == 5 * 12
    with pytest.raises(StoreCorrupt, match=r"holds 5 rows but row 5 is needed: vectors were lost"):
        vf.read([5])


@pytest.mark.parametrize("crash_at", [0, 1, 3, 5])
def test_ingest_killed_mid_run_resumes_without_loss_or_duplicates(tmp_path, corpus_dir, crash_at):
    path = tmp_path / "store"
    Store.init(path, model="fake-bands", encoder=BandEncoder()).close()
    storage = Storage.open(path)
    with pytest.raises(KeyboardInterrupt):
        ingest_mod.ingest(storage, LazyEncoder.of(CrashAfter(crash_at)), [corpus_dir], options=EmbedOptions(batch_windows=4),
                         run=IngestOptions(commit_windows=4))
    storage.close()
    committed = invariants(path)
    assert committed == 4 * crash_at  # every finished batch was kept, the one in flight was not
    with Store.open(path, encoder=BandEncoder()) as store:
        report = store.ingest([corpus_dir])
    assert (report.added, report.skipped) == (24 - committed, committed)
    assert invariants(path) == 24


def test_uncommitted_vectors_and_stale_index_are_repaired_on_open(tmp_path, corpus_dir):
    path = tmp_path / "store"
    with Store.init(path, model="fake-bands", encoder=BandEncoder()) as s:
        s.ingest([corpus_dir])
    VectorFile(path / "vectors.f32", BandEncoder().dim).append(np.ones((3, BandEncoder().dim)))  # crash after append
    for f in path.glob("index-*.faiss"):
        f.unlink()  # the index file lost
    assert invariants(path) == 24


def test_bad_files_are_recorded_and_the_rest_ingested(tmp_path):
    folder = tmp_path / "in"
    good = write_wav(folder / "good.wav", 1.5, 44_100, 2)
    bad = {
        "corrupt_header.wav": corrupt_header,
        "empty.wav": zero_length,
        "notes.wav": text_as_wav,
        "cut.wav": truncated,
    }
    for name, make in bad.items():
        make(folder / name)
    with Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder()) as s:
        report = s.ingest([folder])
        failed = {p.name: why for p, why in ((f.path, f.error) for f in report.failed)}
        info = s.info()
    assert report.added + len(failed) == 5 and "good.wav" not in failed
    assert {"corrupt_header.wav", "empty.wav", "notes.wav"} <= set(failed)
    assert all(why for why in failed.values())
    assert {Path(p).name for p, _ in info["failures"]} == set(failed)
    assert good.exists()


def test_a_fixed_file_clears_its_failure(tmp_path):
    folder = tmp_path / "in"
    f = text_as_wav(folder / "later.wav")
    with Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder()) as s:
        assert len(s.ingest([folder]).failed) == 1
        write_wav(f, 1.0, 16_000, 1)
        report = s.ingest([folder])
        assert (report.added, report.failed) == (1, [])
        assert s.info()["failures"] == []


def test_init_refuses_existing_and_open_refuses_missing(tmp_path):
    Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder()).close()
    with pytest.raises(StoreExists):
        Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder())
    with pytest.raises(StoreNotFound, match="no proto-index store at .*nowhere.*proto-index init"):
        Store.open(tmp_path / "nowhere")


def test_the_written_schema_revision_is_the_newest_migration():
    assert catalog.head_revision() == catalog.migrations_head()


def test_store_written_by_revision_0001_upgrades_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old"
    shutil.copytree(FIXTURE_0001, path)
    engine = catalog.create_catalog_engine(path / "catalog.sqlite")
    assert catalog.current_revision(engine) == "0001"
    engine.dispose()
    with Store.open(path, encoder=BandEncoder()) as store:
        engine = catalog.create_catalog_engine(path / "catalog.sqlite")
        assert catalog.current_revision(engine) == catalog.head_revision() != "0001"
        engine.dispose()
        info = store.info()
        assert info["counts"]["recordings"] == 3 and info["counts"]["windows"] == 3
        ps = store.prototype_set("urban-zero-shot")
        assert ps.labels == ["siren", "dog bark", "drilling"]
        park = store.environment("park")
        assert (park.tau_audio, park.tau_text, len(park.text_vectors)) == (None, None, 3)
        hits = store.search("siren", k=1)
        assert hits[0].path == "/archive/siren.wav"
        # the new column works on the upgraded store
        store.add_environment("park", EnvironmentOptions(text="park", tau_text=0.3, replace=True))
        assert store.environment("park").tau_text == 0.3
    assert invariants(path) == 3


def test_a_store_of_a_newer_version_is_refused_in_one_line_and_left_unchanged(tmp_path):
    with Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder()):
        pass
    engine = catalog.create_catalog_engine(tmp_path / "s" / "catalog.sqlite")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    head = catalog.head_revision()
    with pytest.raises(StoreError, match=rf"written by a newer proto-index \(catalog schema 0099_future; this "
                                         rf"version knows up to {head}\); upgrade proto-index to open it"):
        Store.open(tmp_path / "s", encoder=BandEncoder())
    engine = catalog.create_catalog_engine(tmp_path / "s" / "catalog.sqlite")
    assert catalog.current_revision(engine) == "0099_future"
    engine.dispose()


def test_migrations_match_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from proto_index.store.schema import Base

    engine = catalog.create_catalog_engine(tmp_path / "c.sqlite")
    catalog.upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_models_key_their_tables_first_as_the_migrations_do(tmp_path):
    """compare_metadata ignores column order; the shared ``id`` (schema.Entity) still comes first."""
    from sqlalchemy import inspect

    from proto_index.store.schema import Base

    engine = catalog.create_catalog_engine(tmp_path / "c.sqlite")
    catalog.upgrade(engine)
    migrated = inspect(engine)
    for table in Base.metadata.sorted_tables:
        orm, db = [c.name for c in table.columns], [c["name"] for c in migrated.get_columns(table.name)]
        assert orm[0] == db[0] and sorted(orm) == sorted(db), table.name
    assert [c.name for c in Base.metadata.tables["windows"].columns] == ["id", "recording_id", "start_s", "end_s", "vector_row"]


def test_float16_store_halves_the_vector_file_and_keeps_results(tmp_path, corpus_dir):
    results = {}
    for dtype in ("float32", "float16"):
        with Store.init(tmp_path / dtype, model="fake-bands", encoder=BandEncoder(), vector_dtype=dtype) as s:
            s.ingest([corpus_dir])
            s.add_classes("urban", ["siren", "dog bark", "drilling", "bird song"])
            ps = s.build_prototypes("urban", PrototypeOptions(method="tgap", n=6))
            results[dtype] = (ps.matrix, [nb.path for nbs in ps.neighbours for nb in nbs], s._storage.vectors.path.stat().st_size)
    m32, nb32, size32 = results["float32"]
    m16, nb16, size16 = results["float16"]
    assert size16 * 2 == size32 and nb16 == nb32
    np.testing.assert_allclose(m16, m32, atol=1e-3)
    assert Storage.open(tmp_path / "float16").vector_dtype == "float16"
    assert invariants(tmp_path / "float16") == 24


def test_unknown_vector_dtype_is_refused(tmp_path):
    from proto_index.errors import InvalidInput

    with pytest.raises(InvalidInput, match="float32 or float16"):
        Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder(), vector_dtype="int8")
