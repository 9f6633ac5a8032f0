"""`evaluate`, `calibrate` and `classify --tau auto / --prototype-norm` through the real CLI."""
import csv
import json

import numpy as np
import pytest
from conftest import BACKGROUNDS, CLASS_FREQS, write
from fakes import BandEncoder
from cli_store import cli as run, read_csv

from proto_index import Store
from proto_index.core.profiles import background_profile, cosine_profiles
from proto_index.core.synthetic_space import SpaceConfig
from proto_index.core.tau import tau_projection, tau_projection_batch
from proto_index.errors import InvalidInput
from proto_index.evaluation.protocol import METHODS, evaluate
from proto_index.options import AudioOptions, Settings
from proto_index.evaluation.synthetic_run import synthetic_experiment

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_evaluate_synthetic_writes_every_output(tmp_path):
    out = tmp_path / "eval"
    result = run("evaluate", "--synthetic", "--out", out, "--per-class", "10", "--folds", "3", "--snr", "6", "--snr", "10",
                 "--backgrounds-per-env", "8", "--tgap-n", "5")  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["environment", "SNR", "dB", "method", "adaptation", "fixed", "calibrated", "auto", "optimistic*"]
    methods = len(METHODS)  # the paper's three, and every label-free variant
    assert sum(1 for ln in lines if ln.startswith(("park ", "airport "))) == 2 * 2 * methods * 4  # env x SNR x method x adaptation
    assert "wrote results.csv, results.md, results.json, accuracy_vs_snr.png, accuracy_vs_tau.png" in result.stdout
    for name in ("accuracy_vs_snr.png", "accuracy_vs_tau.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 20_000
    report = json.loads((out / "results.json").read_text())
    assert report["parameters"]["data"]["per_class"] == 10 and report["parameters"]["snrs_db"] == [6.0, 10.0]
    assert report["settings"]["tgap_n"] == 5 and report["folds"] == [0, 1, 2]
    rows = read_csv(out / "results.csv")
    assert len(rows) == len(report["scores"])
    for row, score in zip(rows, report["scores"]):
        assert (row["environment"], row["method"], row["adaptation"], row["tau_rule"]) == (
            score["environment"], score["method"], score["adaptation"], score["tau_rule"])  # fmt: skip
        assert float(row["accuracy_pct"]) == pytest.approx(100 * np.mean(score["fold_accuracies"]), abs=1e-4)
    assert (out / "results.md").read_text().count("\n| park |") == 2 * methods * 4

    # What the synthetic truth gives (tests/evaluation/test_evaluate_synthetic.py): the CLI reports the library's
    # numbers for the same space and seed, and audio adaptation lifts zero-shot far above none at 6 dB.
    library = evaluate(synthetic_experiment(SpaceConfig(), 10, 3, 8, (6.0, 10.0), 0), Settings(tgap_n=5))
    assert [s["accuracy"] for s in report["scores"]] == pytest.approx([s.accuracy for s in library.scores], abs=1e-12)
    acc = {(s["environment"], s["snr_db"], s["method"], s["adaptation"], s["tau_rule"]): s["accuracy"] for s in report["scores"]}
    for env in ("park", "airport"):
        none = acc[(env, 6.0, "zero-shot", "none", "none")]
        for rule in ("fixed", "calibrated", "auto"):
            assert acc[(env, 6.0, "zero-shot", "audio", rule)] > none + 0.10, (env, rule)


def test_evaluate_usage_errors_are_one_line(tmp_path):
    for args, message in (
        (["--out", tmp_path], "give --foreground CSV and --backgrounds"),
        (["--synthetic", "--method", "magic", "--out", tmp_path], "unknown or no method(s): magic"),
        (["--synthetic", "--tau-grid", "1:0:-1", "--out", tmp_path], "--tau-grid: bad tau grid"),
        (["--synthetic", "--folds", "2", "--out", tmp_path], "at least 3 folds"),
    ):
        result = run("evaluate", *args, code=1)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def labelled(tmp_path):
    """24 labelled 1 s tone clips (4 classes, 3 folds) and 3 background recordings per environment."""
    fg_dir = tmp_path / "fg"
    rows = []
    for ci, (label, freq) in enumerate(CLASS_FREQS.items()):
        for i in range(6):
            name = f"{label.replace(' ', '_')}_{i}.wav"
            write(fg_dir / name, [(freq * (1 + 0.01 * i), 0.5)], seconds=1.0, seed=10 * ci + i)
            rows.append(f"{name},{label},{i % 3 + 1}\n")
    (fg_dir / "fg.csv").write_text("path,label,fold\n" + "".join(rows))
    bg_dir = tmp_path / "bg"
    for env, parts in BACKGROUNDS.items():
        for i in range(3):
            write(bg_dir / env / f"bg_{i}.wav", parts, seconds=4.0, seed=500 + i)
    return fg_dir / "fg.csv", bg_dir


def test_evaluate_from_audio_with_the_fake_model(tmp_path, labelled):
    fg_csv, bg_dir = labelled
    store = tmp_path / "store"
    run("init", "--store", store, "--model", "fake-bands")
    out = tmp_path / "eval"
    run("evaluate", "--foreground", fg_csv, "--backgrounds", bg_dir, "--snr", "0", "--tgap-n", "3", "--out", out,
        "--store", store, "-q", "--no-plots")  # fmt: skip
    report = json.loads((out / "results.json").read_text())
    data = report["parameters"]["data"]
    assert data["clips"] == 24 and data["labels"] == sorted(CLASS_FREQS) and data["background_recordings"] == {"airport": 3, "park": 3}
    assert report["parameters"]["model"].startswith("fake-bands")
    scores = {(s["environment"], s["method"], s["adaptation"], s["tau_rule"]): s["accuracy"] for s in report["scores"]}
    # the airport's background has energy in the dog-bark band: unadapted, it pulls scenes there
    assert scores[("airport", "zero-shot", "none", "none")] < 0.8
    assert scores[("airport", "zero-shot", "audio", "fixed")] > scores[("airport", "zero-shot", "none", "none")] + 0.15
    assert scores[("airport", "zero-shot", "audio-oracle", "optimistic")] == 1.0
    assert not list((out / "work").rglob("*.wav"))  # scenes and background segments deleted once embedded
    assert "0 recordings" in run("info", "--store", store).stdout  # the corpus is untouched


def test_audio_evaluation_reuses_cached_embeddings(tmp_path, labelled):
    fg_csv, bg_dir = labelled
    encoder = BandEncoder()
    store = Store.init(tmp_path / "store", model="fake-bands", encoder=encoder)
    work = tmp_path / "work"
    with pytest.raises(InvalidInput, match="TGAP N=35 exceeds the 8 scenes"):
        store.evaluate_audio(AudioOptions(foreground=fg_csv, backgrounds=bg_dir, work=work))
    assert encoder.audio_calls == 0  # refused before any audio work
    settings = Settings(tgap_n=3)
    first, _ = store.evaluate_audio(AudioOptions(foreground=fg_csv, backgrounds=bg_dir, work=work, keep_scenes=True), settings, snrs_db=(6.0,))
    calls = encoder.audio_calls
    assert len(list((work / "scenes").rglob("*.wav"))) == 2 * 24
    assert len(list((work / "backgrounds").rglob("*.wav"))) == 2 * 3
    again, _ = store.evaluate_audio(AudioOptions(foreground=fg_csv, backgrounds=bg_dir, work=work), settings, snrs_db=(6.0,))
    assert encoder.audio_calls == calls
    assert [s.accuracy for s in again.scores] == [s.accuracy for s in first.scores]
    store.evaluate_audio(AudioOptions(foreground=fg_csv, backgrounds=bg_dir, work=work), settings, snrs_db=(6.0, 9.0))
    assert encoder.audio_calls > calls  # a new SNR is embedded, the cached one is not
    assert len(list((work / "embeddings").glob("scenes-*.npy"))) == 4


@pytest.fixture
def classify_store(tmp_path, corpus_dir, background_dir):
    store = tmp_path / "store"
    run("init", "--store", store, "--model", "fake-bands")
    run("ingest", corpus_dir, "--store", store, "-q")
    run("classes", "add", "urban", "-l", "siren", "-l", "dog bark", "-l", "drilling", "-l", "bird song", "--store", store)
    run("prototypes", "build", "urban", "--store", store)
    run("env", "add", "airport", "--text", "airport", "--audio", background_dir / "airport", "--store", store)
    archive = tmp_path / "archive"
    rows = []
    for i, label in enumerate(list(CLASS_FREQS) * 2):
        write(archive / f"{i}.wav", [(CLASS_FREQS[label], 0.2 + 0.02 * i)] + BACKGROUNDS["airport"], seconds=2.0, seed=i)
        rows.append(f"{i}.wav,airport,{label}\n")
    (archive / "labelled.csv").write_text("path,environment,label\n" + "".join(rows))
    return store, archive


def test_classify_tau_auto_is_per_environment_batch_and_auto_clip_per_clip(tmp_path, classify_store):
    store, archive = classify_store
    out = tmp_path / "auto.csv"
    run("classify", "-p", "urban-zero-shot", "--manifest", archive / "labelled.csv", "--tau", "auto", "--out", out, "--store", store, "-q")
    rows = read_csv(out)
    s = Store.open(store)
    protos = s.prototype_set("urban-zero-shot").matrix
    ps = cosine_profiles(s.embed_audio([archive / r["path"] for r in rows]), protos)
    pb = background_profile(s.environment("airport").audio_vectors, protos)
    expected = tau_projection_batch(ps, pb)[0]
    assert 0.2 < expected < 1.5
    assert {r["tau"] for r in rows} == {f"{expected:.6f}"}
    assert [r["label"] for r in rows] == [r["label"] for r in csv.DictReader(open(archive / "labelled.csv"))]

    run("classify", "-p", "urban-zero-shot", "--manifest", archive / "labelled.csv", "--tau", "auto-clip", "--out", out, "--store", store, "-q")
    taus = [float(r["tau"]) for r in read_csv(out)]
    np.testing.assert_allclose(taus, tau_projection(ps, pb), atol=1e-6)
    assert len(set(taus)) > 1

    result = run("classify", "-p", "urban-zero-shot", "--manifest", archive / "labelled.csv", "--tau", "often", "--out", out, "--store", store, code=2)
    assert "tau must be a number or one of auto, auto-clip" in result.stderr


def test_calibrate_prints_the_curve_and_saves_tau(tmp_path, classify_store):
    store, archive = classify_store
    result = run("calibrate", archive / "labelled.csv", "-p", "urban-zero-shot", "--tau-grid", "0:1:0.25", "--folds", "2", "--save", "--store", store)
    out = result.stdout
    assert "airport / audio: 8 clips; tau " in out and "airport / text: 8 clips" in out
    assert out.count("<- chosen") == 2
    chosen = {}
    for line in out.splitlines():
        if line.startswith("saved tau"):
            kind, value = line.split()[2].split("=")
            chosen[kind] = float(value)
    assert set(chosen) == {"audio", "text"}
    env = Store.open(store).environment("airport")
    assert (env.tau_audio, env.tau_text) == (chosen["audio"], chosen["text"])
    assert f"tau audio={chosen['audio']:g}" in run("env", "list", "--store", store).stdout
    out_csv = tmp_path / "labels.csv"
    run("classify", "-p", "urban-zero-shot", "--manifest", archive / "labelled.csv", "--out", out_csv, "--store", store, "-q")
    assert {r["tau"] for r in read_csv(out_csv)} == {f"{chosen['audio']:.6f}"}

    bad = archive / "bad.csv"
    bad.write_text("path,environment,label\n0.wav,airport,tuba\n1.wav,airport,siren\n")
    assert "label(s) not in prototype set 'urban-zero-shot': tuba" in run("calibrate", bad, "-p", "urban-zero-shot", "--store", store, code=1).stderr


@pytest.mark.slow
def test_evaluate_runs_the_real_clap_architecture(tmp_path):
    """The code path on clap-tiny-random (random weights: its accuracies mean nothing)."""
    fg = tmp_path / "fg"
    rows = []
    for ci, (label, freq) in enumerate(list(CLASS_FREQS.items())[:3]):
        for i in range(3):
            write(fg / f"{ci}_{i}.wav", [(freq, 0.4)], seconds=1.5, seed=ci * 10 + i)
            rows.append(f"{ci}_{i}.wav,{label},{i + 1}\n")
    (fg / "fg.csv").write_text("path,label,fold\n" + "".join(rows))
    for i in range(2):
        write(tmp_path / "bg" / "park" / f"{i}.wav", BACKGROUNDS["park"], seconds=10.0, seed=i)
    store = Store.init(tmp_path / "store", model="clap-tiny-random")  # one model load, not two as via the CLI
    evaluation, description = store.evaluate_audio(AudioOptions(foreground=fg / "fg.csv", backgrounds=tmp_path / "bg", work=tmp_path / "work"), Settings(tgap_n=2), snrs_db=(6.0,))
    assert description["clips"] == 9 and description["background_recordings"] == {"park": 2}
    assert {s.method for s in evaluation.scores} == set(METHODS)  # the templates and drift prompts embedded too
    assert {s.adaptation for s in evaluation.scores} == {"none", "text", "audio", "audio-oracle"}
    for s in evaluation.scores:  # random weights: accuracies mean nothing, but each is 3 folds of 3 clips
        assert len(s.fold_accuracies) == 3 and s.accuracy == pytest.approx(np.mean(s.fold_accuracies))
        assert all(round(3 * a, 9) in (0.0, 1.0, 2.0, 3.0) for a in s.fold_accuracies)
    vectors = np.load(next((tmp_path / "work" / "embeddings").glob("scenes-park-*-6dB-*.npy")))
    assert vectors.shape == (9, 512)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_audio_evaluation_runs_the_label_free_variants(tmp_path, labelled):
    fg_csv, bg_dir = labelled
    store = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    settings = Settings(methods=("zero-shot", "zero-shot-ensemble", "zero-shot-drift", "tgap-ensemble-drift-transductive"),
                        adaptations=("none", "audio"), tgap_n=3)
    ev, _ = store.evaluate_audio(AudioOptions(foreground=fg_csv, backgrounds=bg_dir, work=tmp_path / "work"), settings, snrs_db=(6.0,))
    acc = {(s.environment, s.method, s.adaptation, s.rule): s.fold_accuracies for s in ev.scores}
    assert {m for _, m, _, _ in acc} == set(settings.methods)
    # fake-bands embeds every default template of a label alike: the ensemble is the one template
    for (env, method, adaptation, rule), folds in acc.items():
        if method == "zero-shot-ensemble":
            assert folds == acc[(env, "zero-shot", adaptation, rule)]
