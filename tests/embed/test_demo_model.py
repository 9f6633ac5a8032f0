"""clap-tiny-demo on the real laion_clap code path: generated audio through ingest, prototypes,
environments, classify and evaluate, plus the training script's pieces.

Every clip here comes from seeds 8101-8128, which nothing else generates; the model was trained on
the separate stream of proto_index.embed.demo_training. Margins were chosen from runs over three
seed sets (see the notes in docs/models.md, "The demo model").
"""
import csv
import hashlib

import numpy as np
import pytest
import torch

from proto_index import ScoringOptions, Store
from proto_index import generated_audio
from proto_index.embed import demo_model, demo_training
from proto_index.embed.registry import model_kind
from proto_index.errors import ModelError

ENVS = ("park", "airport", "metro_station")
LABELS = [x.replace("_", " ") for x in generated_audio.FOREGROUND_LABELS]
SEED = 8101


def _truth(clips):
    return {str(c.path): c.label.replace("_", " ") for c in clips}


def _accuracy(result, truth):
    rows = [f for f in result.files if f.error is None]
    assert len(rows) == len(truth)
    return float(np.mean([truth[str(f.path)] == f.label for f in rows]))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One store bound to clap-tiny-demo: a corpus, an archive (SNR 6-20 dB), a low-SNR archive
    (-6 to -2 dB), all ingested (so classify reads their stored windows), prototypes, environments."""
    root = tmp_path_factory.mktemp("demo")
    corpus = generated_audio.write_corpus(root / "corpus", 30, SEED, environments=ENVS)
    archive = generated_audio.write_archive(root / "archive", 24, ENVS, SEED + 1)
    low = generated_audio.write_archive(root / "low", 24, ENVS, SEED + 2, snr_db=(-6.0, -2.0))
    store = Store.init(root / "store", model="clap-tiny-demo", device="cpu")
    report = store.ingest([corpus.folder, archive.folder, low.folder])
    assert report.added == 78 and not report.failed
    store.add_classes("urban", LABELS)
    store.build_prototypes("urban", method="zero-shot")
    store.build_prototypes("urban", method="tgap", n=20)
    for env in ENVS:
        bgs = generated_audio.write_backgrounds(root / "bg" / env, env, 3, SEED + 3)
        store.add_environment(env, text=env.replace("_", " "), audio=[c.path for c in bgs.clips])
    yield store, archive, low, root
    store.close()


@pytest.mark.slow  # the module's store: ~1.5 min CPU for 87 clips through the real towers
def test_store_is_bound_to_the_demo_model(demo):
    store, *_ = demo
    assert store.identity.name == "clap-tiny-demo" and store.model_kind == "demo" == model_kind("clap-tiny-demo")
    assert store.info()["model_kind"] == "demo"
    # the identity hashes the whole state, the shipped heads included
    from proto_index.clap.seeded import state_sha256

    store.encoder.model.build_text()
    assert store.identity.weights == state_sha256(store.encoder.model.state_dict())


@pytest.mark.slow
@pytest.mark.parametrize("prototypes", ["urban-zero-shot", "urban-tgap20"])
def test_accuracy_well_above_chance(demo, prototypes):
    store, archive, *_ = demo
    result = store.classify(archive.manifest, prototypes, scoring=ScoringOptions(adapt="none"))
    assert _accuracy(result, _truth(archive.clips)) >= 0.6  # chance: 1/6; measured 0.88-0.92 on seeds 8201, 8301


@pytest.mark.slow
def test_low_snr_is_harder_and_audio_backgrounds_keep_it_above_chance(demo):
    """At -6 to -2 dB, with or without subtracting the audio backgrounds (tau 0.7), TGAP stays well
    above chance. That low SNRs are harder, or that the subtraction *helps*, did not hold for every
    seed with this model (24 clips a set: on seed 8201 low-SNR TGAP scored 0.79 against 0.71 at
    6-20 dB), so neither is asserted; docs/models.md's demo table reports them over seeds."""
    store, archive, low, _ = demo
    high = _accuracy(store.classify(archive.manifest, "urban-tgap20", scoring=ScoringOptions(adapt="none")), _truth(archive.clips))
    none = _accuracy(store.classify(low.manifest, "urban-tgap20", scoring=ScoringOptions(adapt="none")), _truth(low.clips))
    result = store.classify(low.manifest, "urban-tgap20", scoring=ScoringOptions(adapt="audio"))
    assert {f.adaptation for f in result.files} == {"audio"} and {f.tau for f in result.files} == {0.7}
    print(f"\nTGAP: 6-20 dB {high:.2f}, -6 to -2 dB {none:.2f}, with audio backgrounds {_accuracy(result, _truth(low.clips)):.2f}")
    assert min(high, none, _accuracy(result, _truth(low.clips))) >= 0.34  # twice chance


