"""annotate -> supervised / blended prototypes -> classify, on the fake encoder with known vectors."""
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_store import cli, store_with_classes
from conftest import CLASS_FREQS, write
from fakes import BandEncoder

from proto_index import Store
from proto_index.core.prototypes import nearest_by_cosine
from proto_index.errors import Hint, InvalidInput
from proto_index.store.schema import Annotation, Recording, Window
from proto_index.options import EnvironmentOptions, PrototypeOptions

LABELS = list(CLASS_FREQS)
HEADER = ["path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label"]


@pytest.fixture
def store(tmp_path, corpus_dir):
    s = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    s.ingest([corpus_dir])
    s.add_classes("urban", LABELS)
    s.add_environment("park", EnvironmentOptions(text="park"))
    yield s
    s.close()


def clip(corpus_dir, label, i):
    return corpus_dir / f"{label.replace(' ', '_')}_{i}.wav"


def decisions(path: Path, rows) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def window_vector(store, path) -> np.ndarray:
    """The stored vector of a corpus clip's only window (each corpus clip is one 2 s window)."""
    with store._storage.session() as s:
        rows = s.scalars(select_rows(path)).all()
    assert len(rows) == 1
    return store._storage.vectors.read(rows)[0].astype(np.float64)


def select_rows(path):
    from sqlalchemy import select

    return select(Window.vector_row).join(Recording).where(Recording.path == str(path))


def reviewed(corpus_dir):
    """Two siren and two bird-song windows confirmed, a siren-labelled dog bark and drilling relabelled,
    one drilling clip judged wrong (left out)."""
    c = lambda label, i: str(clip(corpus_dir, label, i))  # noqa: E731
    return [
        [c("siren", 0), "0", "2", "park", "siren", "right", ""],
        [c("siren", 1), "0", "2", "park", "siren", "right", ""],
        [c("dog bark", 0), "0", "2", "park", "siren", "relabel", "dog bark"],
        [c("drilling", 1), "0", "2", "park", "siren", "relabel", "drilling"],
        [c("drilling", 2), "0", "2", "park", "drilling", "wrong", ""],
        [c("bird song", 0), "0", "2", "park", "bird song", "right", ""],
        [c("bird song", 3), "0", "2", "park", "bird song", "right", ""],
    ]


def expected_centroids(store, corpus_dir, members: dict[str, list[tuple[str, int]]]) -> np.ndarray:
    out = [np.mean([window_vector(store, clip(corpus_dir, lbl, i)) for lbl, i in members[k]], axis=0) for k in LABELS]
    return np.stack(out).astype(np.float32)


def test_supervised_prototypes_are_the_centroids_of_the_confirmed_windows(store, corpus_dir, tmp_path):
    report = store.annotate(decisions(tmp_path / "d.csv", reviewed(corpus_dir)), source="reviewer A")
    assert (report.stored, report.replaced, report.problems) == (7, 0, [])
    ps = store.build_prototypes("urban", PrototypeOptions(method="supervised"))
    assert (ps.name, ps.method, ps.labels) == ("urban-supervised", "supervised", LABELS)
    expected = expected_centroids(store, corpus_dir, {
        "siren": [("siren", 0), ("siren", 1)], "dog bark": [("dog bark", 0)],
        "drilling": [("drilling", 1)], "bird song": [("bird song", 0), ("bird song", 3)],
    })
    np.testing.assert_array_equal(ps.matrix, expected)
    with store._storage.session() as s:
        anns = s.query(Annotation).order_by(Annotation.id).all()
        assert [a.source for a in anns] == ["reviewer A"] * 7
        assert [(a.verdict, a.corrected_label) for a in anns][2:5] == [("relabel", "dog bark"), ("relabel", "drilling"), ("wrong", None)]
        assert all(a.window_id is not None and a.created_at is not None for a in anns)


