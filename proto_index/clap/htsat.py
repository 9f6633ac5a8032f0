"""HTSAT, CLAP's audio tower, for inference: a Swin transformer over a log-mel spectrogram folded
into a square "image".

A ``(n, channels, frames, 64)`` log-mel input is batch-normalised per mel band, stretched (bicubic)
to 1024 frames, folded into 256x256 (four 256-frame strips stacked along the frequency axis), cut
into 4x4 patches and run through four stages of windowed self-attention (8x8 windows, every second
block shifted by 4; a patch merging halves the grid and doubles the width between stages). The
pooled output is the mean of the final-normed tokens, before CLAP's projection.

Feature fusion (``aff_2d``): channel 0 is the global view of a clip; channels 1-3 are local crops of
a clip longer than 10 s, which an attentional feature-fusion block mixes into its patch embeddings
where ``is_longer`` marks it.

Parameter names and shapes are those of transformers' ``ClapAudioModel`` (``audio_encoder.…``), so
one state dict loads into either; the shifted-window masks are computed per call, not kept as
buffers (a model built on the ``meta`` device and loaded with ``to_empty`` would hold garbage).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from proto_index.clap.config import AudioConfig

PATCH = 4
SHIFT_MASK = -100.0
"""Added to the scores between positions that a cyclic shift brought into one window from apart."""


class Pooled(NamedTuple):
    """A tower's output, under the attribute name callers of transformers' towers read."""

    pooler_output: torch.Tensor


def holder(**children: nn.Module) -> Any:
    """A bare module holding ``children`` under the given names (for state-dict names such as
    ``intermediate.dense``); typed Any, as its children are reached by names no type declares."""
    module = nn.Module()
    for name, child in children.items():
        module.add_module(name, child)
    return module


def embedding(count: int, width: int) -> nn.Embedding:
    """An ``nn.Embedding`` whose table is left uninitialised (every build loads its weights next):
    nn.Embedding's own ``normal_`` on the ``meta`` device imports torch._dynamo and sympy, ~1.5-2 s of
    a process's first model build."""
    return nn.Embedding.from_pretrained(torch.empty(count, width), freeze=False)


def relative_position_index(window: int) -> torch.Tensor:
    """Swin's ``(window², window²)`` table: for each pair of positions in a window, the row of the
    relative-position bias table for their offset (both axes shifted to start at 0). Always on the CPU:
    under a ``meta`` device context these small integer ops cost ~1.5 s of torch's meta kernels on a
    process's first model build, and a meta build's buffer is recomputed at load anyway."""
    rows, cols = torch.meshgrid(torch.arange(window, device="cpu"), torch.arange(window, device="cpu"),
                                indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()])  # (2, window²)
    offset = (coords[:, :, None] - coords[:, None, :]) + (window - 1)
    return offset[0] * (2 * window - 1) + offset[1]


def windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(n, side, side, c)`` -> ``(n, windows, window², c)``, windows in row-major order."""
    n, side, _, c = x.shape
    k = side // window
    return x.view(n, k, window, k, window, c).transpose(2, 3).reshape(n, k * k, window * window, c)


def unwindow(x: torch.Tensor, side: int) -> torch.Tensor:
    """The inverse of :func:`windows`: ``(n, windows, window², c)`` -> ``(n, side, side, c)``."""
    n, count, size, c = x.shape
    window, k = round(size ** 0.5), round(count ** 0.5)
    return x.view(n, k, k, window, window, c).transpose(2, 3).reshape(n, side, side, c)


def shift_mask(side: int, window: int, shift: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(windows, 1, window², window²)``: 0 between positions of the same region of the shifted grid,
    :data:`SHIFT_MASK` between positions that the roll wrapped around from the far edge."""
    index = torch.arange(side, device=device)
    region = (index >= side - window).long() + (index >= side - shift).long()  # 0, 1, 2 along one axis
    labels = (region[:, None] * 3 + region[None, :])[None, :, :, None]
    labels = windows(labels, window)[0, :, :, 0]  # (windows, window²)
    differ = labels[:, :, None] != labels[:, None, :]
    return torch.zeros(differ.shape, device=device, dtype=dtype).masked_fill(differ, SHIFT_MASK)[:, None]


