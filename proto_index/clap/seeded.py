"""CLAP models with seeded random weights (clap-tiny-random, clap-tiny-demo's towers, test models).

Each weight is drawn from a generator of its own, seeded by a hash of the model seed and the
weight's name, so a weight does not depend on which other weights were drawn before it: a model
may draw its audio side now and its text side later (or never) and get the same numbers, from any
thread, without touching torch's global random state. The distributions follow the networks'
usual initialisation: linear layers normal(0, 0.02) (HTSAT, RoBERTa), CLIP's scheme for the
``transformer`` text tower, torch's uniform default for convolutions and projection heads, norms at
one and zero, batch-norm statistics at zero mean and unit variance.
"""
from __future__ import annotations

import hashlib
import math
from typing import Callable, Mapping

import torch

from proto_index.clap.checkpoint import DERIVED, derived_value
from proto_index.clap.config import ClapConfig
from proto_index.clap.model import ClapModel

SCHEME = "proto-index seeded v1"
"""Names the drawing rules: a change to them must change this string (and so every seeded identity)."""
LOGIT_SCALE = math.log(1 / 0.07)


def generator(seed: int, name: str) -> torch.Generator:
    """The generator of weight ``name`` in the model drawn from ``seed``."""
    digest = hashlib.sha256(f"{SCHEME}|{seed}|{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _uniform(shape: torch.Size, fan_in: int, g: torch.Generator) -> torch.Tensor:
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return torch.rand(shape, generator=g).mul_(2).sub_(1).mul_(bound)


def _normal(shape: torch.Size, std: float, g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g).mul_(std)


def _text_std(name: str, cfg: ClapConfig) -> float:
    """CLIP's initialisation of the ``transformer`` text tower, by weight."""
    width, layers = cfg.text.width, cfg.text.layers
    attention_std = width ** -0.5
    residual_std = attention_std * (2 * layers) ** -0.5
    if name.endswith("token_embedding.weight"):
        return 0.02
    if name.endswith("positional_embedding"):
        return 0.01
    if name.endswith(".qkv.weight"):
        return attention_std
    if name.endswith(".fc_in.weight"):
        return (2 * width) ** -0.5
    return residual_std  # .out.weight, .fc_out.weight


def draw(name: str, shape: torch.Size, dtype: torch.dtype, seed: int, cfg: ClapConfig,
         shapes: dict[str, torch.Size]) -> torch.Tensor:
    """The value of weight or buffer ``name`` (``shapes``: every entry's shape, for fan-ins)."""
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=dtype)
    if name.endswith("running_mean"):
        return torch.zeros(shape, dtype=dtype)
    if name.endswith("running_var"):
        return torch.ones(shape, dtype=dtype)
    if name.startswith("logit_scale"):
        return torch.full(shape, LOGIT_SCALE, dtype=dtype)
    g = generator(seed, name)
    head = name.startswith(("audio_projection.", "text_projection."))
    if name.endswith(".bias"):
        weight = shapes.get(name[: -len("bias")] + "weight")
        if weight is not None and (head or len(weight) > 2):  # torch's default for projections and convolutions
            return _uniform(shape, math.prod(weight[1:]), g).to(dtype)
        return torch.zeros(shape, dtype=dtype)
    if len(shape) == 1 and name.endswith(".weight"):  # layer and batch norms
        return torch.ones(shape, dtype=dtype)
    if head or len(shape) > 2:
        return _uniform(shape, math.prod(shape[1:]), g).to(dtype)
    if name.startswith("text_model.") and cfg.text.kind == "transformer":
        return _normal(shape, _text_std(name, cfg), g).to(dtype)
    return _normal(shape, 0.02, g).to(dtype)


def drawn_state(cfg: ClapConfig, seed: int, names: list[str] | None = None,
                own: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The seeded state of a model of ``cfg`` (only ``names`` when given), buffers the model derives
    included; ``own``: that model's state dict (e.g. on the ``meta`` device), when the caller has one."""
    if own is None:
        with torch.device("meta"):
            own = ClapModel(cfg).state_dict()
    shapes = {k: v.shape for k, v in own.items()}
    state = {}
    for name in names if names is not None else own:
        tensor = own[name]
        state[name] = (derived_value(name, tensor.shape) if DERIVED.search(name)
                       else draw(name, tensor.shape, tensor.dtype, seed, cfg, shapes))
    return state


def seeded_model(cfg: ClapConfig, seed: int, *, text: bool = True, device: str | torch.device = "cpu",
                 modify: Callable[[dict[str, torch.Tensor]], None] | None = None) -> ClapModel:
    """A :class:`ClapModel` of ``cfg`` with the weights drawn from ``seed`` (on the CPU, then copied
    to ``device``), in eval mode.

    ``text=False``: the text side stays on the ``meta`` device and is drawn on its first use.
    ``modify``: called with each drawn part's state before it is loaded (e.g. to put trained heads in).
    """
    with torch.device("meta"):
        model = ClapModel(cfg)
    own = model.state_dict()  # on the meta device: names and shapes only
    names = list(own)
    text_names = [n for n in names if n.split(".", 1)[0] in ClapModel.TEXT_PARTS]
    now = [n for n in names if text or n not in set(text_names)]

    def part(selected: list[str]) -> dict[str, torch.Tensor]:
        state = drawn_state(cfg, seed, selected, own)
        if modify is not None:
            modify(state)
        return state

    # assign: the drawn tensors become the parameters (no second allocation and copy of every weight)
    state = {name: tensor.to(device) for name, tensor in part(now).items()}
    model.load_state_dict(state, strict=False, assign=True)  # the names are the model's own
    if not text:
        model.text_later(lambda: part(text_names))
    return model.eval()


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """``sha256:<hex>`` over a state dict: names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()
