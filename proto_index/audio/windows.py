"""Cut long recordings into deterministic fixed-length windows.

Pure, no I/O. The defaults are CLAP's window (``WINDOW_SECONDS`` at ``SAMPLE_RATE``); a model that
declares another (:class:`~proto_index.embed.encoder.ModelIdentity`) is cut by :class:`Cutting`.
Bounds are half-open sample ranges ``[start, end)``; windows start at ``0, hop, 2*hop, ...``.
"""
from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from proto_index.core.identity import MIN_TAIL_SECONDS, SAMPLE_RATE, WINDOW_SECONDS, ModelIdentity

WINDOW = round(WINDOW_SECONDS * SAMPLE_RATE)
"""Samples in one CLAP window (480,000: 10 s at 48 kHz)."""
HOP = WINDOW
MIN_TAIL = round(MIN_TAIL_SECONDS * SAMPLE_RATE)
"""A final partial CLAP window shorter than this (1 s) is dropped."""


@dataclass(frozen=True)
class Cutting:
    """How a model's audio is cut, in samples at ``sample_rate``: windows of ``window`` every
    ``hop``, a final partial window shorter than ``min_tail`` dropped, a recording shorter than
    ``min_clip`` refused. The defaults are CLAP's; :meth:`for_model` reads a model's own."""

    sample_rate: int = SAMPLE_RATE
    window: int = WINDOW
    hop: int = HOP
    min_tail: int = MIN_TAIL
    min_clip: int = 0

    @classmethod
    def for_model(cls, identity: ModelIdentity | None, hop_s: float | None = None) -> "Cutting":
        """``identity``'s windows, every ``hop_s`` seconds (None: the model's window, no overlap); a
        model with no identity (a bare test double) gets CLAP's."""
        if identity is None:
            identity = ModelIdentity("", "", False, "", 0)
        window = identity.samples(identity.window_s)
        hop = window if hop_s is None else max(1, identity.samples(hop_s))
        return cls(identity.sample_rate, window, hop, identity.samples(identity.min_tail_s),
                   identity.samples(identity.min_clip_s))

    def bounds(self, n_samples: int) -> list[tuple[int, int]]:
        """:func:`window_bounds` of a recording of ``n_samples`` samples."""
        return window_bounds(n_samples, self.window, self.hop, self.min_tail)


def window_bounds(
    n_samples: int, window: int = WINDOW, hop: int = HOP, min_tail: int = MIN_TAIL
) -> list[tuple[int, int]]:
    """``(start, end)`` bounds of the windows of a recording of ``n_samples`` samples.

    A recording no longer than ``window`` gives the single window ``[0, n)``. Otherwise a final
    partial window shorter than ``min_tail`` is dropped, and the windows stop at the first one
    that reaches the end, so none lies inside the one before it. With ``hop <= window`` the
    windows cover ``[0, n)`` except a dropped tail shorter than ``min_tail``; ``hop > window``
    leaves gaps between windows.
    """
    n, window, hop, min_tail = (operator.index(v) for v in (n_samples, window, hop, min_tail))
    if n <= 0:
        raise ValueError(f"n_samples must be positive, got {n}")
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got window={window}, hop={hop}")
    if min_tail < 0:
        raise ValueError(f"min_tail must not be negative, got {min_tail}")
    if n <= window:
        return [(0, n)]
    bounds = []
    for start in range(0, n, hop):
        end = min(start + window, n)
        if end - start < min(window, min_tail):
            break  # a short final partial window; the first window is full, so never the only one
        bounds.append((start, end))
        if end == n:
            break
    return bounds


def iter_windows(
    wave: np.ndarray, window: int = WINDOW, hop: int = HOP, min_tail: int = MIN_TAIL
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, view)`` for each window of ``wave``, cut along axis 0 (samples).

    ``wave`` is ``(n,)`` or ``(n, channels)``; each view shares memory with ``wave``.
    """
    for start, end in window_bounds(len(wave), window, hop, min_tail):
        yield start, wave[start:end]


def stream_windows(
    chunks: Iterable[np.ndarray], window: int = WINDOW, hop: int = HOP, min_tail: int = MIN_TAIL
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Cut a recording that arrives as consecutive 1-D chunks; yield ``(start, end, samples)``.

    The windows are exactly ``window_bounds(total length, ...)``, with the total learnt only when
    the chunks end: every full window is yielded as soon as its samples have arrived (a full
    window belongs to the bounds of any longer recording), the final short ones at the end.
    At most about ``window + hop`` samples plus one chunk are held, whatever the length; each
    yielded array is a copy the caller may keep.
    """
    window, hop, min_tail = (operator.index(v) for v in (window, hop, min_tail))
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got window={window}, hop={hop}")
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # sample index of buffer[0]
    next_start = 0  # start of the next window to yield
    emitted = 0
    total = 0
    for chunk in chunks:
        chunk = np.asarray(chunk)
        if chunk.ndim != 1:
            raise ValueError(f"chunks must be 1-D, got shape {chunk.shape}")
        total += len(chunk)
        if len(chunk) == 0:
            continue
        buffer = np.concatenate([buffer, chunk]) if len(buffer) else chunk
        while next_start + window <= total:
            a = next_start - buffer_start
            yield next_start, next_start + window, buffer[a : a + window].copy()
            emitted += 1
            next_start += hop
        # Samples before the next window's start are never needed again.
        drop = min(next_start, total) - buffer_start
        if drop > 0:
            buffer = buffer[drop:]
            buffer_start += drop
    if total == 0:
        return
    for start, end in window_bounds(total, window, hop, min_tail)[emitted:]:
        yield start, end, buffer[start - buffer_start : end - buffer_start].copy()
