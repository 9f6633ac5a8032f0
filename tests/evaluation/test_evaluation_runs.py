"""What the CLI used to do itself, now library calls: evaluate's orchestration and calibrate --save."""
from __future__ import annotations

import json

import pytest
from conftest import BACKGROUNDS, CLASS_FREQS, write
from fakes import BandEncoder

from proto_index import Store, __version__
from proto_index.core.synthetic_space import SpaceConfig
from proto_index.errors import InvalidInput
from proto_index.evaluation import experiment
from proto_index.options import CalibrateOptions, EnvironmentOptions, RunOptions, SyntheticOptions
from proto_index.evaluation.protocol import evaluate
from proto_index.evaluation.synthetic_run import synthetic_experiment
from proto_index.evaluation.tau_selection import calibrate

# --- evaluate --------------------------------------------------------------------------------------


def test_fixed_taus_give_audio_oracle_the_audio_tau():
    assert experiment.fixed_taus(0.55, 0.15) == {"text": 0.15, "audio": 0.55, "audio-oracle": 0.55}
    settings = experiment.make_settings(tau_audio=0.55, tau_text=0.15)
    assert settings.fixed_tau["audio-oracle"] == 0.55 and settings.methods[:5] == (
        "zero-shot", "tgap", "supervised", "zero-shot-transductive", "tgap-transductive")
    assert len(settings.methods) == 17 and settings.methods[-1] == "tgap-ensemble-drift-transductive"
    with pytest.raises(InvalidInput, match="unknown or no method\\(s\\): magic"):
        experiment.make_settings(methods=["magic"])
    with pytest.raises(InvalidInput, match="TGAP N must be at least 1"):
        experiment.make_settings(tgap_n=0)


def test_run_synthetic_writes_the_protocols_numbers_and_its_parameters(tmp_path):
    settings = experiment.make_settings(methods=["zero-shot"], tgap_n=5, grid=(0.0, 0.5, 1.0), tau_audio=0.55, tau_text=0.15)
    run = RunOptions(tmp_path / "out", settings, (6.0,), seed=3, folds=3, plots=False)
    done = experiment.run_synthetic(run, SyntheticOptions(per_class=6, backgrounds_per_env=4, gap=0.8))

    config = SpaceConfig(gap=0.8)
    direct = evaluate(synthetic_experiment(config, 6, 3, 4, (6.0,), 3), settings)
    assert [s.accuracy for s in done.evaluation.scores] == [s.accuracy for s in direct.scores]
    for s in done.evaluation.scores:  # the fixed rule uses exactly the given tau, audio-oracle the audio one
        if s.rule == "fixed":
            assert s.fold_taus == (0.55,) * 3 if s.adaptation in ("audio", "audio-oracle") else (0.15,) * 3
        if s.rule == "none":
            assert s.fold_taus == (0.0,) * 3
    assert {s.adaptation for s in done.evaluation.scores if s.rule == "fixed"} == {"text", "audio", "audio-oracle"}

    assert done.parameters == {
        "proto_index_version": __version__, "snrs_db": [6.0], "seed": 3, "drift_weight": 0.1,
        "data": {"synthetic": {**config.to_dict(), "labels": list(config.labels)}, "per_class": 6, "folds": 3,
                 "backgrounds_per_env": 4},
    }
    assert [p.name for p in done.written] == ["results.csv", "results.md", "results.json"]
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["parameters"] == json.loads(json.dumps(done.parameters))
    assert written["settings"]["fixed_tau"] == {"text": 0.15, "audio": 0.55, "audio-oracle": 0.55}


def test_run_synthetic_defaults_to_five_folds_and_reports_bad_data(tmp_path):
    settings = experiment.make_settings(methods=["zero-shot"], adaptations=["none"], grid=(0.0, 1.0))
    done = experiment.run_synthetic(RunOptions(tmp_path, settings, (6.0,), plots=False),
                                    SyntheticOptions(per_class=5, backgrounds_per_env=2))
    assert done.evaluation.folds == (0, 1, 2, 3, 4) and done.parameters["data"]["folds"] == 5
    with pytest.raises(InvalidInput, match="at least 3 folds"):
        experiment.run_synthetic(RunOptions(tmp_path, settings, (6.0,), folds=2, plots=False),
                                 SyntheticOptions(per_class=5, backgrounds_per_env=2))


# --- calibrate --save -------------------------------------------------------------------------------


@pytest.fixture
def labelled_store(tmp_path, corpus_dir, background_dir):
    """A fake-model store with zero-shot prototypes, an airport environment (text and audio), and
    eight labelled 2 s clips over the airport background."""
    store = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    store.ingest([corpus_dir])
    store.add_classes("urban", list(CLASS_FREQS))
    store.build_prototypes("urban")
    store.add_environment("airport", EnvironmentOptions(text="airport", audio=[background_dir / "airport"]))
    rows = []
    for i, label in enumerate(list(CLASS_FREQS) * 2):
        write(tmp_path / "archive" / f"{i}.wav", [(CLASS_FREQS[label], 0.2 + 0.02 * i)] + BACKGROUNDS["airport"],
              seconds=2.0, seed=i)
        rows.append(f"{i}.wav,airport,{label}\n")
    manifest = tmp_path / "archive" / "labelled.csv"
    manifest.write_text("path,environment,label\n" + "".join(rows))
    yield store, manifest
    store.close()


def _choices(results):
    return [(c.environment, c.adaptation, c.choice.tau, c.choice.fold_taus, list(c.choice.curve)) for c in results]


def test_calibrate_saves_each_choice_only_when_asked(labelled_store):
    store, manifest = labelled_store
    options = CalibrateOptions("urban-zero-shot", grid=(0.0, 0.25, 0.5, 0.75, 1.0), folds=2)
    looked = store.calibrate(manifest, options)
    assert [(c.environment, c.adaptation, c.clips) for c in looked] == [("airport", "audio", 8), ("airport", "text", 8)]
    assert store.environment("airport").taus == {"audio": None, "text": None}
    clips = store.embed_audio([manifest.parent / f"{i}.wav" for i in range(8)])  # the same choice from the vectors
    views = store.prototype_set("urban-zero-shot"), {"airport": store.environment("airport")}
    direct = calibrate(*views, clips, ["airport"] * 8, list(CLASS_FREQS) * 2, options.grid, 2)
    assert _choices(looked) == _choices(direct)

    saved = store.calibrate(manifest, CalibrateOptions("urban-zero-shot", grid=options.grid, folds=2, save=True))
    assert _choices(saved) == _choices(looked)
    assert store.environment("airport").taus == {c.adaptation: c.choice.tau for c in looked}


def test_calibrate_from_annotations_needs_some(labelled_store):
    store, _ = labelled_store
    with pytest.raises(InvalidInput, match="no confirmed annotation names an environment"):
        store.calibrate_from_annotations(CalibrateOptions("urban-zero-shot", save=True))
    assert store.environment("airport").taus == {"audio": None, "text": None}
