"""The inputs of the recorded laion_clap reference (scripts/record_clap_reference.py, tests/clap/test_clap_reference.py)."""
from __future__ import annotations

import numpy as np
import torch

SEED = 3
"""The seed of the weights the reference was recorded with (proto_index.clap.seeded)."""
CONFIGS = {
    "tiny": ("tiny", False, "transformer"),
    "tiny-fusion": ("tiny", True, "transformer"),
    "base": ("base", False, "transformer"),
    "tiny-fusion-roberta": ("tiny", True, "roberta"),
}
"""name -> (HTSAT size, fusion, text tower): every architecture the project loads."""
LENGTHS = (480_000, 72_000, 4_801, 1_000)  # 10 s, 1.5 s, 0.1 s, 21 ms at 48 kHz


def clips() -> list[np.ndarray]:
    """Chirps with noise: the same float32 samples wherever numpy's PCG64 is numpy's."""
    rng = np.random.default_rng(7)
    out = []
    for i, n in enumerate(LENGTHS):
        t = np.arange(n) / 48_000
        out.append((0.5 * np.sin(2 * np.pi * (200 + 300 * i) * t * (1 + t)) + rng.normal(0, 0.1, n)).astype(np.float32))
    return out


def transformer_tokens() -> tuple[torch.Tensor, None]:
    """Token rows for the ``transformer`` tower: start, ids, end (the row's highest id), zero padding."""
    g = torch.Generator().manual_seed(5)
    ids = torch.zeros((4, 77), dtype=torch.long)
    for i, used in enumerate((2, 9, 40, 77)):
        ids[i, 0], ids[i, used - 1] = 49406, 49407
        ids[i, 1:used - 1] = torch.randint(1, 49400, (used - 2,), generator=g)
    return ids, None


def roberta_tokens() -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows as roberta-base's tokenizer pads them: <s> … </s> then <pad> (1), with a mask."""
    g = torch.Generator().manual_seed(3)
    ids = torch.full((4, 77), 1, dtype=torch.long)
    mask = torch.zeros((4, 77), dtype=torch.long)
    for i, used in enumerate((3, 12, 50, 77)):
        ids[i, 0], ids[i, used - 1] = 0, 2
        ids[i, 1:used - 1] = torch.randint(4, 50_000, (used - 2,), generator=g)
        mask[i, :used] = 1
    return ids, mask
