"""Only the tower a command needs is built: audio-only work never builds a text tower, text work
builds it on first use, and a remembered identity is checked when it is."""

import numpy as np
import pytest
import soundfile as sf

from proto_index import Store
from proto_index.clap import seeded
from proto_index.embed.registry import load_encoder
from proto_index.errors import ModelError
from proto_index.options import EnvironmentOptions, PrototypeOptions

torch = pytest.importorskip("torch")


@pytest.fixture
def builds(monkeypatch):
    """Which parts were drawn, in order: ``False`` for a model without its text side, ``True`` for a
    text side (drawn at build or on first use)."""
    calls = []
    real = seeded.drawn_state

    def counting(cfg, seed, names=None, own=None):
        calls.append(names is None or any(n.startswith("text_model.") for n in names))
        return real(cfg, seed, names, own)

    monkeypatch.setattr(seeded, "drawn_state", counting)
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
        store.build_prototypes("c", PrototypeOptions(method="zero-shot"))
        store.add_environment("park", EnvironmentOptions(text="park"))
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
def test_each_weight_is_drawn_the_same_whatever_is_drawn_with_it():
    """A weight comes from a generator of its own: the audio side drawn alone, the text side drawn
    later, or a single weight asked for, are the very numbers of the whole draw."""
    from proto_index.clap import config

    cfg = config("tiny", fusion=False, text="transformer")
    whole = seeded.seeded_model(cfg, 0).state_dict()
    alone = seeded.seeded_model(cfg, 0, text=False)
    assert not alone.text_built
    for name, tensor in alone.state_dict().items():
        if name.startswith(("text_model.", "text_projection.")):
            assert tensor.is_meta
        else:
            assert torch.equal(tensor, whole[name]), name
    alone.build_text()
    assert all(torch.equal(tensor, whole[name]) for name, tensor in alone.state_dict().items())
    name = "audio_model.audio_encoder.layers.2.blocks.3.attention.self.query.weight"
    assert torch.equal(seeded.drawn_state(cfg, 0, [name])[name], whole[name])
    assert not torch.equal(seeded.drawn_state(cfg, 1, [name])[name], whole[name])
    rng = torch.random.get_rng_state()
    seeded.drawn_state(cfg, 0, [name])
    assert torch.equal(torch.random.get_rng_state(), rng)  # torch's global generator is never drawn from