class WindowAttention(nn.Module):
    """Multi-head self-attention within each window, with a learnt bias per relative offset."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        self.heads = heads
        scores = holder(query=nn.Linear(dim, dim), key=nn.Linear(dim, dim), value=nn.Linear(dim, dim))
        scores.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        scores.register_buffer("relative_position_index", relative_position_index(window))
        self.add_module("self", scores)
        self.output = holder(dense=nn.Linear(dim, dim))

    def bias(self) -> torch.Tensor:
        """``(heads, window², window²)``: the learnt bias of each pair of positions in a window."""
        scores = getattr(self, "self")
        index = scores.relative_position_index
        return scores.relative_position_bias_table[index.reshape(-1)].view(*index.shape, self.heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x``: ``(n, windows, window², c)``; ``mask``: None or ``(windows, 1, window², window²)``."""
        n, count, size, c = x.shape
        scores = getattr(self, "self")

        def heads(linear: nn.Linear) -> torch.Tensor:  # (n, windows * heads, window², c / heads)
            per_head = linear(x).view(n, count, size, self.heads, -1).transpose(2, 3)
            return per_head.reshape(n, count * self.heads, size, -1)

        # windows and heads share one axis, so the (windows, heads) bias broadcasts over the batch
        bias = self.bias().unsqueeze(0)  # (1, heads, window², window²)
        bias = bias + mask if mask is not None else bias.expand(count, -1, -1, -1)
        bias = bias.reshape(1, count * self.heads, size, size)
        out = F.scaled_dot_product_attention(heads(scores.query), heads(scores.key), heads(scores.value),
                                             attn_mask=bias)
        out = out.view(n, count, self.heads, size, -1).transpose(2, 3).reshape(n, count, size, c)
        return self.output.dense(out)


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention, then a pre-norm GELU MLP, both residual."""

    def __init__(self, dim: int, heads: int, window: int, mlp_ratio: float, eps: float):
        super().__init__()
        self.window = window
        hidden = int(dim * mlp_ratio)
        self.layernorm_before = nn.LayerNorm(dim, eps=eps)
        self.attention = WindowAttention(dim, heads, window)
        self.layernorm_after = nn.LayerNorm(dim, eps=eps)
        self.intermediate = holder(dense=nn.Linear(dim, hidden))
        self.output = holder(dense=nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, side: int, shift: int, mask: torch.Tensor | None) -> torch.Tensor:
        n, _, c = x.shape
        grid = self.layernorm_before(x).view(n, side, side, c)
        if shift:
            grid = torch.roll(grid, shifts=(-shift, -shift), dims=(1, 2))
        grid = unwindow(self.attention(windows(grid, self.window), mask), side)
        if shift:
            grid = torch.roll(grid, shifts=(shift, shift), dims=(1, 2))
        x = x + grid.reshape(n, side * side, c)
        return x + self.output.dense(F.gelu(self.intermediate.dense(self.layernorm_after(x))))


class PatchMerging(nn.Module):
    """Each 2x2 group of tokens concatenated (4c), normed and reduced to 2c: half the side, twice the width."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=eps)

    def forward(self, x: torch.Tensor, side: int) -> torch.Tensor:
        n, _, c = x.shape
        grid = x.view(n, side, side, c)
        # the order of the four is the layout of the released weights: (0,0), (1,0), (0,1), (1,1)
        merged = torch.cat([grid[:, r::2, q::2] for q in (0, 1) for r in (0, 1)], dim=-1)
        return self.reduction(self.norm(merged.view(n, -1, 4 * c)))


class Stage(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, cfg: AudioConfig, side: int, last: bool):
        super().__init__()
        window = cfg.window
        if side < window or side % window:
            raise ValueError(f"a {side}x{side} grid does not split into {window}x{window} windows")
        # a grid no larger than a window is one window: nothing to shift
        self.shift = cfg.window // 2 if side > cfg.window else 0
        self.side, self.window = side, window
        self.blocks = nn.ModuleList(SwinBlock(dim, heads, window, cfg.mlp_ratio, 1e-5) for _ in range(depth))
        self.downsample = None if last else PatchMerging(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = None
        for i, block in enumerate(self.blocks):
            shift = self.shift if i % 2 else 0
            if shift and mask is None:
                mask = shift_mask(self.side, self.window, shift, x.device, x.dtype)
            x = block(x, self.side, shift, mask if shift else None)
        return x if self.downsample is None else self.downsample(x, self.side)


class FusionBlock(nn.Module):
    """Attentional feature fusion (2-D): a sigmoid gate from a local (per-position) and a global
    (pooled) bottleneck mixes the global patch embeddings with those of the local crops."""

    def __init__(self, channels: int, ratio: int = 4):
        super().__init__()
        inner = channels // ratio

        def bottleneck(*head: nn.Module) -> nn.Sequential:
            return nn.Sequential(*head, nn.Conv2d(channels, inner, 1), nn.BatchNorm2d(inner), nn.ReLU(),
                                 nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))

        self.local_att = bottleneck()
        self.global_att = bottleneck(nn.AdaptiveAvgPool2d(1))

    def forward(self, global_view: torch.Tensor, local_view: torch.Tensor) -> torch.Tensor:
        both = global_view + local_view
        gate = torch.sigmoid(self.local_att(both) + self.global_att(both))
        return 2 * global_view * gate + 2 * local_view * (1 - gate)


