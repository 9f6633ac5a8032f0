"""Synthetic environmental audio for the demo, tests and benchmarks.

Everything is deterministic given a seed (or a ``numpy.random.Generator``) and uses numpy only.
Foreground sound classes have distinct spectral and temporal signatures; environment backgrounds
are shaped noise with environment-specific spectra and slow modulation. Signals are mono float64
arrays at the requested rate; the writers add channels and pick file formats.
"""
from __future__ import annotations

import csv
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

from proto_index.errors import InvalidInput

FOREGROUND_LABELS = ("siren", "dog_bark", "car_horn", "drilling", "bird", "church_bell")
BACKGROUND_ENVIRONMENTS = ("park", "airport", "metro_station", "street_traffic", "shopping_mall")

FOREGROUND_RMS = 0.1
BACKGROUND_RMS = 0.05
PEAK = 0.99

RATES = (16000, 44100, 48000)
FORMATS = (("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"),
           ("FLAC", "PCM_24"))

TWO_PI = 2.0 * np.pi


# ---------------------------------------------------------------- shared signal helpers

def _n_samples(seconds: float, sr: int) -> int:
    n = round(seconds * sr)
    if n <= 0:
        raise InvalidInput(f"duration must be at least one sample, got {seconds} s at {sr} Hz")
    return n


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def _scale_rms(x: np.ndarray, target: float) -> np.ndarray:
    rms = _rms(x)
    return x * (target / rms) if rms > 0 else x


