"""Only the tower a command needs is built: audio-only work never builds a text tower, text work
builds it on first use, and a remembered identity is checked when it is."""

import numpy as np
import pytest
import soundfile as sf

from proto_index import Store
from proto_index.embed import build
from proto_index.embed.registry import load_encoder
from proto_index.errors import ModelError

torch = pytest.importorskip("torch")


@pytest.fixture
def builds(monkeypatch):
    """Every create_clap_model call's ``text`` argument, in order."""
    calls = []
    real = build.create_clap_model

    def counting(*args, text=True, **kwargs):
        calls.append(text)
        return real(*args, text=text, **kwargs)

    monkeypatch.setattr(build, "create_clap_model", counting)
    return calls


def _clip(path, freq=880.0, seconds=3.0):
    t = np.arange(int(48_000 * seconds)) / 48_000
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 48_000)
    return path


@pytest.mark.slow
def test_classify_with_stored_prototypes_never_builds_the_text_tower(tmp_path, monkeypatch, builds):
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "cache"))
    with Store.init(tmp_path / "store", model="clap-tiny-demo", device="cpu") as store:
        store.add_classes("c", ["siren", "dog bark"])
        store.build_prototypes("c", method="zero-shot")
        store.add_environment("park", text="park")
        texts_then = store.embed_text(["siren", "a dog barking"])
        audio_then = store.embed_audio([_clip(tmp_path / "a.wav")])
        assert store.encoder.text_built
    assert builds == [False, True]  # the audio tower, then the text tower on the first text embedding

    builds.clear()
    with Store.open(tmp_path / "store", device="cpu") as store:
        result = store.classify([(_clip(tmp_path / "b.wav", 440.0), "park")], "c-zero-shot")
        assert result.files[0].label in ("siren", "dog bark") and result.files[0].error is None
        assert builds == [False] and not store.encoder.text_built
        np.testing.assert_array_equal(store.embed_audio([tmp_path / "a.wav"]), audio_then)
        assert not store.encoder.text_built

        texts_now = store.embed_text(["siren", "a dog barking"])  # asked for later: built now, once
        assert builds == [False, True] and store.encoder.text_built
        np.testing.assert_array_equal(texts_now, texts_then)
        store.embed_text(["park"])
        assert builds == [False, True]


@pytest.mark.slow
def test_a_wrong_shipped_identity_is_caught_when_the_text_tower_is_built(tmp_path, monkeypatch):
    from proto_index.embed import known_states

    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "cache"))
    true = load_encoder("clap-tiny-demo", device="cpu").identity.weights
    table = {k: ("sha256:" + "0" * 64 if v == true else v) for k, v in known_states._table().items()}
    monkeypatch.setattr(known_states, "_table", lambda: table)

    lying = load_encoder("clap-tiny-demo", device="cpu")
    assert lying.identity.weights == "sha256:" + "0" * 64 and not lying.text_built
    with pytest.raises(ModelError, match="not to the identity sha256:000000000000 shipped for it in known-states.json"):
        lying.embed_texts(["siren"])


@pytest.mark.slow
def test_the_audio_tower_is_the_same_built_alone(monkeypatch, tmp_path):
    """Built first, the audio tower draws the same weights whether the text tower follows or not."""
    whole, _ = build.create_clap_model("transformer", fusion=False, seed=0)
    alone, _ = build.create_clap_model("transformer", fusion=False, seed=0, text=False)
    assert build.is_pending(alone.text_branch) and not build.is_pending(whole.text_branch)
    assert not any(k.startswith("text_branch.") for k in alone.state_dict())
    assert set(alone.text_branch.shapes) == {k for k in whole.state_dict() if k.startswith("text_branch.")}
    assert build.state_sha256(alone, ("audio_branch.",)) == build.state_sha256(whole, ("audio_branch.",))
    with pytest.raises(ModelError, match="text tower has not been built"):
        alone.text_branch(torch.zeros(1, 77, dtype=torch.long))
