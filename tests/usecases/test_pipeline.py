"""The library end to end on the fake encoder: ingest, TGAP, environments, classification, errors."""
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKGROUNDS, CLASS_FREQS, write
from fakes import GAP_DIM, BandEncoder

from proto_index import ScoringOptions, Store
from proto_index.core.decision import decide
from proto_index.core.profiles import background_profile, cosine_profiles, refine
from proto_index.core.prototypes import tgap_reference
from proto_index.errors import REPLACE, AlreadyExists, InvalidInput, ModelMismatch, NotFound
from proto_index.options import ClassSetOptions, EnvironmentOptions, PrototypeOptions

LABELS = list(CLASS_FREQS)


@pytest.fixture
def store(tmp_path, corpus_dir, background_dir):
    s = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    s.ingest([corpus_dir])
    s.add_classes("urban", LABELS)
    s.add_environment("airport", EnvironmentOptions(text="airport", audio=[background_dir / "airport"]))
    s.add_environment("park", EnvironmentOptions(text="park"))
    yield s
    s.close()


def archive_clip(tmp_path, name, label, env, fg=0.2, seed=0):
    parts = [(CLASS_FREQS[label], fg)] + BACKGROUNDS[env]
    return write(tmp_path / "archive" / f"{name}.wav", parts, seconds=2.5, seed=seed)


def test_ingest_counts_and_rerun_skips(store, corpus_dir):
    info = store.info()
    assert info["counts"]["recordings"] == 24 and info["counts"]["windows"] == 24
    again = store.ingest([corpus_dir])
    assert (again.added, again.skipped, again.failed) == (0, 24, [])


def test_tgap_neighbours_are_the_class_clips_and_match_brute_force(store):
    ps = store.build_prototypes("urban", PrototypeOptions(method="tgap", n=6))
    assert ps.name == "urban-tgap6" and ps.labels == LABELS
    for label, nbs in zip(ps.labels, ps.neighbours):
        assert sorted(Path(nb.path).name for nb in nbs) == sorted(f"{label.replace(' ', '_')}_{i}.wav" for i in range(6))
        assert all(a.score >= b.score for a, b in zip(nbs, nbs[1:]))
    corpus = store._storage.vectors.read(np.arange(24))
    expected, _ = tgap_reference(ps.anchors, corpus, 6)
    np.testing.assert_allclose(ps.matrix, expected, atol=1e-6)


def test_tgap_narrows_the_modality_gap(store):
    zs = store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    tg = store.build_prototypes("urban", PrototypeOptions(method="tgap", n=6))
    for k, label in enumerate(LABELS):
        clips = [nb.path for nb in tg.neighbours[k]]
        audio_centroid = store.embed_audio(clips).mean(axis=0)
        assert cosine_profiles(tg.matrix[k], audio_centroid[None])[0] > 0.99
        assert cosine_profiles(zs.matrix[k], audio_centroid[None])[0] < 0.75
    assert np.all(zs.matrix[:, GAP_DIM] > 0.5) and np.allclose(tg.matrix[:, GAP_DIM], 0)


def test_audio_background_subtraction_fixes_the_airport_confusion(store, tmp_path):
    store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    clip = archive_clip(tmp_path, "siren_at_airport", "siren", "airport")
    none = store.classify([(clip, "airport")], "urban-zero-shot", scoring=ScoringOptions(adapt="none")).files[0]
    audio = store.classify([(clip, "airport")], "urban-zero-shot", scoring=ScoringOptions(adapt="audio")).files[0]
    assert (none.label, none.adaptation, none.tau) == ("dog bark", "none", 0.0)
    assert (audio.label, audio.adaptation, audio.tau) == ("siren", "audio", 0.7)
    # the numbers are exactly the pure math on the stored vectors
    protos = store.prototype_set("urban-zero-shot").matrix
    env = store.environment("airport")
    pf = refine(cosine_profiles(store.embed_audio([clip])[0], protos), background_profile(env.audio_vectors, protos), 0.7)
    d = decide(pf[None])
    np.testing.assert_allclose(audio.scores, pf, atol=1e-6)
    assert audio.score == pytest.approx(d.scores[0], abs=1e-6) and audio.margin == pytest.approx(d.margins[0], abs=1e-6)


def test_text_background_of_scene_name_shifts_all_classes_equally(store, tmp_path):
    store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    clip = archive_clip(tmp_path, "drill_in_park", "drilling", "park")
    none = store.classify([(clip, "park")], "urban-zero-shot", scoring=ScoringOptions(adapt="none")).files[0]
    text = store.classify([(clip, "park")], "urban-zero-shot", scoring=ScoringOptions(adapt="auto")).files[0]
    assert (text.adaptation, text.tau, text.label) == ("text", 0.2, none.label)
    # Pb_text here is the same for every class (only the gap direction is shared), so Pf is Ps shifted
    np.testing.assert_allclose(none.scores - text.scores, np.full(4, 0.2 * 0.5), atol=1e-6)


