"""A synthetic CLAP-like embedding space whose truth is known. Pure numpy, seeded, no I/O.

What it imitates (every vector unit-norm, as CLAP's):

* audio lives in a narrow cone: every audio vector shares a common direction (``cone``);
* each class is a cluster around its centre (``class_spread``);
* each class's text anchor is its centre displaced by the modality-gap vector, common to all
  text (norm ``gap``), plus a per-class misalignment proportional to the gap (``gap_jitter``);
  a larger gap therefore means worse text anchors, and audio-side prototypes (TGAP) help more;
* each environment is a cluster of background recordings; an environment resembles one "confusor"
  class (``env_class_overlap``: a park sounds a little like birds), so unadapted scenes drift to it;
* a scene mixes a foreground and one background recording with the foreground weight
  ``10 ** ((snr_db - snr_offset_db) / 20)`` (background weight 1), plus noise, then normalises.

The environment's text background is three "prompts": its centre displaced across the gap.
Other prompt templates (``templates``; the first is ``anchors``) each pull every class's anchor
towards the classes' mean by their own vagueness and have their own misalignment; a class's
prompt "with" an environment prompt (``conditioned``, for drift-augmented scoring) is the unit
sum of the class anchor and ``text_mix`` times the environment prompt. Both are drawn from
their own random stream: the rest of the space does not depend on them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from proto_index.core.profiles import l2_normalize

US8K_LABELS = (
    "air conditioner", "car horn", "children playing", "dog bark", "drilling",
    "engine idling", "gun shot", "jackhammer", "siren", "street music",
)  # fmt: skip
"""UrbanSound8K's classes (the paper's foregrounds), used as default synthetic class names."""


@dataclass(frozen=True)
class SpaceConfig:
    """The knobs of the synthetic space (see the module docstring)."""

    labels: tuple[str, ...] = US8K_LABELS
    environments: tuple[str, ...] = ("park", "airport")
    dim: int = 64
    cone: float = 1.0
    class_spread: float = 1.4
    gap: float = 1.0
    gap_jitter: float = 0.6
    env_spread: float = 0.35
    env_class_overlap: float = 0.9
    snr_offset_db: float = 10.0
    scene_noise: float = 0.25
    templates: int = 6
    template_vagueness: float = 0.6
    text_mix: float = 0.7

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Space:
    """The fixed geometry: class and environment centres, text anchors and text backgrounds."""

    config: SpaceConfig
    class_centres: np.ndarray  # (k, d) unit
    anchors: np.ndarray  # (k, d) unit text anchors
    env_centres: np.ndarray  # (e, d) unit
    env_text: np.ndarray  # (e, 3, d) unit text-background prompt vectors
    confusors: np.ndarray  # (e,) index of the class each environment resembles
    gap_vector: np.ndarray  # (d,) unit direction of the modality gap
    templates: np.ndarray | None = None  # (t, k, d) unit anchors of every prompt template
    conditioned: np.ndarray | None = None  # (e, k, 3, d) unit "<class> with <environment prompt>"


@dataclass(frozen=True)
class Clips:
    """Labelled foreground clips: vectors (n, d), class index (n,), fold (n,)."""

    vectors: np.ndarray
    labels: np.ndarray
    folds: np.ndarray


@dataclass(frozen=True)
class Scenes:
    """Scenes of one environment at one SNR; ``background`` indexes that environment's recordings."""

    vectors: np.ndarray  # (n, d)
    labels: np.ndarray  # (n,)
    folds: np.ndarray  # (n,)
    background: np.ndarray  # (n,) the recording mixed into each scene (the per-scene oracle)
    snr_db: float


def _noise(rng: np.random.Generator, shape: tuple[int, ...], norm: float) -> np.ndarray:
    """Isotropic Gaussian rows whose expected norm is about ``norm``."""
    return rng.standard_normal(shape) * (norm / np.sqrt(shape[-1]))


def make_space(config: SpaceConfig = SpaceConfig(), seed: int = 0) -> Space:
    """Draw the space's geometry from ``seed``."""
    k, e, d = len(config.labels), len(config.environments), config.dim
    if k < 2 or e < 1:
        raise ValueError("a synthetic space needs at least two classes and one environment")
    rng = np.random.default_rng([seed, 1])

    def unit(*shape: int) -> np.ndarray:
        return l2_normalize(rng.standard_normal(shape + (d,)))

    cone_dir, gap_dir = unit(2)
    gap_dir = l2_normalize(gap_dir - (gap_dir @ cone_dir) * cone_dir)  # the gap leaves the audio cone
    centres = l2_normalize(unit(k) + config.cone * cone_dir)
    anchors = l2_normalize(centres + config.gap * (gap_dir + config.gap_jitter * unit(k)))
    confusors = rng.permutation(k)[:e] if e <= k else rng.integers(0, k, e)
    env = l2_normalize(unit(e) + config.cone * cone_dir + config.env_class_overlap * centres[confusors])
    env_text = l2_normalize(env[:, None, :] + config.gap * (gap_dir + config.gap_jitter * unit(e, 3)))
    templates, conditioned = _text_variants(config, centres, anchors, env_text, gap_dir, seed)
    return Space(config, centres, anchors, env, env_text, confusors, gap_dir, templates, conditioned)


