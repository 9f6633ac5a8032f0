"""Fault injection, second round ("Tried as a hostile user would, again"): annotate's rows, its size,
a report's excerpts, the report's filters. Each test here failed before the fix it guards.
"""
from __future__ import annotations

import csv
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cli_store import cli, store_with_classes
from conftest import CLASS_FREQS, write
from fakes import BandEncoder

from proto_index import Store
from proto_index.usecases import annotations
from proto_index.progress import SilentProgress
from proto_index.store.schema import Annotation

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
    s.add_environment("park", text="park")
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


# --- report: a WAV header's sample rate cannot make an excerpt take GBs ----------------------------

REPORT_COLUMNS = ["path", "environment", "adaptation", "tau", "label", "score", "margin", "error"]
ABSURD_RATE = 2**31 - 1
SPARSE_BYTES = 400 * 2**20


def sparse_wav(path: Path, rate: int, data_bytes: int, channels: int = 1) -> Path:
    """A PCM_16 WAV header claiming ``rate`` Hz over ``data_bytes`` of (sparse: never written) zeros."""
    block = 2 * channels
    header = (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, 16)
              + b"data" + struct.pack("<I", data_bytes))
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + data_bytes)
    return path


def peak_rss_mb(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    """Peak resident memory (MB) of ``proto-index ARGS`` run as the only child of a fresh interpreter."""
    runner = ("import resource, subprocess, sys; "
              "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
              "sys.stderr.write(p.stderr); sys.stdout.write(p.stdout); "
              "print('RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)")
    cli_main = "import sys; from proto_index.cli.app import main; sys.argv[0] = 'proto-index'; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", runner, sys.executable, "-c", cli_main, *args],
                          capture_output=True, text=True, timeout=600)
    rss_kb = int(done.stdout.rsplit("RSS ", 1)[1])
    return rss_kb / 1024, done


def test_a_report_bounds_excerpt_memory_and_refuses_an_absurd_sample_rate(tmp_path):
    good = tmp_path / "good.wav"
    write(good, [(440.0, 0.5)], seconds=2.0, sr=48_000)
    absurd = sparse_wav(tmp_path / "absurd.wav", ABSURD_RATE, SPARSE_BYTES)
    fast = sparse_wav(tmp_path / "fast.wav", 384_000, SPARSE_BYTES, channels=8)  # plausible (bat detector), long
    table = tmp_path / "c.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(REPORT_COLUMNS)
        for p in (good, absurd, fast):
            w.writerow([str(p), "park", "none", "0", "siren", "0.5", "0.1", ""])
    peak, done = peak_rss_mb(["report", str(table), "--out", str(tmp_path / "r")])
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [f"report: {absurd}: sample rate {ABSURD_RATE} Hz is not one this tool reads "
                                        f"(at most 768000 Hz)"]
    assert "report of 3 rows (2 shown, 1 files unavailable)" in done.stdout
    import soundfile as sf
    excerpts = sorted((tmp_path / "r" / "audio").glob("*.wav"))
    assert [sf.info(str(p)).duration for p in excerpts] == [2.0, 30.0]  # the long file: its first 30 s
    assert peak < 250, f"peak RSS {peak:.0f} MB for a {SPARSE_BYTES >> 20} MB file"


# --- report: environments and labels named like Object.prototype's keys filter as any other ---------

JS_NAMES = ["__proto__", "constructor", "toString"]


@pytest.fixture
def chromium():
    """Headless Chromium as tests/test_report_browser.py drives it (its import skips, or under CI fails, without one)."""
    import shutil

    from test_report_browser import CHROMEDRIVER
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--mute-audio"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_report_filters_environments_and_labels_named_like_object_prototype_keys(tmp_path, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    clips = [write(tmp_path / f"c{i}.wav", [(440.0 + 100 * i, 0.5)], seconds=1.0) for i in range(4)]
    envs, labels = JS_NAMES + ["park"], ["siren", "__proto__", "constructor", "hasOwnProperty"]
    table = tmp_path / "c.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(REPORT_COLUMNS)
        for p, env, label in zip(clips, envs, labels):
            w.writerow([str(p), env, "none", "0", label, "0.5", "0.1", ""])
    cli("report", table, "--out", tmp_path / "r")
    chromium.get((tmp_path / "r" / "index.html").as_uri())

    def shown():
        return [(tr.find_elements(By.TAG_NAME, "td")[1].text, tr.find_elements(By.TAG_NAME, "td")[2].text)
                for tr in chromium.find_elements(By.CSS_SELECTOR, "#rows tbody tr")]

    env_select, label_select = Select(chromium.find_element(By.ID, "f-env")), Select(chromium.find_element(By.ID, "f-label"))
    assert [o.get_attribute("value") for o in env_select.options] == ["", *sorted(envs)]
    assert [o.get_attribute("value") for o in label_select.options] == ["", *sorted(labels)]
    for env, label in zip(envs, labels):
        env_select.select_by_value(env)
        assert shown() == [(env, label)]
    env_select.select_by_value("")
    for env, label in zip(envs, labels):
        label_select.select_by_value(label)
        assert shown() == [(env, label)]
    assert [e for e in chromium.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []


def test_report_decisions_csv_neutralises_formulas_reversibly(tmp_path, chromium):
    """The page's decisions CSV is a table a spreadsheet opens too: text cells starting like a
    formula get a leading ', which annotate (read_text_cell) strips exactly once."""
    from selenium.webdriver.common.by import By

    clip = write(tmp_path / "=1+1.wav", [(440.0, 0.5)], seconds=1.0)
    table = tmp_path / "c.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(REPORT_COLUMNS)
        w.writerow([str(clip), "@park", "none", "0", "-siren", "0.5", "0.1", ""])
    cli("report", table, "--out", tmp_path / "r")
    chromium.get((tmp_path / "r" / "index.html").as_uri())
    chromium.find_element(By.CSS_SELECTOR, "#rows tbody tr input[value='right']").click()
    text = chromium.execute_script("return window.protoIndexReport.decisionsCsv();")
    header, row = text.strip().split("\r\n")
    assert row == f"{clip},,,'@park,'-siren,right,"
    row_cells = next(csv.reader([row]))
    from proto_index.cells import read_text_cell

    assert [read_text_cell(c) for c in row_cells[3:5]] == ["@park", "-siren"]
