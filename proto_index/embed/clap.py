"""ClapEncoder: the seeded models (clap-tiny-random, clap-tiny-demo) over laion_clap's own model
factory, feature preparation and tokenizer (the released checkpoints run on :mod:`proto_index.clap`,
see :mod:`.released`).

Nothing here reimplements laion_clap; it builds the model with ``create_model`` (:mod:`.build`) and
prepares audio with ``get_audio_features`` exactly as ``laion_clap.CLAP_Module`` does. laion_clap
(and torch) are imported lazily, on first use. A command that embeds only audio builds only the
audio tower: the text tower of the demo model is built on first use of the text side.
"""
from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from proto_index.embed import build
from proto_index.embed.bf16_stft import cpu_bf16_audio_model
from proto_index.embed.build import model_architecture, state_sha256
from proto_index.embed.encoder import SAMPLE_RATE, WINDOW_SECONDS, ModelIdentity
from proto_index.embed.offline import laion
from proto_index.embed.quiet import quiet
from proto_index.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["ClapEncoder", "PRECISIONS", "check_precision", "laion", "model_architecture", "state_sha256"]

MAX_SAMPLES = int(SAMPLE_RATE * WINDOW_SECONDS)
TEXT_LENGTH = 77
PRECISIONS = ("fp32", "bf16")
"""Compute precisions: float32, or bfloat16 autocast (CPU or CUDA); fp16 is refused (see check_precision)."""

TextBuilder = Callable[[Any], Any]
"""Builds a model's text tower on first use: ``(model) -> whole model``."""


