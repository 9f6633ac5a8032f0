"""clap-tiny-demo: clap-tiny-random's towers with projection heads trained on generated sounds.

The audio (HTSAT-tiny) and text (bundled-BPE transformer) towers are regenerated from seed 0 exactly
as for ``clap-tiny-random``; only the two projection heads (``audio_projection``,
``text_projection``) come from :data:`WEIGHTS`, a safetensors file shipped in the package and written
by :mod:`proto_index.embed.demo_training`. The model knows only the sounds of
:mod:`proto_index.demo_audio`; it exists for demos and tests, not for real recordings.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from proto_index.embed.encoder import ModelIdentity
from proto_index.errors import ModelError

if TYPE_CHECKING:
    import torch

    from proto_index.embed.clap import ClapEncoder
    from proto_index.embed.seeded import Seeded

WEIGHTS = Path(__file__).parent / "data" / "clap-tiny-demo.safetensors"
HEADS = ("audio_projection", "text_projection")
"""The trained parts of the model; everything else is the seeded random initialisation."""
TOWER_SEED = 0
"""The seed of the towers: clap-tiny-random's."""


def build_base_model(*, text: bool = True) -> Seeded:
    """The untrained model: clap-tiny-random's architecture and seeded weights (``text=False``: the
    text tower left for later, see :func:`~proto_index.embed.build.create_clap_model`), with the
    hash of that state."""
    from proto_index.embed.seeded import seeded_clap_model

    return seeded_clap_model("transformer", fusion=False, seed=TOWER_SEED, text=text)


def head_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The heads' tensors by state-dict name (copies, float32, contiguous)."""
    return {k: v.detach().float().contiguous().clone() for k, v in model.state_dict().items()
            if k.split(".", 1)[0] in HEADS}


def load_heads(model: torch.nn.Module, path: str | os.PathLike = WEIGHTS) -> None:
    """Put the heads stored at ``path`` into ``model``; :class:`ModelError` unless they fit exactly.

    The file is read with safetensors (tensors only, no code runs while reading it).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (OSError, SafetensorError) as e:
        raise ModelError(f"cannot read the clap-tiny-demo heads {path}: {e}") from e
    expected = head_state(model)
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ModelError(f"{path} does not hold the clap-tiny-demo heads (missing {missing[:2]}, "
                         f"unexpected {extra[:2]})")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape or not tensor.is_floating_point():
            raise ModelError(f"{path}: {name} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}; "
                             f"expected {tuple(expected[name].shape)} float")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)


def identity_entry(name: str, weights: str | os.PathLike, drawn: str) -> str:
    """The identity-cache key of model ``name`` with the heads at ``weights`` on towers hashing to ``drawn``."""
    from proto_index.embed import identity_cache
    from proto_index.embed.checkpoint import checkpoint_sha256

    return identity_cache.key(model=name, seed=TOWER_SEED, heads=checkpoint_sha256(weights), drawn=drawn)


def demo_encoder(name: str = "clap-tiny-demo", *, weights: str | os.PathLike = WEIGHTS,
                 device: str | None = None, batch_size: int = 16, precision: str = "fp32") -> ClapEncoder:
    """The demo model as an Encoder; its identity hashes the whole state, trained heads included.

    Only the audio tower and the heads are built when the package ships the whole state's hash
    (:mod:`~proto_index.embed.identity_cache`) for the hash of what is drawn, the heads file and the
    library versions; the text tower is then built on first use and checked against that hash.
    Otherwise the whole model is built now and hashed.
    """
    from proto_index.embed import identity_cache
    from proto_index.embed.clap import ClapEncoder, model_architecture, state_sha256

    model, model_cfg, drawn = build_base_model(text=False)
    load_heads(model, weights)
    entry = identity_entry(name, weights, drawn)

    def whole() -> torch.nn.Module:
        full = build_base_model().model
        load_heads(full, weights)
        return full

    known = identity_cache.recall(entry)
    if known is None:
        model = whole()
        known = state_sha256(model)
        build_text = None
    else:
        def build_text(_partial):
            full = whole()
            identity_cache.check(entry, known, state_sha256(full), name)
            return full

    identity = ModelIdentity(name, model_architecture(model), False, known, model.joint_embed_shape)
    return ClapEncoder(model, model_cfg, identity, device=device, batch_size=batch_size, precision=precision,
                       build_text=build_text)
