"""Request batching: the texts and clips of concurrent requests reach the model in one call.

:class:`BatchingEncoder` is an :class:`~proto_index.embed.encoder.Encoder` that any pipeline
function can use from any thread: each call queues its items and waits; one worker thread takes
the first queued call, gathers the calls of the same kind that arrive within a few milliseconds
(up to a maximum of items), runs the wrapped encoder once and hands each caller its rows.
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from proto_index.embed.encoder import Encoder


@dataclass
class BatchStats:
    calls: int = 0  # calls made by callers
    model_calls: int = 0  # calls made to the wrapped encoder
    items: int = 0

    def record(self) -> dict:
        return {"calls": self.calls, "model_calls": self.model_calls, "items": self.items}


@dataclass
class _Request:
    kind: str  # "text" or "audio"
    items: list
    future: Future


class BatchingEncoder:
    """Wraps ``encoder``; ``window_s``: how long the first call of a batch waits for others."""

    def __init__(self, encoder: Encoder, window_s: float = 0.004, max_items: int = 64):
        self._encoder = encoder
        self.identity = encoder.identity
        self.window_s, self.max_items = window_s, max_items
        self.stats = BatchStats()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._held: list[_Request] = []  # taken while gathering the other kind: first in the next batch
        self._worker = threading.Thread(target=self._run, name="proto-index-batcher", daemon=True)
        self._worker.start()

    @property
    def dim(self) -> int:
        return self._encoder.dim

    @property
    def inner(self) -> Encoder:
        return self._encoder

    def __getattr__(self, name):  # device, labels, label_scores...: the wrapped encoder's
        return getattr(self._encoder, name)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._submit("text", list(texts))

    def embed_waveforms(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        return self._submit("audio", list(waveforms))

    def close(self) -> None:
        self._queue.put(None)

    def _submit(self, kind: str, items: list) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dim), np.float32)
        future: Future = Future()
        self._queue.put(_Request(kind, items, future))
        return future.result()

    def _next(self, timeout: float | None) -> _Request | None:
        if self._held:
            return self._held.pop(0)
        return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()

    def _run(self) -> None:
        while True:
            first = self._next(None)
            if first is None:
                return
            batch, n = [first], len(first.items)
            deadline = time.monotonic() + self.window_s
            held: list[_Request] = []
            while n < self.max_items:
                try:
                    nxt = self._next(deadline - time.monotonic())
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                if nxt.kind == first.kind and n + len(nxt.items) <= self.max_items:
                    batch.append(nxt)
                    n += len(nxt.items)
                else:
                    held.append(nxt)
            self._held = held + self._held
            self._embed(first.kind, batch)

    def _embed(self, kind: str, batch: list[_Request]) -> None:
        items = [x for r in batch for x in r.items]
        self.stats.calls += len(batch)
        self.stats.model_calls += 1
        self.stats.items += len(items)
        try:
            fn = self._encoder.embed_texts if kind == "text" else self._encoder.embed_waveforms
            out = np.asarray(fn(items), dtype=np.float32)
        except BaseException as e:  # every caller of the batch sees the model's error
            for r in batch:
                r.future.set_exception(e)
            return
        start = 0
        for r in batch:
            r.future.set_result(out[start : start + len(r.items)])
            start += len(r.items)


class SerialEncoder:
    """Batching off: each call goes to the wrapped encoder alone, one at a time."""

    def __init__(self, encoder: Encoder):
        self._encoder = encoder
        self.identity = encoder.identity
        self.stats = BatchStats()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._encoder.dim

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._call(self._encoder.embed_texts, list(texts))

    def embed_waveforms(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        return self._call(self._encoder.embed_waveforms, list(waveforms))

    def close(self) -> None:
        pass

    def _call(self, fn, items: list) -> np.ndarray:
        with self._lock:
            self.stats.calls += 1
            self.stats.model_calls += 1
            self.stats.items += len(items)
            return np.asarray(fn(items), dtype=np.float32)
