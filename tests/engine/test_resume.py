"""Resuming an ingest: unchanged files (same path, size, mtime) are skipped before any byte is read."""
import builtins
import os
import shutil

import pytest
from store_checks import FIXTURE_0001
from conftest import write
from fakes import BandEncoder
from sqlalchemy import select, update

from proto_index import IngestOptions, Store
from proto_index.engine import embedding
from proto_index.store.schema import Recording



@pytest.fixture
def opened(monkeypatch):
    """Paths opened through Python (builtins.open or os.open: every read of a file starts with one)
    and files handed to a reader."""
    seen = {"open": [], "read": []}
    real_open, real_os_open, real_read = builtins.open, os.open, embedding.read_file

    def counting_open(file, *args, **kwargs):
        seen["open"].append(str(file))
        return real_open(file, *args, **kwargs)

    def counting_os_open(file, *args, **kwargs):
        seen["open"].append(str(file))
        return real_os_open(file, *args, **kwargs)

    def counting_read(path, *args, **kwargs):
        seen["read"].append(str(path))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(os, "open", counting_os_open)
    monkeypatch.setattr(embedding, "read_file", counting_read)

    def of(folder):
        return sorted({p for p in seen["open"] + seen["read"] if p.startswith(str(folder))})

    def reset():
        seen["open"].clear()
        seen["read"].clear()

    of.reset = reset
    return of


@pytest.fixture
def store(tmp_path, corpus_dir):
    s = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    s.ingest([corpus_dir])
    yield s
    s.close()


def recordings(store):
    with store._storage.session() as s:
        return {(r.path, r.sha256): (r.size_bytes, r.mtime_ns) for r in s.scalars(select(Recording))}


def test_stat_is_stored_with_each_recording(store, corpus_dir):
    rows = recordings(store)
    assert len(rows) == 24
    for (path, _), (size, mtime) in rows.items():
        st = os.stat(path)
        assert (size, mtime) == (st.st_size, st.st_mtime_ns)


def test_rerun_reads_no_byte_of_unchanged_files(store, corpus_dir, opened):
    report = store.ingest([corpus_dir])
    assert (report.added, report.skipped, report.failed) == (0, 24, [])
    assert opened(corpus_dir) == []


def test_changed_file_is_rehashed_and_embedded_the_rest_unread(store, corpus_dir, opened):
    target = corpus_dir / "siren_0.wav"
    st = os.stat(target)
    write(target, [(6500.0, 0.5)], seed=77)  # new content, same length
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    report = store.ingest([corpus_dir])
    assert (report.added, report.skipped) == (1, 23)
    assert opened(corpus_dir) == [str(target)]
    rows = recordings(store)
    assert len(rows) == 25 and sum(p == str(target) for p, _ in rows) == 2  # the old content stays stored
    opened.reset()
    assert store.ingest([corpus_dir]).added == 0 and opened(corpus_dir) == []


def test_touched_but_same_content_is_hashed_once_then_skipped_unread(store, corpus_dir, opened):
    target = corpus_dir / "drilling_3.wav"
    os.utime(target, ns=(0, os.stat(target).st_mtime_ns + 5_000_000_000))
    report = store.ingest([corpus_dir])
    assert (report.added, report.skipped) == (0, 24)
    assert opened(corpus_dir) == [str(target)]  # read to hash it: known content
    assert recordings(store)[next(k for k in recordings(store) if k[0] == str(target))][1] == os.stat(target).st_mtime_ns
    opened.reset()
    store.ingest([corpus_dir])
    assert opened(corpus_dir) == []


def test_rows_without_stat_fall_back_to_hashing_then_get_one(store, corpus_dir, opened):
    with store._storage.session() as s:
        s.execute(update(Recording).values(size_bytes=None, mtime_ns=None))
    report = store.ingest([corpus_dir])
    assert (report.added, report.skipped) == (0, 24)
    assert len(opened(corpus_dir)) == 24
    assert all(v[0] is not None for v in recordings(store).values())
    opened.reset()
    store.ingest([corpus_dir])
    assert opened(corpus_dir) == []


def test_rehash_reads_everything_and_catches_a_same_size_same_mtime_change(store, corpus_dir, opened):
    target = corpus_dir / "bird_song_2.wav"
    st = os.stat(target)
    write(target, [(700.0, 0.5)], seed=5)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # forged: the quick check cannot see it
    assert os.stat(target).st_size == st.st_size
    assert store.ingest([corpus_dir]).added == 0
    assert opened(corpus_dir) == []
    report = store.ingest([corpus_dir], run=IngestOptions(rehash=True))
    assert (report.added, report.skipped) == (1, 23) and len(opened(corpus_dir)) == 24


def test_copy_at_a_new_path_is_still_read_and_skipped_by_content(store, corpus_dir, tmp_path, opened):
    copy = tmp_path / "elsewhere" / "copy.wav"
    copy.parent.mkdir()
    shutil.copy2(corpus_dir / "siren_1.wav", copy)
    report = store.ingest([copy.parent])
    assert (report.added, report.skipped) == (0, 1) and opened(copy.parent) == [str(copy)]


def test_store_from_revision_0001_keeps_its_rows_without_stat(tmp_path):
    path = tmp_path / "old"
    shutil.copytree(FIXTURE_0001, path)
    with Store.open(path, encoder=BandEncoder()) as store:
        rows = recordings(store)
    assert len(rows) == 3 and set(rows.values()) == {(None, None)}
