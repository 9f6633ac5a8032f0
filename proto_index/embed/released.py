"""The released LAION-CLAP checkpoints (models ``clap``, ``clap-fusion`` and ``--checkpoint`` files) as an
Encoder over :mod:`proto_index.clap`: no laion_clap, no import stand-ins, no torchlibrosa.

The audio tower is loaded at once; RoBERTa and its tokenizer (roberta-base's byte-level BPE, read
from its ``vocab.json`` and ``merges.txt`` by the ``tokenizers`` library: the ids and masks of
transformers' ``RobertaTokenizer`` without importing transformers) on the first text, so audio-only
commands never build them. A store's identity is the file's SHA-256 and the architecture
string that stores made with laion_clap's build hold, so those stores stay valid.

Thread safety: one encoder may embed clips and texts from several threads at once. Nothing is
changed per call outside the call: the batch size is an argument, warnings filters and the
environment are left alone; the text side is built once under a lock and the tokenizer is called
under one.
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from proto_index.embed.encoder import ModelIdentity
from proto_index.errors import ModelError

if TYPE_CHECKING:
    import torch

    from proto_index.clap.model import ClapModel

TOKENIZER_FILES = ("vocab.json", "merges.txt")
TEXT_LENGTH = 77
"""Tokens per text: the released models were trained on RoBERTa rows padded (or cut) to 77."""
ARCHITECTURE = "HTSAT-tiny+roberta"
"""The identity's architecture string, for fusion and non-fusion files alike (as stores hold it)."""


def check_tokenizer_dir(tokenizer_dir: str | os.PathLike) -> Path:
    """``tokenizer_dir`` as a Path; :class:`ModelError` unless it holds roberta-base's tokenizer files."""
    folder = Path(tokenizer_dir).expanduser()
    missing = [n for n in TOKENIZER_FILES if not (folder / n).is_file()]
    if missing:
        raise ModelError(f"tokenizer folder {folder} lacks {' and '.join(missing)} (roberta-base's files)")
    return folder


def roberta_tokenizer(tokenizer_dir: str | os.PathLike):
    """roberta-base's tokenizer from the two files in ``tokenizer_dir``, as a ``tokenizers.Tokenizer``
    that writes ``<s> … </s>`` rows cut or padded (right, with ``<pad>``) to :data:`TEXT_LENGTH`: the
    ids and attention masks of transformers' ``RobertaTokenizer`` called with
    ``padding="max_length", truncation=True, max_length=77``."""
    folder = check_tokenizer_dir(tokenizer_dir)
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    try:
        vocab, merges = models.BPE.read_file(str(folder / "vocab.json"), str(folder / "merges.txt"))
        tokenizer = Tokenizer(models.BPE(vocab, merges))
    except Exception as e:  # tokenizers raises plain Exceptions for malformed files
        raise ModelError(f"cannot read the RoBERTa tokenizer files in {folder}: {type(e).__name__}: {e}") from None
    specials = ("<s>", "</s>", "<unk>", "<pad>", "<mask>")
    missing = [t for t in ("<s>", "</s>", "<pad>") if t not in vocab]
    if missing:
        raise ModelError(f"the RoBERTa vocabulary in {folder} lacks {', '.join(missing)}")
    # special tokens written in a text are read as such, as transformers' tokenizer reads them
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials if t in vocab])
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]),
                                                            trim_offsets=True, add_prefix_space=False)
    tokenizer.enable_truncation(TEXT_LENGTH)
    tokenizer.enable_padding(pad_id=vocab["<pad>"], pad_token="<pad>", length=TEXT_LENGTH)
    return tokenizer


class CheckpointEncoder:
    """A released CLAP checkpoint (HTSAT-tiny + RoBERTa) behind the
    :class:`~proto_index.embed.encoder.Encoder` interface. Build one with :meth:`from_checkpoint`.

    ``batch_size``: clips or texts per forward unless a call gives its own. ``precision``: ``fp32``,
    or ``bf16``: both towers under ``torch.autocast`` in bfloat16, except that on the CPU the audio
    tower is a bfloat16 copy (made once; measured 25 clips/s against autocast's 18 on 2 cores, as
    oneDNN's bfloat16 kernels then need no per-call casts of the weights). Features and the final
    normalisation stay float32; the model's own weights, and so the identity, are unchanged.
    """

    def __init__(self, model: ClapModel, identity: ModelIdentity, tokenizer_dir: str | os.PathLike, *,
                 batch_size: int = 16, precision: str = "fp32"):
        from proto_index.embed.clap import check_precision

        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.identity = identity
        self.device = str(model.device)
        self.precision = check_precision(precision, self.device)
        self.batch_size = batch_size
        self._tokenizer_dir = check_tokenizer_dir(tokenizer_dir)
        self._tokenizer = None
        self._tokenizer_lock = threading.Lock()
        self._bf16_audio: tuple[torch.nn.Module, torch.nn.Module] | None = None
        self._bf16_lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, name: str, checkpoint: str | os.PathLike, tokenizer_dir: str | os.PathLike, *,
                        fusion: bool, device: str | None = None, batch_size: int = 16,
                        precision: str = "fp32") -> CheckpointEncoder:
        """The model in ``checkpoint`` (laion_clap's released layout, or any layout
        :func:`proto_index.clap.checkpoint.load` reads), which must be HTSAT-tiny + RoBERTa with or
        without ``fusion``. Every weight's name and shape is checked now; the text tower is filled
        from the (memory-mapped) file on the first text."""
        import torch

        from proto_index.clap import config
        from proto_index.clap.checkpoint import load
        from proto_index.embed.checkpoint import checkpoint_sha256

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # sha256=None: the file is hashed once for its identity below (remembered by its stat), not at every load
        model = load(checkpoint, config("tiny", fusion=fusion, text="roberta"), sha256=None, device=device, text=False)
        identity = ModelIdentity(name, ARCHITECTURE, fusion, checkpoint_sha256(checkpoint), model.cfg.joint_dim)
        return cls(model, identity, tokenizer_dir, batch_size=batch_size, precision=precision)

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

    def _audio_towers(self) -> tuple[torch.nn.Module, torch.nn.Module] | None:
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

    def tokenizer(self):
        """roberta-base's tokenizer, read from the tokenizer folder on first use."""
        with self._tokenizer_lock:
            if self._tokenizer is None:
                self._tokenizer = roberta_tokenizer(self._tokenizer_dir)
            return self._tokenizer

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask ``(n, 77)`` of ``texts``, as roberta-base's tokenizer pads them."""
        import torch

        tokenizer = self.tokenizer()
        with self._tokenizer_lock:
            rows = tokenizer.encode_batch(list(texts))
        ids = torch.tensor([r.ids for r in rows], dtype=torch.long).reshape(len(rows), TEXT_LENGTH)
        mask = torch.tensor([r.attention_mask for r in rows], dtype=torch.long).reshape(len(rows), TEXT_LENGTH)
        return ids, mask

    def embed_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Embed texts, ``batch_size`` per forward (None: the encoder's); ``(n, dim)`` float32, L2-normalised."""
        out = []
        for batch in self._batches(list(texts), batch_size):
            ids, mask = self.tokenize(batch)
            with self._autocast():
                out.append(self._unit(self.model.embed_text(ids, mask), normalised=True))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)
