"""Train a demo model's projection heads on generated sounds (writes its shipped weights file).

    python -m proto_index.embed.demo_training [--model clap-tiny-demo|clap-tiny-fair] [--out PATH]

Clips come from :mod:`proto_index.generated_audio` by one of two recipes (:attr:`TrainingConfig.recipe`):

* ``mixed`` (clap-tiny-demo): each foreground class over each environment at SNRs from -6 to 20 dB
  (caption: the class, in several phrasings such as "This is a sound of dog bark"), and
  background-only clips (caption: the environment, in the text-background prompts and paraphrases).
  The heads learn to map a mixture to its class whatever the environment, so a mixture's embedding
  keeps little of the background.
* ``isolated`` (clap-tiny-fair): as CLAP was trained, on isolated sources with their captions:
  foreground sounds alone (caption: the class) and environments alone (caption: the environment);
  no clip mixes the two, so nothing teaches the heads to discard a background (see
  :func:`make_isolated_clip`).

Every clip passes through the same decoding as archive files (WAV bytes at 16, 44.1 or 48 kHz,
resampled to 48 kHz, int16-quantised). The frozen towers run once per clip and per caption; the
heads then train on those cached tower outputs with a multi-positive contrastive loss (InfoNCE
both ways, every caption of a clip's class or environment a positive), full batch, fixed steps.
Held-out check clips are always mixtures (what the model meets in use), reported only.

Seeds: every clip comes from ``numpy.random.default_rng([TRAIN_SEED, crc32(stream), i])`` with the
streams ``"MODEL:train"`` and ``"MODEL:check"`` (``clap-tiny-demo:train``, ``clap-tiny-fair:check``...).
generated_audio's writers use the streams ``corpus``, ``archive`` and ``background:ENV``, so no demo,
test or benchmark file (any seed) shares a clip with a training set, and the two models share none.
Training runs single-threaded with deterministic algorithms, so the same machine and torch build
write the same bytes again.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from proto_index import generated_audio
from proto_index.atomic import atomic_path
from proto_index.audio.decode import load_audio, quantize_int16
from proto_index.audio.levels import limit_peak
from proto_index.core.adaptation import background_prompts
from proto_index.core.prototypes import DEFAULT_TEMPLATE
from proto_index.embed import demo_model

if TYPE_CHECKING:
    import torch

TRAIN_SEED = 20_260_801
LABEL_TEMPLATES = (DEFAULT_TEMPLATE, "the sound of a {label}", "a {label}", "{label}", "a recording of a {label}",
                   "{label} sound", "a {label} nearby", "someone recorded a {label}")
ENV_TEMPLATES = ("{env}", "ambience of a {env}", "a recording in a {env}", "the background noise of a {env}")


RECIPES = ("mixed", "isolated")


@dataclass(frozen=True)
class TrainingConfig:
    """What is generated and how the heads train; the defaults wrote clap-tiny-demo's weights,
    :data:`CONFIGS` holds each shipped model's."""

    seed: int = TRAIN_SEED
    model: str = "clap-tiny-demo"  # names the seed streams and the weights file's metadata
    recipe: str = "mixed"  # one of RECIPES
    clips_per_pair: int = 10  # mixed: per (class, environment)
    backgrounds_per_env: int = 12  # environment-only clips per environment (both recipes)
    clips_per_label: int = 40  # isolated: foreground-only clips per class
    level_db: tuple[float, float] = (-12.0, 6.0)  # isolated: each source's gain re its generator's level
    floor_db: tuple[float, float] = (-70.0, -50.0)  # isolated: a foreground's noise floor re FOREGROUND_RMS
    check_per_pair: int = 2  # held-out mixtures, reported only
    snr_db: tuple[float, float] = (-6.0, 20.0)
    steps: int = 200
    lr: float = 1e-3
    weight_decay: float = 0.1
    temperature: float = 0.1

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; choose one of {', '.join(RECIPES)}")


CONFIGS = {
    "clap-tiny-demo": TrainingConfig(),
    "clap-tiny-fair": TrainingConfig(model="clap-tiny-fair", recipe="isolated", clips_per_label=40,
                                     backgrounds_per_env=40),
}
"""The configuration that wrote each shipped model's heads."""


@dataclass(frozen=True)
class Clip:
    """A prepared 48 kHz waveform and its concept: a class label or an environment (``kind``)."""

    wave: np.ndarray
    kind: str  # "label" or "env"
    name: str
    sources: tuple[str, ...] = ()  # what was generated into it: an environment, a class, or both


