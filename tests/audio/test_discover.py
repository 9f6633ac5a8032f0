"""Finding audio files under user-named paths, and content hashes."""
import hashlib
import os

import pytest
from audio_factory import text_as_wav, write_flac, write_wav

from proto_index.audio import discover
from proto_index.audio.decode import load_audio
from proto_index.audio.discover import AUDIO_EXTENSIONS, Discovery, NotRegularFile, file_sha256, find_audio_files
from proto_index.errors import AudioDecodeError, NotFound


@pytest.fixture
def tree(tmp_path):
    """A small tree: audio at several depths, non-audio, hidden entries, an upper-case extension."""
    write_wav(tmp_path / "a.wav", 0.1, 16000)
    write_flac(tmp_path / "sub" / "b.flac", 0.1, 16000)
    write_wav(tmp_path / "sub" / "deeper" / "c.WAV", 0.1, 16000)
    write_wav(tmp_path / "sub" / "deeper" / "d.aiff", 0.1, 16000)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub" / "cover.jpg").write_bytes(b"\xff\xd8")
    write_wav(tmp_path / ".hidden.wav", 0.1, 16000)
    write_wav(tmp_path / ".cache" / "e.wav", 0.1, 16000)
    return tmp_path


def rel(result, root):
    return [p.relative_to(root).as_posix() for p in result.files]


def test_recursion_and_extension_filtering(tree):
    result = find_audio_files([tree])
    assert isinstance(result, Discovery)
    assert rel(result, tree) == ["a.wav", "sub/b.flac", "sub/deeper/c.WAV", "sub/deeper/d.aiff"]
    assert result.problems == []
    assert all(p.is_absolute() for p in result.files)


def test_single_path_and_relative_path_accepted(tree, monkeypatch):
    monkeypatch.chdir(tree)
    result = find_audio_files("sub")
    assert result.files == [tree / "sub" / "b.flac", tree / "sub" / "deeper" / "c.WAV",
                            tree / "sub" / "deeper" / "d.aiff"]


def test_extensions_follow_libsndfile():
    for ext in (".wav", ".flac", ".aiff", ".aif", ".ogg", ".oga", ".au", ".w64", ".caf"):
        assert ext in AUDIO_EXTENSIONS
    assert ".raw" not in AUDIO_EXTENSIONS
    assert ".txt" not in AUDIO_EXTENSIONS


def test_named_file_included_whatever_its_extension(tree):
    result = find_audio_files([tree / "notes.txt", tree / ".hidden.wav"])
    assert result.files == [tree / ".hidden.wav", tree / "notes.txt"]


def test_named_hidden_folder_is_walked(tree):
    assert rel(find_audio_files([tree / ".cache"]), tree) == [".cache/e.wav"]


def test_duplicates_removed_and_order_deterministic(tree):
    result = find_audio_files([tree / "sub", tree, tree / "a.wav", tree / "sub" / ".." / "a.wav"])
    assert rel(result, tree) == ["a.wav", "sub/b.flac", "sub/deeper/c.WAV", "sub/deeper/d.aiff"]


def test_symlink_loop_terminates(tree):
    os.symlink(tree, tree / "sub" / "loop")
    os.symlink(tree / "sub", tree / "sub" / "deeper" / "back")
    result = find_audio_files([tree])
    assert rel(result, tree) == ["a.wav", "sub/b.flac", "sub/deeper/c.WAV", "sub/deeper/d.aiff"]


def test_symlinks_to_files_and_folders_followed(tmp_path):
    outside = tmp_path / "outside"
    write_wav(outside / "x.wav", 0.1, 16000)
    write_wav(outside / "y.wav", 0.1, 16000)
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "linked_folder")
    os.symlink(outside / "y.wav", root / "z.wav")
    os.symlink(tmp_path / "missing.wav", root / "dangling.wav")
    result = find_audio_files([root])
    # y.wav is reached twice, as z.wav and as linked_folder/y.wav: reported once, by the first
    assert rel(result, root) == ["linked_folder/x.wav", "z.wav"]
    assert result.problems == [(root / "dangling.wav", "broken symbolic link")]


def test_missing_path_raises_before_walking(tree, monkeypatch):
    missing = tree / "nope"
    walked = []
    monkeypatch.setattr(discover, "_walk", lambda *a: walked.append(a))
    with pytest.raises(NotFound) as info:
        find_audio_files([tree, missing])
    assert str(info.value) == f"no such file or folder: {missing}"
    assert walked == []


def test_unreadable_folder_reported_and_skipped(tree, monkeypatch):
    locked = tree / "sub" / "deeper"
    real_scandir = os.scandir

    def scandir(path):  # also called with a file descriptor (shutil.rmtree, cleaning tmp_path)
        if not isinstance(path, int) and os.fspath(path) == os.fspath(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(discover.os, "scandir", scandir)
    result = find_audio_files([tree])
    assert rel(result, tree) == ["a.wav", "sub/b.flac"]
    assert result.problems == [(locked, "Permission denied")]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_folder_by_permissions(tree):
    locked = tree / "sub"
    locked.chmod(0)
    try:
        result = find_audio_files([tree])
    finally:
        locked.chmod(0o755)
    assert rel(result, tree) == ["a.wav"]
    assert [p for p, _ in result.problems] == [locked]


def test_sha256_matches_hashlib(tmp_path):
    path = write_wav(tmp_path / "h.wav", 1.0, 48000, channels=2)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == expected
    assert file_sha256(path, chunk=1000) == expected  # many chunks, the last one partial


def test_sha256_of_empty_and_text_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert file_sha256(empty) == hashlib.sha256(b"").hexdigest()
    text = text_as_wav(tmp_path / "t.wav")
    assert file_sha256(text) == hashlib.sha256(text.read_bytes()).hexdigest()


def test_sha256_missing_file_is_an_os_error(tmp_path):
    # callers record an unreadable (or vanished) file as failed by catching OSError
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing.wav")


def test_library_reads_refuse_fifos_and_devices(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile):
        file_sha256(fifo)
    with pytest.raises(AudioDecodeError, match="not a regular file"):
        load_audio(fifo)
    with pytest.raises(NotRegularFile):
        file_sha256("/dev/zero")
