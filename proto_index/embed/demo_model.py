"""The demo models: clap-tiny-random's towers with projection heads trained on generated sounds.

The audio (HTSAT-tiny) and text (byte-tokenised transformer) towers are drawn from seed 0 exactly as
for ``clap-tiny-random``; only the two projection heads (``audio_projection``, ``text_projection``)
come from a safetensors file shipped in the package and written by
:mod:`proto_index.embed.demo_training`: :data:`WEIGHTS` for ``clap-tiny-demo`` (heads trained on
pre-mixed clips), :data:`FAIR_WEIGHTS` for ``clap-tiny-fair`` (trained on isolated sources, as CLAP
was). The models know only the sounds of :mod:`proto_index.generated_audio`; they exist for demos and
tests, not for real recordings.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from proto_index.embed.seeded import TOWER_SEED, seeded_encoder
from proto_index.errors import ModelError

if TYPE_CHECKING:
    import torch

    from proto_index.clap.model import ClapModel
    from proto_index.embed.clap import ClapEncoder

__all__ = ["DEMO_MODELS", "FAIR_WEIGHTS", "HEADS", "TOWER_SEED", "WEIGHTS", "base_model", "demo_encoder", "head_state",
           "read_heads", "weights_of"]

WEIGHTS = Path(__file__).parent / "data" / "clap-tiny-demo.safetensors"
FAIR_WEIGHTS = Path(__file__).parent / "data" / "clap-tiny-fair.safetensors"
DEMO_MODELS = {"clap-tiny-demo": WEIGHTS, "clap-tiny-fair": FAIR_WEIGHTS}
"""Each demo model's shipped heads file."""
HEADS = ("audio_projection", "text_projection")
"""The trained parts of the model; everything else is the seeded random initialisation."""


def base_model() -> ClapModel:
    """The untrained model, whole: clap-tiny-random's architecture and seeded weights, on the CPU."""
    from proto_index.clap import config
    from proto_index.clap.seeded import seeded_model

    return seeded_model(config("tiny", fusion=False, text="transformer"), TOWER_SEED)


def head_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The heads' tensors by state-dict name (copies, float32, contiguous)."""
    return {k: v.detach().float().contiguous().clone() for k, v in model.state_dict().items()
            if k.split(".", 1)[0] in HEADS}


def _expected_heads() -> dict[str, tuple[int, ...]]:
    import torch

    from proto_index.clap import config
    from proto_index.clap.model import ClapModel

    with torch.device("meta"):
        model = ClapModel(config("tiny", fusion=False, text="transformer"))
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k.split(".", 1)[0] in HEADS}


def weights_of(name: str) -> Path:
    """The shipped heads file of the demo model ``name``; :class:`ModelError` for any other name."""
    if name not in DEMO_MODELS:
        raise ModelError(f"{name!r} is not a demo model; demo models: {', '.join(DEMO_MODELS)}")
    return DEMO_MODELS[name]


def read_heads(path: str | os.PathLike = WEIGHTS, model: str = "clap-tiny-demo") -> dict[str, torch.Tensor]:
    """The heads of the demo model ``model`` stored at ``path`` (read with safetensors: tensors only,
    no code runs); :class:`ModelError` unless they fit the model exactly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (OSError, SafetensorError) as e:
        raise ModelError(f"cannot read the {model} heads {path}: {e}") from e
    expected = _expected_heads()
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ModelError(f"{path} does not hold the {model} heads (missing {missing[:2]}, "
                         f"unexpected {extra[:2]})")
    for name, tensor in state.items():
        if tuple(tensor.shape) != expected[name] or not tensor.is_floating_point():
            raise ModelError(f"{path}: {name} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}; "
                             f"expected {expected[name]} float")
    return {k: v.float() for k, v in state.items()}


def demo_encoder(name: str = "clap-tiny-demo", *, weights: str | os.PathLike | None = None,
                 device: str | None = None, batch_size: int = 16, precision: str = "fp32") -> ClapEncoder:
    """The demo model ``name`` as an Encoder (``weights``: its heads file, by default the shipped one);
    its identity hashes the whole state, trained heads included."""
    from proto_index.embed.checkpoint import checkpoint_sha256

    weights = weights_of(name) if weights is None else weights
    return seeded_encoder(name, fusion=False, heads=read_heads(weights, name), heads_hash=checkpoint_sha256(weights),
                          device=device, batch_size=batch_size, precision=precision)
