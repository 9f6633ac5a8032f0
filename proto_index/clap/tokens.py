"""The byte tokenizer of the seeded ``transformer`` text tower (clap-tiny-random, clap-tiny-demo).

A seeded model has no trained vocabulary to honour, so its text is read as UTF-8 bytes: nothing to
download or ship, any language and any character accepted, the same ids everywhere. A row is
``[start, byte + 1 ..., end, 0 ...]`` over the tower's 49,408-id table: the end id is the highest
in the row, where CLIP's tower reads the sentence, and 0 pads. Text is lower-cased and its runs of
white space collapsed first, as CLIP's tokenizer does.
"""
from __future__ import annotations

from typing import Sequence

import torch

from proto_index.clap.config import TextConfig


class ByteTokenizer:
    """``texts -> (ids, mask)``, both ``(n, context_length)`` int64 (the mask marks real tokens)."""

    def __init__(self, cfg: TextConfig):
        if cfg.vocab_size < 259:
            raise ValueError(f"a byte tokenizer needs at least 259 ids, the tower has {cfg.vocab_size}")
        self.length = cfg.context_length
        self.start = cfg.vocab_size - 2
        self.end = cfg.vocab_size - 1

    def ids(self, text: str) -> list[int]:
        """One text's ids, cut to the context length (its end token kept)."""
        data = " ".join(str(text).lower().split()).encode("utf-8", "surrogatepass")
        return [self.start, *(b + 1 for b in data[: self.length - 2]), self.end]

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(texts), self.length, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, text in enumerate(texts):
            tokens = self.ids(text)
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        return ids, mask