@pytest.mark.slow
def test_tgap_prototypes_sit_closer_to_the_audio_than_text_anchors(demo):
    store, *_ = demo
    method, report = store.modality_gap("urban-tgap20", k=10)
    assert method == "tgap"
    # measured over 3 seed sets: +0.066, +0.093, +0.078. (The centroid distance is not asserted:
    # this model's anchors already sit near the corpus centroid; TGAP's prototypes do not get closer.)
    assert report.prototypes.mean_neighbour_cosine > report.anchors.mean_neighbour_cosine + 0.03


@pytest.mark.slow
def test_evaluate_on_generated_audio_end_to_end(demo):
    """`evaluate --foreground/--backgrounds`'s library path: scenes mixed, embedded, scored."""
    import soundfile as sf

    from proto_index.options import Settings

    store, _, _, root = demo
    rows = []
    for i, label in enumerate(generated_audio.FOREGROUND_LABELS * 3):
        path = root / "eval_fg" / f"{label}_{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, generated_audio.make_foreground(label, 2.0, 48_000, SEED + 10 + i), 48_000)
        rows.append((path.name, label.replace("_", " "), i // 6 + 1))
    fg_csv = root / "eval_fg" / "fg.csv"
    with open(fg_csv, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "fold"), *rows])
    generated_audio.write_backgrounds(root / "eval_bg" / "park", "park", 3, SEED + 5, seconds=(10.0, 10.0))
    settings = Settings(methods=("zero-shot", "tgap"), adaptations=("none", "audio"), tgap_n=3)
    evaluation, _ = store.evaluate_audio(fg_csv, root / "eval_bg", root / "eval_work", (10.0,), settings)
    scores = {(s.environment, s.method, s.adaptation, s.rule): s.accuracy for s in evaluation.scores}
    print(scores)
    assert {k[0] for k in scores} == {"park"} and {k[1] for k in scores} == {"zero-shot", "tgap"}
    assert scores[("park", "zero-shot", "none", "none")] >= 0.5  # chance: 1/6


# --- the training script's pieces, on small stand-ins (no towers) -------------------------------

class _Heads(torch.nn.Module):
    """The model's two projection heads alone (the real ones' widths: 768 and 512 in, 512 out)."""

    def __init__(self, seed=0, audio_in=12, text_in=10, joint=8):
        from proto_index.clap.model import Projection

        super().__init__()
        torch.manual_seed(seed)
        self.audio_projection = Projection(audio_in, joint)
        self.text_projection = Projection(text_in, joint)


def _tiny_outputs():
    rng = np.random.default_rng(0)
    concepts = [("label", x) for x in generated_audio.FOREGROUND_LABELS] * 4 + [("env", "park"), ("env", "airport")] * 3
    captions = [("label", x) for x in generated_audio.FOREGROUND_LABELS] * 2 + [("env", "park"), ("env", "airport")]
    centres = {c: rng.normal(size=12) for c in set(concepts)}
    audio = torch.tensor(np.array([50 + centres[c] + 0.3 * rng.normal(size=12) for c in concepts]), dtype=torch.float32)
    text = torch.tensor(30 + rng.normal(size=(len(captions), 10)), dtype=torch.float32)
    return demo_training.TowerOutputs(audio, concepts, audio[:12], concepts[:12], text, captions)


