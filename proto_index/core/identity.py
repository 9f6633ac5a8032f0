"""What a store is bound to and how audio reaches a model: :class:`ModelIdentity` and CLAP's defaults.

Below both the model layer (:mod:`proto_index.embed`) and the store, which records the identity.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

SAMPLE_RATE = 48_000
"""The rate a CLAP tower consumes (48 kHz mono): a model's :attr:`ModelIdentity.sample_rate` unless it declares another."""

WINDOW_SECONDS = 10.0
"""CLAP's receptive field (10 s): a model's :attr:`ModelIdentity.window_s` unless it declares another."""

MIN_TAIL_SECONDS = 1.0
"""CLAP's shortest final partial window kept (shorter ones are dropped): :attr:`ModelIdentity.min_tail_s`."""


@dataclass(frozen=True)
class ModelIdentity:
    """What a store is bound to: vectors from a model with another identity are refused.

    ``weights`` is a content hash of the checkpoint file (``sha256:...``) or, for the offline
    random-weight model, a hash of its initialised state dict.

    The model also declares how audio reaches it: ``sample_rate`` (Hz), ``window_s`` (the audio
    one embedding covers; windows are cut to it and hop by it unless told otherwise),
    ``min_tail_s`` (a final partial window shorter than this is dropped), ``min_clip_s`` (a
    recording shorter than this is refused; 0: any length, padded by the model), and ``text``
    (whether it has a text tower: zero-shot, TGAP, text search and text backgrounds need one).
    The defaults are CLAP's; they are left out of :meth:`to_json`, so the identities of stores
    made before these fields existed read back, and are written, exactly as before.
    """

    name: str
    architecture: str
    fusion: bool
    weights: str
    dim: int
    sample_rate: int = SAMPLE_RATE
    window_s: float = WINDOW_SECONDS
    min_tail_s: float = MIN_TAIL_SECONDS
    min_clip_s: float = 0.0
    text: bool = True

    def to_json(self) -> str:
        defaults = {f.name: f.default for f in fields(self) if f.name in _DECLARED}
        return json.dumps({k: v for k, v in asdict(self).items() if k not in defaults or v != defaults[k]},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelIdentity":
        return cls(**json.loads(text))

    def describe(self) -> str:
        fusion = "fusion" if self.fusion else "no fusion"
        return f"{self.name} ({self.architecture}, {fusion}, weights {self.weights[:19]}, dim {self.dim})"

    def seconds(self, samples: int) -> float:
        """``samples`` at the model's rate, in seconds."""
        return samples / self.sample_rate

    def samples(self, seconds: float) -> int:
        """``seconds`` in samples at the model's rate."""
        return round(seconds * self.sample_rate)


_DECLARED = ("sample_rate", "window_s", "min_tail_s", "min_clip_s", "text")
"""The fields a model declares beside its weights (see :class:`ModelIdentity`), omitted from JSON at their defaults."""