def test_reannotating_a_window_replaces_its_verdict(store, corpus_dir, tmp_path):
    store.annotate(decisions(tmp_path / "d.csv", reviewed(corpus_dir)))
    # siren_1 is now judged wrong, drilling_2 (wrong before) becomes a confirmed drilling
    again = [
        [str(clip(corpus_dir, "siren", 1)), "0.000000", "2.0", "park", "siren", "wrong", ""],
        [str(clip(corpus_dir, "drilling", 2)), "0", "2", "park", "drilling", "right", ""],
    ]
    report = store.annotate(decisions(tmp_path / "d2.csv", again), source="reviewer B")
    assert (report.stored, report.replaced) == (2, 2)
    with store._storage.session() as s:
        assert s.query(Annotation).count() == 7
    ps = store.build_prototypes("urban", PrototypeOptions(method="supervised"))
    expected = expected_centroids(store, corpus_dir, {
        "siren": [("siren", 0)], "dog bark": [("dog bark", 0)],
        "drilling": [("drilling", 1), ("drilling", 2)], "bird song": [("bird song", 0), ("bird song", 3)],
    })
    np.testing.assert_array_equal(ps.matrix, expected)


def test_bad_rows_are_reported_one_line_each_and_the_rest_stored(store, corpus_dir, tmp_path):
    copy = tmp_path / "elsewhere" / "renamed.wav"
    copy.parent.mkdir()
    shutil.copy(clip(corpus_dir, "siren", 2), copy)  # same content: resolved by hash
    rows = [
        [str(clip(corpus_dir, "siren", 0)), "0", "2", "park", "siren", "right", ""],
        [str(tmp_path / "nowhere.wav"), "0", "2", "park", "siren", "right", ""],
        [str(clip(corpus_dir, "siren", 1)), "0", "2", "park", "siren", "maybe", ""],
        [str(clip(corpus_dir, "siren", 3)), "0", "2", "park", "siren", "relabel", ""],
        [str(clip(corpus_dir, "siren", 4)), "5", "15", "park", "siren", "right", ""],
        [str(clip(corpus_dir, "siren", 5)), "zero", "2", "park", "siren", "right", ""],
        ["renamed.wav", "0", "2", "park", "siren", "right", ""],  # relative to the CSV's folder
        ["/dev/zero", "0", "2", "park", "siren", "right", ""],
    ]
    report = store.annotate(decisions(tmp_path / "elsewhere" / "d.csv", rows))
    assert report.stored == 2
    assert report.problems == [
        f"d.csv line 3: {tmp_path / 'nowhere.wav'}: not a recording of this store's corpus (ingest it, then annotate)",
        "d.csv line 4: verdict 'maybe' is not one of right, wrong, relabel",
        "d.csv line 5: verdict relabel needs a corrected_label",
        f"d.csv line 6: {clip(corpus_dir, 'siren', 4)} has no stored window 5-15 s",
        "d.csv line 7: start_s/end_s 'zero'/'2' are not numbers",
        "d.csv line 9: /dev/zero: not a recording of this store's corpus (ingest it, then annotate)",
    ]
    with store._storage.session() as s:
        paths = [a.recording.path for a in s.query(Annotation).order_by(Annotation.id)]
    assert paths == [str(clip(corpus_dir, "siren", 0)), str(clip(corpus_dir, "siren", 2))]


def test_a_whole_recording_verdict_uses_the_mean_of_its_windows(store, corpus_dir, tmp_path):
    long = write(tmp_path / "more" / "long.wav", [(CLASS_FREQS["siren"], 0.5), (150.0, 0.3)], seconds=25.0, seed=3)
    store.ingest([long])
    rows = [[str(long), "", "", "park", "dog bark", "relabel", "siren"]] + [
        [str(clip(corpus_dir, lbl, 0)), "0", "2", "", lbl, "right", ""] for lbl in LABELS[1:]
    ]
    assert store.annotate(decisions(tmp_path / "d.csv", rows)).stored == 4
    with store._storage.session() as s:
        whole = s.query(Annotation).filter(Annotation.window_id.is_(None)).one()
        rows_of_long = [w.vector_row for w in whole.recording.windows]
    assert len(rows_of_long) == 3
    ps = store.build_prototypes("urban", PrototypeOptions(method="supervised"))
    expected = store._storage.vectors.read(rows_of_long).astype(np.float64).mean(axis=0).astype(np.float32)
    np.testing.assert_array_equal(ps.matrix[0], expected)
    shown = cli("prototypes", "show", "urban-supervised", "--store", store.path).stdout
    assert shown.splitlines()[0] == "urban-supervised: supervised prototypes of class set urban"