def check_precision(precision: str, device: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS` and ``device`` can run it, else :class:`ModelError`."""
    if precision == "fp16":
        # measured on an H100: float16 autocast overflows in the non-fusion HTSAT audio tower (NaN vectors)
        raise ModelError("fp16 is not supported: HTSAT-tiny's audio tower overflows to NaN in float16; use bf16")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


class ClapEncoder:
    """A laion_clap CLAP model behind the :class:`~proto_index.embed.encoder.Encoder` interface.

    Build one with :meth:`random`. ``model`` and ``model_cfg`` are laion_clap's own objects, with
    its ``transformer`` text tower (laion_clap's bundled BPE tokenizer). A model
    whose text tower is a :func:`~proto_index.embed.build.create_clap_model` ``text=False``
    placeholder comes with ``build_text``, run (once) on the first text embedding or access to
    :attr:`model`; audio embeddings never build it.

    ``precision``: ``fp32`` (default) or ``bf16`` runs both towers under
    ``torch.autocast`` with that type; on the CPU, bf16 audio goes through a bfloat16 copy of the
    audio tower (:func:`cpu_bf16_audio_model`, about 10% faster than autocast alone). The model's
    own weights stay float32 and untouched, so its identity does not change; vectors differ
    slightly from float32 ones (cosine >= 0.9999, tests/test_precision.py), are normalised again
    in float32 and returned as float32.
    """

    def __init__(self, model: torch.nn.Module, model_cfg: dict, identity: ModelIdentity, *,
                 device: str | None = None, batch_size: int = 16,
                 precision: str = "fp32", build_text: TextBuilder | None = None):
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if model.text_branch_type != "transformer":
            raise ModelError(f"ClapEncoder runs laion_clap's transformer text tower, not {model.text_branch_type}")
        if build.is_pending(model.text_branch) and build_text is None:
            raise ModelError("a model whose text tower is left for later needs a build_text")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = check_precision(precision, self.device)
        self._cpu_bf16_audio: torch.nn.Module | None = None
        self._model = model.to(self.device).eval()
        self._build_text = build_text
        self._text_lock = threading.Lock()
        self.model_cfg = model_cfg
        self.identity = identity
        self.batch_size = batch_size
        self.fusion = bool(model_cfg["enable_fusion"])

    @classmethod
    def random(cls, name: str, *, fusion: bool, seed: int = 0, device: str | None = None,
               batch_size: int = 16, precision: str = "fp32") -> ClapEncoder:
        """HTSAT-tiny with laion_clap's bundled-BPE ``transformer`` text tower and seeded random weights.

        Built whole: its audio projection is drawn after its text tower, so it needs that tower's draws.
        """
        from proto_index.embed.seeded import seeded_clap_model

        model, model_cfg, state_hash = seeded_clap_model("transformer", fusion=fusion, seed=seed)
        identity = ModelIdentity(name, model_architecture(model), fusion, state_hash, model.joint_embed_shape)
        return cls(model, model_cfg, identity, device=device, batch_size=batch_size, precision=precision)

    @property
    def text_built(self) -> bool:
        """Whether the text tower exists yet (see :meth:`text_model`)."""
        return self._build_text is None

    @property
    def model(self) -> torch.nn.Module:
        """laion_clap's CLAP, whole (its text tower built now if it was not yet)."""
        return self.text_model()

    def text_model(self) -> torch.nn.Module:
        """The model with its text tower, built (once, by ``build_text``) on first use."""
        with self._text_lock:
            if self._build_text is not None:
                self._model = self._build_text(self._model).to(self.device).eval()
                self._build_text = None
        return self._model

    @property
    def dim(self) -> int:
        return self.identity.dim

    def audio_model(self) -> torch.nn.Module:
        """The model audio runs through: :attr:`model`, or for bf16 on the CPU its bfloat16 audio view
        (:func:`cpu_bf16_audio_model`, built on first use)."""
        import torch

        if self.precision == "bf16" and torch.device(self.device).type == "cpu":
            if self._cpu_bf16_audio is None:
                self._cpu_bf16_audio = cpu_bf16_audio_model(self._model)
            return self._cpu_bf16_audio
        return self._model

    def autocast(self):
        """The context the towers run in: ``torch.autocast`` at :attr:`precision`, or nothing for fp32."""
        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)

    @quiet
    def embed_waveforms(self, waveforms: Sequence[np.ndarray], *, batch_size: int | None = None) -> np.ndarray:
        """Embed quantised 48 kHz mono clips of at most 10 s, ``batch_size`` per forward (None: the
        encoder's); ``(n, dim)`` float32, L2-normalised."""
        import torch

        _, data = laion()
        clips = [np.ascontiguousarray(w, dtype=np.float32) for w in waveforms]
        for i, clip in enumerate(clips):
            if clip.ndim != 1 or not 0 < len(clip) <= MAX_SAMPLES:
                raise ValueError(f"waveform {i} has shape {clip.shape}; expected 1 to {MAX_SAMPLES} "
                                 "mono samples (window longer audio first)")
        truncating = "fusion" if self.fusion else "rand_trunc"
        size = self._batch_size(batch_size)
        model = self.audio_model()
        out = []
        with torch.inference_mode(), self.autocast():
            for start in range(0, len(clips), size):
                features = [data.get_audio_features({}, torch.from_numpy(clip), MAX_SAMPLES,
                                                    data_truncating=truncating, data_filling="repeatpad",
                                                    audio_cfg=self.model_cfg["audio_cfg"])
                            for clip in clips[start:start + size]]
                out.append(self._unit(model.get_audio_embedding(features)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    @quiet
    def embed_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Embed texts with laion_clap's tokenizer, ``batch_size`` per forward (None: the
        encoder's); ``(n, dim)`` float32, L2-normalised."""
        import torch
        import torch.nn.functional as F

        clap_module, _ = laion()
        texts = list(texts)
        size = self._batch_size(batch_size)
        model = self.text_model()
        out = []
        with torch.inference_mode(), self.autocast():
            for start in range(0, len(texts), size):
                batch = texts[start:start + size]
                # CLAP.get_text_embedding expects a dict of tensors and fails for this tower.
                tokens = clap_module.tokenize(batch, context_length=TEXT_LENGTH).to(self.device)
                out.append(self._unit(F.normalize(model.encode_text(tokens, device=self.device), dim=-1)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def _batch_size(self, batch_size: int | None) -> int:
        size = self.batch_size if batch_size is None else int(batch_size)
        if size < 1:
            raise ValueError(f"batch_size must be positive, got {size}")
        return size

    def _unit(self, embeddings: torch.Tensor) -> np.ndarray:
        """float32 numpy; below float32, normalised again in float32 (the model's own normalisation
        ran in the lower precision, leaving norms up to ~0.3% off 1)."""
        import torch.nn.functional as F

        embeddings = embeddings.float()
        if self.precision != "fp32":
            embeddings = F.normalize(embeddings, dim=-1)
        return embeddings.cpu().numpy()
