"""The five generated environments: shaped noise with each place's spectrum and slow modulation."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from proto_index.generated_audio.signals import (
    TWO_PI, n_samples, scale_rms, shaped_noise, slow_envelope, spectral_gain,
)
from proto_index.errors import InvalidInput

BACKGROUND_ENVIRONMENTS = ("park", "airport", "metro_station", "street_traffic", "shopping_mall")
BACKGROUND_RMS = 0.05


@dataclass(frozen=True)
class _Layer:
    slope_db_oct: float  # spectral tilt
    bumps: tuple  # (centre Hz, width octaves, gain dB) resonances of the place
    band: tuple  # soft (high-pass, low-pass) corners, Hz
    level_db: float  # relative to the other layers
    mod_rate: float  # knots per second of the slow level modulation
    mod_depth: float  # spread of the modulation in nepers


_ENVIRONMENTS: dict[str, tuple[tuple[_Layer, ...], tuple[tuple[float, float], ...]]] = {
    # name: (noise layers, steady tones (Hz, dB re a unit-RMS layer))
    "park": (
        (_Layer(-4.0, ((4000, 1.2, 8.0),), (40, 12000), 0.0, 0.3, 0.3),  # leaves, distant life
         _Layer(-8.0, ((80, 1.0, 6.0),), (20, 600), -2.0, 0.15, 0.8)),  # wind gusts
        (),
    ),
    "airport": (
        (_Layer(-2.0, ((150, 1.5, 10.0), (1000, 2.0, 3.0)), (30, 10000), 0.0, 0.1, 0.2),  # hall
         _Layer(-4.0, ((400, 1.5, 8.0), (3000, 1.0, 4.0)), (60, 8000), -3.0, 0.05, 1.0)),  # jets
        ((120.0, -20.0), (240.0, -26.0)),  # ventilation hum
    ),
    "metro_station": (
        (_Layer(-3.0, ((60, 1.0, 12.0), (500, 1.5, 4.0)), (25, 8000), 0.0, 0.08, 0.9),  # trains
         _Layer(-1.0, ((700, 1.5, 6.0),), (150, 5000), -6.0, 2.0, 0.3),  # crowd in a hard hall
         _Layer(0.0, ((3000, 0.08, 30.0),), (2000, 5000), -12.0, 0.2, 1.5)),  # brake squeal
        ((50.0, -18.0),),  # mains hum
    ),
    "street_traffic": (
        (_Layer(-5.0, ((120, 1.5, 8.0), (1000, 1.5, 3.0)), (30, 10000), 0.0, 0.25, 0.7),  # engines
         _Layer(-2.0, ((2000, 1.2, 6.0),), (300, 12000), -6.0, 0.3, 0.7)),  # tyres
        (),
    ),
    "shopping_mall": (
        (_Layer(-2.0, ((500, 1.0, 10.0), (1800, 1.0, 5.0)), (150, 6000), 0.0, 4.0, 0.35),  # babble
         _Layer(-3.0, ((100, 1.0, 6.0),), (40, 8000), -5.0, 0.1, 0.2)),  # air handling
        (),
    ),
}


def make_background(env: str, seconds: float, sr: int, rng) -> np.ndarray:
    """Mono float64 background of environment ``env``, ``round(seconds * sr)`` samples long.

    Each recording varies the environment's resonances and levels a little. ``rng`` is a
    ``numpy.random.Generator`` or a seed. Scaled to RMS :data:`BACKGROUND_RMS` (not peak-limited).
    """
    if env not in _ENVIRONMENTS:
        raise InvalidInput(
            f"unknown environment {env!r}; known: {', '.join(BACKGROUND_ENVIRONMENTS)}")
    rng = np.random.default_rng(rng)
    n = n_samples(seconds, sr)
    layers, tones = _ENVIRONMENTS[env]
    out = np.zeros(n)
    for layer in layers:
        bumps = [(c * 2.0 ** rng.normal(0, 0.15), w, g) for c, w, g in layer.bumps]
        band = (layer.band[0], min(layer.band[1], 0.45 * sr))
        noise = shaped_noise(n, sr, rng, partial(spectral_gain, slope_db_oct=layer.slope_db_oct,
                                                 bumps=bumps, band=band))
        level = 10.0 ** ((layer.level_db + rng.normal(0, 1.5)) / 20.0)
        out += level * scale_rms(noise, 1.0) * slow_envelope(n, sr, rng, layer.mod_rate,
                                                              layer.mod_depth)
    t = np.arange(n) / sr
    for freq, level_db in tones:
        out += 10.0 ** (level_db / 20.0) * np.sin(TWO_PI * freq * t + rng.uniform(0, TWO_PI))
    return scale_rms(out, BACKGROUND_RMS)
