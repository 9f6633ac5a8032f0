"""Fault injection: hostile output paths, labels and cell texts, each as a user could craft them.

Every test here failed before the fix it guards (issue "Tried as a hostile user would, again"):
``--out`` replacing a link or writing a file named ``-``, labels named like output columns, an
audacity folder keeping an earlier run's tracks, and spreadsheet formulas in text cells. The real
``/dev/stdout`` is never touched: links, FIFOs and redirected files live in tmp_path.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_store import cli, store_with_classes
from conftest import CLASS_FREQS, write

from proto_index.errors import InvalidInput
from proto_index.outputs.exports import AudioFacts, ExportRow, export, read_classification
from proto_index.outputs.report.build import _read_csv
from proto_index.outputs.report.data import parse_table

FACTS = lambda p: AudioFacts(30.0, 48_000)  # noqa: E731


def one_line_error(result) -> str:
    """The single line a refused command printed on stderr (no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def row(path: str, label: str = "siren", start=0.0, end=10.0, **kw) -> ExportRow:
    base = dict(environment="park", prototypes="urban-zero-shot", adaptation="text", tau=0.25, label=label,
                score=0.5, margin=0.125, error=None, scores=None)
    return ExportRow(path, start, end, **{**base, **kw})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fake-bands store with zero-shot prototypes ``urban-zero-shot`` and environment ``park``."""
    root = tmp_path_factory.mktemp("store")
    corpus = root / "corpus"
    for i, f in enumerate(CLASS_FREQS.values()):
        write(corpus / f"c{i}.wav", [(f, 0.5)], seconds=1.0, seed=i)
    path = store_with_classes(root, corpus, CLASS_FREQS)
    cli("prototypes", "build", "urban", "--store", path)
    cli("env", "add", "park", "--text", "park", "--tau-text", "0.25", "--store", path)
    return path


@pytest.fixture
def clips(tmp_path):
    return [write(tmp_path / "in" / f"{lbl.replace(' ', '_')}.wav", [(f, 0.5)], seconds=1.0)
            for lbl, f in list(CLASS_FREQS.items())[:2]]


@pytest.fixture
def classified(tmp_path, store, clips):
    """A classification CSV of ``clips`` (read by the export tests)."""
    out = tmp_path / "labels.csv"
    cli("classify", *clips, "-p", "urban-zero-shot", "--env", "park", "--out", out, "--store", store, "-q")
    return out


# --- 1. --out: "-" is standard output, links are written through, streams are never replaced -----

def test_classify_out_dash_writes_the_csv_to_stdout_and_no_file(tmp_path, store, clips, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["classify", *clips, "-p", "urban-zero-shot", "--env", "park", "--store", store, "-q"]
    cli(*args, "--out", tmp_path / "file.csv")
    result = cli(*args, "--out", "-")
    assert result.stdout == (tmp_path / "file.csv").read_text(encoding="utf-8")
    assert "classified 2 files, 0 failed -> -" in result.stderr
    assert not (tmp_path / "-").exists()
    exported = cli("export", tmp_path / "file.csv", "--format", "jsonl", "--out", "-")
    assert [json.loads(line)["label"] for line in exported.stdout.splitlines()] == ["siren", "dog bark"]
    assert "wrote 2 rows as jsonl -> -" in exported.stderr and not (tmp_path / "-").exists()


def test_out_naming_the_file_that_is_stdout_writes_to_stdout(tmp_path, classified):
    """``--out /dev/stdout`` with stdout redirected to a file: written as stdout, the file never replaced
    (here the file itself stands for /dev/stdout: the same file as descriptor 1)."""
    target = tmp_path / "redirected.txt"
    with open(target, "w") as stdout:
        inode = os.fstat(stdout.fileno()).st_ino
        done = subprocess.run([sys.executable, "-m", "proto_index.cli.app", "export", str(classified), "--format", "raven",
                               "--out", str(target)], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert os.stat(target).st_ino == inode  # the same file: not renamed over
    assert target.read_text(encoding="utf-8").startswith("Selection\tView\t")
    assert f"wrote 2 rows as raven -> {target}" in done.stderr


def test_a_link_to_a_file_is_written_through_and_kept(tmp_path, store, clips, classified):
    real = tmp_path / "real" / "labels.jsonl"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    cli("export", classified, "--format", "jsonl", "--out", link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert [json.loads(line)["label"] for line in real.read_text().splitlines()] == ["siren", "dog bark"]
    csv_link = tmp_path / "link.csv"
    csv_link.symlink_to(real)
    cli("classify", *clips, "-p", "urban-zero-shot", "--env", "park", "--out", csv_link, "--store", store, "-q")
    assert csv_link.is_symlink() and real.read_text() == classified.read_text()
    assert sorted(p.name for p in real.parent.iterdir()) == ["labels.jsonl"]  # no temporary file left


def test_a_fifo_is_written_through_and_dev_null_accepted(tmp_path, classified):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    cli("export", classified, "--format", "csv", "--out", fifo)
    reader.join(10)
    assert got == [classified.read_bytes()] and fifo.is_fifo()
    cli("export", classified, "--format", "raven", "--out", "/dev/null")
    assert Path("/dev/null").is_char_device()


def test_a_link_to_nothing_is_refused_in_one_line(tmp_path, classified):
    link = tmp_path / "dangling.csv"
    link.symlink_to(tmp_path / "absent" / "x.csv")
    assert one_line_error(cli("export", classified, "--format", "jsonl", "--out", link, code=1)) == (
        f"error: output {link} is a link to nothing ({tmp_path / 'absent' / 'x.csv'}); name a file")
    assert link.is_symlink() and not (tmp_path / "absent").exists()


def test_outputs_that_cannot_stream_refuse_dash(tmp_path, classified, store, clips, monkeypatch):
    pytest.importorskip("pyarrow")
    monkeypatch.chdir(tmp_path)
    for fmt in ("parquet", "audacity"):
        line = one_line_error(cli("export", classified, "--format", fmt, "--out", "-", code=1))
        assert line == f"error: {fmt} output cannot be written to standard output; name a file or folder instead of -"
    line = one_line_error(cli("classify", *clips, "-p", "urban-zero-shot", "--env", "park", "--store", store, "-q",
                              "--format", "parquet-dataset", "--out", "-", code=1))
    assert line == "error: a parquet dataset (a folder) cannot be written to standard output; name a file or folder instead of -"
    line = one_line_error(cli("report", classified, "--out", "-", code=1))
    assert line == "error: a report (a folder) cannot be written to standard output; name a file or folder instead of -"
    line = one_line_error(cli("evaluate", "--synthetic", "--out", "-", "--per-class", "4", code=1))
    assert line == "error: evaluation results (a folder) cannot be written to standard output; name a file or folder instead of -"
    assert "--report reads the classification CSV back" in cli("classify", *clips, "-p", "urban-zero-shot", "--env", "park",
                                                              "--store", store, "--out", "-", "--report", "r", code=2).stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("-") or p.name == "r") == []


def test_evaluate_writes_through_a_link_in_its_folder(tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    kept = tmp_path / "kept.md"
    kept.write_text("old")
    (out / "results.md").symlink_to(kept)
    cli("evaluate", "--synthetic", "--out", out, "--per-class", "6", "--folds", "3", "--snr", "6", "--backgrounds-per-env", "4",
        "--tgap-n", "2", "--method", "zero-shot", "--adapt", "none", "--no-plots")
    assert (out / "results.md").is_symlink() and kept.read_text().startswith("|")


# --- 2. labels named like output columns --------------------------------------------------------

def test_class_sets_refuse_labels_named_like_output_columns(tmp_path, store):
    line = one_line_error(cli("classes", "add", "bad", "-l", "siren", "-l", "path", "-l", "score", "--store", store, code=1))
    assert line == ("error: label(s) 'path', 'score' would be named like output column(s); a label cannot be any of "
                    "path, start_s, end_s, environment, prototypes, adaptation, tau, label, score, margin, error")


def test_all_scores_refuses_a_reserved_label_of_an_older_store_before_any_work(tmp_path, store, clips, monkeypatch):
    import proto_index.usecases.prototypes as protos

    with monkeypatch.context() as m:  # a class set made before labels were checked
        m.setattr(protos, "check_score_labels", lambda labels: None, raising=False)
        cli("classes", "add", "old", "-l", "siren", "-l", "environment", "--store", store)
    cli("prototypes", "build", "old", "--store", store)
    out = tmp_path / "all.csv"
    line = one_line_error(cli("classify", *clips, "-p", "old-zero-shot", "--env", "park", "--all-scores", "--out", out,
                              "--store", store, "-q", code=1))
    assert line.startswith("error: label(s) 'environment' would be named like output column(s)")
    assert not out.exists()
    with pytest.raises(InvalidInput, match="'label' would be named like output column"):
        export([row("a.wav", scores={"siren": 0.5, "label": 0.1})], out, "csv", labels=["siren", "label"])
    assert not out.exists()


def test_a_csv_with_a_repeated_column_is_refused_not_misread(tmp_path):
    crafted = tmp_path / "crafted.csv"
    crafted.write_text("path,environment,label,score,path\na.wav,park,siren,0.5,0.25\n")
    out = tmp_path / "o.jsonl"
    assert one_line_error(cli("export", crafted, "--format", "jsonl", "--out", out, code=1)) == (
        f"error: {crafted}: column(s) 'path' appear more than once; not a classification CSV")
    assert not out.exists()


# --- 3. an audacity folder holds exactly one run's files ----------------------------------------

def test_audacity_into_an_earlier_export_keeps_only_the_new_run(tmp_path):
    out = tmp_path / "tracks"
    export([row("/a/one.wav"), row("/a/two.wav"), row("/a/three.wav")], out, "audacity", facts=FACTS)
    assert sorted(p.name for p in out.iterdir()) == ["0001_one.txt", "0002_three.txt", "0003_two.txt", "files.csv"]
    export([row("/b/four.wav", label="dog bark")], out, "audacity", facts=FACTS)
    assert sorted(p.name for p in out.iterdir()) == ["0001_four.txt", "files.csv"]
    assert (out / "0001_four.txt").read_text() == "0\t10\tdog bark\n"
    with open(out / "files.csv", newline="") as f:
        assert [r["label_track"] for r in csv.DictReader(f)] == ["0001_four.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks"]  # no temporary folder left


def test_audacity_refuses_foreign_files_and_deletes_only_its_own(tmp_path):
    out = tmp_path / "tracks"
    export([row("/a/one.wav")], out, "audacity", facts=FACTS)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match=r"tracks holds files no earlier export wrote \(notes.txt\); choose an empty folder"):
        export([row("/a/two.wav")], out, "audacity", facts=FACTS)
    assert sorted(p.name for p in out.iterdir()) == ["0001_one.txt", "files.csv", "notes.txt"]
    (out / "notes.txt").unlink()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    with open(out / "files.csv", "a", newline="") as f:  # an index that lists a file outside the folder
        csv.writer(f).writerow(["../victim.txt", "x", "park", "p", "text", ""])
    export([row("/a/two.wav")], out, "audacity", facts=FACTS)
    assert sorted(p.name for p in out.iterdir()) == ["0001_two.txt", "files.csv"] and victim.read_text() == "precious"
    link = tmp_path / "link"
    link.symlink_to(out)
    with pytest.raises(InvalidInput, match="exists and is not a folder"):
        export([row("/a/one.wav")], link, "audacity", facts=FACTS)


# --- 4. spreadsheet formulas in text cells -------------------------------------------------------

HOSTILE = ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "'quoted", "plain"]


def test_formula_cells_are_prefixed_and_read_back_exactly(tmp_path):
    rows = [row(f"{text}.wav", label=text, environment=text, prototypes=text, adaptation=text, score=-0.3, margin=-0.125,
                scores={"=1+1": -0.3, "-x": 0.5}) for text in HOSTILE]
    rows.append(row("@err.wav", label=None, score=None, margin=None, error="-boom", scores=None))
    out = tmp_path / "labels.csv"
    export(rows, out, "csv", labels=["=1+1", "-x"])
    with open(out, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert table[0][-2:] == ["'=1+1", "'-x"]
    first = dict(zip(table[0], table[1]))
    assert (first["path"], first["label"], first["environment"], first["score"], first["margin"]) == (
        "'=HYPERLINK(\"http://x\").wav", "'=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")", "-0.300000", "-0.125000")
    assert [r[table[0].index("label")] for r in table[1:-1]] == ["'" + t if t != "plain" else t for t in HOSTILE]
    assert table[-1][table[0].index("error")] == "'-boom" and table[-1][0] == "'@err.wav"
    back, labels = read_classification(out)
    assert labels == ["=1+1", "-x"] and back == rows
    report = parse_table(_read_csv(out))
    assert [(r.path, r.label, r.environment) for r in report.rows[:-1]] == [(f"{t}.wav", t, t) for t in HOSTILE]
    assert report.score_labels == ["=1+1", "-x"]

    raven = tmp_path / "t.txt"
    export(rows[:4], raven, "raven", facts=FACTS)
    cells = [line.split("\t") for line in raven.read_text(encoding="utf-8").splitlines()]
    label_at, path_at = cells[0].index("Label"), cells[0].index("Begin Path")
    assert sorted(c[label_at] for c in cells[1:]) == sorted(["'-2", "'+1+1", "'=HYPERLINK(\"http://x\")", "'@SUM(A1)"])
    assert all(c[path_at].startswith("'") and c[cells[0].index("Score")] == "-0.300000" for c in cells[1:])

    folder = tmp_path / "tracks"
    export(rows[:2], folder, "audacity", facts=FACTS)
    with open(folder / "files.csv", newline="", encoding="utf-8") as f:
        index = list(csv.DictReader(f))
    assert [(r["path"], r["environment"]) for r in index] == [("'+1+1.wav", "'+1+1"), ("'=HYPERLINK(\"http://x\").wav", "'=HYPERLINK(\"http://x\")")]