def test_a_csv_without_the_needed_columns_is_refused(store, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nx.wav,siren\n")
    with pytest.raises(InvalidInput, match="missing column\\(s\\) start_s, end_s, verdict"):
        store.annotate(bad)


def test_supervised_needs_a_confirmation_per_class(store, corpus_dir, tmp_path):
    store.annotate(decisions(tmp_path / "d.csv", reviewed(corpus_dir)[:2]))
    with pytest.raises(InvalidInput, match="no labelled vectors for class\\(es\\): dog bark, drilling, bird song") as info:
        store.build_prototypes("urban", PrototypeOptions(method="supervised"))
    assert info.value.hint == Hint("method_blend", "annotate windows of them, or use {option}")


def test_blend_tops_classes_up_with_unannotated_tgap_neighbours(store, corpus_dir, tmp_path):
    store.annotate(decisions(tmp_path / "d.csv", reviewed(corpus_dir)))
    ps = store.build_prototypes("urban", PrototypeOptions(method="blend", min_confirmed=3))
    assert (ps.name, ps.n_neighbours) == ("urban-blend3", 3)
    corpus = store._storage.vectors.read(np.arange(24)).astype(np.float64)
    with store._storage.session() as s:
        annotated_rows = {s.get(Window, a.window_id).vector_row for a in s.query(Annotation)}
    confirmed = {"siren": [("siren", 0), ("siren", 1)], "dog bark": [("dog bark", 0)],
                 "drilling": [("drilling", 1)], "bird song": [("bird song", 0), ("bird song", 3)]}
    nb = nearest_by_cosine(ps.anchors, corpus, 24)
    for k, label in enumerate(LABELS):
        mine = [window_vector(store, clip(corpus_dir, lbl, i)) for lbl, i in confirmed[label]]
        borrowed = [r for r in nb.indices[k] if r not in annotated_rows][: 3 - len(mine)]
        expected = np.mean(np.concatenate([np.stack(mine), corpus[borrowed].reshape(-1, corpus.shape[1])]), axis=0)
        np.testing.assert_allclose(ps.matrix[k], expected.astype(np.float32), rtol=0, atol=1e-7)
        assert len(ps.neighbours[k]) == 3 - len(mine)
        # the borrowed windows are the class's own clips (the fake encoder's TGAP finds them)
        assert all(Path(n.path).name.startswith(label.replace(" ", "_")) for n in ps.neighbours[k])


def test_review_loop_through_the_cli(tmp_path, corpus_dir):
    store = store_with_classes(tmp_path, corpus_dir, LABELS)
    cli("env", "add", "park", "--text", "park", "--store", store)
    rows = [[str(clip(corpus_dir, lbl, i)), "0", "2", "park", lbl, "right", ""] for lbl in LABELS for i in range(3)]
    rows.append([str(tmp_path / "gone.wav"), "0", "2", "park", "siren", "right", ""])
    d = decisions(tmp_path / "decisions.csv", rows)
    out = cli("annotate", d, "--source", "test", "--store", store, code=3)
    assert "stored 12 verdicts, 1 rows not stored" in out.stdout
    assert out.stderr.count("\n") == 1 and "decisions.csv line 14" in out.stderr and "Traceback" not in out.stderr
    again = cli("annotate", d, "--store", store, code=3).stdout
    assert "stored 12 verdicts (12 replaced an earlier verdict on the same window)" in again
    assert "urban-supervised: supervised, 4 classes" in cli("prototypes", "build", "urban", "--method", "supervised", "--store", store).stdout

    archive = [write(tmp_path / "archive" / f"{lbl.replace(' ', '_')}.wav", [(f, 0.5), (150.0, 0.2)], seconds=2.5, seed=7)
               for lbl, f in CLASS_FREQS.items()]
    out_csv = tmp_path / "out.csv"
    cli("classify", *archive, "-p", "urban-supervised", "--env", "park", "--out", out_csv, "--store", store)
    with open(out_csv, newline="") as f:
        got = [r["label"] for r in csv.DictReader(f)]
    assert got == LABELS

    cal = cli("calibrate", "--from-annotations", "-p", "urban-supervised", "--folds", "3", "--store", store).stdout
    assert "park / text: 12 clips" in cal
    cli("calibrate", "-p", "urban-supervised", "--store", store, code=2)
