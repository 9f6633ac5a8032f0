"""clap-tiny-demo on the real laion_clap code path: generated audio through ingest, prototypes,
environments, classify and evaluate, plus the training script's pieces.

Every clip here comes from seeds 8101-8132, which nothing else generates; the models were trained on
the separate streams of proto_index.embed.demo_training. Margins were chosen from runs over three
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
from proto_index.options import AudioOptions, EnvironmentOptions, PrototypeOptions

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
    store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    store.build_prototypes("urban", PrototypeOptions(method="tgap", n=20))
    for env in ENVS:
        bgs = generated_audio.write_backgrounds(root / "bg" / env, env, 3, SEED + 3)
        store.add_environment(env, EnvironmentOptions(text=env.replace("_", " "), audio=[c.path for c in bgs.clips]))
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
    evaluation, _ = store.evaluate_audio(AudioOptions(foreground=fg_csv, backgrounds=root / "eval_bg", work=root / "eval_work"), settings, snrs_db=(10.0,))
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


# --- clap-tiny-fair: the heads trained on isolated sources --------------------------------------

def test_fair_model_is_registered_with_its_own_shipped_heads():
    from proto_index.embed.registry import MODEL_NAMES, available_models

    assert "clap-tiny-fair" in MODEL_NAMES and model_kind("clap-tiny-fair") == "demo"
    info = {m.name: m for m in available_models()}["clap-tiny-fair"]
    assert info.network == "nothing" and "isolated" in info.description
    assert demo_model.weights_of("clap-tiny-fair") == demo_model.FAIR_WEIGHTS != demo_model.WEIGHTS
    fair, demo = demo_model.read_heads(demo_model.FAIR_WEIGHTS, "clap-tiny-fair"), demo_model.read_heads()
    assert {k: tuple(v.shape) for k, v in fair.items()} == {k: tuple(v.shape) for k, v in demo.items()} == {
        "audio_projection.linear1.weight": (512, 768), "audio_projection.linear1.bias": (512,),
        "audio_projection.linear2.weight": (512, 512), "audio_projection.linear2.bias": (512,),
        "text_projection.linear1.weight": (512, 512), "text_projection.linear1.bias": (512,),
        "text_projection.linear2.weight": (512, 512), "text_projection.linear2.bias": (512,)}
    assert not torch.equal(fair["audio_projection.linear1.weight"], demo["audio_projection.linear1.weight"])
    from safetensors import safe_open

    with safe_open(str(demo_model.FAIR_WEIGHTS), "pt") as f:
        assert f.metadata() == {"model": "clap-tiny-fair"}
    with pytest.raises(ModelError, match="'clap-tiny-random' is not a demo model; demo models: clap-tiny-demo, clap-tiny-fair"):
        demo_model.weights_of("clap-tiny-random")


def test_shipped_demo_heads_are_unchanged():
    """clap-tiny-demo's file (and so its identity, and every test tuned on it) stays as it was shipped."""
    digest = hashlib.sha256(demo_model.WEIGHTS.read_bytes()).hexdigest()
    assert digest == "771d5a6cc7ba08c64aec3abd3410a0250d6f0b723b43d4fb29059b3c1712e04f"  # as on main


