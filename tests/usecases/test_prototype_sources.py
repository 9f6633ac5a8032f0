"""Prototypes without a text anchor: a class's example files or windows (``examples``) and the
corpus windows a model's own classifier scores highest for the labels mapped to it (``classifier``)."""
import re

import numpy as np
import pytest

from proto_index.core.prototypes import class_scores, merge_top_n, no_neighbours, top_n_by_score
from proto_index.options import PrototypeOptions


def test_class_scores_are_the_max_over_the_mapped_labels():
    s = np.array([[0.1, 0.9, 0.2, 0.0],
                  [0.5, 0.3, 0.7, 0.4]])
    np.testing.assert_array_equal(class_scores(s, [[0, 2], [1], [3, 2, 0]]), [[0.2, 0.9, 0.2], [0.7, 0.3, 0.7]])
    with pytest.raises(ValueError, match="at least one label column"):
        class_scores(s, [[0], []])


def test_top_n_by_score_best_first_ties_to_the_lower_row():
    scores = np.array([[0.5, 0.1], [0.9, 0.1], [0.5, 0.3], [0.2, 0.3], [0.9, 0.0]])
    top = top_n_by_score(scores, 3)
    np.testing.assert_array_equal(top.indices, [[1, 4, 0], [2, 3, 0]])
    np.testing.assert_array_equal(top.scores, [[0.9, 0.9, 0.5], [0.3, 0.3, 0.1]])
    with pytest.raises(ValueError, match="n=6 exceeds the corpus size 5"):
        top_n_by_score(scores, 6)


def test_the_chunked_fold_is_exactly_the_brute_force():
    rng = np.random.default_rng(3)
    scores = np.round(rng.uniform(size=(1000, 4)), 2)  # rounded: many ties
    want = top_n_by_score(scores, 35)
    for chunk in (1, 7, 64, 1000):
        best = no_neighbours(4)
        for a in range(0, 1000, chunk):
            best = merge_top_n(best, scores[a:a + chunk], np.arange(a, min(a + chunk, 1000)), 35)
            assert best.indices.shape == (4, min(35, a + chunk))
        np.testing.assert_array_equal(best.indices, want.indices)
        np.testing.assert_array_equal(best.scores, want.scores)


def test_a_fold_keeps_fewer_than_n_until_there_are_n():
    best = merge_top_n(no_neighbours(1), np.array([[0.2], [0.4]]), np.array([10, 11]), 5)
    np.testing.assert_array_equal(best.indices, [[11, 10]])
    np.testing.assert_array_equal(best.scores, [[0.4, 0.2]])


# -- through the store, on the fake encoders ---------------------------------------------------------

from pathlib import Path  # noqa: E402

from cli_store import cli  # noqa: E402
from conftest import CLASS_FREQS, write  # noqa: E402
from fakes import BandEncoder, ScoringEncoder  # noqa: E402

from proto_index import PrototypeInputs, Store  # noqa: E402
from proto_index.core.prototypes import tgap_prototypes  # noqa: E402
from proto_index.embed.encoder import LabelScorer  # noqa: E402
from proto_index.errors import InvalidInput, NotFound  # noqa: E402
from proto_index.usecases import prototypes as pipeline  # noqa: E402

LABELS = list(CLASS_FREQS)  # siren, dog bark, drilling, bird song
MAPPING = ("class,model_label\nsiren,Siren_Emergency siren\ndog bark,Canis familiaris_Dog\ndrilling,Power tool_Drill\n"
           "bird song,Turdus merula_Eurasian Blackbird\nbird song,Erithacus rubecula_European Robin\n"
           "not in the set,No such label\n")


@pytest.fixture
def scorer_store(tmp_path, corpus_dir):
    s = Store.init(tmp_path / "store", model="fake-scorer", encoder=ScoringEncoder())
    s.ingest([corpus_dir])
    s.add_classes("urban", LABELS)
    yield s
    s.close()


