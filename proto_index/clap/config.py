"""The CLAP architectures the released LAION-CLAP checkpoints use, as plain frozen dataclasses.

Audio: HTSAT (a Swin transformer over a 256x256 "image" made from a 1024-frame x 64-band log-mel
spectrogram), ``tiny`` (patch width 96, depths 2-2-6-2) or ``base`` (128, 2-2-12-2), with or without
feature fusion. Text: ``roberta`` (roberta-base, which every released checkpoint uses) or
``transformer`` (CLIP's 12-layer causal text transformer over a 49,408-token BPE vocabulary, which
the project's seeded models and demo model use). Both towers end in a two-layer ReLU projection to
the 512-d joint space.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

AUDIO_SIZES = {"tiny": (96, (2, 2, 6, 2)), "base": (128, (2, 2, 12, 2))}
"""HTSAT sizes: patch-embedding width and blocks per stage."""
TEXT_KINDS = ("roberta", "transformer")


@dataclass(frozen=True)
class AudioConfig:
    """HTSAT and its input features (48 kHz, 10 s clips, 1024-point STFT, hop 480, 64 mel bands)."""

    size: str = "tiny"
    fusion: bool = False
    heads: tuple[int, ...] = (4, 8, 16, 32)
    window: int = 8
    spec_size: int = 256
    mlp_ratio: float = 4.0
    mel_bins: int = 64
    sample_rate: int = 48_000
    clip_samples: int = 480_000
    n_fft: int = 1024
    hop: int = 480
    fmin: float = 50.0
    fmax: float = 14_000.0
    classes: int = 527
    """Only the shape of the unused AudioSet head released checkpoints carry (``tscam_conv``, ``head``)."""

    def __post_init__(self):
        if self.size not in AUDIO_SIZES:
            raise ValueError(f"unknown HTSAT size {self.size!r}; expected one of {sorted(AUDIO_SIZES)}")

    @property
    def width(self) -> int:
        """Patch-embedding width (the first stage's channels)."""
        return AUDIO_SIZES[self.size][0]

    @property
    def depths(self) -> tuple[int, ...]:
        return AUDIO_SIZES[self.size][1]

    @property
    def out_dim(self) -> int:
        """Channels after the last stage (width doubled at each of the three patch mergings)."""
        return self.width * 2 ** (len(self.depths) - 1)

    @property
    def frames(self) -> int:
        """STFT frames of a clip (centred frames: one more than clip_samples // hop)."""
        return self.clip_samples // self.hop + 1

    @property
    def freq_ratio(self) -> int:
        return self.spec_size // self.mel_bins


@dataclass(frozen=True)
class TextConfig:
    """A text tower: ``roberta`` (roberta-base's shape) or ``transformer`` (CLIP's text transformer)."""

    kind: str = "roberta"
    width: int = 768
    layers: int = 12
    heads: int = 12
    vocab_size: int = 50265
    context_length: int = 77
    max_positions: int = 514
    """RoBERTa only: its position table (positions start after the padding index 1)."""
    layer_norm_eps: float = 1e-5
    pad_id: int = 1

    def __post_init__(self):
        if self.kind not in TEXT_KINDS:
            raise ValueError(f"unknown text tower {self.kind!r}; expected one of {TEXT_KINDS}")

    @classmethod
    def roberta(cls) -> TextConfig:
        return cls()

    @classmethod
    def transformer(cls) -> TextConfig:
        return cls(kind="transformer", width=512, layers=12, heads=8, vocab_size=49408, max_positions=77,
                   pad_id=0)


@dataclass(frozen=True)
class ClapConfig:
    audio: AudioConfig = field(default_factory=AudioConfig)
    text: TextConfig = field(default_factory=TextConfig.roberta)
    joint_dim: int = 512

    def with_fusion(self, fusion: bool) -> ClapConfig:
        return replace(self, audio=replace(self.audio, fusion=fusion))

    @property
    def architecture(self) -> str:
        """``HTSAT-tiny+roberta`` and the like (``-fusion`` appended for fusion models)."""
        fusion = "fusion" if self.audio.fusion else ""
        return "-".join(filter(None, (f"HTSAT-{self.audio.size}+{self.text.kind}", fusion)))


def config(audio_size: str = "tiny", *, fusion: bool = False, text: str = "roberta") -> ClapConfig:
    """A CLAP configuration by its three choices."""
    text_cfg = TextConfig.roberta() if text == "roberta" else TextConfig.transformer() if text == "transformer" \
        else TextConfig(kind=text)  # raises for an unknown tower
    return ClapConfig(audio=AudioConfig(size=audio_size, fusion=fusion), text=text_cfg)


RELEASED = {
    "630k-audioset-best.pt": config("tiny", fusion=False),
    "630k-audioset-fusion-best.pt": config("tiny", fusion=True),
    "630k-best.pt": config("tiny", fusion=False),
    "630k-fusion-best.pt": config("tiny", fusion=True),
    "music_speech_audioset_epoch_15_esc_89.98.pt": config("base", fusion=False),
    "music_audioset_epoch_15_esc_90.14.pt": config("base", fusion=False),
    "music_speech_epoch_15_esc_89.25.pt": config("base", fusion=False),
}
"""The released LAION-CLAP checkpoints by file name (HTSAT-base: the music/speech family)."""
