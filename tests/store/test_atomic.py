"""The one atomic-write helper: a crash mid-write keeps the old file and leaves no temporary file."""
from __future__ import annotations

import os

import numpy as np
import pytest

from proto_index import atomic
from proto_index.atomic import atomic_path, atomic_write


class Boom(Exception):
    pass


@pytest.mark.parametrize("durable", [True, False])
def test_exception_mid_write_keeps_the_old_file_and_no_temp(tmp_path, durable):
    out = tmp_path / "results.csv"
    out.write_text("old\n")
    with pytest.raises(Boom):
        with atomic_write(out, durable=durable) as f:
            f.write("new, half")
            f.flush()
            raise Boom
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_exception_before_the_first_write_creates_nothing(tmp_path):
    with pytest.raises(Boom):
        with atomic_write(tmp_path / "new.json"):
            raise Boom
    assert list(tmp_path.iterdir()) == []


def test_completed_write_replaces_and_keeps_umask_permissions(tmp_path):
    out = tmp_path / "a.bin"
    out.write_bytes(b"old")
    old_umask = os.umask(0o022)
    try:
        with atomic_write(out, "wb") as f:
            f.write(b"\x00new")
    finally:
        os.umask(old_umask)
    assert out.read_bytes() == b"\x00new"
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_text_mode_keeps_newlines_as_written(tmp_path):
    out = tmp_path / "t.csv"
    with atomic_write(out, newline="") as f:
        f.write("a,b\r\nc,d\r\n")
    assert out.read_bytes() == b"a,b\r\nc,d\r\n"


def test_atomic_path_for_writers_that_take_a_name(tmp_path):
    out = tmp_path / "v.npy"
    np.save(out, np.zeros(2))
    with pytest.raises(Boom):
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.ones(3))
            raise Boom
    assert np.load(out).tolist() == [0.0, 0.0]
    assert [p.name for p in tmp_path.iterdir()] == ["v.npy"]
    with atomic_path(out, tmp=tmp_path / "v.npy.tmp") as tmp:
        assert tmp == tmp_path / "v.npy.tmp"
        with open(tmp, "wb") as f:
            np.save(f, np.ones(3))
    assert np.load(out).tolist() == [1.0, 1.0, 1.0]
    assert [p.name for p in tmp_path.iterdir()] == ["v.npy"]


def test_temp_file_must_share_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="must be in the folder"):
        with atomic_path(tmp_path / "x", tmp=tmp_path / "sub" / "x.tmp"):
            pass


def test_durable_mode_fsyncs_the_folder_and_cheap_mode_does_not(tmp_path, monkeypatch):
    synced: list[str] = []
    real = atomic.fsync_dir
    monkeypatch.setattr(atomic, "fsync_dir", lambda d: (synced.append(str(d)), real(d)))
    with atomic_write(tmp_path / "cache.json", durable=False) as f:
        f.write("{}")
    assert synced == []
    with atomic_write(tmp_path / "out.json") as f:
        f.write("{}")
    assert synced == [str(tmp_path)]


def test_a_failed_fsync_leaves_the_target_untouched(tmp_path, monkeypatch):
    out = tmp_path / "index.faiss"
    out.write_bytes(b"published")

    def broken(path):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic, "fsync_file", broken)
    with pytest.raises(OSError, match="Input/output"):
        with atomic_write(out, "wb") as f:
            f.write(b"next")
    assert out.read_bytes() == b"published"
    assert [p.name for p in tmp_path.iterdir()] == ["index.faiss"]


def test_bad_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_write(tmp_path / "x", "a"):
            pass
