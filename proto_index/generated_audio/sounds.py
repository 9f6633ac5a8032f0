"""The six generated sound classes: distinct spectral and temporal signatures, seeded, numpy only."""
from __future__ import annotations

from functools import partial

import numpy as np

from proto_index.generated_audio.signals import (
    TWO_PI, gate, harmonics, n_samples, place, scale_rms, shaped_noise, spectral_gain, sweep_phase,
)
from proto_index.errors import InvalidInput

FOREGROUND_LABELS = ("siren", "dog_bark", "car_horn", "drilling", "bird", "church_bell")
FOREGROUND_RMS = 0.1


def _siren(n, sr, rng):
    t = np.arange(n) / sr
    centre, depth = rng.uniform(750, 1000), rng.uniform(250, 400)
    if rng.random() < 0.5:  # wail: slow sinusoidal sweep
        sweep = np.sin(TWO_PI * rng.uniform(0.15, 0.4) * t + rng.uniform(0, TWO_PI))
    else:  # yelp: fast rising sawtooth sweep
        sweep = 2.0 * ((rng.uniform(2.5, 4.0) * t + rng.random()) % 1.0) - 1.0
    freq = centre + depth * sweep
    return harmonics(sweep_phase(freq, sr), centre + depth, sr, (1.0, 0.35, 0.15))


def _dog_bark(n, sr, rng):
    out = np.zeros(n)
    f0 = rng.uniform(300, 600)
    t = rng.uniform(0, 0.2 * n / sr)
    while t < n / sr:
        dur = rng.uniform(0.1, 0.22)
        tt = np.arange(int(dur * sr)) / sr
        freq = f0 * (1.2 - 0.4 * tt / dur)  # pitch falls through the bark
        voiced = harmonics(sweep_phase(freq, sr), 1.2 * f0, sr, [1.0 / k for k in range(1, 9)])
        rough = 0.3 * rng.standard_normal(len(tt))
        env = (1.0 - np.exp(-tt / 0.008)) * np.exp(-tt / (0.35 * dur))
        place(out, int(t * sr), (voiced + rough) * env)
        t += dur + rng.uniform(0.12, 0.5) + (rng.uniform(0.5, 1.2) if rng.random() < 0.25 else 0)
    return out


def _car_horn(n, sr, rng):
    t = np.arange(n) / sr
    low = rng.uniform(350, 450)
    chord = np.zeros(n)
    for f in (low, low * rng.uniform(1.18, 1.3)):  # a minor-to-major third above
        chord += harmonics(TWO_PI * f * t + rng.uniform(0, TWO_PI), f, sr,
                            [1.0 / k for k in range(1, 11)])
    return chord * gate(n, sr, rng, on_s=(0.3, 1.5), off_s=(0.1, 0.4))


def _drilling(n, sr, rng):
    t = np.arange(n) / sr
    centre = min(rng.uniform(1500, 3500), 0.35 * sr)
    gain = partial(spectral_gain, slope_db_oct=0.0, bumps=[(centre, 0.4, 30.0)],
                   band=(200.0, 0.45 * sr))
    band = scale_rms(shaped_noise(n, sr, rng, gain), 1.0)
    pulses = (0.5 + 0.5 * np.sin(TWO_PI * rng.uniform(15, 35) * t)) ** 2
    motor_f = rng.uniform(90, 160)
    motor = 0.3 * harmonics(TWO_PI * motor_f * t, motor_f, sr, (1.0, 0.6, 0.4, 0.3, 0.2))
    return (band * pulses + motor) * gate(n, sr, rng, on_s=(1.0, 3.0), off_s=(0.2, 0.8))


def _bird(n, sr, rng):
    out = np.zeros(n)
    top = 0.42 * sr
    base = min(rng.uniform(2500, 4500), 0.8 * top)
    t = rng.uniform(0, 0.2 * n / sr)
    while t < n / sr:
        for _ in range(rng.integers(3, 9)):  # a phrase of chirps
            m = int(rng.uniform(0.04, 0.12) * sr)
            f_a = min(base * rng.uniform(0.8, 1.25), top)
            f_b = float(np.clip(f_a * rng.uniform(0.6, 1.6), 1000.0, top))
            freq = np.linspace(f_a, f_b, m)
            chirp = harmonics(sweep_phase(freq, sr), max(f_a, f_b), sr, (1.0, 0.2))
            place(out, int(t * sr), chirp * np.hanning(m))
            t += m / sr + rng.uniform(0.02, 0.08)
        t += rng.uniform(0.3, 1.2)
    return out


def _church_bell(n, sr, rng):
    t = np.arange(n) / sr
    nominal = rng.uniform(350, 700)
    ring = rng.uniform(1.5, 3.0)  # decay time of the lowest partial, s
    interval = rng.uniform(1.0, 2.0)
    strikes = np.arange(rng.uniform(0, 0.1 * n / sr), n / sr, interval)
    last = np.searchsorted(strikes, t, side="right") - 1
    since = t - strikes[np.maximum(last, 0)]
    out = np.zeros(n)
    # hum, prime, tierce, quint, nominal and upper partials of a tuned bell
    for ratio, amp in ((0.5, 0.5), (1.0, 0.6), (1.2, 0.5), (1.5, 0.3), (2.0, 1.0), (2.51, 0.3),
                       (2.66, 0.25), (3.01, 0.2)):
        f = nominal * ratio
        if f >= 0.45 * sr:
            continue
        tau = ring / ratio ** 0.8
        # each strike adds to what still rings: carry the sum of decays strike to strike
        carried = np.zeros(len(strikes))
        for j in range(1, len(strikes)):
            carried[j] = (carried[j - 1] + 1.0) * np.exp(-(strikes[j] - strikes[j - 1]) / tau)
        env = np.where(last >= 0, (carried[np.maximum(last, 0)] + 1.0) * np.exp(-since / tau), 0.0)
        out += amp * env * np.sin(TWO_PI * f * t + rng.uniform(0, TWO_PI))
    return out


_FOREGROUNDS = {
    "siren": _siren,
    "dog_bark": _dog_bark,
    "car_horn": _car_horn,
    "drilling": _drilling,
    "bird": _bird,
    "church_bell": _church_bell,
}


def make_foreground(label: str, seconds: float, sr: int, rng) -> np.ndarray:
    """Mono float64 signal of the sound class ``label``, ``round(seconds * sr)`` samples long.

    ``rng`` is a ``numpy.random.Generator`` or a seed. Scaled to RMS :data:`FOREGROUND_RMS`.
    """
    if label not in _FOREGROUNDS:
        raise InvalidInput(f"unknown sound class {label!r}; known: {', '.join(FOREGROUND_LABELS)}")
    rng = np.random.default_rng(rng)
    return scale_rms(_FOREGROUNDS[label](n_samples(seconds, sr), sr, rng), FOREGROUND_RMS)