def test_tau_precedence_run_over_environment_over_default(store, tmp_path, background_dir):
    store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    store.add_environment("airport", EnvironmentOptions(text="airport", audio=[background_dir / "airport"], tau_audio=0.5, tau_text=0.1, replace=True))
    clip = archive_clip(tmp_path, "c", "siren", "airport")
    assert store.classify([(clip, "airport")], "urban-zero-shot").files[0].tau == 0.5
    assert store.classify([(clip, "airport")], "urban-zero-shot", scoring=ScoringOptions(adapt="text")).files[0].tau == 0.1
    assert store.classify([(clip, "airport")], "urban-zero-shot", scoring=ScoringOptions(tau=0.9)).files[0].tau == 0.9


def test_classification_of_corpus_files_reuses_stored_vectors(store, corpus_dir):
    store.build_prototypes("urban", PrototypeOptions(method="tgap", n=6))
    calls = store.encoder.audio_calls
    files = sorted(corpus_dir.glob("*.wav"))
    result = store.classify([(f, "park") for f in files], "urban-tgap6", scoring=ScoringOptions(adapt="none"))
    assert store.encoder.audio_calls == calls
    assert [r.label.replace(" ", "_") for r in result.files] == [f.name.rsplit("_", 1)[0] for f in files]


def test_errors_are_reported_before_any_embedding(store, tmp_path):
    store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    clip = archive_clip(tmp_path, "c", "siren", "park")
    calls = store.encoder.audio_calls
    with pytest.raises(NotFound, match=r"unknown environment\(s\): beach, moon \(known: airport, park\)"):
        store.classify([(clip, "beach"), (clip, "moon")], "urban-zero-shot")
    with pytest.raises(NotFound, match="no prototype set named 'nope' \\(known: urban-zero-shot\\)"):
        store.classify([(clip, "park")], "nope")
    with pytest.raises(NotFound, match="1 input file\\(s\\) not found: .*missing.wav"):
        store.classify([(clip, "park"), (tmp_path / "missing.wav", "park")], "urban-zero-shot")
    with pytest.raises(InvalidInput, match="environment 'park': no background recordings"):
        store.classify([(clip, "park")], "urban-zero-shot", scoring=ScoringOptions(adapt="audio"))
    with pytest.raises(InvalidInput, match="unknown adaptation 'both'"):
        store.classify([(clip, "park")], "urban-zero-shot", scoring=ScoringOptions(adapt="both"))
    assert store.encoder.audio_calls == calls


def test_names_are_unique_unless_replaced(store):
    with pytest.raises(AlreadyExists, match="^class set 'urban' already exists$") as info:
        store.add_classes("urban", ["a"])
    assert info.value.hint == REPLACE
    assert store.add_classes("urban", ["a", "b"], ClassSetOptions(replace=True)).labels == ["a", "b"]
    with pytest.raises(InvalidInput, match="duplicate labels: a"):
        store.add_classes("x", ["a", "a"])
    with pytest.raises(InvalidInput, match="at least one label"):
        store.add_classes("x", [])


def test_tgap_needs_enough_corpus(store):
    with pytest.raises(InvalidInput, match="N=100 needs at least 100 corpus windows; the corpus has 24"):
        store.build_prototypes("urban", PrototypeOptions(method="tgap", n=100))


def test_search_finds_the_class_clips(store):
    hits = store.search("a siren", k=6)
    assert len(hits) == 6 and all(Path(h.path).name.startswith("siren_") for h in hits)
    assert hits[0].score >= hits[-1].score


def test_store_refuses_another_model(tmp_path, store):
    path = store.path
    store.close()
    with pytest.raises(ModelMismatch, match="fake-bands .* but the model offered is fake-bands"):
        Store.open(path, encoder=BandEncoder(gap=2.0))


def test_environment_default_text_is_its_name(store):
    env = store.add_environment("metro_station")
    assert env.description == "metro station"
    assert env.text_sources == [
        "This is a sound of metro station",
        "Metro station sounds in the background",
        "This is a sound of metro station in the background",
    ]


def test_environment_with_undecodable_recording_is_not_stored(store, tmp_path):
    bad = tmp_path / "bad_bg"
    bad.mkdir()
    (bad / "x.wav").write_text("not audio")
    with pytest.raises(Exception, match="could not be decoded"):
        store.add_environment("harbour", EnvironmentOptions(audio=[bad]))
    assert "harbour" not in [e.name for e in store.environments()]


def test_repeated_content_in_an_archive_is_embedded_once(store, tmp_path):
    import shutil

    store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    first = archive_clip(tmp_path, "first", "siren", "airport")
    copy = tmp_path / "archive" / "copy.wav"
    shutil.copy(first, copy)
    embedded = []
    original = store.encoder.embed_waveforms
    store.encoder.embed_waveforms = lambda waves: embedded.append(len(waves)) or original(waves)
    result = store.classify([(first, "airport"), (copy, "airport")], "urban-zero-shot")
    assert sum(embedded) == 1  # one window, embedded once
    a, b = result.files
    assert (a.label, a.error) == (b.label, b.error) == ("siren", None)
    np.testing.assert_array_equal(a.scores, b.scores)
