"""RoBERTa (roberta-base's shape), CLAP's text tower in the released checkpoints, for inference:
post-norm transformer layers with GELU MLPs, then BERT's pooler (tanh of a linear map of the first
token's state).

Attention is computed as softmax(q·kᵀ/√d + mask)·v in plain operations: ``scaled_dot_product_attention``
differs from that (and from transformers' tower) by up to 3.5e-6 in the pooled output, and over 77
tokens attention is a small part of the time.

Position ids count the non-padding tokens of a row from ``pad_id + 1`` on (padding keeps ``pad_id``),
as RoBERTa computes them from the ids. Parameter names and shapes are those of transformers'
``ClapTextModel``, so one state dict loads into either; the two id buffers it saves
(``position_ids``, ``token_type_ids``) are kept under their names, though only the first row of the
token-type table is ever read.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from proto_index.clap.config import TextConfig
from proto_index.clap.htsat import Pooled, embedding, holder


class Layer(nn.Module):
    """Self-attention then a GELU MLP, each added to its input and then layer-normed (post-norm)."""

    def __init__(self, width: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.attention = holder(
            self=holder(query=nn.Linear(width, width), key=nn.Linear(width, width), value=nn.Linear(width, width)),
            output=holder(dense=nn.Linear(width, width), LayerNorm=nn.LayerNorm(width, eps=eps)))
        self.intermediate = holder(dense=nn.Linear(width, 4 * width))
        self.output = holder(dense=nn.Linear(4 * width, width), LayerNorm=nn.LayerNorm(width, eps=eps))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: ``(n, length, width)``; ``mask``: ``(n, 1, 1, length)``, added to the scores (0 where a
        key may be read, the dtype's lowest value where not)."""
        n, length, width = x.shape
        qkv = getattr(self.attention, "self")

        def heads(linear: nn.Linear) -> torch.Tensor:
            return linear(x).view(n, length, self.heads, -1).transpose(1, 2)

        q, k, v = heads(qkv.query), heads(qkv.key), heads(qkv.value)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5) + mask
        attended = torch.matmul(torch.softmax(scores, dim=-1), v)
        out = self.attention.output
        x = out.LayerNorm(x + out.dense(attended.transpose(1, 2).reshape(n, length, width)))
        return self.output.LayerNorm(x + self.output.dense(F.gelu(self.intermediate.dense(x))))


class RobertaText(nn.Module):
    """Token ids ``(n, length)`` and attention mask -> pooled ``(n, width)``."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = holder(word_embeddings=embedding(cfg.vocab_size, cfg.width),
                                 token_type_embeddings=embedding(1, cfg.width),
                                 LayerNorm=nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps),
                                 position_embeddings=embedding(cfg.max_positions, cfg.width))
        self.embeddings.register_buffer("position_ids", torch.arange(cfg.max_positions)[None])
        self.embeddings.register_buffer("token_type_ids", torch.zeros(1, cfg.max_positions, dtype=torch.long))
        self.encoder = holder(layer=nn.ModuleList(Layer(cfg.width, cfg.heads, cfg.layer_norm_eps)
                                                  for _ in range(cfg.layers)))
        self.pooler = holder(dense=nn.Linear(cfg.width, cfg.width))

    def positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Each token's position: the count of non-padding tokens up to it, after ``pad_id``; padding
        keeps ``pad_id``."""
        real = input_ids.ne(self.cfg.pad_id).long()
        return real.cumsum(dim=1) * real + self.cfg.pad_id

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Pooled:
        if input_ids.ndim != 2 or input_ids.shape[1] > self.cfg.max_positions - self.cfg.pad_id - 1:
            raise ValueError(f"expected (n, <= {self.cfg.max_positions - self.cfg.pad_id - 1}) token ids, "
                             f"got {tuple(input_ids.shape)}")
        emb = self.embeddings
        x = emb.word_embeddings(input_ids) + emb.token_type_embeddings.weight[0] \
            + emb.position_embeddings(self.positions(input_ids))
        x = emb.LayerNorm(x)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        blocked = ~attention_mask.to(device=x.device).bool()[:, None, None, :]
        mask = torch.zeros(blocked.shape, dtype=x.dtype, device=x.device).masked_fill(blocked, torch.finfo(x.dtype).min)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return Pooled(torch.tanh(self.pooler.dense(x[:, 0])))
