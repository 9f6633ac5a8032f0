"""classify/export formats, read back with parsers written here (not the exporter's own code); classify's CSV
round trip through the library's reader (read_classification)."""
import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_store import cli, store_with_classes
from conftest import CLASS_FREQS, write

from proto_index.errors import InvalidInput
from proto_index.outputs.exports import AudioFacts, ExportRow, export, read_classification, write_result
from proto_index.usecases.classify import Classification, ClassifiedFile

RAVEN_HEADER = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)",
                "Begin File", "File Offset (s)", "Begin Path", "Label", "Score", "Margin", "Environment", "Prototypes",
                "Adaptation", "Tau"]


@pytest.fixture
def run(tmp_path, corpus_dir):
    """A store with zero-shot prototypes, and an archive: a 25 s recording (three windows: siren,
    dog bark, drilling) and two short clips, one with an awkward name."""
    store = store_with_classes(tmp_path, corpus_dir, CLASS_FREQS)
    cli("prototypes", "build", "urban", "--store", store)
    cli("env", "add", "park", "--text", "park", "--tau-text", "0.25", "--store", store)
    archive = tmp_path / "archive"
    long = archive / "long.wav"
    long.parent.mkdir()
    sr = 48_000
    parts = [write(tmp_path / f"p{i}.wav", [(CLASS_FREQS[lbl], 0.5)], seconds=s, sr=sr, seed=i)
             for i, (lbl, s) in enumerate((("siren", 10), ("dog bark", 10), ("drilling", 5)))]
    sf.write(long, np.concatenate([sf.read(p, dtype="float32")[0] for p in parts]), sr, subtype="PCM_16")
    short = write(archive / "b.wav", [(CLASS_FREQS["bird song"], 0.5)], seconds=2.5)
    odd = write(archive / "weird\tname ü;rm -rf.wav", [(CLASS_FREQS["siren"], 0.5)], seconds=3.0)
    return store, [long, short, odd]


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def duration(path) -> float:
    info = sf.info(str(path))
    return info.frames / info.samplerate


def test_per_window_exports_read_back(tmp_path, run):
    store, files = run
    base = tmp_path / "windows.csv"
    cli("classify", *files, "-p", "urban-zero-shot", "--env", "park", "--per-window", "--out", base, "--store", store, "-q")
    rows = read_csv(base)
    assert [(Path(r["path"]).name, r["start_s"], r["end_s"], r["label"]) for r in rows] == [
        ("long.wav", "0", "10", "siren"), ("long.wav", "10", "20", "dog bark"), ("long.wav", "20", "25", "drilling"),
        ("b.wav", "0", "2.5", "bird song"), ("weird\tname ü;rm -rf.wav", "0", "3", "siren"),
    ]
    assert {(r["environment"], r["prototypes"], r["tau"]) for r in rows} == {("park", "urban-zero-shot", "0.250000")}

    # Raven, straight from classify: one tab-separated table for the run
    raven = tmp_path / "run.selections.txt"
    cli("classify", *files, "-p", "urban-zero-shot", "--env", "park", "--per-window", "--format", "raven", "--out", raven,
        "--store", store, "-q")
    lines = raven.read_text(encoding="utf-8").splitlines()
    table = [line.split("\t") for line in lines]
    assert table[0] == RAVEN_HEADER and all(len(t) == len(RAVEN_HEADER) for t in table)
    sel = [dict(zip(table[0], t)) for t in table[1:]]
    assert [s["Selection"] for s in sel] == ["1", "2", "3", "4", "5"]
    assert {(s["View"], s["Channel"], s["Low Freq (Hz)"], s["High Freq (Hz)"]) for s in sel} == {("Spectrogram 1", "1", "0", "24000")}
    by_name = {f.name.replace("\t", " "): f for f in files}
    timeline = 0.0  # files laid end to end in sorted path order
    starts = {}
    for f in sorted(files, key=str):
        starts[f.name.replace("\t", " ")] = timeline
        timeline += duration(f)
    expected = {(Path(r["path"]).name.replace("\t", " "), float(r["start_s"]), r["label"]) for r in rows}
    got = set()
    for s in sel:
        name, offset = s["Begin File"], float(s["File Offset (s)"])
        begin, end = float(s["Begin Time (s)"]), float(s["End Time (s)"])
        assert name in by_name and s["Begin Path"] == str(by_name[name]).replace("\t", " ")
        assert 0 <= offset < offset + (end - begin) <= duration(by_name[name]) + 1e-6
        assert begin == pytest.approx(starts[name] + offset, abs=1e-6)
        assert (s["Environment"], s["Prototypes"], s["Adaptation"], s["Tau"]) == ("park", "urban-zero-shot", "text", "0.250000")
        got.add((name, offset, s["Label"]))
    assert got == expected

    # Audacity: one label track per recording, safe names, a mapping file
    aud = tmp_path / "aud"
    assert "wrote 5 rows as audacity" in cli("export", base, "--format", "audacity", "--out", aud).stdout
    mapping = read_csv(aud / "files.csv")
    assert sorted(m["path"] for m in mapping) == sorted(str(f) for f in files)
    assert sorted(p.name for p in aud.iterdir()) == sorted(["files.csv"] + [m["label_track"] for m in mapping])
    for m in mapping:
        assert re.fullmatch(r"\d{4}_[A-Za-z0-9._-]+\.txt", m["label_track"]), m["label_track"]
        with open(aud / m["label_track"], newline="", encoding="utf-8") as f:
            track = list(csv.reader(f, delimiter="\t"))
        assert all(len(t) == 3 for t in track)
        assert all(0 <= float(a) < float(b) <= duration(m["path"]) + 1e-6 for a, b, _ in track)
        want = [(float(r["start_s"]), float(r["end_s"]), r["label"]) for r in rows if r["path"] == m["path"]]
        assert [(float(a), float(b), lbl) for a, b, lbl in track] == want
        assert (m["environment"], m["prototypes"], m["tau"]) == ("park", "urban-zero-shot", "0.250000")

    # JSON Lines and Parquet hold the CSV's rows
    as_csv = [{k: (None if v == "" else v) for k, v in r.items()} for r in rows]
    num = ("start_s", "end_s", "tau", "score", "margin")

    def normalised(records):
        return [{k: (float(v) if k in num and v is not None else v) for k, v in rec.items()} for rec in records]

    jl = tmp_path / "w.jsonl"
    cli("export", base, "--format", "jsonl", "--out", jl)
    from_json = [json.loads(line) for line in jl.read_text(encoding="utf-8").splitlines()]
    assert normalised(from_json) == normalised(as_csv)
    pq = pytest.importorskip("pyarrow.parquet")
    pqf = tmp_path / "w.parquet"
    cli("export", base, "--format", "parquet", "--out", pqf)
    table = pq.read_table(pqf)
    assert table.schema.field("start_s").type == "double" and table.schema.field("label").type == "string"
    assert normalised(table.to_pylist()) == normalised(as_csv)