def _limit_peak(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= PEAK:
        return x
    return np.clip(x * (PEAK / peak), -PEAK, PEAK)  # the clip only absorbs a rounding overshoot


def _harmonics(phase: np.ndarray, freq_max: float, sr: int, amps: Sequence[float]) -> np.ndarray:
    """Sum of ``amps[k-1] * sin(k * phase)``, leaving out harmonics above 0.45 * sr."""
    out = np.zeros_like(phase)
    for k, a in enumerate(amps, start=1):
        if k * freq_max < 0.45 * sr:
            out += a * np.sin(k * phase)
    return out


def _sweep_phase(freq: np.ndarray, sr: int) -> np.ndarray:
    return TWO_PI * np.cumsum(freq) / sr


def _spectral_gain(f: np.ndarray, slope_db_oct: float, bumps, band) -> np.ndarray:
    """Amplitude response at ``f`` Hz: a tilt, log-Gaussian ``bumps`` ``(centre Hz, width
    octaves, gain dB)`` and soft ``(high-pass, low-pass)`` band edges."""
    f = np.maximum(f, 1.0)
    db = slope_db_oct * np.log2(f / 100.0)
    for centre, width, gain_db in bumps:
        db = db + gain_db * np.exp(-0.5 * (np.log2(f / centre) / width) ** 2)
    lo, hi = band
    return 10.0 ** (db / 20.0) / (1.0 + (lo / f) ** 4) / (1.0 + (f / hi) ** 4)


def _shaped_noise(n: int, sr: int, rng: np.random.Generator, gain: Callable) -> np.ndarray:
    """Gaussian noise of length ``n`` whose amplitude spectrum follows ``gain(f)``."""
    nfft = 1 << max(n - 1, 1).bit_length()  # power of two: fast whatever n is
    bins = np.fft.rfftfreq(nfft, 1.0 / sr)
    # White Gaussian noise drawn directly as its spectrum: independent complex Gaussian bins.
    spectrum = rng.standard_normal(2 * len(bins)).view(np.complex128)
    # The response is smooth in log frequency: evaluate it on a fine log grid, interpolate.
    grid = np.geomspace(1.0, bins[-1], 4096)
    spectrum *= np.interp(bins, grid, gain(grid))
    return np.fft.irfft(spectrum, nfft)[:n]


def _slow_envelope(n: int, sr: int, rng: np.random.Generator, rate: float, depth: float):
    """Positive envelope ``exp(depth * g(t))``; g a smooth random curve, ``rate`` knots per s."""
    step = max(1, sr // 200)  # computed at 200 points per second, then interpolated
    coarse = np.arange(0, n + step, step)
    t = coarse * (rate / sr)
    knots = rng.standard_normal(int(t[-1]) + 2)
    i = t.astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (t - i))  # cosine interpolation: smooth at the knots
    env = np.exp(depth * ((1.0 - w) * knots[i] + w * knots[i + 1]))
    return np.interp(np.arange(n), coarse, env)


def _gate(n: int, sr: int, rng: np.random.Generator, on_s, off_s, edge_s=0.01) -> np.ndarray:
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


def _place(out: np.ndarray, start: int, event: np.ndarray) -> None:
    """Add ``event`` into ``out`` from ``start``, cut at the end of ``out``."""
    if start < len(out):
        end = min(len(out), start + len(event))
        out[start:end] += event[:end - start]


# ---------------------------------------------------------------- foreground classes

def _siren(n, sr, rng):
    t = np.arange(n) / sr
    centre, depth = rng.uniform(750, 1000), rng.uniform(250, 400)
    if rng.random() < 0.5:  # wail: slow sinusoidal sweep
        sweep = np.sin(TWO_PI * rng.uniform(0.15, 0.4) * t + rng.uniform(0, TWO_PI))
    else:  # yelp: fast rising sawtooth sweep
        sweep = 2.0 * ((rng.uniform(2.5, 4.0) * t + rng.random()) % 1.0) - 1.0
    freq = centre + depth * sweep
    return _harmonics(_sweep_phase(freq, sr), centre + depth, sr, (1.0, 0.35, 0.15))


def _dog_bark(n, sr, rng):
    out = np.zeros(n)
    f0 = rng.uniform(300, 600)
    t = rng.uniform(0, 0.2 * n / sr)
    while t < n / sr:
        dur = rng.uniform(0.1, 0.22)
        tt = np.arange(int(dur * sr)) / sr
        freq = f0 * (1.2 - 0.4 * tt / dur)  # pitch falls through the bark
        voiced = _harmonics(_sweep_phase(freq, sr), 1.2 * f0, sr, [1.0 / k for k in range(1, 9)])
        rough = 0.3 * rng.standard_normal(len(tt))
        env = (1.0 - np.exp(-tt / 0.008)) * np.exp(-tt / (0.35 * dur))
        _place(out, int(t * sr), (voiced + rough) * env)
        t += dur + rng.uniform(0.12, 0.5) + (rng.uniform(0.5, 1.2) if rng.random() < 0.25 else 0)
    return out


def _car_horn(n, sr, rng):
    t = np.arange(n) / sr
    low = rng.uniform(350, 450)
    chord = np.zeros(n)
    for f in (low, low * rng.uniform(1.18, 1.3)):  # a minor-to-major third above
        chord += _harmonics(TWO_PI * f * t + rng.uniform(0, TWO_PI), f, sr,
                            [1.0 / k for k in range(1, 11)])
    return chord * _gate(n, sr, rng, on_s=(0.3, 1.5), off_s=(0.1, 0.4))


def _drilling(n, sr, rng):
    t = np.arange(n) / sr
    centre = min(rng.uniform(1500, 3500), 0.35 * sr)
    gain = partial(_spectral_gain, slope_db_oct=0.0, bumps=[(centre, 0.4, 30.0)],
                   band=(200.0, 0.45 * sr))
    band = _scale_rms(_shaped_noise(n, sr, rng, gain), 1.0)
    pulses = (0.5 + 0.5 * np.sin(TWO_PI * rng.uniform(15, 35) * t)) ** 2
    motor_f = rng.uniform(90, 160)
    motor = 0.3 * _harmonics(TWO_PI * motor_f * t, motor_f, sr, (1.0, 0.6, 0.4, 0.3, 0.2))
    return (band * pulses + motor) * _gate(n, sr, rng, on_s=(1.0, 3.0), off_s=(0.2, 0.8))


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
            chirp = _harmonics(_sweep_phase(freq, sr), max(f_a, f_b), sr, (1.0, 0.2))
            _place(out, int(t * sr), chirp * np.hanning(m))
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
    return _scale_rms(_FOREGROUNDS[label](_n_samples(seconds, sr), sr, rng), FOREGROUND_RMS)


# ---------------------------------------------------------------- environment backgrounds

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
    n = _n_samples(seconds, sr)
    layers, tones = _ENVIRONMENTS[env]
    out = np.zeros(n)
    for layer in layers:
        bumps = [(c * 2.0 ** rng.normal(0, 0.15), w, g) for c, w, g in layer.bumps]
        band = (layer.band[0], min(layer.band[1], 0.45 * sr))
        noise = _shaped_noise(n, sr, rng, partial(_spectral_gain, slope_db_oct=layer.slope_db_oct,
                                                  bumps=bumps, band=band))
        level = 10.0 ** ((layer.level_db + rng.normal(0, 1.5)) / 20.0)
        out += level * _scale_rms(noise, 1.0) * _slow_envelope(n, sr, rng, layer.mod_rate,
                                                                layer.mod_depth)
    t = np.arange(n) / sr
    for freq, level_db in tones:
        out += 10.0 ** (level_db / 20.0) * np.sin(TWO_PI * freq * t + rng.uniform(0, TWO_PI))
    return _scale_rms(out, BACKGROUND_RMS)


# ---------------------------------------------------------------- mixing

def mix(foreground: np.ndarray, background: np.ndarray, snr_db: float, onset_s: float,
        sr: int) -> np.ndarray:
    """Place ``foreground`` at ``onset_s`` s over ``background`` at ``snr_db``; keeps its length.

    SNR is ``20 * log10(rms(placed foreground) / rms(background over the same samples))``, where
    the placed foreground is the part that fits before the background ends. The mixture is then
    scaled down, if needed, to a peak of at most :data:`PEAK`; that common gain keeps the SNR.
    """
    foreground = np.asarray(foreground, dtype=np.float64)
    out = np.array(background, dtype=np.float64)
    start = round(onset_s * sr)
    if not 0 <= start < len(out):
        raise ValueError(f"onset {onset_s} s is outside the {len(out) / sr:.3f} s background")
    placed = foreground[:len(out) - start]
    fg_rms, bg_rms = _rms(placed), _rms(out[start:start + len(placed)])
    if fg_rms == 0 or bg_rms == 0:
        raise ValueError("SNR is undefined: the foreground or the background under it is silent")
    _place(out, start, placed * (bg_rms / fg_rms * 10.0 ** (snr_db / 20.0)))
    return _limit_peak(out)


# ---------------------------------------------------------------- writing files

@dataclass(frozen=True)
class SynthClip:
    """One written file and its truth. ``label``, ``onset_s``, ``snr_db`` are None for a
    background-only recording; ``path`` is absolute."""

    path: Path
    environment: str
    label: str | None
    seconds: float
    sr: int
    channels: int
    format: str
    subtype: str
    onset_s: float | None = None
    snr_db: float | None = None


@dataclass(frozen=True)
class SynthSet:
    """What a writer wrote: the folder, its clips in write order, and the manifest if any."""

    folder: Path
    clips: tuple[SynthClip, ...]
    manifest: Path | None = None


def _clip_rng(seed: int, stream: str, index: int) -> np.random.Generator:
    # Independent per clip and per writer: clip i is the same whatever n_clips, and a corpus and
    # an archive written with one seed share no audio.
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), index])


