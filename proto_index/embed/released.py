"""The released LAION-CLAP checkpoints (models ``clap``, ``clap-fusion`` and ``--checkpoint`` files) as a
:class:`~proto_index.embed.clap.ClapEncoder` over :mod:`proto_index.clap`.

The audio tower is loaded at once; RoBERTa and its tokenizer (roberta-base's byte-level BPE, read
from its ``vocab.json`` and ``merges.txt`` by the ``tokenizers`` library: the ids and masks of
transformers' ``RobertaTokenizer`` without importing transformers) on the first text, so audio-only
commands never build them. A store's identity is the file's SHA-256 and the architecture
string that stores made with laion_clap's build hold, so those stores stay valid.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from proto_index.embed.clap import ClapEncoder
from proto_index.embed.encoder import ModelIdentity
from proto_index.errors import ModelError

if TYPE_CHECKING:
    import torch

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


def roberta_tokens(tokenizer_dir: str | os.PathLike):
    """A :data:`~proto_index.embed.clap.Tokenizer` over roberta-base's tokenizer in ``tokenizer_dir``:
    rows padded (or cut) to 77 as the released models were trained on."""
    tokenizer = roberta_tokenizer(tokenizer_dir)

    def tokenize(texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        rows = tokenizer.encode_batch(list(texts))
        ids = torch.tensor([r.ids for r in rows], dtype=torch.long).reshape(len(rows), TEXT_LENGTH)
        mask = torch.tensor([r.attention_mask for r in rows], dtype=torch.long).reshape(len(rows), TEXT_LENGTH)
        return ids, mask

    return tokenize


def checkpoint_encoder(name: str, checkpoint: str | os.PathLike, tokenizer_dir: str | os.PathLike, *,
                       fusion: bool, device: str | None = None, batch_size: int = 16,
                       precision: str = "fp32") -> ClapEncoder:
    """The model in ``checkpoint`` (laion_clap's released layout, or any layout
    :func:`proto_index.clap.checkpoint.load` reads), which must be HTSAT-tiny + RoBERTa with or
    without ``fusion``. Every weight's name and shape is checked now; the text tower is filled
    from the (memory-mapped) file on the first text, the tokenizer read then."""
    import torch

    from proto_index.clap import config
    from proto_index.clap.checkpoint import load
    from proto_index.embed.checkpoint import checkpoint_sha256

    folder = check_tokenizer_dir(tokenizer_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # sha256=None: the file is hashed once for its identity below (remembered by its stat), not at every load
    model = load(checkpoint, config("tiny", fusion=fusion, text="roberta"), sha256=None, device=device, text=False)
    identity = ModelIdentity(name, ARCHITECTURE, fusion, checkpoint_sha256(checkpoint), model.cfg.joint_dim)
    return ClapEncoder(model, identity, lambda: roberta_tokens(folder), batch_size=batch_size, precision=precision)