def label_captions(label: str) -> list[str]:
    text = label.replace("_", " ")
    return [t.replace("{label}", text) for t in LABEL_TEMPLATES]


def env_captions(env: str) -> list[str]:
    text = env.replace("_", " ")
    return background_prompts(text) + [t.replace("{env}", text) for t in ENV_TEMPLATES]


def _prepared(audio: np.ndarray, sr: int) -> np.ndarray:
    """``audio`` through the archive path: 16-bit WAV bytes, decoded and resampled, quantised."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    buffer.seek(0)
    return quantize_int16(load_audio(buffer))


def make_clip(rng: np.random.Generator, env: str, label: str | None, snr_db: tuple[float, float]) -> Clip:
    """One clip of ``label`` over ``env`` (or ``env`` alone), 2 to 10 s, as generated_audio's writers make them."""
    sr = int(rng.choice(generated_audio.RATES))
    n = round(rng.uniform(2.0, 10.0) * sr)
    audio = generated_audio.make_background(env, n / sr, sr, rng)
    if label is None:
        return Clip(_prepared(audio, sr), "env", env, (env,))
    n_fg = min(n, round(rng.uniform(1.0, 5.0) * sr))
    foreground = generated_audio.make_foreground(label, n_fg / sr, sr, rng)
    onset = int(rng.integers(0, n - n_fg + 1)) / sr
    audio = generated_audio.mix(foreground, audio, float(rng.uniform(*snr_db)), onset, sr)
    return Clip(_prepared(audio, sr), "label", label, (env, label))


def make_isolated_clip(rng: np.random.Generator, source: str, kind: str, config: TrainingConfig) -> Clip:
    """One isolated source, 2 to 10 s at a gain from ``config.level_db``: an environment alone, or a
    class's sound (1 to 5 s at a random onset) alone on a white noise floor ``config.floor_db``
    under the foreground level.

    Why a floor and not digital silence: no recording is silent, and the archive path's int16
    quantisation would turn the silence into runs of exact zeros that no real file has; a white floor
    near the 16-bit step (-70 to -50 dB re the foreground) is what a quiet recording of one sound
    holds, and, having no environment's spectrum, it lends no clip of a class an environment.
    """
    sr = int(rng.choice(generated_audio.RATES))
    n = round(rng.uniform(2.0, 10.0) * sr)
    gain = 10.0 ** (rng.uniform(*config.level_db) / 20.0)
    if kind == "env":
        audio = gain * generated_audio.make_background(source, n / sr, sr, rng)
        return Clip(_prepared(limit_peak(audio)[0], sr), "env", source, (source,))
    n_fg = min(n, round(rng.uniform(1.0, 5.0) * sr))
    foreground = gain * generated_audio.make_foreground(source, n_fg / sr, sr, rng)
    onset = int(rng.integers(0, n - n_fg + 1))
    floor = generated_audio.FOREGROUND_RMS * 10.0 ** (rng.uniform(*config.floor_db) / 20.0)
    audio = rng.normal(0.0, floor, n)
    audio[onset:onset + n_fg] += foreground
    return Clip(_prepared(limit_peak(audio)[0], sr), "label", source, (source,))


def make_clips(config: TrainingConfig, stream: str, per_pair: int, backgrounds: int) -> list[Clip]:
    """Mixtures: every class over every environment ``per_pair`` times, then ``backgrounds`` per environment."""
    tag = zlib.crc32(stream.encode())
    jobs: list[tuple[str, str | None]] = [(env, label) for _ in range(per_pair) for label in generated_audio.FOREGROUND_LABELS
            for env in generated_audio.BACKGROUND_ENVIRONMENTS]
    jobs += [(env, None) for _ in range(backgrounds) for env in generated_audio.BACKGROUND_ENVIRONMENTS]
    return [make_clip(np.random.default_rng([config.seed, tag, i]), env, label, config.snr_db)
            for i, (env, label) in enumerate(jobs)]


def make_isolated_clips(config: TrainingConfig, stream: str, per_label: int, per_env: int) -> list[Clip]:
    """Isolated sources: ``per_label`` clips of each class alone, then ``per_env`` of each environment alone."""
    tag = zlib.crc32(stream.encode())
    jobs = [(label, "label") for _ in range(per_label) for label in generated_audio.FOREGROUND_LABELS]
    jobs += [(env, "env") for _ in range(per_env) for env in generated_audio.BACKGROUND_ENVIRONMENTS]
    return [make_isolated_clip(np.random.default_rng([config.seed, tag, i]), source, kind, config)
            for i, (source, kind) in enumerate(jobs)]


