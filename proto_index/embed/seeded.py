"""The seeded models (clap-tiny-random, clap-fusion-tiny-random, clap-tiny-demo) as encoders.

HTSAT-tiny with the byte-tokenised ``transformer`` text tower, weights drawn from a seed by
:mod:`proto_index.clap.seeded` (each weight from a generator of its own: no global random state, no
cache). clap-tiny-demo replaces the two projection heads with trained ones (:mod:`.demo_model`).

A store's identity is the hash of the whole state. Drawing and hashing the text tower costs about
a second that an audio-only command never needs, so the package ships the whole-state hash of each
model for the torch release that draws it (:mod:`.known_states`); a model whose entry is shipped
builds only its audio side now, and draws its text side on the first text, where the whole state
is hashed and checked against the shipped value. Without an entry everything is drawn and hashed
at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from proto_index.embed import identity_cache
from proto_index.embed.clap import ClapEncoder
from proto_index.embed.encoder import ModelIdentity

if TYPE_CHECKING:
    import torch

ARCHITECTURE = "HTSAT-tiny+transformer"
TOWER_SEED = 0
"""The seed of every built-in seeded model's towers."""


def entry_key(*, seed: int, fusion: bool, heads: str | None) -> str:
    """The :mod:`.known_states` entry of a seeded model (``heads``: the trained heads file's hash, if any)."""
    from proto_index.clap.seeded import SCHEME

    return identity_cache.key(scheme=SCHEME, architecture=ARCHITECTURE, seed=seed, fusion=fusion, heads=heads)


def seeded_encoder(name: str, *, fusion: bool, seed: int = TOWER_SEED,
                   heads: dict[str, torch.Tensor] | None = None, heads_hash: str | None = None,
                   device: str | None = None, batch_size: int = 16, precision: str = "fp32") -> ClapEncoder:
    """The seeded model called ``name`` (``heads``: trained weights that replace drawn ones, by name;
    ``heads_hash``: their file's hash, which keys the shipped identity)."""
    import torch

    from proto_index.clap import config
    from proto_index.clap.seeded import seeded_model, state_sha256
    from proto_index.clap.tokens import ByteTokenizer

    cfg = config("tiny", fusion=fusion, text="transformer")
    entry = entry_key(seed=seed, fusion=fusion, heads=heads_hash)
    known = identity_cache.recall(entry)
    built: list = []

    def modify(state: dict[str, torch.Tensor]) -> None:
        for key, value in (heads or {}).items():
            if key in state:
                state[key] = value.to(state[key].dtype).clone()
        if built and known is not None:  # the text side, drawn on first use (known is set by then): check the whole state against the shipped hash
            whole = {k: v for k, v in built[0].state_dict().items() if not v.is_meta}
            identity_cache.check(entry, known, state_sha256({**whole, **state}), name)

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = seeded_model(cfg, seed, text=known is None, device=device, modify=modify)
    built.append(model)
    if known is None:
        known = state_sha256(model.state_dict())
    identity = ModelIdentity(name, ARCHITECTURE, fusion, known, cfg.joint_dim)
    return ClapEncoder(model, identity, lambda: ByteTokenizer(cfg.text), batch_size=batch_size, precision=precision)


def random_encoder(name: str, *, fusion: bool, **options) -> ClapEncoder:
    """clap-tiny-random (or its fusion twin): the towers and heads all drawn."""
    return seeded_encoder(name, fusion=fusion, **options)

