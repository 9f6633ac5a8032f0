"""Audio excerpts as WAV bytes, served with HTTP range requests (players seek with them).

Only recordings the catalog holds are read, by the path the catalog stores: a request names a
recording id and a span, never a path.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from proto_index.audio.decode import open_audio
from proto_index.errors import AudioDecodeError, InvalidInput

MAX_EXCERPT_S = 120.0
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    pass


def wav_excerpt(path: str, start_s: float, end_s: float | None) -> bytes:
    """The span [start_s, end_s) of the recording at ``path`` (end None: MAX_EXCERPT_S on), as 16-bit WAV."""
    if start_s < 0 or (end_s is not None and end_s <= start_s):
        raise InvalidInput("the excerpt needs 0 <= start < end")
    end = start_s + MAX_EXCERPT_S if end_s is None else end_s
    if end - start_s > MAX_EXCERPT_S:
        raise InvalidInput(f"an excerpt is at most {MAX_EXCERPT_S:g} s")
    with open_audio(path) as snd:
        rate = snd.samplerate
        first = min(int(round(start_s * rate)), snd.frames)
        last = min(int(round(end * rate)), snd.frames)
        snd.seek(first)
        data = snd.read(last - first, dtype="float32", always_2d=True)
    buf = io.BytesIO()
    sf.write(buf, np.clip(data, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span a ``Range`` header asks for (None: the whole body).

    One range only; a malformed header is ignored (the whole body, as RFC 9110 allows); a range
    that starts past the end raises :class:`RangeNotSatisfiable`."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    a, b = m.group(1), m.group(2)
    if a == "":  # the last b bytes
        n = int(b)
        if n == 0:
            raise RangeNotSatisfiable()
        return max(size - n, 0), size - 1
    start = int(a)
    end = size - 1 if b == "" else min(int(b), size - 1)
    if start >= size or end < start:
        raise RangeNotSatisfiable()
    return start, end


def spectrogram_png(path: str, start_s: float, end_s: float) -> bytes:
    """A log-power spectrogram thumbnail of [start_s, end_s) as PNG (the review report's drawing)."""
    from matplotlib import image as mimage

    from proto_index.outputs.report.media import MediaProblem, read_excerpt, spectrogram

    try:
        samples, _ = read_excerpt(Path(path), start_s, end_s)
    except MediaProblem as e:
        raise AudioDecodeError(str(e)) from None
    buf = io.BytesIO()
    mimage.imsave(buf, spectrogram(samples), cmap="magma", origin="lower", vmin=0.0, vmax=1.0, format="png")
    return buf.getvalue()
