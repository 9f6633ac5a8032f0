"""laion_clap's ``transformer`` text tower: CLIP's causal text transformer (pre-norm, GELU MLPs),
which transformers does not have. The sentence is read at its end-of-text token (the highest id in
the row, as in CLIP). Parameter names are this project's own; :mod:`proto_index.clap.checkpoint`
maps laion_clap's onto them.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from proto_index.clap.config import TextConfig
from proto_index.clap.htsat import embedding


class _Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_attention = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm_mlp = nn.LayerNorm(width)
        self.fc_in = nn.Linear(width, 4 * width)
        self.fc_out = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        q, k, v = self.qkv(self.norm_attention(x)).view(n, length, 3, self.heads, width // self.heads).unbind(2)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  is_causal=True)
        x = x + self.out(attended.transpose(1, 2).reshape(n, length, width))
        return x + self.fc_out(F.gelu(self.fc_in(self.norm_mlp(x))))


class TextTransformer(nn.Module):
    """Token ids ``(n, context_length)`` -> ``(n, width)``: the final-normed state at each row's
    end-of-text token."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.token_embedding = embedding(cfg.vocab_size, cfg.width)
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.context_length, cfg.width))
        self.blocks = nn.ModuleList(_Block(cfg.width, cfg.heads) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.width)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.ndim != 2 or input_ids.shape[1] > self.cfg.context_length:
            raise ValueError(f"expected (n, <= {self.cfg.context_length}) token ids, got {tuple(input_ids.shape)}")
        x = self.token_embedding(input_ids) + self.positional_embedding[: input_ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        x = self.final_norm(x)
        return x[torch.arange(x.shape[0], device=x.device), input_ids.argmax(dim=-1)]