def test_folding_the_standardisation_keeps_the_function():
    linear = torch.nn.Linear(12, 8)
    x = torch.randn(5, 12) * 3 + 7
    stats = demo_training._stats(x)
    before = linear(demo_training._standardise(x, stats)).detach()
    demo_training._fold(linear, stats)
    torch.testing.assert_close(linear(x).detach(), before, rtol=1e-4, atol=1e-4)


@pytest.mark.model  # trains the heads: half a minute
def test_head_training_is_deterministic_and_learns():
    config = demo_training.TrainingConfig(steps=60, lr=1e-2)
    data = _tiny_outputs()
    states = []
    for _ in range(2):
        heads = _Heads()
        demo_training.train_heads(heads, data, config, log=lambda _m: None)
        states.append(demo_model.head_state(heads))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert demo_training.zero_shot_accuracy(heads, data.check_audio, data.check_concepts, data.text,
                                            data.caption_concepts) == 1.0


def test_heads_round_trip_and_bad_files_are_refused(tmp_path):
    real = {"audio_in": 768, "text_in": 512, "joint": 512}
    heads = _Heads(1, **real)
    path = tmp_path / "heads.safetensors"
    demo_training.save_heads(heads, path)
    assert [p.name for p in tmp_path.iterdir()] == ["heads.safetensors"]  # no temp file left
    other = _Heads(2, **real)
    other.load_state_dict(demo_model.read_heads(path))
    assert all(torch.equal(a, b) for a, b in zip(heads.state_dict().values(), other.state_dict().values()))
    demo_training.save_heads(heads, tmp_path / "again.safetensors")
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256((tmp_path / "again.safetensors").read_bytes()).digest()

    wrong = tmp_path / "wrong.safetensors"
    from safetensors.torch import save_file

    save_file({"audio_projection.0.weight": torch.zeros(3, 3)}, str(wrong))
    with pytest.raises(ModelError, match="does not hold the clap-tiny-demo heads"):
        demo_model.read_heads(wrong)
    state = {k: v.clone() for k, v in demo_model.head_state(heads).items()}
    state["text_projection.linear1.weight"] = torch.zeros(8, 11)
    save_file(state, str(wrong))
    with pytest.raises(ModelError, match=r"text_projection.linear1.weight has shape \(8, 11\)"):
        demo_model.read_heads(wrong)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x80\x04not safetensors at all")
    with pytest.raises(ModelError, match="cannot read the clap-tiny-demo heads"):
        demo_model.read_heads(garbage)


def test_demo_table_scores_each_classify_csv(tmp_path):
    from proto_index.demo_data import table

    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "b.wav").write_bytes(b"")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,environment,label\na.wav,park,dog_bark\nb.wav,park,siren\n")
    runs = tmp_path / "table"
    runs.mkdir()
    for name, labels in (("u-tgap5__audio__auto", ("dog bark", "siren")), ("u-zero-shot__none__default", ("siren", "siren")),
                         ("not-a-run", ("siren", "siren"))):
        (runs / f"{name}.csv").write_text(f"path,label\n{tmp_path / 'a.wav'},{labels[0]}\n{tmp_path / 'b.wav'},{labels[1]}\n")
    lines = [[c.strip() for c in line.split("|")[1:-1]] for line in table(runs, manifest).splitlines()]
    assert lines[0] == ["prototypes", "adaptation", "tau default", "tau auto"]
    assert lines[2:] == [["u-zero-shot", "none", "1/2 = 0.50", "-"], ["u-tgap5", "audio", "-", "2/2 = 1.00"]]
