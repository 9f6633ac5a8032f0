"""The whole-state hashes of the seeded models, shipped in the package: identities known before the text side is drawn.

They come from :data:`FILE`, which ships with the code, never from the user cache (which may be
shared or planted). Entries are keyed by what the drawn state follows from (the drawing scheme, seed, heads file and
torch's version), so a torch upgrade finds no entry and the models are drawn and hashed whole at
each start until the file is recorded again: ``python -m proto_index.embed.known_states``.
"""
from __future__ import annotations

import functools
import json
from importlib import metadata
from pathlib import Path

FILE = Path(__file__).parent / "data" / "known-states.json"


@functools.lru_cache(maxsize=None)
def library_versions(dists: tuple[str, ...]) -> dict[str, str | None]:
    """The installed version of each distribution in ``dists`` (None if not installed), read once."""
    found: dict[str, str | None] = {}
    for dist in dists:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


DRAWING_LIBRARIES = ("torch",)
"""Whose code draws the seeded weights (torch's generators): their versions key every entry."""


@functools.lru_cache(maxsize=None)
def _table() -> dict[str, str]:
    try:
        table = json.loads(FILE.read_text()).get("states", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in table.items() if isinstance(v, str) and v.startswith("sha256:")}


def shipped(entry: str) -> str | None:
    """The ``sha256:`` hash the package ships for cache key ``entry``, or None."""
    return _table().get(entry)


def compute() -> dict[str, str]:
    """This environment's entries, drawn: clap-tiny-random (with and without fusion) and the demo
    models, clap-tiny-demo and clap-tiny-fair (slow: draws and hashes each whole model)."""
    from proto_index.clap import config
    from proto_index.clap.seeded import seeded_model, state_sha256
    from proto_index.embed import demo_model, seeded
    from proto_index.embed.checkpoint import checkpoint_sha256

    entries = {}
    for fusion in (False, True):
        model = seeded_model(config("tiny", fusion=fusion, text="transformer"), seeded.TOWER_SEED)
        entries[seeded.entry_key(seed=seeded.TOWER_SEED, fusion=fusion, heads=None)] = state_sha256(model.state_dict())
    for name, weights in demo_model.DEMO_MODELS.items():
        model = demo_model.base_model()
        model.load_state_dict(demo_model.read_heads(weights, name), strict=False)
        heads = checkpoint_sha256(weights)
        entries[seeded.entry_key(seed=seeded.TOWER_SEED, fusion=False, heads=heads)] = state_sha256(model.state_dict())
    return entries


def main() -> None:
    """Add this environment's entries to :data:`FILE`, keeping those recorded under other torch releases
    (a user's torch may be either: the CPU wheel CI installs or PyPI's CUDA build)."""
    recorded = json.loads(FILE.read_text()) if FILE.exists() else {}
    releases = recorded.get("recorded_with", [])
    releases = [releases] if isinstance(releases, dict) else releases
    versions = library_versions(DRAWING_LIBRARIES)
    FILE.write_text(json.dumps({"about": __doc__.splitlines()[0],
                                "states": {**recorded.get("states", {}), **compute()},
                                "recorded_with": [*(r for r in releases if r != versions), versions]},
                               indent=1, sort_keys=True) + "\n")
    print(f"{FILE}: {len(_table.__wrapped__())} entries")


if __name__ == "__main__":
    main()
