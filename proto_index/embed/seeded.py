"""Models drawn from a seed (clap-tiny-random, clap-tiny-demo's towers), their draws remembered.

Drawing HTSAT's random weights costs 1-2 s of every start-up, for the same numbers each time. The
first build from a seed saves the drawn state in the user cache (``cache_dir()/seeded/``, a
safetensors file: tensors only, no code runs reading it) under a key made of what the draws follow
from (text tower type, fusion, seed, whether the text tower is built, the libraries' versions).
Later builds skip the initialisation and load that state; the file records the state's hash and
is used only if the loaded state hashes to it, so a damaged file means drawing again, never other
weights.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from proto_index.atomic import atomic_path
from proto_index.embed import build, identity_cache
from proto_index.embed.download import cache_dir

if TYPE_CHECKING:
    from pathlib import Path

    import torch

HASH_KEY = "state_sha256"


class Seeded(NamedTuple):
    """A seeded model, laion_clap's config of it, and its state's ``sha256:`` hash (checked or computed)."""

    model: torch.nn.Module
    model_cfg: dict
    state_hash: str


def _path(tmodel: str, fusion: bool, seed: int, text: bool) -> Path:
    key = identity_cache.key(kind="seeded-state", tmodel=tmodel, fusion=fusion, seed=seed, text=text)
    return cache_dir() / "seeded" / f"{key}.safetensors"


def _load(path: Path, tmodel: str, fusion: bool, seed: int, text: bool) -> Seeded | None:
    """The model built without initialisation and filled from ``path``; None if ``path`` does not
    hold exactly this model's state with the hash it records."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            recorded = (f.metadata() or {}).get(HASH_KEY)
            state = {name: f.get_tensor(name) for name in f.keys()}
    except (OSError, SafetensorError, ValueError):
        return None
    model, model_cfg = build.create_clap_model(tmodel, fusion=fusion, seed=seed, text=text, initialise=False)
    try:
        # copied into the model's own (aligned) memory: the file's tensors, used in place, can sit at
        # offsets that send the CPU kernels down other paths (embeddings then differ by ~1e-8)
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        return None
    if recorded is None or build.state_sha256(model) != recorded:
        return None
    return Seeded(model, model_cfg, recorded)


def _save(path: Path, model: torch.nn.Module, state_hash: str) -> None:
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, durable=False) as tmp:  # a cache: losing it only means drawing again
            save_file(state, str(tmp), metadata={HASH_KEY: state_hash})
    except OSError:
        pass  # an unwritable cache only means drawing again next time


def seeded_clap_model(tmodel: str, *, fusion: bool, seed: int, text: bool = True) -> Seeded:
    """:func:`~proto_index.embed.build.create_clap_model`'s model for ``seed``, from the cache when it
    holds it, with its state's hash (which the cache check computes anyway)."""
    path = _path(tmodel, fusion, seed, text)
    if path.is_file():
        loaded = _load(path, tmodel, fusion, seed, text)
        if loaded is not None:
            return loaded
    model, model_cfg = build.create_clap_model(tmodel, fusion=fusion, seed=seed, text=text)
    drawn = Seeded(model, model_cfg, build.state_sha256(model))
    _save(path, model, drawn.state_hash)
    return drawn