def _write_clip(stem: Path, rng: np.random.Generator, environment: str, label: str | None,
                seconds: tuple[float, float],
                snr_db: tuple[float, float] | None = None) -> SynthClip:
    sr = int(rng.choice(RATES))
    channels = int(rng.integers(1, 3))
    fmt, subtype = FORMATS[rng.integers(len(FORMATS))]
    n = _n_samples(rng.uniform(*seconds), sr)
    audio = make_background(environment, n / sr, sr, rng)
    onset_s = snr = None
    if label is not None:
        n_fg = min(n, round(rng.uniform(1.0, 5.0) * sr))
        foreground = make_foreground(label, n_fg / sr, sr, rng)
        onset_s = int(rng.integers(0, n - n_fg + 1)) / sr
        snr = round(float(rng.uniform(*snr_db)), 2)
        audio = mix(foreground, audio, snr, onset_s, sr)
    else:
        audio = _limit_peak(audio)
    if channels == 2:  # the same scene panned: each channel at its own gain, at most 1
        audio = audio[:, None] * np.array([1.0, rng.uniform(0.6, 1.0)])[rng.permutation(2)]
    path = stem.with_suffix(".flac" if fmt == "FLAC" else ".wav").absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, sr, subtype=subtype, format=fmt)
    return SynthClip(path, environment, label, n / sr, sr, channels, fmt, subtype, onset_s, snr)


