"""Signal levels: RMS, the gain to an RMS SNR, and peak limiting. numpy only, pure.

Below both the evaluation mixer (:mod:`proto_index.evaluation.mixing`) and the generated demo audio
(:mod:`proto_index.generated_audio`), which mix the same way when the SNR is measured by RMS.
"""
from __future__ import annotations

import numpy as np

from proto_index.errors import InvalidInput

PEAK = 0.99
"""The highest absolute sample value a mix (or a generated clip) may reach."""


def rms(x: np.ndarray) -> float:
    """Root mean square of ``x``; 0 for an empty signal."""
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def rms_gain(event: np.ndarray, under: np.ndarray, snr_db: float) -> float:
    """The gain that puts ``event`` ``snr_db`` dB (RMS) over ``under``, the background beneath it."""
    fg_rms, bg_rms = rms(event), rms(under)
    if fg_rms == 0 or bg_rms == 0:
        raise InvalidInput("SNR is undefined: the foreground or the background under it is silent")
    return bg_rms / fg_rms * 10.0 ** (snr_db / 20.0)


def limit_peak(x: np.ndarray) -> tuple[np.ndarray, float]:
    """``x`` scaled down, if needed, to a peak of at most :data:`PEAK`, and the gain applied (<= 1).

    One common gain keeps every ratio (and so any SNR) in ``x``; the clip only absorbs a rounding overshoot.
    """
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= PEAK:
        return x, 1.0
    gain = PEAK / peak
    return np.clip(x * gain, -PEAK, PEAK), gain
