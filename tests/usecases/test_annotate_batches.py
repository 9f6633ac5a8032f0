"""annotate as a hostile user would try it (issue "Tried as a hostile user would, again"): rows naming
unknown environments or labels are refused one line each; big files are committed batch by batch,
with progress and a rerun that stores no duplicates; the problems kept are bounded."""
from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from cli_store import cli, store_with_classes
from conftest import CLASS_FREQS
from fakes import BandEncoder

from proto_index import Store
from proto_index.usecases import annotations
from proto_index.progress import SilentProgress
from proto_index.store.schema import Annotation
from proto_index.options import EnvironmentOptions

LABELS = list(CLASS_FREQS)
HEADER = ["path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label"]


def clip(corpus_dir, label, i) -> str:
    return str(corpus_dir / f"{label.replace(' ', '_')}_{i}.wav")


def decisions(path: Path, rows) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


@pytest.fixture
def store(tmp_path, corpus_dir):
    s = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    s.ingest([corpus_dir])
    s.add_classes("urban", LABELS)
    s.add_environment("park", EnvironmentOptions(text="park"))
    yield s
    s.close()


def stored(store) -> list[tuple[str, str, str, str | None]]:
    with store._storage.session() as s:
        return [(a.recording.path, a.environment, a.label, a.corrected_label)
                for a in s.query(Annotation).order_by(Annotation.id)]


# --- annotate: unknown environments and labels are refused per row, at annotate time ---------------

def test_annotate_refuses_rows_naming_unknown_environments_or_labels_one_line_each(store, corpus_dir, tmp_path):
    rows = [
        [clip(corpus_dir, "siren", 0), "0", "2", "park", "siren", "right", ""],
        [clip(corpus_dir, "siren", 1), "0", "2", "parc", "siren", "right", ""],
        [clip(corpus_dir, "siren", 2), "0", "2", "park", "sirene", "right", ""],
        [clip(corpus_dir, "siren", 3), "0", "2", "park", "siren", "relabel", "car\nhorn"],
        [clip(corpus_dir, "siren", 4), "0", "2", "__proto__", "siren", "wrong", ""],
        [clip(corpus_dir, "dog bark", 0), "0", "2", "", "siren", "relabel", "dog bark"],  # no environment: fine
    ]
    report = store.annotate(decisions(tmp_path / "d.csv", rows))
    assert report.problems == [
        "d.csv line 3: environment 'parc' is not one of this store's environments (add it with `env add`, "
        "or leave the cell empty)",
        "d.csv line 4: label 'sirene' is in no class set of this store (see `classes list`)",
        "d.csv line 5: corrected_label 'car\\nhorn' is in no class set of this store (see `classes list`)",
        "d.csv line 7: environment '__proto__' is not one of this store's environments (add it with `env add`, "
        "or leave the cell empty)",
    ]
    assert (report.stored, report.not_stored) == (2, 4)
    assert stored(store) == [(clip(corpus_dir, "siren", 0), "park", "siren", None),
                             (clip(corpus_dir, "dog bark", 0), None, "siren", "dog bark")]


def test_calibrate_from_annotations_works_after_a_file_with_unknown_environments(tmp_path, corpus_dir):
    store = store_with_classes(tmp_path, corpus_dir, LABELS)
    cli("env", "add", "park", "--text", "park", "--store", store)
    rows = [[clip(corpus_dir, lbl, i), "0", "2", "park", lbl, "right", ""] for lbl in LABELS for i in range(3)]
    rows.append([clip(corpus_dir, "siren", 5), "0", "2", "nowhere", "siren", "right", ""])
    out = cli("annotate", decisions(tmp_path / "decisions.csv", rows), "--store", store, "-q", code=3)
    assert out.stdout.strip() == "stored 12 verdicts, 1 rows not stored"
    assert out.stderr.strip() == ("error: decisions.csv line 14: environment 'nowhere' is not one of this store's "
                                  "environments (add it with `env add`, or leave the cell empty)")
    cli("prototypes", "build", "urban", "--method", "supervised", "--store", store)
    cal = cli("calibrate", "--from-annotations", "-p", "urban-supervised", "--folds", "3", "--store", store).stdout
    assert "park / text: 12 clips" in cal