def table(tmp_path, text, name="table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_fake_scorer_offers_label_scores_and_the_band_encoder_does_not():
    assert isinstance(ScoringEncoder(), LabelScorer) and not isinstance(BandEncoder(), LabelScorer)


def test_classifier_prototypes_are_the_centroids_of_the_best_scored_windows(scorer_store, tmp_path, monkeypatch):
    enc = scorer_store.encoder
    inputs = PrototypeInputs(mapping=table(tmp_path, MAPPING))
    ps = scorer_store.build_prototypes("urban", PrototypeOptions(method="classifier", n=6, inputs=inputs))
    assert (ps.name, ps.method, ps.n_neighbours, ps.labels) == ("urban-classifier6", "classifier", 6, LABELS)
    assert ps.prompts[3] == "model labels: Turdus merula_Eurasian Blackbird; Erithacus rubecula_European Robin"
    assert enc.text_calls == 0  # no text tower needed
    # the reference: every stored vector scored at once, max over the mapped labels, top 6, mean
    corpus = scorer_store._storage.vectors.read(np.arange(24))
    scores = enc.label_scores(corpus)
    per_class = class_scores(scores, [[0], [1], [2], [3, 4]])
    want = top_n_by_score(per_class, 6)
    np.testing.assert_allclose(ps.matrix, tgap_prototypes(corpus[want.indices]), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ps.anchors, ps.matrix)  # no text anchor: the prototype stands for it
    for k, (label, nbs) in enumerate(zip(ps.labels, ps.neighbours)):
        assert sorted(Path(nb.path).name for nb in nbs) == sorted(f"{label.replace(' ', '_')}_{i}.wav" for i in range(6))
        np.testing.assert_allclose([nb.score for nb in nbs], want.scores[k], rtol=0, atol=1e-12)
    # read a few windows at a time: the same set
    monkeypatch.setattr(pipeline, "SCORE_CHUNK_BYTES", 5 * 4 * (enc.dim + len(enc.labels)))
    enc.scored.clear()
    again = scorer_store.build_prototypes("urban", PrototypeOptions(method="classifier", n=6, name="small-chunks", inputs=inputs))
    assert enc.scored == [5, 5, 5, 5, 4]
    np.testing.assert_array_equal(again.matrix, ps.matrix)
    assert [[nb.window_id for nb in nbs] for nbs in again.neighbours] == [[nb.window_id for nb in nbs] for nbs in ps.neighbours]


def test_examples_prototypes_are_the_centroids_of_files_and_windows(scorer_store, tmp_path, corpus_dir):
    enc = scorer_store.encoder
    new = write(tmp_path / "ex" / "new siren.wav", [(CLASS_FREQS["siren"], 0.5)], seconds=2.0, seed=7)
    at = {Path(w.path).name: (r, w.window_id) for r, w in scorer_store._storage.windows_at_rows(np.arange(24)).items()}
    row, window_id = at["drilling_3.wav"]
    csv_text = ("class,path,window\nsiren,ex/new siren.wav,\nsiren,corpus/siren_0.wav,\n"
                f"dog bark,corpus/dog_bark_1.wav,\ndrilling,,{window_id}\nbird song,corpus/bird_song_2.wav,\n")
    enc.audio_calls = enc.text_calls = 0
    ps = scorer_store.build_prototypes("urban", PrototypeOptions(method="examples", inputs=PrototypeInputs(examples=table(tmp_path, csv_text))))
    assert (ps.name, ps.method, ps.n_neighbours) == ("urban-examples", "examples", None)
    assert enc.text_calls == 0 and enc.audio_calls == 1  # only the file not in the corpus is embedded
    assert ps.prompts == ["examples: 2 file(s), 0 stored window(s); 2 window vectors",
                          "examples: 1 file(s), 0 stored window(s); 1 window vectors",
                          "examples: 0 file(s), 1 stored window(s); 1 window vectors",
                          "examples: 1 file(s), 0 stored window(s); 1 window vectors"]
    vec = {p.name: v for p, v in zip([new, *(corpus_dir / n for n in ("siren_0.wav", "dog_bark_1.wav", "bird_song_2.wav"))],
                                     scorer_store.embed_audio([new, corpus_dir / "siren_0.wav", corpus_dir / "dog_bark_1.wav",
                                                               corpus_dir / "bird_song_2.wav"]))}
    want = np.stack([(vec["new siren.wav"] + vec["siren_0.wav"]) / 2, vec["dog_bark_1.wav"],
                     scorer_store._storage.vectors.read([row])[0], vec["bird_song_2.wav"]])
    np.testing.assert_allclose(ps.matrix, want, rtol=0, atol=1e-7)
    assert ps.neighbours == [[], [], [], []]


def refused(store, exc, message, **kw):
    """Building refuses with exactly ``message`` (one line) and stores nothing."""
    with pytest.raises(exc) as e:
        store.build_prototypes("urban", PrototypeOptions(**kw))
    assert str(e.value) == message and "\n" not in str(e.value)
    assert store.prototype_sets() == []
    return e.value


def test_bad_mappings_are_refused_in_one_line_and_nothing_is_stored(scorer_store, tmp_path):
    t = table(tmp_path, MAPPING.replace("drilling,Power tool_Drill\n", "drilling,Drill\nsiren,Siren\nsiren,Drill\n"
                                        "siren,Bird\nsiren,Dog\n"))
    refused(scorer_store, InvalidInput, "4 model label(s) mapped to a class that model 'fake-scorer' does not have "
            "(it has 6): 'Siren', 'Drill', 'Bird' and 1 more", method="classifier", inputs=PrototypeInputs(mapping=t))
    t = table(tmp_path, "class,model_label\nsiren,Siren_Emergency siren\n")
    refused(scorer_store, InvalidInput, f"{t}: 3 class(es) of class set 'urban' with no model label: 'dog bark', "
            "'drilling', 'bird song'", method="classifier", inputs=PrototypeInputs(mapping=t))
    t = table(tmp_path, "class,label\nsiren,Siren_Emergency siren\n")
    refused(scorer_store, InvalidInput, f"{t}: missing column(s) model_label (found: class, label)",
            method="classifier", inputs=PrototypeInputs(mapping=t))
    t = table(tmp_path, "class,model_label\nsiren,\n")
    refused(scorer_store, InvalidInput, f"{t}, line 2: empty class or model_label", method="classifier",
            inputs=PrototypeInputs(mapping=t))
    (tmp_path / "latin1.csv").write_bytes("class,model_label\nsirène,x\n".encode("latin-1"))
    refused(scorer_store, InvalidInput, f"{tmp_path / 'latin1.csv'}: not UTF-8 text (byte 21 of a block); save it as UTF-8",
            method="classifier", inputs=PrototypeInputs(mapping=tmp_path / "latin1.csv"))
    refused(scorer_store, NotFound, f"no such CSV file: {tmp_path / 'nowhere.csv'}", method="classifier",
            inputs=PrototypeInputs(mapping=tmp_path / "nowhere.csv"))
    e = refused(scorer_store, InvalidInput, "the classifier method needs a mapping file (a CSV with columns "
                "class,model_label)", method="classifier")
    assert e.hint.option == "mapping"
    refused(scorer_store, InvalidInput, "a mapping file is read by the classifier method only, not tgap", method="tgap",
            inputs=PrototypeInputs(mapping=table(tmp_path, MAPPING)))
    refused(scorer_store, InvalidInput, "classifier prototypes with N=25 need at least 25 corpus windows; the corpus has 24",
            method="classifier", n=25, inputs=PrototypeInputs(mapping=table(tmp_path, MAPPING)))


def test_a_model_without_its_own_classifier_refuses_the_classifier_method(tmp_path, corpus_dir):
    with Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder()) as store:
        store.ingest([corpus_dir])
        store.add_classes("urban", LABELS)
        e = refused(store, InvalidInput, "model 'fake-bands' has no classifier of its own (label scores), which the "
                    "classifier method needs; use the examples method instead", method="classifier",
                    inputs=PrototypeInputs(mapping=table(tmp_path, MAPPING)))
        assert e.hint.option == "method_examples"


