"""Generated clips written as files (varied rates, channels, formats, durations), with their truth."""
from __future__ import annotations

import csv
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from proto_index.audio.levels import limit_peak, rms_gain
from proto_index.generated_audio.environments import BACKGROUND_ENVIRONMENTS, make_background
from proto_index.generated_audio.signals import n_samples
from proto_index.generated_audio.sounds import FOREGROUND_LABELS, make_foreground
from proto_index.errors import InvalidInput

RATES = (16000, 44100, 48000)
FORMATS = (("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"),
           ("FLAC", "PCM_24"))


def mix(foreground: np.ndarray, background: np.ndarray, snr_db: float, onset_s: float,
        sr: int) -> np.ndarray:
    """The generated clips' mix: ``foreground`` at ``onset_s`` s over the whole ``background`` at an
    RMS ``snr_db`` (:func:`proto_index.evaluation.mixing.mix` with ``snr_measure="rms"``), peak-limited.

    The placed foreground is the part that fits before the background ends; the mix keeps the
    background's length and level (clap-tiny-demo was trained on clips mixed this way).
    """
    bg = np.asarray(background, dtype=np.float64)
    start = int(round(onset_s * sr))
    if not 0 <= start < len(bg):
        raise InvalidInput(f"onset {onset_s} s is outside the {len(bg) / sr:g} s scene")
    event = np.asarray(foreground, dtype=np.float64)[: len(bg) - start]
    scene = bg.copy()
    scene[start : start + len(event)] += event * rms_gain(event, bg[start : start + len(event)], snr_db)
    return limit_peak(scene)[0]


@dataclass(frozen=True)
class SynthClip:
    """One written file (absolute ``path`` and how it is encoded), then its truth. ``label``,
    ``onset_s``, ``snr_db`` are None for a background-only recording."""

    path: Path
    format: str
    subtype: str
    sr: int
    channels: int
    seconds: float
    environment: str
    label: str | None
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
    n = n_samples(rng.uniform(*seconds), sr)
    audio = make_background(environment, n / sr, sr, rng)
    onset_s = snr = None
    if label is not None:
        if snr_db is None:
            raise ValueError("a clip with a foreground needs its SNR range")
        n_fg = min(n, round(rng.uniform(1.0, 5.0) * sr))
        foreground = make_foreground(label, n_fg / sr, sr, rng)
        onset_s = int(rng.integers(0, n - n_fg + 1)) / sr
        snr = round(float(rng.uniform(*snr_db)), 2)
        audio = mix(foreground, audio, snr, onset_s, sr)
    else:
        audio, _ = limit_peak(audio)
    if channels == 2:  # the same scene panned: each channel at its own gain, at most 1
        audio = audio[:, None] * np.array([1.0, rng.uniform(0.6, 1.0)])[rng.permutation(2)]
    path = stem.with_suffix(".flac" if fmt == "FLAC" else ".wav").absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, sr, subtype=subtype, format=fmt)
    return SynthClip(path=path, format=fmt, subtype=subtype, sr=sr, channels=channels, seconds=n / sr,
                     environment=environment, label=label, onset_s=onset_s, snr_db=snr)


def _check_names(names: Sequence[str], known: Sequence[str], what: str) -> None:
    if not names:
        raise InvalidInput(f"no {what} given")
    unknown = [x for x in names if x not in known]
    if unknown:
        raise InvalidInput(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")


def _write_labelled(folder, stream: str, n_clips: int, seed: int, labels: Sequence[str],
                    environments: Sequence[str], seconds, snr_db, place) -> list[SynthClip]:
    """``n_clips`` clips of a random class each; ``place(i, rng)`` gives clip i's environment and
    file stem (relative to ``folder``), drawing from ``rng`` before the class is drawn."""
    _check_names(labels, FOREGROUND_LABELS, "sound classes")
    _check_names(environments, BACKGROUND_ENVIRONMENTS, "environments")
    clips = []
    for i in range(n_clips):
        rng = _clip_rng(seed, stream, i)
        env, stem = place(i, rng)
        label = str(rng.choice(labels))
        clips.append(_write_clip(Path(folder) / stem, rng, env, label, seconds, snr_db))
    return clips


def write_corpus(folder, n_clips: int, seed: int, *, labels: Sequence[str] = FOREGROUND_LABELS,
                 environments: Sequence[str] = BACKGROUND_ENVIRONMENTS,
                 seconds: tuple[float, float] = (1.0, 12.0),
                 snr_db: tuple[float, float] = (6.0, 20.0)) -> SynthSet:
    """Write ``n_clips`` unlabelled files ``clip_NNNN.{wav,flac}``: a random class over a random
    environment each, in varied rates, channels, formats and durations. Truth is in the result."""
    clips = _write_labelled(folder, "corpus", n_clips, seed, labels, environments, seconds, snr_db,
                            lambda i, rng: (str(rng.choice(environments)), f"clip_{i:04d}"))
    return SynthSet(Path(folder).absolute(), tuple(clips))


def write_archive(folder, n_clips: int, environments: Sequence[str], seed: int, *,
                  labels: Sequence[str] = FOREGROUND_LABELS,
                  seconds: tuple[float, float] = (1.0, 12.0),
                  snr_db: tuple[float, float] = (6.0, 20.0),
                  manifest_name: str = "manifest.csv") -> SynthSet:
    """Write an archive ``ENV/rec_NNNN.{wav,flac}`` (environments in turn, random classes) and a
    manifest CSV ``path,environment,label`` with paths relative to ``folder``; see ``.manifest``."""

    def place(i, rng):
        env = environments[i % len(environments)]
        return env, f"{env}/rec_{i:04d}"

    clips = _write_labelled(folder, "archive", n_clips, seed, labels, environments, seconds, snr_db,
                            place)
    folder = Path(folder)
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