def test_file_level_rows_span_the_whole_file(tmp_path, run):
    store, files = run
    base = tmp_path / "files.csv"
    cli("classify", *files[1:], "-p", "urban-zero-shot", "--env", "park", "--all-scores", "--out", base, "--store", store, "-q")
    aud = tmp_path / "aud"
    cli("export", base, "--format", "audacity", "--out", aud)
    tracks = {m["path"]: (aud / m["label_track"]).read_text().splitlines() for m in read_csv(aud / "files.csv")}
    assert tracks == {str(files[1]): ["0\t2.5\tbird song"], str(files[2]): ["0\t3\tsiren"]}
    # the per-class score columns come along in parquet
    pq = pytest.importorskip("pyarrow.parquet")
    cli("export", base, "--format", "parquet", "--out", tmp_path / "f.parquet")
    t = pq.read_table(tmp_path / "f.parquet").to_pylist()
    assert [round(r["score:bird song"], 6) for r in t] == [float(r["bird song"]) for r in read_csv(base)]


def row(path, start, end, label="siren"):
    return ExportRow(path, start, end, "park", "set", "text", 0.2, label, 0.5, 0.1, None)


class Crash:
    def __str__(self):
        raise RuntimeError("killed mid-write")


def test_an_interrupted_export_leaves_nothing_at_the_output_path(tmp_path):
    facts = lambda p: AudioFacts(30.0, 48_000)  # noqa: E731
    rows = [row("a.wav", 0, 10), ExportRow("b.wav", 0, 10, "park", "set", Crash(), 0.2, "siren", 0.5, 0.1, None)]
    for fmt in ("raven", "csv"):
        out = tmp_path / f"t.{fmt}"
        with pytest.raises(RuntimeError, match="killed mid-write"):
            export(rows, out, fmt, facts=facts)
        assert list(tmp_path.iterdir()) == []
    out = tmp_path / "t.txt"
    out.write_text("earlier table\n")
    with pytest.raises(RuntimeError):
        export(rows, out, "raven", facts=facts)
    assert out.read_text() == "earlier table\n" and list(tmp_path.iterdir()) == [out]
    export(rows[:1], out, "raven", facts=facts)
    assert out.read_text().count("\n") == 2 and list(tmp_path.iterdir()) == [out]