def test_bad_examples_are_refused_in_one_line_and_nothing_is_stored(scorer_store, tmp_path):
    def examples(text):
        return {"method": "examples", "inputs": PrototypeInputs(examples=table(tmp_path, text))}

    t = tmp_path / "table.csv"
    full = "dog bark,corpus/dog_bark_1.wav,\ndrilling,corpus/drilling_1.wav,\nbird song,corpus/bird_song_1.wav,\n"
    refused(scorer_store, InvalidInput, f"{t}: 1 class(es) of class set 'urban' with no example: 'siren'",
            **examples("class,path,window\n" + full + "sirens,corpus/siren_1.wav,\n"))
    refused(scorer_store, InvalidInput, f"{t}, line 2: give a path or a window id (one of them)",
            **examples("class,path,window\nsiren,corpus/siren_1.wav,3\n" + full))
    refused(scorer_store, InvalidInput, f"{t}, line 5: window '3.5' is not a window id (a whole number)",
            **examples("class,path,window\n" + full + "siren,,3.5\n"))
    refused(scorer_store, InvalidInput, f"{t}: missing column path or window (found: class, file)", **examples("class,file\nsiren,x\n"))
    refused(scorer_store, InvalidInput, f"{t}, line 5: window '{2**63}' is not a window id (a whole number)",
            **examples("class,path,window\n" + full + f"siren,,{2**63}\n"))
    refused(scorer_store, NotFound, f"1 input file(s) not found: {tmp_path / 'corpus' / 'nowhere.wav'}",
            **examples("class,path\n" + full.replace(",\n", "\n") + "siren,corpus/nowhere.wav\n"))
    refused(scorer_store, NotFound, "2 example window id(s) not in the corpus: 9999, 12345",
            **examples("class,path,window\n" + full + "siren,,9999\nsiren,,12345\n"))
    (tmp_path / "corpus" / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(InvalidInput) as e:
        scorer_store.build_prototypes("urban", PrototypeOptions(**examples("class,path\n" + full.replace(",\n", "\n") + "siren,corpus/junk.wav\n")))
    assert str(e.value).startswith(f"1 example file(s) cannot be embedded: {tmp_path / 'corpus' / 'junk.wav'}: ")
    assert "\n" not in str(e.value) and scorer_store.prototype_sets() == []


def test_the_cli_builds_and_shows_classifier_and_examples_prototypes(tmp_path, corpus_dir):
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-scorer")
    cli("ingest", corpus_dir, "--store", store, "--quiet")
    (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n")
    cli("classes", "add", "urban", "--labels-file", tmp_path / "labels.txt", "--store", store)
    mapping = table(tmp_path, MAPPING, "map.csv")
    out = cli("prototypes", "build", "urban", "--method", "classifier", "--mapping", mapping, "--n", "6", "--store", store)
    assert out.stdout == "prototype set urban-classifier6: classifier, 4 classes\n"
    shown = cli("prototypes", "show", "urban-classifier6", "--top", "2", "--store", store).stdout.splitlines()
    assert shown[:2] == ["urban-classifier6: classifier prototypes of class set urban", "siren\tmodel labels: Siren_Emergency siren"]
    assert re.fullmatch(r"    1  0\.\d{4}  \S*/corpus/siren_\d\.wav @ 0s", shown[2]) and shown[4] == "  ... 4 more (--top 0 shows all)"
    listed = cli("prototypes", "list", "--store", store).stdout
    assert "urban-classifier6\tclassifier\tN=6\turban\t4 classes" in listed

    ex = table(tmp_path, "class,path\n" + "".join(f"{c},corpus/{c.replace(' ', '_')}_0.wav\n" for c in LABELS), "ex.csv")
    assert "prototype set urban-examples: examples, 4 classes" in cli(
        "prototypes", "build", "urban", "--method", "examples", "--examples", ex, "--store", store).stdout

    bad = table(tmp_path, MAPPING.replace("Power tool_Drill", "Drill"), "bad.csv")
    r = cli("prototypes", "build", "urban", "--method", "classifier", "--mapping", bad, "--name", "x", "--store", store, code=1)
    assert r.stderr == ("error: 1 model label(s) mapped to a class that model 'fake-scorer' does not have (it has 6): 'Drill'\n")
    r = cli("prototypes", "build", "urban", "--method", "classifier", "--name", "x", "--store", store, code=1)
    assert r.stderr.endswith("the classifier method needs a mapping file (a CSV with columns class,model_label) "
                             "(give it with --mapping CSV)\n")
    assert "x\t" not in cli("prototypes", "list", "--store", store).stdout


def test_the_report_page_says_what_a_classifier_or_examples_prototype_is(tmp_path):
    from proto_index.store.views import Neighbour
    from proto_index.outputs.report.html import PrototypePage, write_prototypes

    nb = Neighbour(7, None, None, 0.875)
    write_prototypes(tmp_path / "c.html", PrototypePage("birds-classifier6", "classifier", 6, "birds",
                                                        [("blackbird", "model labels: Turdus merula_Eurasian Blackbird",
                                                          [(nb, None)], 6)], None, "not measured"))
    page = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert ("<p><q>model labels: Turdus merula_Eurasian Blackbird</q>; the 1 best of its 6 corpus windows by the "
            "model's own score for those labels:</p>") in page
    assert "<th>score</th>" in page and "<td>0.8750</td>" in page and "text anchors themselves" not in page
    write_prototypes(tmp_path / "e.html", PrototypePage("birds-examples", "examples", None, "birds",
                                                        [("blackbird", "examples: 2 file(s)", [], 0)], None, "x"))
    assert "the centroid of its class's examples: no corpus windows to show" in (tmp_path / "e.html").read_text(encoding="utf-8")


def test_a_model_whose_label_scores_are_malformed_is_named_and_nothing_stored(scorer_store, tmp_path, monkeypatch):
    from proto_index.errors import ModelError

    monkeypatch.setattr(scorer_store.encoder, "label_scores", lambda v: np.full((len(v), 5), np.nan))
    refused(scorer_store, ModelError, "model 'fake-scorer' gave label scores shaped (24, 5) (or not finite) for 24 "
            "vectors; expected (24, 6) finite scores", method="classifier", n=6, inputs=PrototypeInputs(mapping=table(tmp_path, MAPPING)))


def test_prototype_inputs_are_checked_when_made():
    with pytest.raises(InvalidInput, match=r"^the mapping file must be a path, got 3$"):
        PrototypeInputs(mapping=3)
    with pytest.raises(InvalidInput, match=r"^embed must be EmbedOptions, got dict$"):
        PrototypeInputs(embed={})
    assert PrototypeInputs(examples="ex.csv").examples == Path("ex.csv")
