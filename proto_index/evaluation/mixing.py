"""Mixing an event over a background at an SNR: the project's one mixer. Signals in, signals out; no files.

Two ways to measure the SNR (``snr_measure``):

* ``"lufs"``, the paper's (default): as scaper (used by the paper's experiment) defines it. Loudness is
  ITU-R BS.1770 integrated loudness (LUFS, via pyloudnorm); the background is normalised to ``ref_db``
  LUFS and the event to ``ref_db + snr`` LUFS, so SNR = LUFS(event) - LUFS(background), each measured
  on its own signal. scaper (and its sox dependency) is not needed.
* ``"rms"``: the generated demo audio's (:mod:`proto_index.generated_audio`, on which clap-tiny-demo was
  trained): SNR = 20 log10(RMS(placed event) / RMS(background under it)); the background keeps its level.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from proto_index.audio.levels import PEAK, limit_peak, rms, rms_gain  # noqa: F401  (PEAK, rms: part of the mixer's API)
from proto_index.core.identity import WINDOW_SECONDS
from proto_index.errors import InvalidInput
from proto_index.options.evaluation import REF_DB  # noqa: F401  (the scenes' background loudness, kept importable here)

SCENE_SECONDS = WINDOW_SECONDS
"""The paper's scaper scene duration (10 s): one model window, so a scene is embedded whole."""

MAX_EVENT_SECONDS = 4.0
"""The paper's scaper event duration: longer foregrounds are cut to their first 4 s."""

MIN_LOUDNESS_SECONDS = 0.5
"""BS.1770 gating needs at least one 400 ms block: shorter signals are tiled up to this length
before measuring (a repeated signal has the loudness of one copy), as scaper does."""

SILENCE_LUFS = -70.0
"""BS.1770's absolute gate: anything quieter counts as silence, whose SNR is undefined."""


def integrated_loudness(x: np.ndarray, sr: int) -> float:
    """BS.1770 integrated loudness of a mono signal in LUFS; short signals are tiled first.

    Raises InvalidInput for an empty or silent signal (below :data:`SILENCE_LUFS`).
    """
    import pyloudnorm

    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        raise InvalidInput("cannot measure the loudness of an empty signal")
    need = int(np.ceil(MIN_LOUDNESS_SECONDS * sr))
    if len(x) < need:
        x = np.tile(x, int(np.ceil(need / len(x))))
    with np.errstate(divide="ignore"):
        lufs = pyloudnorm.Meter(sr).integrated_loudness(x)
    if not np.isfinite(lufs) or lufs < SILENCE_LUFS:
        raise InvalidInput("the signal is silent (below -70 LUFS): its loudness, and any SNR, is undefined")
    return float(lufs)


def loudness_gain(x: np.ndarray, sr: int, target_lufs: float) -> float:
    """The linear gain that brings ``x`` to ``target_lufs``."""
    return float(10.0 ** ((target_lufs - integrated_loudness(x, sr)) / 20.0))


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` samples of ``x``, looped if it is shorter (scaper loops short backgrounds too)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        raise InvalidInput("empty background")
    return np.tile(x, int(np.ceil(n / len(x))))[:n]


@dataclass(frozen=True)
class Mixture:
    """A scene, the background exactly as it lies in it, and the applied gains."""

    scene: np.ndarray
    background: np.ndarray
    foreground_gain: float
    background_gain: float
    peak_gain: float  # < 1 when the mixture was scaled down to avoid clipping (SNR unchanged)


def _rms_gains(event: np.ndarray, background: np.ndarray, start: int, snr_db: float) -> tuple[float, float]:
    return rms_gain(event, background[start : start + len(event)], snr_db), 1.0


def mix(
    foreground: np.ndarray,
    background: np.ndarray,
    sr: int,
    snr_db: float,
    onset_s: float,
    seconds: float | None = SCENE_SECONDS,
    ref_db: float = REF_DB,
    max_event_s: float | None = MAX_EVENT_SECONDS,
    snr_measure: Literal["lufs", "rms"] = "lufs",
) -> Mixture:
    """Place ``foreground`` (cut to ``max_event_s``; None: whole) at ``onset_s`` over ``seconds`` of
    ``background`` (looped if shorter; None: the background's own length) at ``snr_db``.

    ``snr_measure="lufs"``: the background is brought to ``ref_db`` LUFS and the whole event to
    ``ref_db + snr_db`` LUFS. ``"rms"``: the background keeps its level (``ref_db`` unused) and the
    event's part that fits in the scene is scaled to ``snr_db`` over the background samples under it.
    If the sum would clip, the whole scene is scaled down, which keeps the SNR.
    """
    if snr_measure not in ("lufs", "rms"):
        raise InvalidInput(f"unknown SNR measure {snr_measure!r}; known: lufs, rms")
    bg = np.asarray(background, dtype=np.float64)
    n = len(bg) if seconds is None else int(round(seconds * sr))
    event = np.asarray(foreground, dtype=np.float64)
    if max_event_s is not None:
        event = event[: int(round(max_event_s * sr))]
    start = int(round(onset_s * sr))
    if not 0 <= start < n:
        raise InvalidInput(f"onset {onset_s} s is outside the {n / sr:g} s scene")
    bg = fit_length(bg, n)
    if snr_measure == "rms":
        event = event[: n - start]
        g_fg, g_bg = _rms_gains(event, bg, start, snr_db)
    else:
        g_bg = loudness_gain(bg, sr, ref_db)
        g_fg = loudness_gain(event, sr, ref_db + snr_db)
    bg = bg * g_bg
    scene = bg.copy()
    placed = event[: n - start] * g_fg
    scene[start : start + len(placed)] += placed
    scene, peak_gain = limit_peak(scene)
    return Mixture(scene, bg * peak_gain, g_fg * peak_gain, g_bg * peak_gain, peak_gain)
