"""The user cache is a speed-up, never a source of weights, identities or filter banks: a FIFO or forged
files planted in it are ignored (issue "Tried as a hostile user would, again")."""
from __future__ import annotations

import os

import pytest


def _without_hanging(fn, fifos, seconds=20.0):
    """``fn()``'s result; a failure (not a hung test) if it is still waiting on one of ``fifos`` after ``seconds``."""
    import threading

    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:  # let the stuck reader go
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(5)
        pytest.fail(f"waited on a FIFO planted in the cache: {fifos}")
    return out.get("value")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(path))
    return path


def test_a_fifo_as_a_json_cache_is_ignored(cache, tmp_path):
    import hashlib

    from proto_index.embed.checkpoint import checkpoint_sha256

    cache.mkdir()
    os.mkfifo(cache / "sha256.json")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    got = _without_hanging(lambda: checkpoint_sha256(weights), [cache / "sha256.json"])
    assert got == "sha256:" + hashlib.sha256(b"weights").hexdigest()


@pytest.mark.slow
def test_planted_cache_files_do_not_bind_a_store(cache):
    """clap-tiny-demo's whole-state identity comes from the package, whatever the user cache holds:
    the old identity and seeded-state caches are planted with forged entries, and nothing reads them."""
    import json

    from proto_index.embed import demo_model, known_states, seeded
    from proto_index.embed.checkpoint import checkpoint_sha256
    from proto_index.embed.registry import load_encoder

    entry = seeded.entry_key(seed=seeded.TOWER_SEED, fusion=False, heads=checkpoint_sha256(demo_model.WEIGHTS))
    (cache / "model-identity.json").write_text(json.dumps({entry: "sha256:" + "0" * 64}))
    (cache / "seeded").mkdir()
    (cache / "seeded" / f"{entry}.safetensors").write_bytes(b"forged")
    encoder = load_encoder("clap-tiny-demo", device="cpu")
    assert encoder.identity.weights == known_states.shipped(entry) != "sha256:" + "0" * 64
    assert not encoder.text_built  # the package vouched for it: the text side is drawn on first use
    encoder.embed_texts(["siren"])  # and checked against the shipped hash then
    assert encoder.text_built