def test_unreadable_recordings_are_named_in_one_line(tmp_path):
    with pytest.raises(InvalidInput, match=r"^2 recording\(s\) cannot be read for their duration: \S*nowhere.wav: cannot open file: No such file or directory; \S*/x: cannot open"):
        export([row(str(tmp_path / "nowhere.wav"), 0, 10), row(str(tmp_path / "x"), None, None)], tmp_path / "o.txt", "raven")
    assert list(tmp_path.iterdir()) == []


def test_audacity_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(InvalidInput, match="not empty and holds no earlier label tracks"):
        export([row("a.wav", 0, 10)], tmp_path, "audacity", facts=lambda p: AudioFacts(30.0, 48_000))
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_bad_classification_csv_and_format(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,score\nx.wav,1\n")
    out = cli("export", bad, "--format", "raven", "--out", tmp_path / "o.txt", code=1)
    assert "not a classification CSV (missing column(s) environment, label)" in out.stderr and "Traceback" not in out.stderr
    nan = tmp_path / "nan.csv"
    nan.write_text("path,environment,label,score\nx.wav,park,siren,nan\n")
    assert "nan.csv line 2: 'nan' is not a finite number" in cli("export", nan, "--format", "jsonl", "--out", tmp_path / "o.jsonl", code=1).stderr
    cli("export", nan, "--format", "xls", "--out", tmp_path / "o", code=1)
    assert not (tmp_path / "o.txt").exists() and not (tmp_path / "o.jsonl").exists()


def test_classify_checks_the_output_of_each_format_first(tmp_path, run):
    store, files = run
    args = ["classify", *files[1:], "-p", "urban-zero-shot", "--env", "park", "--store", store, "-q"]
    aud = tmp_path / "tracks"  # a folder that classify creates
    assert f"-> {aud}" in cli(*args, "--format", "audacity", "--out", aud).stdout
    assert sorted(p.name for p in aud.iterdir()) == ["0001_b.txt", "0002_weird_name_rm_-rf.txt", "files.csv"]
    missing = cli(*args, "--format", "raven", "--out", tmp_path / "nowhere" / "t.txt", code=1).stderr
    assert "the folder of the output file does not exist" in missing
    assert "--report reads the classification CSV" in cli(*args, "--format", "raven", "--out", tmp_path / "t.txt",
                                                          "--report", tmp_path / "r", code=2).stderr
    cli(*args, "--format", "xls", "--out", tmp_path / "t.xls", code=2)
    assert not (tmp_path / "t.txt").exists() and not (tmp_path / "r").exists()


KALEIDOSCOPE_HEADER = ["INDIR", "FOLDER", "IN FILE", "CHANNEL", "OFFSET", "DURATION", "TOP1MATCH", "TOP1DIST", "MANUAL ID",
                       "MARGIN", "ENVIRONMENT", "PROTOTYPES", "ADAPTATION", "TAU", "PATH"]


def read_kaleidoscope(path):
    """The rows of a Kaleidoscope CSV, by the csv module alone; the header checked."""
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    return table[0], [dict(zip(table[0], t)) for t in table[1:]]


def test_kaleidoscope_reads_back_per_window_and_per_file(tmp_path, run):
    store, files = run
    files = [*files, write(tmp_path / "archive" / "deeper" / "c.wav", [(CLASS_FREQS["drilling"], 0.5)], seconds=4.0)]
    args = ["-p", "urban-zero-shot", "--env", "park", "--store", store, "-q"]
    base = tmp_path / "windows.csv"
    cli("classify", *files, *args, "--per-window", "--out", base)
    kal = tmp_path / "windows.kaleidoscope.csv"
    cli("classify", *files, *args, "--per-window", "--format", "kaleidoscope", "--out", kal)
    header, got = read_kaleidoscope(kal)
    assert header == KALEIDOSCOPE_HEADER
    want = read_csv(base)
    assert len(got) == len(want) == 6
    archive = str(tmp_path / "archive")
    assert {g["INDIR"] for g in got} == {archive}
    assert sorted({(g["FOLDER"], g["IN FILE"]) for g in got}) == [
        ("", "b.wav"), ("", "long.wav"), ("", "weird\tname ü;rm -rf.wav"), ("deeper", "c.wav")]
    # per window: the recording, offset, duration, label and score of each row of the CSV, in path then time order
    assert [(os.path.join(g["INDIR"], g["FOLDER"], g["IN FILE"]), float(g["OFFSET"]), float(g["DURATION"]), g["TOP1MATCH"],
             g["TOP1DIST"], g["MARGIN"], g["PATH"]) for g in got] == sorted(
        (w["path"], float(w["start_s"]), float(w["end_s"]) - float(w["start_s"]), w["label"], w["score"], w["margin"], w["path"])
        for w in want)
    assert [(g["OFFSET"], g["DURATION"]) for g in got if g["IN FILE"] == "long.wav"] == [("0", "10"), ("10", "10"), ("20", "5")]
    assert {(g["CHANNEL"], g["MANUAL ID"], g["ENVIRONMENT"], g["PROTOTYPES"], g["ADAPTATION"], g["TAU"]) for g in got} == {
        ("0", "", "park", "urban-zero-shot", "text", "0.250000")}

    # per file, through `export`, with a score column per class: one row over each whole file
    per_file = tmp_path / "files.csv"
    cli("classify", *files, *args, "--all-scores", "--out", per_file)
    cli("export", per_file, "--format", "kaleidoscope", "--out", tmp_path / "files.kaleidoscope.csv")
    header, got = read_kaleidoscope(tmp_path / "files.kaleidoscope.csv")
    assert header == KALEIDOSCOPE_HEADER + [f"score:{lbl}" for lbl in CLASS_FREQS]
    rows = {r["path"]: r for r in read_csv(per_file)}
    assert len(got) == len(rows) == 4
    for g in got:
        r = rows[os.path.join(g["INDIR"], g["FOLDER"], g["IN FILE"])]
        assert (g["OFFSET"], float(g["DURATION"])) == ("0", pytest.approx(duration(r["path"]), abs=1e-6))
        assert (g["TOP1MATCH"], g["TOP1DIST"]) == (r["label"], r["score"])
        assert [g[f"score:{lbl}"] for lbl in CLASS_FREQS] == [r[lbl] for lbl in CLASS_FREQS]


def test_kaleidoscope_cells_are_safe_for_spreadsheets_and_names_that_are_not_utf8(tmp_path):
    facts = lambda p: AudioFacts(30.0, 48_000)  # noqa: E731
    # the folder and file names hold the bytes 0xFF and 0xFE: not UTF-8
    rows = [ExportRow("file:///data/m%FF/x%FE.wav", 3.0, 6.0, "park", "=set", "text", 0.2, "@SUM(1)", 0.5, 0.1, None),
            ExportRow("/data/=calc/a.wav", None, None, "park", "=set", "text", 0.2, "siren", 0.25, 0.05, None)]
    out = export(rows, tmp_path / "k.csv", "kaleidoscope", facts=facts)
    header, got = read_kaleidoscope(out)
    assert header == KALEIDOSCOPE_HEADER
    assert [(g["INDIR"], g["FOLDER"], g["IN FILE"], g["OFFSET"], g["DURATION"], g["TOP1MATCH"], g["PROTOTYPES"], g["PATH"])
            for g in got] == [
        ("/data", "'=calc", "a.wav", "0", "30", "siren", "'=set", "/data/=calc/a.wav"),
        ("/data", "m%FF", "x%FE.wav", "3", "3", "'@SUM(1)", "'=set", "file:///data/m%FF/x%FE.wav"),
    ]


def test_write_result_round_trips_with_all_scores(tmp_path):
    result = Classification(
        labels=["siren", "dog bark"],
        files=[ClassifiedFile(Path("/a/x.wav"), "park", "text", 0.2, "siren", 0.5, 0.25, np.array([0.5, 0.25])),
               ClassifiedFile(Path("/a/y.wav"), "park", "text", 0.2, error="cannot decode")],
        prototypes="urban-zero-shot",
    )
    out = tmp_path / "labels.csv"
    assert write_result(result, out, "csv", all_scores=True) == out
    with open(out, newline="") as f:
        header = next(csv.reader(f))
    assert header[-2:] == ["siren", "dog bark"]
    rows, labels = read_classification(out)
    assert labels == ["siren", "dog bark"]
    assert [(r.path, r.label, r.score, r.margin, r.tau, r.error) for r in rows] == [
        ("/a/x.wav", "siren", 0.5, 0.25, 0.2, None), ("/a/y.wav", None, None, None, 0.2, "cannot decode")]
    assert rows[0].scores == {"siren": 0.5, "dog bark": 0.25}
    assert [p.name for p in tmp_path.iterdir()] == ["labels.csv"]  # no temporary file left
    write_result(result, out)
    assert read_classification(out)[1] == []  # without all_scores: no per-class columns
