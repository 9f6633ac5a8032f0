"""ClapEncoder: a :class:`proto_index.clap.model.ClapModel` behind the
:class:`~proto_index.embed.encoder.Encoder` interface, for every CLAP model the project loads (the
released checkpoints, see :mod:`.released`; the seeded ones, see :mod:`.seeded` and :mod:`.demo_model`).

Thread safety: one encoder may embed clips and texts from several threads at once. Nothing is
changed per call outside the call: the batch size is an argument, warning filters, the environment
and other packages are left alone; the text side and the tokenizer are built once under a lock, and
the tokenizer (a fast tokenizer keeps padding settings of its own) is called under one.
"""
from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from proto_index.embed.encoder import ModelIdentity
from proto_index.errors import ModelError

if TYPE_CHECKING:
    import torch

    from proto_index.clap.model import ClapModel

PRECISIONS = ("fp32", "bf16")
"""Compute precisions: float32, or bfloat16 autocast (CPU or CUDA); fp16 is refused (see check_precision)."""

Tokenizer = Callable[[Sequence[str]], "tuple[torch.Tensor, torch.Tensor]"]
"""``texts -> (ids, attention mask)``, both ``(n, length)``."""


def check_precision(precision: str, device: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS` and ``device`` can run it, else :class:`ModelError`."""
    if precision == "fp16":
        # measured on an H100: float16 autocast overflows in the non-fusion HTSAT audio tower (NaN vectors)
        raise ModelError("fp16 is not supported: HTSAT-tiny's audio tower overflows to NaN in float16; use bf16")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


class ClapEncoder:
    """A CLAP model as an Encoder.

    ``make_tokenizer`` builds the text side's tokenizer on the first text (audio-only commands never
    read its files). ``batch_size``: clips or texts per forward unless a call gives its own.
    ``precision``: ``fp32``, or ``bf16``: both towers under ``torch.autocast`` in bfloat16, except
    that on the CPU the audio tower is a bfloat16 copy (made once; measured 25 clips/s against
    autocast's 18 on 2 cores, as oneDNN's bfloat16 kernels then need no per-call casts of the
    weights). Features and the final normalisation stay float32; the model's own weights, and so the
    identity, are unchanged.
    """

    def __init__(self, model: ClapModel, identity: ModelIdentity, make_tokenizer: Callable[[], Tokenizer], *,
                 batch_size: int = 16, precision: str = "fp32"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.identity = identity
        self.device = str(model.device)
        self.precision = check_precision(precision, self.device)
        self.batch_size = batch_size
        self._make_tokenizer = make_tokenizer
        self._tokenizer: Tokenizer | None = None
        self._tokenizer_lock = threading.Lock()
        self._bf16_audio: tuple[torch.nn.Module, ...] | None = None
        self._bf16_lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.identity.dim

    @property
    def text_built(self) -> bool:
        """Whether the text tower has been built (on the first text embedding)."""
        return self.model.text_built

    def _autocast(self):
        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)

    def _audio_towers(self) -> tuple[torch.nn.Module, ...] | None:
        """The bfloat16 copy of the audio tower and projection that bf16 runs on the CPU (None otherwise)."""
        import copy

        import torch

        if self.precision != "bf16" or torch.device(self.device).type != "cpu":
            return None
        with self._bf16_lock:
            if self._bf16_audio is None:
                self._bf16_audio = tuple(copy.deepcopy(m).to(torch.bfloat16).eval()
                                         for m in (self.model.audio_model, self.model.audio_projection))
            return self._bf16_audio

    def _batches(self, items: Sequence, batch_size: int | None):
        size = self.batch_size if batch_size is None else int(batch_size)
        if size < 1:
            raise ValueError(f"batch_size must be positive, got {size}")
        return (items[start:start + size] for start in range(0, len(items), size))

    def _unit(self, embeddings: torch.Tensor, *, normalised: bool = False) -> np.ndarray:
        """float32 numpy, normalised in float32 unless it was already (at float32)."""
        import torch.nn.functional as F

        embeddings = embeddings.float()
        if not normalised or self.precision != "fp32":
            embeddings = F.normalize(embeddings, dim=-1)
        return embeddings.cpu().numpy()

    def embed_waveforms(self, waveforms: Sequence[np.ndarray], *, batch_size: int | None = None) -> np.ndarray:
        """Embed quantised 48 kHz mono clips of at most 10 s, ``batch_size`` per forward (None: the
        encoder's); ``(n, dim)`` float32, L2-normalised."""
        import torch

        clips = [np.ascontiguousarray(w, dtype=np.float32) for w in waveforms]
        towers = self._audio_towers()
        out = []
        with torch.inference_mode():
            for batch in self._batches(clips, batch_size):
                features = self.model.audio_input(batch)  # float32 whatever the precision
                with self._autocast() if towers is None else contextlib.nullcontext():
                    out.append(self._unit(self.model.audio_embeddings(features, towers)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def tokenizer(self) -> Tokenizer:
        """The text side's tokenizer, built on first use."""
        with self._tokenizer_lock:
            if self._tokenizer is None:
                self._tokenizer = self._make_tokenizer()
            return self._tokenizer

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask of ``texts``."""
        tokenizer = self.tokenizer()
        with self._tokenizer_lock:
            return tokenizer(list(texts))

    def embed_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Embed texts, ``batch_size`` per forward (None: the encoder's); ``(n, dim)`` float32, L2-normalised."""
        out = []
        for batch in self._batches(list(texts), batch_size):
            ids, mask = self.tokenize(batch)
            with self._autocast():
                out.append(self._unit(self.model.embed_text(ids, mask), normalised=True))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)
