"""Signal helpers of the generated audio: shaped noise, envelopes, gates, harmonics. numpy only, pure."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from proto_index.audio.levels import rms
from proto_index.errors import InvalidInput

TWO_PI = 2.0 * np.pi


def n_samples(seconds: float, sr: int) -> int:
    n = round(seconds * sr)
    if n <= 0:
        raise InvalidInput(f"duration must be at least one sample, got {seconds} s at {sr} Hz")
    return n


def scale_rms(x: np.ndarray, target: float) -> np.ndarray:
    """``x`` scaled to RMS ``target`` (a silent ``x`` unchanged)."""
    level = rms(x)
    return x * (target / level) if level > 0 else x


def harmonics(phase: np.ndarray, freq_max: float, sr: int, amps: Sequence[float]) -> np.ndarray:
    """Sum of ``amps[k-1] * sin(k * phase)``, leaving out harmonics above 0.45 * sr."""
    out = np.zeros_like(phase)
    for k, a in enumerate(amps, start=1):
        if k * freq_max < 0.45 * sr:
            out += a * np.sin(k * phase)
    return out


def sweep_phase(freq: np.ndarray, sr: int) -> np.ndarray:
    return TWO_PI * np.cumsum(freq) / sr


def spectral_gain(f: np.ndarray, slope_db_oct: float, bumps, band) -> np.ndarray:
    """Amplitude response at ``f`` Hz: a tilt, log-Gaussian ``bumps`` ``(centre Hz, width
    octaves, gain dB)`` and soft ``(high-pass, low-pass)`` band edges."""
    f = np.maximum(f, 1.0)
    db = slope_db_oct * np.log2(f / 100.0)
    for centre, width, gain_db in bumps:
        db = db + gain_db * np.exp(-0.5 * (np.log2(f / centre) / width) ** 2)
    lo, hi = band
    return 10.0 ** (db / 20.0) / (1.0 + (lo / f) ** 4) / (1.0 + (f / hi) ** 4)


def shaped_noise(n: int, sr: int, rng: np.random.Generator, gain: Callable) -> np.ndarray:
    """Gaussian noise of length ``n`` whose amplitude spectrum follows ``gain(f)``."""
    nfft = 1 << max(n - 1, 1).bit_length()  # power of two: fast whatever n is
    bins = np.fft.rfftfreq(nfft, 1.0 / sr)
    # White Gaussian noise drawn directly as its spectrum: independent complex Gaussian bins.
    spectrum = rng.standard_normal(2 * len(bins)).view(np.complex128)
    # The response is smooth in log frequency: evaluate it on a fine log grid, interpolate.
    grid = np.geomspace(1.0, bins[-1], 4096)
    spectrum *= np.interp(bins, grid, gain(grid))
    return np.fft.irfft(spectrum, nfft)[:n]


def slow_envelope(n: int, sr: int, rng: np.random.Generator, rate: float, depth: float):
    """Positive envelope ``exp(depth * g(t))``; g a smooth random curve, ``rate`` knots per s."""
    step = max(1, sr // 200)  # computed at 200 points per second, then interpolated
    coarse = np.arange(0, n + step, step)
    t = coarse * (rate / sr)
    knots = rng.standard_normal(int(t[-1]) + 2)
    i = t.astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (t - i))  # cosine interpolation: smooth at the knots
    env = np.exp(depth * ((1.0 - w) * knots[i] + w * knots[i + 1]))
    return np.interp(np.arange(n), coarse, env)


def gate(n: int, sr: int, rng: np.random.Generator, on_s, off_s, edge_s=0.01) -> np.ndarray:
    """On/off pattern (on spans ``on_s``, gaps ``off_s`` seconds) with ``edge_s`` ramps."""
    gate = np.zeros(n)
    t = int(rng.uniform(0.0, 0.05) * n)
    while t < n:
        length = max(1, int(rng.uniform(*on_s) * sr))
        gate[t:t + length] = 1.0
        t += length + int(rng.uniform(*off_s) * sr)
    width = max(1, int(edge_s * sr))
    c = np.concatenate(([0.0], np.cumsum(gate)))  # moving average via cumulative sums: O(n)
    smooth = (c[width:] - c[:-width]) / width
    return np.concatenate((smooth, gate[len(smooth):]))


def place(out: np.ndarray, start: int, event: np.ndarray) -> None:
    """Add ``event`` into ``out`` from ``start``, cut at the end of ``out``."""
    if start < len(out):
        end = min(len(out), start + len(event))
        out[start:end] += event[:end - start]