def _text_variants(config: SpaceConfig, centres, anchors, env_text, gap_dir, seed: int):
    """The other templates' anchors and the conditioned prompts, from their own random stream."""
    rng = np.random.default_rng([seed, 5])
    k, d = centres.shape
    vague = rng.uniform(0.0, config.template_vagueness, max(config.templates - 1, 0))
    others = [
        l2_normalize((1 - v) * centres + v * centres.mean(axis=0)
                     + config.gap * (gap_dir + config.gap_jitter * l2_normalize(rng.standard_normal((k, d)))))
        for v in vague
    ]
    templates = np.stack([anchors, *others])
    conditioned = l2_normalize(anchors[None, :, None, :] + config.text_mix * env_text[:, None, :, :])
    return templates, conditioned


def sample_clips(space: Space, per_class: int, n_folds: int, seed: int = 0) -> Clips:
    """``per_class`` foreground clips of every class, assigned to folds in turn within each class."""
    if per_class < 1 or n_folds < 2:
        raise ValueError("need at least one clip per class and two folds")
    rng = np.random.default_rng([seed, 2])
    k, d = space.class_centres.shape
    labels = np.repeat(np.arange(k), per_class)
    vectors = l2_normalize(space.class_centres[labels] + _noise(rng, (len(labels), d), space.config.class_spread))
    folds = np.tile(np.arange(per_class) % n_folds, k)
    return Clips(vectors, labels, folds)


def sample_backgrounds(space: Space, environment: int, n: int, seed: int = 0) -> np.ndarray:
    """``n`` background-recording vectors of environment number ``environment``."""
    rng = np.random.default_rng([seed, 3, environment])
    d = space.env_centres.shape[1]
    return l2_normalize(space.env_centres[environment] + _noise(rng, (n, d), space.config.env_spread))


def foreground_weight(snr_db: float, offset_db: float) -> float:
    """The foreground's weight against a unit background weight at ``snr_db``."""
    return 10.0 ** ((snr_db - offset_db) / 20.0)


def mix_scenes(space: Space, clips: Clips, backgrounds: np.ndarray, snr_db: float, seed: int = 0) -> Scenes:
    """One scene per clip over a background recording drawn at random, at ``snr_db``."""
    rng = np.random.default_rng([seed, 4, int(round(snr_db * 1000)) & 0xFFFFFFFF])  # negative SNRs too
    n, d = clips.vectors.shape
    which = rng.integers(0, len(backgrounds), n)
    w = foreground_weight(snr_db, space.config.snr_offset_db)
    vectors = l2_normalize(w * clips.vectors + backgrounds[which] + _noise(rng, (n, d), space.config.scene_noise))
    return Scenes(vectors, clips.labels.copy(), clips.folds.copy(), np.asarray(which), float(snr_db))


@dataclass(frozen=True)
class SyntheticData:
    """Everything an evaluation needs, for every environment and SNR."""

    space: Space
    clips: Clips
    backgrounds: dict[str, np.ndarray] = field(default_factory=dict)  # env -> (m, d)
    scenes: dict[tuple[str, float], Scenes] = field(default_factory=dict)  # (env, snr) -> scenes


def generate(
    config: SpaceConfig = SpaceConfig(),
    per_class: int = 40,
    n_folds: int = 5,
    backgrounds_per_env: int = 40,
    snrs_db: tuple[float, ...] = (6.0, 8.0, 10.0),
    seed: int = 0,
) -> SyntheticData:
    """A whole synthetic experiment: the same clips mixed over every environment at every SNR."""
    space = make_space(config, seed)
    clips = sample_clips(space, per_class, n_folds, seed)
    data = SyntheticData(space, clips)
    for j, env in enumerate(config.environments):
        bgs = sample_backgrounds(space, j, backgrounds_per_env, seed)
        data.backgrounds[env] = bgs
        for snr in snrs_db:
            data.scenes[(env, float(snr))] = mix_scenes(space, clips, bgs, snr, seed + 7919 * (j + 1))
    return data
