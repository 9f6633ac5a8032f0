"""The state hashes of the seeded models, shipped in the package: what a cached seeded state is checked against.

The user cache may be shared or planted, so what it remembers of a seeded model (its drawn weights,
clap-tiny-demo's whole-state identity) is used only when it agrees with :data:`FILE`, which ships
with the code. Entries are keyed as the caches key them (the libraries' versions included), so a
library upgrade finds no entry and the models are drawn at each start until the file is recorded
again for it: ``python -m proto_index.embed.known_states`` (adds this environment's entries).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

FILE = Path(__file__).parent / "data" / "known-states.json"


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
    """This environment's entries, drawn: clap-tiny-random (with and without fusion), clap-tiny-demo's
    audio side and its whole-state identity (slow: builds the models)."""
    from proto_index.embed import build, demo_model, seeded

    entries = {}
    for fusion, text in ((False, False), (True, True), (False, True)):
        model, _ = build.create_clap_model("transformer", fusion=fusion, seed=demo_model.TOWER_SEED, text=text)
        entries[seeded._key("transformer", fusion, demo_model.TOWER_SEED, text)] = build.state_sha256(model)
    drawn = entries[seeded._key("transformer", False, demo_model.TOWER_SEED, False)]
    demo_model.load_heads(model)
    entries[demo_model.identity_entry("clap-tiny-demo", demo_model.WEIGHTS, drawn)] = build.state_sha256(model)
    return entries


def main() -> None:
    from proto_index.embed.identity_cache import library_versions

    try:
        recorded = json.loads(FILE.read_text())
    except (OSError, ValueError):
        recorded = {}
    states = {**recorded.get("states", {}), **compute()}
    FILE.write_text(json.dumps({"about": __doc__.splitlines()[0], "states": states,
                                "last_recorded_with": library_versions(("torch", "laion_clap", "transformers",
                                                                        "numpy"))},
                               indent=1, sort_keys=True) + "\n")
    print(f"{FILE}: {len(states)} entries")


if __name__ == "__main__":
    main()
