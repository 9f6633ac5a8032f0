"""embed_files: input order, exact batches across files, hashing in the read, skipping known content
without decoding it, bounded read-ahead, and worker threads that end with the consumer."""
import hashlib
import threading
import time

import numpy as np
import pytest
from audio_factory import text_as_wav, write_wav
from fakes import BandEncoder

from proto_index.audio.discover import file_sha256
from proto_index.engine import reading
from proto_index.options import EmbedOptions
from proto_index.engine.embedding import EmbeddedFile, SkippedFile, embed_files


class Recording(BandEncoder):
    """The fake encoder, remembering the size of every batch it was given."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        self.batches: list[int] = []
        self.fail_after = fail_after

    def embed_waveforms(self, waveforms):
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise RuntimeError("model exploded")
        self.batches.append(len(waveforms))
        return super().embed_waveforms(waveforms)


@pytest.fixture
def mixed(tmp_path):
    """Short, long and bad files, in an order where failures sit between good files."""
    d = tmp_path / "in"
    return [
        write_wav(d / "a.wav", 2.0, 16000, seed=1),
        write_wav(d / "b.flac", 25.0, 44100, 2, format="FLAC", seed=2),  # 3 windows, one shot
        tmp_path / "missing.wav",
        write_wav(d / "c.wav", 40.5, 22050, seed=3),  # 4 windows (the 0.5 s tail is dropped), streamed
        text_as_wav(d / "d.wav"),
        write_wav(d / "e.wav", 0.5, 48000, 3, seed=4),
    ]


def _summary(results):
    return [(type(r).__name__, r.path.name, len(r.starts_s) if isinstance(r, EmbeddedFile) else None) for r in results]


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_results_come_in_input_order_with_failures_in_place(mixed, workers):
    results = list(embed_files(mixed, BandEncoder(), options=EmbedOptions(batch_windows=4, workers=workers)))
    assert _summary(results) == [
        ("EmbeddedFile", "a.wav", 1), ("EmbeddedFile", "b.flac", 3), ("FailedFile", "missing.wav", None),
        ("EmbeddedFile", "c.wav", 4), ("FailedFile", "d.wav", None), ("EmbeddedFile", "e.wav", 1),
    ]
    assert "cannot read file" in results[2].error and "not an audio file" in results[4].error


def test_workers_do_not_change_any_vector(mixed):
    serial = [r for r in embed_files(mixed, BandEncoder(), options=EmbedOptions(batch_windows=3, workers=0)) if isinstance(r, EmbeddedFile)]
    threaded = [r for r in embed_files(mixed, BandEncoder(), options=EmbedOptions(batch_windows=5, workers=2)) if isinstance(r, EmbeddedFile)]
    for a, b in zip(serial, threaded, strict=True):
        assert (a.starts_s, a.ends_s, a.duration_s, a.sample_rate, a.channels) == \
               (b.starts_s, b.ends_s, b.duration_s, b.sample_rate, b.channels)
        np.testing.assert_array_equal(a.vectors, b.vectors)


def test_batches_hold_exactly_batch_windows_across_files(mixed):
    encoder = Recording()
    results = list(embed_files(mixed, encoder, options=EmbedOptions(batch_windows=4)))
    total = sum(len(r.starts_s) for r in results if isinstance(r, EmbeddedFile))
    assert total == 9
    assert encoder.batches == [4, 4, 1]  # files share batches; only the last one is short


def test_hashes_come_from_the_same_read(mixed):
    results = list(embed_files(mixed, BandEncoder(), hash_files=True))
    for r in results:
        if isinstance(r, EmbeddedFile):
            assert r.sha256 == file_sha256(r.path) == hashlib.sha256(r.path.read_bytes()).hexdigest()
    plain = next(embed_files(mixed[:1], BandEncoder()))
    assert plain.sha256 is None


def test_known_and_repeated_content_is_skipped_without_decoding(tmp_path, monkeypatch):
    a = write_wav(tmp_path / "a.wav", 2.0, 16000, seed=1)
    b = write_wav(tmp_path / "b.wav", 2.0, 16000, seed=2)
    a_copy = tmp_path / "a_copy.wav"
    a_copy.write_bytes(a.read_bytes())
    c = write_wav(tmp_path / "c.wav", 2.0, 16000, seed=3)
    opened = []
    real_open = reading.open_audio
    monkeypatch.setattr(reading, "open_audio", lambda source: opened.append(source) or real_open(source))

    known = {file_sha256(b)}
    results = list(embed_files([a, b, a_copy, c], BandEncoder(), known_hashes=known, options=EmbedOptions(workers=0)))

    assert [type(r) for r in results] == [EmbeddedFile, SkippedFile, SkippedFile, EmbeddedFile]
    assert results[1].sha256 == file_sha256(b) and results[2].sha256 == file_sha256(a)
    assert len(opened) == 2  # neither the stored file nor the second copy was decoded
    assert known == {file_sha256(b)}  # the caller's set is not modified


def test_a_copy_decoded_ahead_is_still_skipped_in_order(tmp_path):
    """With threads, a copy may be decoded before its original is claimed; it is still the one skipped."""
    a = write_wav(tmp_path / "a.wav", 12.0, 16000, seed=1)
    copies = []
    for i in range(5):
        copies.append(tmp_path / f"copy{i}.wav")
        copies[-1].write_bytes(a.read_bytes())
    results = list(embed_files([a, *copies], BandEncoder(), known_hashes=set(), options=EmbedOptions(workers=3, prefetch=6)))
    assert [type(r) for r in results] == [EmbeddedFile] + [SkippedFile] * 5


def test_read_ahead_is_bounded(tmp_path):
    paths = [write_wav(tmp_path / f"{i}.wav", 0.5, 16000, seed=i) for i in range(30)]
    pulled = 0

    def lazily():
        nonlocal pulled
        for p in paths:
            pulled += 1
            yield p

    results = embed_files(lazily(), BandEncoder(), options=EmbedOptions(batch_windows=1, workers=2, prefetch=4))
    next(results)
    time.sleep(0.2)  # let the workers run as far ahead as they may
    assert pulled <= 1 + 4 + 1
    assert len(list(results)) == 29


def _reader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("proto-index-reader")]


def test_stopping_early_or_failing_ends_the_workers(tmp_path):
    paths = [write_wav(tmp_path / f"{i}.wav", 35.0, 16000, seed=i) for i in range(4)]  # streamed
    before = len(_reader_threads())
    results = embed_files(paths, BandEncoder(), options=EmbedOptions(batch_windows=1, workers=2))
    next(results)
    results.close()  # the consumer gives up with workers blocked on full queues
    with pytest.raises(RuntimeError, match="model exploded"):
        list(embed_files(paths, Recording(fail_after=2), options=EmbedOptions(batch_windows=1, workers=2)))
    deadline = time.monotonic() + 5
    while len(_reader_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_reader_threads()) == before




def test_windows_are_counted_as_they_are_embedded(mixed):
    counted = []
    list(embed_files(mixed, BandEncoder(), on_windows=counted.append, options=EmbedOptions(batch_windows=4)))
    assert counted == [4, 4, 1]
