"""Models drawn from a seed (clap-tiny-random, clap-tiny-demo's towers), their draws remembered.

Drawing HTSAT's random weights costs 1-2 s of every start-up, for the same numbers each time. A build
from a seed saves the drawn state in the user cache (``cache_dir()/seeded/``, a safetensors file:
tensors only, no code runs reading it) under a key made of what the draws follow from (text tower
type, fusion, seed, whether the text tower is built, the libraries' versions). Later builds skip the
initialisation and load that state, but only if it hashes to the hash shipped in the package for that
key (:mod:`~proto_index.embed.known_states`): the cache can make a start faster, never change a
weight. A key the package does not know (other library versions) is drawn at every start and not saved.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from proto_index.atomic import atomic_path
from proto_index.embed import build, identity_cache, known_states
from proto_index.embed.download import cache_dir

if TYPE_CHECKING:
    from pathlib import Path

    import torch

class Seeded(NamedTuple):
    """A seeded model, laion_clap's config of it, and its state's ``sha256:`` hash (checked or computed)."""

    model: torch.nn.Module
    model_cfg: dict
    state_hash: str


def _key(tmodel: str, fusion: bool, seed: int, text: bool) -> str:
    return identity_cache.key(kind="seeded-state", tmodel=tmodel, fusion=fusion, seed=seed, text=text)


def _path(key: str) -> Path:
    return cache_dir() / "seeded" / f"{key}.safetensors"


def _load(path: Path, expected: str, tmodel: str, fusion: bool, seed: int, text: bool) -> Seeded | None:
    """The model built without initialisation and filled from ``path``; None unless ``path`` is a
    regular file holding exactly this model's state, hashing to ``expected``."""
    from safetensors import SafetensorError, safe_open

    from proto_index.audio.discover import open_regular

    try:
        with open_regular(path) as checked:  # never a FIFO; safetensors reopens this very file
            source = f"/proc/self/fd/{checked.fileno()}" if os.path.isdir("/proc/self/fd") else str(path)
            with safe_open(source, framework="pt", device="cpu") as f:
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
    if build.state_sha256(model) != expected:
        return None
    return Seeded(model, model_cfg, expected)


def _save(path: Path, model: torch.nn.Module) -> None:
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, durable=False) as tmp:  # a cache: losing it only means drawing again
            save_file(state, str(tmp))
    except OSError:
        pass  # an unwritable cache only means drawing again next time


def seeded_clap_model(tmodel: str, *, fusion: bool, seed: int, text: bool = True) -> Seeded:
    """:func:`~proto_index.embed.build.create_clap_model`'s model for ``seed``, from the cache when it
    holds the state the package's hash vouches for, with its state's hash (which the check computes anyway)."""
    key = _key(tmodel, fusion, seed, text)
    expected = known_states.shipped(key)
    path = _path(key)
    if expected is not None:
        loaded = _load(path, expected, tmodel, fusion, seed, text)
        if loaded is not None:
            return loaded
    model, model_cfg = build.create_clap_model(tmodel, fusion=fusion, seed=seed, text=text)
    drawn = Seeded(model, model_cfg, build.state_sha256(model))
    if drawn.state_hash == expected:
        _save(path, model)
    return drawn