def training_clips(config: TrainingConfig) -> list[Clip]:
    """The training set of ``config``'s recipe, from the stream ``MODEL:train``."""
    stream = f"{config.model}:train"
    if config.recipe == "isolated":
        return make_isolated_clips(config, stream, config.clips_per_label, config.backgrounds_per_env)
    return make_clips(config, stream, config.clips_per_pair, config.backgrounds_per_env)


class TowerCache:
    """The frozen towers' outputs (the heads' inputs), captured by forward pre-hooks on the heads."""

    def __init__(self, model):
        from proto_index.clap import config
        from proto_index.clap.tokens import ByteTokenizer
        from proto_index.embed.clap import ClapEncoder
        from proto_index.embed.encoder import ModelIdentity

        identity = ModelIdentity("clap-tiny-demo-training", "", False, "", model.cfg.joint_dim)
        text = config("tiny", fusion=False, text="transformer").text
        self.encoder = ClapEncoder(model, identity, lambda: ByteTokenizer(text), batch_size=8)
        self.model = model

    def _capture(self, head, run):
        import torch

        seen: list[torch.Tensor] = []
        handle = head.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().float().clone()))
        try:
            run()
        finally:
            handle.remove()
        return torch.cat(seen)

    def audio(self, waves) -> "torch.Tensor":
        return self._capture(self.model.audio_projection, lambda: self.encoder.embed_waveforms(waves))

    def text(self, texts) -> "torch.Tensor":
        return self._capture(self.model.text_projection, lambda: self.encoder.embed_texts(texts))


def _targets(clip_concepts, caption_concepts):
    import torch

    return torch.tensor([[float(c == k) for k in caption_concepts] for c in clip_concepts])


def contrastive_loss(model, audio_in, text_in, positives, temperature: float):
    """Multi-positive InfoNCE, audio->captions and captions->audio, averaged."""
    import torch.nn.functional as F

    a = F.normalize(model.audio_projection(audio_in), dim=-1)
    t = F.normalize(model.text_projection(text_in), dim=-1)
    logits = a @ t.T / temperature
    loss_a = -(F.log_softmax(logits, dim=1) * positives / positives.sum(1, keepdim=True)).sum(1).mean()
    loss_t = -(F.log_softmax(logits.T, dim=1) * positives.T / positives.T.sum(1, keepdim=True)).sum(1).mean()
    return (loss_a + loss_t) / 2


def zero_shot_accuracy(model, audio_in, clip_concepts, text_in, caption_concepts) -> float:
    """Share of label clips whose nearest class anchor (mean of its captions' embeddings) is their class."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        a = F.normalize(model.audio_projection(audio_in), dim=-1)
        t = F.normalize(model.text_projection(text_in), dim=-1)
    labels = list(generated_audio.FOREGROUND_LABELS)
    anchors = F.normalize(torch.stack([t[[c == ("label", x) for c in caption_concepts]].mean(0) for x in labels]), dim=-1)
    rows = [i for i, c in enumerate(clip_concepts) if c[0] == "label"]
    if not rows:
        return float("nan")
    predicted = (a[rows] @ anchors.T).argmax(1).tolist()
    return float(np.mean([labels[p] == clip_concepts[i][1] for p, i in zip(predicted, rows)]))


def train(config: TrainingConfig = TrainingConfig(), log=print):
    """Generate, cache, train; return the trained model (heads trained, towers as seeded)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            torch.use_deterministic_algorithms(True)
            try:
                return _train(config, log)
            finally:
                torch.use_deterministic_algorithms(False)
    finally:
        torch.set_num_threads(threads)


@dataclass
class TowerOutputs:
    """The heads' inputs for every training clip, check clip and caption, with their concepts."""

    audio: "torch.Tensor"
    concepts: list[tuple[str, str]]
    check_audio: "torch.Tensor"
    check_concepts: list[tuple[str, str]]
    text: "torch.Tensor"
    caption_concepts: list[tuple[str, str]]