def test_isolated_recipe_mixes_nothing():
    config = demo_training.CONFIGS["clap-tiny-fair"]
    assert config.recipe == "isolated" and demo_training.CONFIGS["clap-tiny-demo"].recipe == "mixed"
    clips = demo_training.make_isolated_clips(config, "test:isolated", 2, 1)
    labels, envs = generated_audio.FOREGROUND_LABELS, generated_audio.BACKGROUND_ENVIRONMENTS
    assert [(c.kind, c.name) for c in clips] == ([("label", x) for x in labels] * 2 + [("env", e) for e in envs])
    assert all(c.sources == (c.name,) for c in clips)  # one source each: no class over an environment
    for clip in clips:
        assert clip.wave.dtype == np.float32 and 2.0 <= len(clip.wave) / 48_000 <= 10.0
        steps = clip.wave.astype(np.float64) * 32767.0  # through the archive path: int16-quantised
        assert np.abs(steps - np.round(steps)).max() < 1e-3
        frames = clip.wave[: len(clip.wave) // 4800 * 4800].reshape(-1, 4800)
        quietest = float(np.sqrt((frames.astype(np.float64) ** 2).mean(1)).min())
        if clip.kind == "env":  # an environment fills its clip (at -12 dB or more re BACKGROUND_RMS: > 0.0125)
            assert quietest > 0.003
        elif len(clip.wave) > 5.2 * 48_000:  # a foreground lasts at most 5 s: the rest is the floor (<= -50 dB re 0.1)
            assert quietest < 5e-4
    mixed = demo_training.make_clips(demo_training.CONFIGS["clap-tiny-demo"], "test:mixed", 1, 0)
    assert all(len(c.sources) == 2 and c.sources[1] == c.name for c in mixed)
    with pytest.raises(ValueError, match="unknown recipe 'premixed'; choose one of mixed, isolated"):
        demo_training.TrainingConfig(recipe="premixed")


def test_training_streams_are_the_models_own():
    fair = demo_training.training_clips(demo_training.TrainingConfig(model="clap-tiny-fair", recipe="isolated",
                                                                     clips_per_label=1, backgrounds_per_env=0))
    again = demo_training.make_isolated_clips(demo_training.CONFIGS["clap-tiny-fair"], "clap-tiny-fair:train", 1, 0)
    assert all(np.array_equal(a.wave, b.wave) for a, b in zip(fair, again))
    other = demo_training.make_isolated_clips(demo_training.CONFIGS["clap-tiny-fair"], "clap-tiny-demo:train", 1, 0)
    assert not any(np.array_equal(a.wave, b.wave) for a, b in zip(fair, other))


@pytest.mark.model  # real towers over 21 clips, twice: about a minute
def test_isolated_training_writes_the_same_bytes_twice(tmp_path):
    config = demo_training.TrainingConfig(model="clap-tiny-fair", recipe="isolated", clips_per_label=1,
                                          backgrounds_per_env=1, check_per_pair=0, steps=5)
    for run in ("a", "b"):
        demo_training.save_heads(demo_training.train(config, log=lambda _m: None), tmp_path / f"{run}.safetensors",
                                 "clap-tiny-fair")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    trained = demo_model.read_heads(tmp_path / "a.safetensors", "clap-tiny-fair")
    assert not torch.equal(trained["text_projection.linear2.weight"],
                           demo_model.base_model().state_dict()["text_projection.linear2.weight"])


def _environment_scores(name, mixes, jobs, backgrounds):
    """For mixtures of known environment: the mean cosine to their own environment's text anchor, its
    margin over the other environments' anchors, the same margin against background recordings'
    embeddings, and the class accuracy against the class anchors."""
    from proto_index.embed.registry import load_encoder

    def unit(x):
        x = np.asarray(x, dtype=np.float64)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def margin(s, idx):
        own = s[np.arange(len(idx)), idx]
        return float(np.mean(own - (s.sum(1) - own) / (s.shape[1] - 1)))

    envs, labels = generated_audio.BACKGROUND_ENVIRONMENTS, generated_audio.FOREGROUND_LABELS
    encoder = load_encoder(name, device="cpu")
    a = unit(encoder.embed_waveforms([c.wave for c in mixes]))
    b = unit(encoder.embed_waveforms([c.wave for c in backgrounds]))
    env_text = unit(np.stack([unit(encoder.embed_texts(demo_training.env_captions(e))).mean(0) for e in envs]))
    label_text = unit(np.stack([unit(encoder.embed_texts(demo_training.label_captions(x))).mean(0) for x in labels]))
    env_idx = np.array([envs.index(e) for e, _ in jobs])
    to_text = a @ env_text.T
    return {"own_text": float(np.mean(to_text[np.arange(len(jobs)), env_idx])), "text_margin": margin(to_text, env_idx),
            "audio_margin": margin(a @ b.T, env_idx),
            "class_accuracy": float(np.mean((a @ label_text.T).argmax(1) == [labels.index(x) for _, x in jobs]))}


@pytest.mark.model  # both models over 35 clips: about a minute and a half
def test_fair_models_mixtures_keep_their_environment():
    """The point of clap-tiny-fair: a mixture's embedding carries its background. Every class over every
    environment at 0-12 dB (seed 8131, used nowhere else). Measured on seeds 8131 / 8141, demo -> fair:
    own-environment text cosine -0.029 -> 0.298 / -0.057 -> 0.242; its margin over the other
    environments 0.138 -> 0.349 / 0.113 -> 0.272; against background recordings 0.091 -> 0.240 /
    0.040 -> 0.173. The price: class accuracy on these mixtures 0.87 -> 0.70 / 0.87 -> 0.60 (chance 1/6),
    since nothing taught the fair heads to look past a background."""
    envs, labels = generated_audio.BACKGROUND_ENVIRONMENTS, generated_audio.FOREGROUND_LABELS
    jobs = [(e, x) for e in envs for x in labels]
    mixes = [demo_training.make_clip(np.random.default_rng([8131, i]), e, x, (0.0, 12.0)) for i, (e, x) in enumerate(jobs)]
    backgrounds = [demo_training.make_clip(np.random.default_rng([8132, i]), e, None, (0.0, 12.0)) for i, e in enumerate(envs)]
    demo = _environment_scores("clap-tiny-demo", mixes, jobs, backgrounds)
    fair = _environment_scores("clap-tiny-fair", mixes, jobs, backgrounds)
    print(f"\nclap-tiny-demo {demo}\nclap-tiny-fair {fair}")
    assert fair["own_text"] > demo["own_text"] + 0.15
    assert fair["text_margin"] > demo["text_margin"] + 0.08
    assert fair["audio_margin"] > demo["audio_margin"] + 0.06
    assert fair["class_accuracy"] >= 0.45


@pytest.mark.model  # one demo clip through the audio tower, a few captions through the text tower
def test_fair_model_through_the_cli_and_the_store(tmp_path):
    """`init --model clap-tiny-fair` binds a store to it; its identity is the shipped whole-state hash
    (known-states.json), checked when the text side is drawn; it classifies a generated clip."""
    from cli_store import cli

    from proto_index.clap.seeded import state_sha256
    from proto_index.embed import known_states, seeded
    from proto_index.embed.checkpoint import checkpoint_sha256

    cli("init", "--store", tmp_path / "store", "--model", "clap-tiny-fair", "--device", "cpu")
    clip = generated_audio.write_archive(tmp_path / "archive", 1, ("park",), 8133, snr_db=(12.0, 12.0))
    with Store.open(tmp_path / "store", device="cpu") as store:
        assert store.identity.name == "clap-tiny-fair" and store.model_kind == "demo"
        entry = seeded.entry_key(seed=seeded.TOWER_SEED, fusion=False, heads=checkpoint_sha256(demo_model.FAIR_WEIGHTS))
        assert store.identity.weights == known_states.shipped(entry) is not None
        store.add_classes("urban", LABELS)
        store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
        store.add_environment("park", EnvironmentOptions(text="park"))
        assert store.identity.weights == state_sha256(store.encoder.model.state_dict())
        result = store.classify(clip.manifest, "urban-zero-shot", scoring=ScoringOptions(adapt="none"))
    assert [f.error for f in result.files] == [None] and result.files[0].label in LABELS
