"""`proto-index report` without a browser: parsing, sampling, media, bad input, escaping, atomic output."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import write
from report_store import HOSTILE_LABEL, HOSTILE_NAME, classified, cli, read_rows, with_hostile_row, write_rows
from typer.testing import CliRunner

from proto_index.cli.app import app
from proto_index.errors import InvalidInput
from proto_index.outputs.report import build as rbuild
from proto_index.outputs.report import data as rdata
from proto_index.outputs.report import media as rmedia

HEADER = "path,start_s,end_s,environment,adaptation,tau,label,score,margin,error"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("made")
    return classified(tmp, n_files=6)


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def page_rows(report: Path) -> list[dict]:
    text = (report / "index.html").read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="report-rows">(.*?)</script>', text, re.S).group(1)
    return json.loads(block)


# -- data ----------------------------------------------------------------------------------------


def test_parse_reads_windows_and_the_top_three_from_all_scores():
    text = HEADER + ",a,b,c,d\n" + "x.wav,10,20,park,audio,0.7,b,0.5,0.2,,0.1,0.5,0.3,0.3\n" + "y.wav,0,10,park,audio,0.7,,,,boom,,,,\n" + "z.wav,0,10,park,audio,inf,a,nan,-inf,,inf,0.2,nan,0.1\n"
    t = rdata.parse_table(text)
    assert t.per_window and t.score_labels == ["a", "b", "c", "d"]
    r = t.rows[0]
    assert (r.path, r.start_s, r.end_s, r.environment, r.tau, r.label, r.score, r.margin) == ("x.wav", 10.0, 20.0, "park", 0.7, "b", 0.5, 0.2)
    assert r.top == (("b", 0.5), ("c", 0.3), ("d", 0.3))  # ties keep column order
    assert t.rows[1].error == "boom" and t.rows[1].top == ()
    z = t.rows[2]  # non-finite cells are treated as missing
    assert (z.tau, z.score, z.margin, z.top) == (None, None, None, (("b", 0.2), ("d", 0.1)))


def test_parse_without_all_scores_keeps_the_winner_only():
    t = rdata.parse_table("path,environment,adaptation,tau,label,score,margin,error\nx.wav,park,text,0.2,siren,0.4,0.1,\n")
    assert not t.per_window and t.score_labels == [] and t.rows[0].top == (("siren", 0.4),)
    assert rdata.summarise(t).has_all_scores is False


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("path,environment,label\nx.wav,park,siren\n", "missing column(s) adaptation, tau, score, margin, error"),
    (HEADER + "\nx.wav,0,10,park,audio,0.7,siren,high,0.1,\n", "line 2: score 'high' is not a number"),
    (HEADER + "\n" + "x" * 200_000 + "\n", "is not a readable CSV: field larger than field limit"),
])
def test_parse_rejects_what_is_not_a_classification(text, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        rdata.parse_table(text, "in.csv")


def test_selection_keeps_the_least_certain_half_and_a_spread_of_the_rest():
    rows = [rdata.Row(i, f"{i}.wav", None, None, "park", "", 0.7, "siren", 0.5, float(m), "") for i, m in enumerate([5, 3, 9, 0, 7, 1, 8, 2, 6, 4])]
    rows.append(rdata.Row(10, "z.wav", None, None, "airport", "", 0.7, "siren", 0.5, 0.5, ""))
    chosen = rdata.select_rows(rows, 4)
    assert [(r.environment, r.margin) for r in chosen] == [("airport", 0.5), ("park", 0), ("park", 1), ("park", 2), ("park", 9)]
    assert len(rdata.select_rows(rows, 100)) == 11


def test_review_csv_quotes_every_awkward_cell():
    awkward = {"path": '/a,b/"c"\nd.wav', "start_s": "0", "end_s": "10", "environment": "park",
               "label": HOSTILE_LABEL, "verdict": "relabel", "corrected_label": "dog, bark"}
    text = rdata.review_csv([awkward])
    back = list(csv.reader(io.StringIO(text, newline="")))
    assert back == [list(rdata.REVIEW_COLUMNS), [awkward[c] for c in rdata.REVIEW_COLUMNS]]


def test_the_storage_key_follows_the_reports_content():
    from proto_index.outputs.report.html import storage_key

    meta = {"labels": ["siren", "bird"], "verdicts": ["right", "wrong", "relabel"]}
    rows = [{"i": 0, "path": "/a.wav", "label": "siren", "score": 0.5}, {"i": 1, "path": "/b.wav", "label": "bird"}]
    key = storage_key(meta, rows)
    assert key.startswith("proto-index-review:") and len(key) == len("proto-index-review:") + 32
    assert storage_key(dict(reversed(meta.items())), [dict(r) for r in rows]) == key  # key order is not content
    assert storage_key(meta, [rows[0], {**rows[1], "label": "siren"}]) != key
    assert storage_key(meta, rows[:1]) != key
    assert storage_key({**meta, "labels": ["siren", "bird", "drilling"]}, rows) != key


# -- media ---------------------------------------------------------------------------------------


def test_excerpt_is_exactly_the_window_resampled_to_mono(tmp_path):
    sr = 44_100
    t = np.arange(int(5 * sr)) / sr
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "tone.wav"
    sf.write(path, np.stack([left, np.where(t < 2, 0.0, left)], axis=1), sr, subtype="FLOAT")
    samples, cut = rmedia.read_excerpt(path, 1.0, 2.0)  # the right channel is silent here: mono = left / 2
    assert not cut and len(samples) == rmedia.EXCERPT_RATE
    peak = np.argmax(np.abs(np.fft.rfft(samples))) * rmedia.EXCERPT_RATE / len(samples)
    assert peak == pytest.approx(440, abs=1) and np.abs(samples).max() == pytest.approx(0.25, abs=0.01)
    samples, cut = rmedia.read_excerpt(path, 3.0, 13.0)  # a window past the end is cut at the end
    assert len(samples) == 2 * rmedia.EXCERPT_RATE
    img = rmedia.spectrogram(samples)
    assert img.shape == (64, 240) and img.min() >= 0 and img.max() == 1.0
    assert np.argmax(img.mean(axis=1)) == int(440 / (rmedia.EXCERPT_RATE / 2) * 64)  # 440 Hz row
    with pytest.raises(rmedia.MediaProblem, match="outside the file"):
        rmedia.read_excerpt(path, 6.0, 16.0)
    with pytest.raises(rmedia.MediaProblem, match="not found"):
        rmedia.read_excerpt(tmp_path / "gone.wav", 0.0, 1.0)
    with pytest.raises(rmedia.MediaProblem, match="not a regular file"):
        rmedia.read_excerpt(tmp_path, 0.0, 1.0)
    with pytest.raises(rmedia.MediaProblem, match="not a valid file name"):
        rmedia.read_excerpt(tmp_path / "a\x00b.wav", 0.0, 1.0)


# -- the command ---------------------------------------------------------------------------------


def test_classify_report_writes_a_report_of_every_window(made):
    assert "report of 13 rows (13 shown, 0 files unavailable)" in made.stdout
    header, rows = read_rows(made.csv)
    shown = page_rows(made.report)
    assert len(shown) == len(rows) == 13
    assert sorted((r["path"], r["start"], r["end"]) for r in shown) == sorted((r[0], r[1], r[2]) for r in rows)
    names = sorted(p.name for p in (made.report / "audio").iterdir())
    assert all(re.fullmatch(r"[rp]\d{5,6}\.wav", n) for n in names)
    for r in shown:  # each player's excerpt is that window's length
        info = sf.info(made.report / r["audio"])
        assert info.samplerate == rmedia.EXCERPT_RATE and info.channels == 1
        assert info.frames == pytest.approx((float(r["end"]) - float(r["start"])) * rmedia.EXCERPT_RATE, abs=2)
    assert (made.report / "prototypes.html").exists() and (made.report / "distributions.png").stat().st_size > 1000


def test_per_label_bounds_the_rows_shown(made, tmp_path):
    res = run("report", made.csv, "--out", tmp_path / "r", "--per-label", "1")
    assert res.exit_code == 0, res.output
    header, rows = read_rows(made.csv)
    groups = {(r[header.index("environment")], r[header.index("label")]) for r in rows}
    shown = page_rows(tmp_path / "r")
    assert len(shown) == len(groups) < len(rows)
    margin = header.index("margin")
    for env, label in groups:  # the one shown is the group's least certain
        least = min(float(r[margin]) for r in rows if (r[header.index("environment")], r[header.index("label")]) == (env, label))
        (one,) = [s for s in shown if (s["env"], s["label"]) == (env, label)]
        assert one["margin"] == pytest.approx(least, abs=1e-6)
    assert "store</dt><dd>not given" in (tmp_path / "r" / "index.html").read_text()


def test_a_csv_missing_columns_is_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,environment,label\nx.wav,park,siren\n")
    res = run("report", bad, "--out", tmp_path / "r")
    assert res.exit_code == 1
    assert res.stderr.strip().count("\n") == 0 and "missing column(s) adaptation, tau, score, margin, error" in res.stderr
    assert "Traceback" not in res.output and not (tmp_path / "r").exists()
    res = run("report", tmp_path / "none.csv", "--out", tmp_path / "r")
    assert res.exit_code == 1 and "classification CSV not found" in res.stderr


def test_vanished_audio_is_listed_and_the_rest_shown(made, tmp_path):
    header, rows = read_rows(made.csv)
    gone = tmp_path / "moved.wav"
    shutil.copyfile(rows[0][0], gone)
    moved = [[str(gone)] + r[1:] if r[0] == rows[0][0] else r for r in rows]
    csv_path = write_rows(tmp_path / "moved.csv", header, moved)
    gone.unlink()
    res = run("report", csv_path, "--out", tmp_path / "r")
    assert res.exit_code == 3, res.output
    lost = sum(r[0] == str(gone) for r in moved)
    assert res.stderr.count("\n") == 1 and f"{gone}: audio file not found" in res.stderr
    assert f"report of {len(rows)} rows ({len(rows) - lost} shown, 1 files unavailable)" in res.stdout
    page = (tmp_path / "r" / "index.html").read_text()
    assert f"Audio unavailable ({lost} rows, 1 files)" in page and str(gone) in page
    assert len(page_rows(tmp_path / "r")) == len(rows) - lost


def test_hostile_labels_and_file_names_are_escaped(made, tmp_path):
    hostile_csv = with_hostile_row(made, tmp_path)
    res = run("report", hostile_csv, "--out", tmp_path / "r", "--store", made.store, "-p", "urban-tgap4")
    assert res.exit_code == 0, res.output
    page = (tmp_path / "r" / "index.html").read_text()
    assert HOSTILE_LABEL not in page and "<img src=x" not in page
    assert page.count("<script") == 3  # the two JSON blocks and the report's own script, nothing else
    meta = json.loads(re.search(r'<script type="application/json" id="report-meta">(.*?)</script>', page, re.S).group(1))
    assert re.fullmatch(r"proto-index-review:[0-9a-f]{32}", meta["storageKey"])
    assert "&lt;script&gt;alert(&quot;label&quot;)&lt;/script&gt;" in page  # in the counts table, as text
    row = next(r for r in page_rows(tmp_path / "r") if r["label"] == HOSTILE_LABEL)
    assert Path(row["path"]).name == HOSTILE_NAME and row["href"].startswith("file:///")
    assert "<" not in row["href"] and '"' not in row["href"]
    assert not any(HOSTILE_NAME in p.name for p in (tmp_path / "r").rglob("*"))


def test_an_existing_output_is_refused_and_an_interrupted_build_leaves_nothing(made, tmp_path, monkeypatch):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    res = run("report", made.csv, "--out", taken)
    assert res.exit_code == 1 and "already exists" in res.stderr
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]

    calls = []
    real = rbuild.write_media

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(rbuild, "write_media", interrupted)
    out = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        rbuild.build_report(rbuild.ReportOptions(made.csv, out))
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    monkeypatch.setattr(rbuild, "write_media", real)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert rbuild.build_report(rbuild.ReportOptions(made.csv, empty)).shown == 13  # an empty folder is fine
    assert (empty / "index.html").exists()


def test_prototypes_need_a_store(made, tmp_path):
    res = run("report", made.csv, "--out", tmp_path / "r", "-p", "urban-tgap4")
    assert res.exit_code == 1 and "--prototypes needs --store" in res.stderr


def test_a_per_file_classification_plays_each_whole_file(made, tmp_path):
    out_csv, report = tmp_path / "files.csv", tmp_path / "r"
    res = run("classify", "-p", "urban-tgap4", "--manifest", made.archive / "manifest.csv", "--out", out_csv,
              "--report", report, "--store", made.store, "-q")
    assert res.exit_code == 0, res.output
    shown = page_rows(report)
    assert len(shown) == 6 and all(r["start"] == "" and r["end"] == "" for r in shown)
    for r in shown:  # the whole recording, up to MAX_EXCERPT_S
        assert sf.info(report / r["audio"]).duration == pytest.approx(
            min(sf.info(r["path"]).duration, rmedia.MAX_EXCERPT_S), abs=1e-3)
        assert r["cut"] is False
    page = (report / "index.html").read_text()
    assert "only the winner's score: run <code>classify --all-scores</code> for the top three classes" in page


def test_relative_paths_are_read_from_the_audio_root(made, tmp_path):
    header, rows = read_rows(made.csv)
    relative = [[str(Path(r[0]).relative_to(made.archive))] + r[1:] for r in rows]
    csv_path = write_rows(tmp_path / "rel.csv", header, relative)
    res = run("report", csv_path, "--out", tmp_path / "lost")  # the current folder holds none of them
    assert res.exit_code == 3 and res.stderr.count("audio file not found") == len({r[0] for r in rows})
    res = run("report", csv_path, "--out", tmp_path / "r", "--audio-root", made.archive)
    assert res.exit_code == 0, res.output
    assert sorted(r["path"] for r in page_rows(tmp_path / "r")) == sorted(r[0] for r in rows)


def test_a_source_that_is_not_audio_is_listed_not_fatal(made, tmp_path):
    header, rows = read_rows(made.csv)
    fake = tmp_path / "notes.wav"
    fake.write_text("not audio at all\n")
    csv_path = write_rows(tmp_path / "bad.csv", header, rows + [[str(fake)] + rows[0][1:]])
    res = run("report", csv_path, "--out", tmp_path / "r")
    assert res.exit_code == 3 and res.stderr.count("\n") == 1 and f"{fake}: cannot decode audio" in res.stderr
    assert len(page_rows(tmp_path / "r")) == len(rows)
    assert "Audio unavailable (1 rows, 1 files)" in (tmp_path / "r" / "index.html").read_text()


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
    excerpts = sorted((tmp_path / "r" / "audio").glob("*.wav"))
    assert [sf.info(str(p)).duration for p in excerpts] == [2.0, 30.0]  # the long file: its first 30 s
    assert peak < 250, f"peak RSS {peak:.0f} MB for a {SPARSE_BYTES >> 20} MB file"