def _check_names(names: Sequence[str], known: Sequence[str], what: str) -> None:
    if not names:
        raise InvalidInput(f"no {what} given")
    unknown = [x for x in names if x not in known]
    if unknown:
        raise InvalidInput(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")


def write_corpus(folder, n_clips: int, seed: int, *, labels: Sequence[str] = FOREGROUND_LABELS,
                 environments: Sequence[str] = BACKGROUND_ENVIRONMENTS,
                 seconds: tuple[float, float] = (1.0, 12.0),
                 snr_db: tuple[float, float] = (6.0, 20.0)) -> SynthSet:
    """Write ``n_clips`` unlabelled files ``clip_NNNN.{wav,flac}``: a random class over a random
    environment each, in varied rates, channels, formats and durations. Truth is in the result."""
    _check_names(labels, FOREGROUND_LABELS, "sound classes")
    _check_names(environments, BACKGROUND_ENVIRONMENTS, "environments")
    folder = Path(folder)
    clips = []
    for i in range(n_clips):
        rng = _clip_rng(seed, "corpus", i)
        env, label = str(rng.choice(environments)), str(rng.choice(labels))
        clips.append(_write_clip(folder / f"clip_{i:04d}", rng, env, label, seconds, snr_db))
    return SynthSet(folder.absolute(), tuple(clips))


def write_archive(folder, n_clips: int, environments: Sequence[str], seed: int, *,
                  labels: Sequence[str] = FOREGROUND_LABELS,
                  seconds: tuple[float, float] = (1.0, 12.0),
                  snr_db: tuple[float, float] = (6.0, 20.0),
                  manifest_name: str = "manifest.csv") -> SynthSet:
    """Write an archive ``ENV/rec_NNNN.{wav,flac}`` (environments in turn, random classes) and a
    manifest CSV ``path,environment,label`` with paths relative to ``folder``; see ``.manifest``."""
    _check_names(labels, FOREGROUND_LABELS, "sound classes")
    _check_names(environments, BACKGROUND_ENVIRONMENTS, "environments")
    folder = Path(folder)
    clips = []
    for i in range(n_clips):
        rng = _clip_rng(seed, "archive", i)
        env, label = environments[i % len(environments)], str(rng.choice(labels))
        clips.append(_write_clip(folder / env / f"rec_{i:04d}", rng, env, label, seconds, snr_db))
    manifest = (folder / manifest_name).absolute()
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "environment", "label"])
        for clip in clips:
            writer.writerow([clip.path.relative_to(manifest.parent).as_posix(), clip.environment,
                             clip.label])
    return SynthSet(folder.absolute(), tuple(clips), manifest)


def write_backgrounds(folder, env: str, n: int, seed: int, *,
                      seconds: tuple[float, float] = (4.0, 12.0)) -> SynthSet:
    """Write ``n`` background-only recordings ``ENV_bg_NNN.{wav,flac}`` of environment ``env``."""
    _check_names([env], BACKGROUND_ENVIRONMENTS, "environments")
    folder = Path(folder)
    clips = tuple(
        _write_clip(folder / f"{env}_bg_{i:03d}", _clip_rng(seed, f"background:{env}", i), env,
                    None, seconds)
        for i in range(n))
    return SynthSet(folder.absolute(), clips)
