"""The server's parts without a server: the batcher, range headers, settings, the index watch."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from fakes import BandEncoder

from proto_index.errors import InvalidInput
from proto_index.service.audio import RangeNotSatisfiable, byte_range
from proto_index.service.batcher import BatchingEncoder, SerialEncoder
from proto_index.service.settings import ServiceSettings, is_loopback, read_token_file


class GatedEncoder(BandEncoder):
    """The fake encoder whose first call waits until ``release`` is set: the others queue meanwhile."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.batches: list[int] = []

    def embed_texts(self, texts):
        if not self.batches:
            self.batches.append(len(texts))
            assert self.release.wait(10)
        else:
            self.batches.append(len(texts))
        return super().embed_texts(texts)


def test_concurrent_calls_share_one_model_call_and_each_gets_its_rows():
    inner = GatedEncoder()
    enc = BatchingEncoder(inner, window_s=0.05, max_items=64)
    texts = [f"siren {i}" if i % 2 else f"dog bark {i}" for i in range(9)]
    results: dict[int, np.ndarray] = {}

    def call(i):
        results[i] = enc.embed_texts([texts[i]])

    first = threading.Thread(target=call, args=(0,))
    first.start()
    while not inner.batches:  # the first call is inside the model
        threading.Event().wait(0.005)
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, 9)]
    for t in others:
        t.start()
    while enc._queue.qsize() < 8:  # every other call is queued behind it
        threading.Event().wait(0.005)
    inner.release.set()
    for t in [first, *others]:
        t.join(10)
    assert inner.batches == [1, 8]
    assert enc.stats.record() == {"calls": 9, "model_calls": 2, "items": 9}
    expected = BandEncoder().embed_texts(texts)
    for i in range(9):
        np.testing.assert_allclose(results[i][0], expected[i], atol=1e-6)
    enc.close()


def test_a_model_error_reaches_every_caller_of_its_batch():
    class Broken(BandEncoder):
        def embed_texts(self, texts):
            raise RuntimeError("model exploded")

    enc = BatchingEncoder(Broken(), window_s=0.001)
    with pytest.raises(RuntimeError, match="model exploded"):
        enc.embed_texts(["siren"])
    assert enc.embed_waveforms([]).shape == (0, enc.dim)
    enc.close()


def test_texts_and_clips_are_batched_apart():
    enc = BatchingEncoder(BandEncoder(), window_s=0.001)
    wave = np.zeros(48_000, np.float32)
    out = enc.embed_waveforms([wave, wave])
    assert out.shape == (2, enc.dim)
    np.testing.assert_allclose(enc.embed_texts(["siren"]), BandEncoder().embed_texts(["siren"]), atol=1e-6)
    assert enc.identity == BandEncoder().identity
    serial = SerialEncoder(BandEncoder())
    np.testing.assert_allclose(serial.embed_texts(["siren"]), BandEncoder().embed_texts(["siren"]), atol=1e-6)
    assert serial.stats.record() == {"calls": 1, "model_calls": 1, "items": 1}
    enc.close()


@pytest.mark.parametrize("header,span", [
    (None, None), ("", None), ("bytes=0-9", (0, 9)), ("bytes=10-", (10, 99)), ("bytes=-10", (90, 99)),
    ("bytes=90-500", (90, 99)), ("bytes=-500", (0, 99)), ("items=0-1", None), ("bytes=1-2,5-6", None), ("bytes=-", None),
])
def test_byte_ranges(header, span):
    assert byte_range(header, 100) == span


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-160", "bytes=-0", "bytes=9-3"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, 100)


def test_settings_refuse_an_open_interface_without_a_token(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.com")
    with pytest.raises(InvalidInput, match="without a token"):
        ServiceSettings(store=tmp_path, host="0.0.0.0")
    assert ServiceSettings(store=tmp_path, host="0.0.0.0", token="t").writes_need_token
    with pytest.raises(InvalidInput, match="empty"):
        ServiceSettings(store=tmp_path, token="  ")
    (tmp_path / "tok").write_text("abc123\nignored\n")
    assert read_token_file(tmp_path / "tok") == "abc123"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(InvalidInput, match="is empty"):
        read_token_file(tmp_path / "empty")
    with pytest.raises(InvalidInput, match="cannot read"):
        read_token_file(tmp_path / "missing")