def run_towers(model, config: TrainingConfig, log=print) -> TowerOutputs:
    """Generate the clips and run the frozen towers once over them and over the captions."""
    t0 = time.perf_counter()
    train_clips = training_clips(config)
    check_clips = make_clips(config, f"{config.model}:check", config.check_per_pair, 2)
    log(f"{config.model} ({config.recipe} recipe): generated {len(train_clips)} training and {len(check_clips)} check clips in {time.perf_counter() - t0:.1f} s")
    t1 = time.perf_counter()
    cache = TowerCache(model)
    captions = [(("label", x), c) for x in generated_audio.FOREGROUND_LABELS for c in label_captions(x)]
    captions += [(("env", e), c) for e in generated_audio.BACKGROUND_ENVIRONMENTS for c in env_captions(e)]
    out = TowerOutputs(cache.audio([c.wave for c in train_clips]), [(c.kind, c.name) for c in train_clips],
                       cache.audio([c.wave for c in check_clips]), [(c.kind, c.name) for c in check_clips],
                       cache.text([c for _, c in captions]), [k for k, _ in captions])
    log(f"ran the frozen towers on {len(train_clips) + len(check_clips)} clips and {len(captions)} captions "
        f"in {time.perf_counter() - t1:.1f} s")
    return out


def _train(config: TrainingConfig, log):
    model = demo_model.base_model()
    train_heads(model, run_towers(model, config, log), config, log)
    return model.eval()


def train_heads(model, data: TowerOutputs, config: TrainingConfig, log=print) -> None:
    """Train ``model``'s heads in place on cached tower outputs (full batch, AdamW, fixed steps).

    The random towers' outputs share one large mean direction, so each head trains on standardised
    inputs ((x - mean) / std per feature, from the training data); the standardisation is then
    folded into the head's first Linear layer, leaving CLAP's head architecture unchanged.
    """
    import torch

    audio_stats = _stats(data.audio)
    text_stats = _stats(data.text)
    audio, check_audio, text = (_standardise(data.audio, audio_stats), _standardise(data.check_audio, audio_stats),
                                _standardise(data.text, text_stats))
    positives = _targets(data.concepts, data.caption_concepts)
    params = [p for name in demo_model.HEADS for p in getattr(model, name).parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    def check() -> float:
        return zero_shot_accuracy(model, check_audio, data.check_concepts, text, data.caption_concepts)

    log(f"before training: held-out zero-shot accuracy {check():.3f}")
    t0 = time.perf_counter()
    for step in range(1, config.steps + 1):
        optimizer.zero_grad()
        loss = contrastive_loss(model, audio, text, positives, config.temperature)
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == config.steps:
            log(f"step {step}: loss {loss.item():.4f}, held-out zero-shot accuracy {check():.3f}")
    log(f"trained the heads in {time.perf_counter() - t0:.1f} s")
    for p in model.parameters():
        p.requires_grad_(False)
    _fold(model.audio_projection.linear1, audio_stats)
    _fold(model.text_projection.linear1, text_stats)
    log(f"after folding the standardisation: held-out zero-shot accuracy "
        f"{zero_shot_accuracy(model, data.check_audio, data.check_concepts, data.text, data.caption_concepts):.3f}")


def _stats(x):
    return x.mean(0), x.std(0) + 1e-6


def _standardise(x, stats):
    mean, std = stats
    return (x - mean) / std


def _fold(linear, stats) -> None:
    """Make ``linear(x)`` compute what it computed on ``(x - mean) / std``."""
    import torch

    mean, std = stats
    with torch.no_grad():
        weight = linear.weight / std
        linear.bias.copy_(linear.bias - weight @ mean)
        linear.weight.copy_(weight)


def save_heads(model, path: str | os.PathLike, name: str = "clap-tiny-demo") -> None:
    """Write the heads of the model ``name`` as safetensors at ``path`` (temp file in the same folder, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        # one metadata key: safetensors writes a metadata map in hash order, so more keys would
        # make the bytes (and the file's hash) vary from run to run
        save_file(demo_model.head_state(model), str(tmp), metadata={"model": name})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proto_index.embed.demo_training", description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(CONFIGS), default="clap-tiny-demo", help="which demo model to train")
    parser.add_argument("--out", type=Path, default=None, help="where to write the heads (default: the shipped file)")
    args = parser.parse_args(argv)
    out = args.out or demo_model.weights_of(args.model)
    t0 = time.perf_counter()
    model = train(CONFIGS[args.model])
    save_heads(model, out, args.model)
    from proto_index.audio.discover import file_sha256

    digest = file_sha256(out)
    print(f"wrote {out} ({out.stat().st_size} bytes, sha256 {digest}) in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