# --- annotate at scale: batches committed one by one, progress, idempotent rerun --------------------

def _rows(corpus_dir, n):
    """n good rows cycling over the 24 corpus clips (so later rows replace earlier verdicts)."""
    clips = [(lbl, i) for lbl in LABELS for i in range(6)]
    return [[clip(corpus_dir, *clips[k % 24]), "0", "2", "park", clips[k % 24][0], "right", ""] for k in range(n)]


class _Recorder(SilentProgress):
    """Records start/advance, and at each advance checks that another connection can write to the catalog."""

    def __init__(self, catalog: Path, fail_at: int | None = None):
        super().__init__()
        self.catalog, self.fail_at = catalog, fail_at
        self.started, self.advanced, self.writable = None, [], []

    def start(self, total, description):
        self.started = (total, description)

    def advance(self, n=1):
        self.advanced.append(n)
        con = sqlite3.connect(self.catalog, timeout=0)
        try:
            con.execute("BEGIN IMMEDIATE")  # fails with "database is locked" while annotate holds a write
            con.rollback()
            self.writable.append(True)
        except sqlite3.OperationalError:
            self.writable.append(False)
        finally:
            con.close()
        if self.fail_at is not None and len(self.advanced) == self.fail_at:
            raise KeyboardInterrupt  # a crash between batches


def test_annotate_commits_per_batch_shows_progress_and_leaves_the_catalog_writable(store, corpus_dir, tmp_path):
    d = decisions(tmp_path / "d.csv", _rows(corpus_dir, 24) + [[clip(corpus_dir, "siren", 0), "0", "2", "x", "siren",
                                                                  "right", ""]])
    progress = _Recorder(store.path / "catalog.sqlite")
    report = annotations.annotate(store._storage, d, progress=progress, batch_rows=10)
    assert progress.started == (25, "annotate d.csv")
    assert progress.advanced == [10, 10, 5]
    assert progress.writable == [True, True, True]
    assert (report.stored, report.replaced, report.not_stored) == (24, 0, 1)
    assert progress.notes == ["d.csv line 26: environment 'x' is not one of this store's environments "
                              "(add it with `env add`, or leave the cell empty)"]


def test_a_crash_loses_only_the_batch_in_flight_and_a_rerun_stores_no_duplicates(store, corpus_dir, tmp_path):
    d = decisions(tmp_path / "d.csv", _rows(corpus_dir, 30))
    with pytest.raises(KeyboardInterrupt):
        annotations.annotate(store._storage, d, progress=_Recorder(store.path / "catalog.sqlite", fail_at=2),
                             batch_rows=10)
    assert len(stored(store)) == 20  # the two batches committed before the crash
    report = annotations.annotate(store._storage, d, batch_rows=10)
    assert (report.stored, report.replaced) == (30, 26)  # rows 1-20 were stored, rows 25-30 repeat rows 1-6
    rows = stored(store)
    assert len(rows) == 24 and len(set(rows)) == 24
    again = annotations.annotate(store._storage, d, batch_rows=7)
    assert stored(store) == rows and (again.stored, again.replaced) == (30, 30)


def test_annotate_problems_kept_are_bounded_while_all_are_counted(store, corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(annotations, "MAX_PROBLEMS_KEPT", 3)
    bad = [[clip(corpus_dir, "siren", 0), "0", "2", "park", "siren", "maybe", ""]] * 10
    report = store.annotate(decisions(tmp_path / "d.csv", bad))
    assert report.not_stored == 10 and len(report.problems) == 3
    assert report.problems[0] == "d.csv line 2: verdict 'maybe' is not one of right, wrong, relabel"
