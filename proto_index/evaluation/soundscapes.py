"""Soundscapes as in the paper's experiment: a seeded plan (pure) and the WAV files it describes.

Each foreground clip is placed over a background recording of each environment, at every SNR:
10 s scenes, the event's onset drawn from a normal distribution (mean 3 s, sd 1.5 s) truncated to
[0, 6] s, as the paper's scaper settings. The background and onset drawn for a (clip, environment)
pair are shared by all SNRs, so SNRs are compared on the same scenes (a paired design).
"""
from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import soundfile as sf

from proto_index.audio.decode import load_audio
from proto_index.embed.encoder import SAMPLE_RATE
from proto_index.evaluation import mixing

ONSET = (3.0, 1.5, 0.0, 6.0)
"""Event onset in seconds: (mean, sd, low, high) of a truncated normal, the paper's scaper setting."""


def truncated_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float, size: int) -> np.ndarray:
    """``size`` draws of a normal truncated to [lo, hi] (rejection sampling: exact, and cheap for
    the paper's truncation at -2 and +2 sd)."""
    if not lo < hi or sd <= 0:
        raise ValueError("a truncated normal needs lo < hi and sd > 0")
    out = np.empty(0)
    while len(out) < size:
        draw = rng.normal(mean, sd, 2 * (size - len(out)) + 16)
        out = np.concatenate([out, draw[(draw >= lo) & (draw <= hi)]])
    return out[:size]


@dataclass(frozen=True)
class ScenePlan:
    """One scene before its SNR: which clip, over which recording of which environment, when."""

    foreground: int
    environment: str
    background: int
    onset_s: float


def plan_scenes(
    n_foregrounds: int, backgrounds: Mapping[str, int], seed: int, onset: tuple[float, float, float, float] = ONSET
) -> dict[str, list[ScenePlan]]:
    """Per environment, one plan per foreground clip. ``backgrounds`` maps environment -> recording count.

    Each environment draws from its own seeded stream, so adding an environment changes no other's plan.
    """
    plans = {}
    for env, m in backgrounds.items():
        if m < 1:
            raise ValueError(f"environment {env!r} has no background recordings")
        rng = np.random.default_rng([seed, 6, zlib.crc32(env.encode())])
        which = rng.integers(0, m, n_foregrounds)
        onsets = truncated_normal(rng, *onset, n_foregrounds)
        plans[env] = [ScenePlan(i, env, int(b), round(float(t), 4)) for i, (b, t) in enumerate(zip(which, onsets))]
    return plans


def safe_name(name: str) -> str:
    """A file-name-safe stand-in for a name taken from input (an environment from a CSV cell): a short
    slug of its letters and digits plus a hash of the whole name, so ``/etc``, ``..`` or ``a/b`` never
    become paths and two names that slug alike stay apart."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "x"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def scene_name(plan: ScenePlan, foreground: Path, snr_db: float) -> str:
    return f"{plan.foreground:05d}-{Path(foreground).stem}-{safe_name(plan.environment)}-{snr_db:g}dB.wav"


def write_scenes(
    plans: Sequence[ScenePlan],
    snr_db: float,
    foregrounds: Sequence[Path],
    backgrounds: Sequence[Path],
    folder: Path,
    ref_db: float = mixing.REF_DB,
) -> list[Path]:
    """Mix and write each planned scene at ``snr_db`` as a 48 kHz mono 16-bit WAV in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for plan in plans:
        m = mixing.mix(
            load_audio(foregrounds[plan.foreground]), load_audio(backgrounds[plan.background]), SAMPLE_RATE,
            snr_db, plan.onset_s, ref_db=ref_db,
        )  # fmt: skip
        path = folder / scene_name(plan, foregrounds[plan.foreground], snr_db)
        sf.write(path, m.scene, SAMPLE_RATE, subtype="PCM_16")
        out.append(path)
    return out


def write_background_segments(backgrounds: Sequence[Path], folder: Path, ref_db: float = mixing.REF_DB) -> list[Path]:
    """Each recording's 10 s as it lies under a scene (first 10 s, looped if shorter, at ``ref_db``
    LUFS): what the per-scene oracle profile, and the environment's mean profile, embed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = int(round(mixing.SCENE_SECONDS * SAMPLE_RATE))
    out = []
    for i, path in enumerate(backgrounds):
        seg = mixing.fit_length(load_audio(path), n)
        seg, _ = mixing.limit_peak(seg * mixing.loudness_gain(seg, SAMPLE_RATE, ref_db))
        target = folder / f"{i:05d}-{Path(path).stem}.wav"
        sf.write(target, seg, SAMPLE_RATE, subtype="PCM_16")
        out.append(target)
    return out