class PatchEmbed(nn.Module):
    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.fusion = cfg.fusion
        self.proj = nn.Conv2d(1, cfg.width, PATCH, stride=PATCH)
        self.norm = nn.LayerNorm(cfg.width)
        if cfg.fusion:
            self.fusion_model = FusionBlock(cfg.width)
            # each local crop is a third of the width: wider patches keep the token grid's columns
            self.mel_conv2d = nn.Conv2d(1, cfg.width, (PATCH, 3 * PATCH), stride=(PATCH, 3 * PATCH))

    def forward(self, image: torch.Tensor, longer: torch.Tensor | None) -> torch.Tensor:
        """``image``: ``(n, channels, side, side)``; ``longer``: indices of the clips whose local crops
        (channels 1-3) are fused in (fusion models only). Returns ``(n, tokens, width)``."""
        x = self.proj(image[:, :1])
        if self.fusion and longer is not None and longer.numel():
            if image.shape[1] < 4:
                raise ValueError(f"clips marked longer need 4 channels (global + 3 local crops), got {image.shape[1]}")
            crops = image[longer, 1:]
            m, k, side, _ = crops.shape
            local = self.mel_conv2d(crops.reshape(m * k, 1, side, side))
            local = local.view(m, k, *local.shape[1:]).permute(0, 2, 3, 1, 4).flatten(3)  # crops side by side
            local = F.pad(local, (0, x.shape[-1] - local.shape[-1]))
            x = x.index_put((longer,), self.fusion_model(x[longer], local))
        return self.norm(x.flatten(2).transpose(1, 2))


class HTSAT(nn.Module):
    """Log-mel ``(n, channels, frames, mel)`` -> pooled ``(n, out_dim)`` (see the module's description)."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.cfg = cfg
        self.batch_norm = nn.BatchNorm2d(cfg.mel_bins)
        self.patch_embed = PatchEmbed(cfg)
        side = cfg.spec_size // PATCH
        stages = len(cfg.depths)
        self.layers = nn.ModuleList(
            Stage(cfg.width * 2 ** i, depth, heads, cfg, side // 2 ** i, last=i == stages - 1)
            for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.heads)))
        self.norm = nn.LayerNorm(cfg.out_dim)

    def image(self, features: torch.Tensor) -> torch.Tensor:
        """Batch-normed features folded into ``(n, channels, spec, spec)``: ``freq_ratio`` strips of
        ``spec`` frames stacked along the frequency axis."""
        n, channels, frames, mel = features.shape
        spec, ratio = self.cfg.spec_size, self.cfg.freq_ratio
        if frames > spec * ratio or mel != self.cfg.mel_bins:
            raise ValueError(f"expected at most {spec * ratio} frames of {self.cfg.mel_bins} mel bands, "
                             f"got {frames} of {mel}")
        x = self.batch_norm(features.transpose(1, 3)).transpose(1, 3)
        if frames < spec * ratio:
            x = F.interpolate(x, (spec * ratio, mel), mode="bicubic", align_corners=True)
        return x.reshape(n, channels * ratio, spec, mel).transpose(2, 3).reshape(n, channels, spec, spec)

    def forward(self, features: torch.Tensor, is_longer: torch.Tensor | None = None) -> torch.Tensor:
        longer = None
        if self.cfg.fusion and is_longer is not None:
            longer = torch.nonzero(is_longer.reshape(-1).to(features.device)).flatten()
        x = self.patch_embed(self.image(features), longer)
        for stage in self.layers:
            x = stage(x)
        return self.norm(x).mean(dim=1)


class AudioModel(nn.Module):
    """HTSAT under the name ``audio_encoder``, called as transformers' ``ClapAudioModel`` is."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.audio_encoder = HTSAT(cfg)

    def forward(self, input_features: torch.Tensor, is_longer: torch.Tensor | None = None) -> Pooled:
        """``is_longer``: ``(n, 1)`` booleans, fusion models only (None: no clip is longer)."""
        return Pooled(self.audio_encoder(input_features, is_longer))
