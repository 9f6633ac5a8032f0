"""The CLAP model: HTSAT (:mod:`proto_index.clap.htsat`), RoBERTa (:mod:`proto_index.clap.roberta`)
or the ``transformer`` text tower, and the features from this package, one state-dict layout
(Hugging Face's ``ClapModel`` names, so its checkpoints and laion_clap's mapped ones load alike).

The towers are this package's own, not transformers' (whose import costs seconds at every start):
with the same weights they give transformers' ``ClapAudioModel``/``ClapTextModel`` pooled outputs to
within 1.3e-6 and 0 (float32; tests/clap/test_clap_towers.py), and so laion_clap's embeddings.

Thread safety: a loaded :class:`ClapModel` holds no per-call state; :meth:`ClapModel.embed_audio` and
:meth:`ClapModel.embed_text` may run in several threads at once (a text tower left for later is built
once, under a lock). Nothing here patches another package, the environment, warning filters or any
global.
"""
from __future__ import annotations

import threading
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from proto_index.clap.config import ClapConfig
from proto_index.clap.features import Features
from proto_index.clap.htsat import AudioModel
from proto_index.clap.roberta import RobertaText
from proto_index.clap.text_transformer import TextTransformer


class Projection(nn.Module):
    """Two linear layers with a ReLU between (parameter names as transformers' ClapProjectionLayer)."""

    def __init__(self, width: int, joint: int):
        super().__init__()
        self.linear1 = nn.Linear(width, joint)
        self.linear2 = nn.Linear(joint, joint)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.relu(self.linear1(x)))


class ClapModel(nn.Module):
    """A CLAP model for inference. Build it with :func:`proto_index.clap.checkpoint.load` (weights
    from a file) or directly (random weights, for a caller that loads a state dict next)."""

    TEXT_PARTS = ("text_model", "text_projection")
    """The submodules of the text side, which a model loaded with ``text=False`` builds on first use."""

    def __init__(self, cfg: ClapConfig):
        super().__init__()
        self.cfg = cfg
        self.audio_model = AudioModel(cfg.audio)
        self.audio_projection = Projection(cfg.audio.out_dim, cfg.joint_dim)
        self.text_model: RobertaText | TextTransformer
        if cfg.text.kind == "roberta":
            self.text_model = RobertaText(cfg.text)
        else:
            self.text_model = TextTransformer(cfg.text)
        self.text_projection = Projection(cfg.text.width, cfg.joint_dim)
        self.logit_scale_a = nn.Parameter(torch.zeros(()))
        self.logit_scale_t = nn.Parameter(torch.zeros(()))
        self.features = Features(cfg.audio)
        self._text_state: Union[Mapping[str, torch.Tensor], Callable[[], Mapping[str, torch.Tensor]], None] = None
        self._text_lock = threading.Lock()
        self.eval()

    def text_later(self, state: Mapping[str, torch.Tensor] | Callable[[], Mapping[str, torch.Tensor]]) -> None:
        """Keep the weights of the text side, left on the ``meta`` device, for :meth:`build_text`
        (``state``: its entries by state-dict name, as :func:`~proto_index.clap.checkpoint.fit` returns
        them, empty when the text side is loaded already; or a function that makes them on first use)."""
        self._text_state = state if callable(state) else (dict(state) or None)

    @property
    def text_built(self) -> bool:
        """Whether the text tower holds its weights (False while left for later)."""
        return self._text_state is None

    def build_text(self) -> None:
        """Move the text side off the ``meta`` device and load its kept weights (once; thread-safe)."""
        with self._text_lock:
            if self._text_state is None:
                return
            state = self._text_state() if callable(self._text_state) else self._text_state
            for name in self.TEXT_PARTS:
                getattr(self, name).to_empty(device=self.device)
            self.load_state_dict(state, strict=False)  # names and shapes checked at load
            self._text_state = None

    @property
    def device(self) -> torch.device:
        return self.logit_scale_a.device

    def audio_input(self, waveforms: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """The HTSAT input for mono clips of 1 to ``clip_samples`` samples, computed on the model's
        device: one host-to-device copy of the batch, then repeat-padding, STFT and mel there."""
        limit = self.cfg.audio.clip_samples
        clips = [torch.as_tensor(w, dtype=torch.float32) for w in waveforms]
        for i, clip in enumerate(clips):
            if clip.ndim != 1 or not 0 < clip.shape[0] <= limit:
                raise ValueError(f"waveform {i} has shape {tuple(clip.shape)}; expected 1 to {limit} mono samples "
                                 "(window longer audio first)")
        if not clips:
            raise ValueError("no waveforms")
        lengths = [c.shape[0] for c in clips]
        device = self.device
        if all(c.device == device for c in clips):  # already where the model runs (or both on the CPU)
            return self.features(torch.nn.utils.rnn.pad_sequence(clips, batch_first=True), lengths)
        batch = torch.nn.utils.rnn.pad_sequence([c.cpu() for c in clips], batch_first=True)
        if device.type == "cuda":
            batch = batch.pin_memory()
        return self.features(batch.to(device, non_blocking=True), lengths)

    def audio_embeddings(self, features: torch.Tensor, towers: tuple[nn.Module, ...] | None = None) -> torch.Tensor:
        """Unnormalised projected embeddings of HTSAT inputs (see :meth:`audio_input`); ``towers``: an
        (audio model, projection) pair to run instead of this model's own, e.g. a bfloat16 copy (the
        features are cast to its dtype)."""
        audio_model, projection = towers or (self.audio_model, self.audio_projection)
        features = features.to(next(audio_model.parameters()).dtype)
        kwargs = {}
        if self.cfg.audio.fusion:
            # Clips of at most 10 s: no clip is "longer", so HTSAT fuses no local crops and reads only
            # the first (global) channel; batch norm and resizing of the other three would be wasted.
            features = features[:, :1]
            kwargs["is_longer"] = torch.zeros(features.shape[0], 1, dtype=torch.bool, device=features.device)
        pooled = audio_model(input_features=features, **kwargs).pooler_output
        return projection(pooled)

    def embed_audio(self, waveforms: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """``(n, 512)`` unit-length embeddings of 48 kHz mono clips of at most 10 s, on the model's device."""
        if len(waveforms) == 0:
            return torch.zeros(0, self.cfg.joint_dim, device=self.device)
        with torch.inference_mode():
            return F.normalize(self.audio_embeddings(self.audio_input(waveforms)), dim=-1)

    def embed_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(n, 512)`` unit-length embeddings of token ids ``(n, length)``.

        RoBERTa: ids from roberta-base's tokenizer, ``attention_mask`` marking the real tokens (the
        released models were trained on rows padded to 77). ``transformer``: CLIP BPE ids padded with
        zeros to the context length (no mask: the tower is causal and reads the end-of-text token).
        """
        self.build_text()
        with torch.inference_mode():
            ids = torch.as_tensor(input_ids).to(self.device)
            if ids.shape[0] == 0:
                return torch.zeros(0, self.cfg.joint_dim, device=self.device)
            if self.cfg.text.kind == "roberta":
                mask = torch.ones_like(ids) if attention_mask is None else torch.as_tensor(attention_mask).to(self.device)
                pooled = self.text_model(input_ids=ids, attention_mask=mask).pooler_output
            else:
                pooled = self.text_model(ids)
            return F.normalize(self.text_projection(pooled), dim=-1)
