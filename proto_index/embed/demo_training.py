"""Train clap-tiny-demo's projection heads on generated sounds (writes demo_model.WEIGHTS).

    python -m proto_index.embed.demo_training [--out PATH]

Clips come from :mod:`proto_index.generated_audio`: each foreground class over each environment at SNRs
from -6 to 20 dB (caption: the class, in several phrasings such as "This is a sound of dog bark"),
and background-only clips (caption: the environment, in the text-background prompts and
paraphrases). They pass through the same decoding as archive files (WAV bytes at 16, 44.1 or 48 kHz,
resampled to 48 kHz, int16-quantised). The frozen towers run once per clip and per caption; the
heads then train on those cached tower outputs with a multi-positive contrastive loss (InfoNCE
both ways, every caption of a clip's class or environment a positive), full batch, fixed steps.

Seeds: every clip comes from ``numpy.random.default_rng([TRAIN_SEED, crc32(stream), i])`` with the
streams ``"clap-tiny-demo:train"`` and ``"clap-tiny-demo:check"``. generated_audio's writers use the streams
``corpus``, ``archive`` and ``background:ENV``, so no demo, test or benchmark file (any seed) shares
a clip with the training set. Training runs single-threaded with deterministic algorithms, so the
same machine and torch build write the same bytes again.
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
from proto_index.core.adaptation import background_prompts
from proto_index.core.prototypes import DEFAULT_TEMPLATE
from proto_index.embed import demo_model

if TYPE_CHECKING:
    import torch

TRAIN_SEED = 20_260_801
LABEL_TEMPLATES = (DEFAULT_TEMPLATE, "the sound of a {label}", "a {label}", "{label}", "a recording of a {label}",
                   "{label} sound", "a {label} nearby", "someone recorded a {label}")
ENV_TEMPLATES = ("{env}", "ambience of a {env}", "a recording in a {env}", "the background noise of a {env}")


@dataclass(frozen=True)
class TrainingConfig:
    """What is generated and how the heads train; the defaults wrote the shipped weights."""

    seed: int = TRAIN_SEED
    clips_per_pair: int = 10  # per (class, environment)
    backgrounds_per_env: int = 12
    check_per_pair: int = 2  # held-out clips, reported only
    snr_db: tuple[float, float] = (-6.0, 20.0)
    steps: int = 200
    lr: float = 1e-3
    weight_decay: float = 0.1
    temperature: float = 0.1


@dataclass(frozen=True)
class Clip:
    """A prepared 48 kHz waveform and its concept: a class label or an environment (``kind``)."""

    wave: np.ndarray
    kind: str  # "label" or "env"
    name: str


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
        return Clip(_prepared(audio, sr), "env", env)
    n_fg = min(n, round(rng.uniform(1.0, 5.0) * sr))
    foreground = generated_audio.make_foreground(label, n_fg / sr, sr, rng)
    onset = int(rng.integers(0, n - n_fg + 1)) / sr
    audio = generated_audio.mix(foreground, audio, float(rng.uniform(*snr_db)), onset, sr)
    return Clip(_prepared(audio, sr), "label", label)


def make_clips(config: TrainingConfig, stream: str, per_pair: int, backgrounds: int) -> list[Clip]:
    """Every class over every environment ``per_pair`` times, then ``backgrounds`` per environment."""
    tag = zlib.crc32(stream.encode())
    jobs: list[tuple[str, str | None]] = [(env, label) for _ in range(per_pair) for label in generated_audio.FOREGROUND_LABELS
            for env in generated_audio.BACKGROUND_ENVIRONMENTS]
    jobs += [(env, None) for _ in range(backgrounds) for env in generated_audio.BACKGROUND_ENVIRONMENTS]
    return [make_clip(np.random.default_rng([config.seed, tag, i]), env, label, config.snr_db)
            for i, (env, label) in enumerate(jobs)]


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
    train_clips = make_clips(config, "clap-tiny-demo:train", config.clips_per_pair, config.backgrounds_per_env)
    check_clips = make_clips(config, "clap-tiny-demo:check", config.check_per_pair, 2)
    log(f"generated {len(train_clips)} training and {len(check_clips)} check clips in {time.perf_counter() - t0:.1f} s")
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


def save_heads(model, path: str | os.PathLike) -> None:
    """Write the heads as safetensors at ``path`` (temp file in the same folder, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        # one metadata key: safetensors writes a metadata map in hash order, so more keys would
        # make the bytes (and the file's hash) vary from run to run
        save_file(demo_model.head_state(model), str(tmp), metadata={"model": "clap-tiny-demo"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proto_index.embed.demo_training", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=demo_model.WEIGHTS, help="where to write the heads")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    model = train()
    save_heads(model, args.out)
    from proto_index.audio.discover import file_sha256

    digest = file_sha256(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sha256 {digest}) in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
