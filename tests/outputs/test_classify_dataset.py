"""classify --format parquet-dataset: a Hive-partitioned Parquet dataset (one folder per environment,
parts of at most --rows-per-file rows) whose rows are the CSV's of the same run; complete parts only
after a crash, and a rerun that resumes with nothing twice; other runs' folders refused."""
import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import write
from fakes import BandEncoder
from typer.testing import CliRunner

from proto_index import ScoringOptions, Store
from proto_index.cli.app import app
from proto_index.errors import InvalidInput, StoreLocked
from proto_index.outputs.exports import _cell, _time_cell
from proto_index.outputs.partitioned import DONE_FILE, RUN_FILE, PartitionedWriter, partition_folder
from proto_index.options import DatasetOptions, EnvironmentOptions, PrototypeOptions

LABELS = ["siren", "dog bark", "drilling", "bird song"]
ODD_ENV = "a/../b c%2F"  # a name that must stay one folder, and come back as itself


@pytest.fixture
def store(tmp_path, corpus_dir, background_dir):
    s = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    s.ingest([corpus_dir])
    s.add_classes("urban", LABELS)
    s.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    s.add_environment("airport", EnvironmentOptions(text="airport", audio=[background_dir / "airport"]))
    s.add_environment(ODD_ENV, EnvironmentOptions(text="park"))
    yield s
    s.close()


@pytest.fixture
def manifest(tmp_path, corpus_dir) -> Path:
    """7 new clips (one 25 s: three windows), an unreadable file, and two stored clips; two environments."""
    new = tmp_path / "new"
    for i in range(6):
        write(new / f"n{i}.wav", [(200.0 + 150 * i, 0.5), (300.0, 0.2)], seconds=2.0, seed=50 + i)
    write(new / "long.wav", [(900.0, 0.5)], seconds=25.0)
    (new / "bad.wav").write_bytes(b"not audio")
    files = sorted(new.iterdir()) + sorted(corpus_dir.iterdir())[:2]
    out = tmp_path / "manifest.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "environment"])
        for i, p in enumerate(files):
            w.writerow([p, ("airport", ODD_ENV)[i % 2]])
    return out


def classify_cli(store_path, manifest, out, fmt, *extra, code=3):
    result = CliRunner().invoke(app, ["classify", "-p", "urban-zero-shot", "--manifest", str(manifest), "--store",
                                      str(store_path), "--out", str(out), "--format", fmt, "--all-scores", "-q", *extra])
    assert result.exit_code == code, result.output  # 3: bad.wav failed
    return result.output


def read_back(out: Path) -> pa.Table:
    partitioning = ds.partitioning(pa.schema([("environment", pa.string())]), flavor="hive")
    return ds.dataset(out, format="parquet", partitioning=partitioning).to_table()


def cells(table: pa.Table) -> list[tuple]:
    """Rows as the CSV writes its cells (6-decimal numbers, empty for none), sorted."""
    names = table.column_names
    return sorted(tuple(_time_cell(r[n]) if n in ("start_s", "end_s") else _cell(r[n]) for n in names)
                  for r in table.to_pylist())


def csv_cells(path: Path, names: list[str]) -> list[tuple]:
    with open(path, newline="", encoding="utf-8") as f:
        return sorted(tuple(row[n] for n in names) for row in csv.DictReader(f))


def part_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


@pytest.mark.parametrize("per_window", [False, True])
def test_the_dataset_holds_the_csv_rows_partitioned_by_environment(tmp_path, store, manifest, per_window):
    store.close()
    extra = ["--per-window"] if per_window else []
    classify_cli(tmp_path / "store", manifest, tmp_path / "run.csv", "csv", *extra)
    said = classify_cli(tmp_path / "store", manifest, tmp_path / "ds", "parquet-dataset", *extra)
    assert "classified 9 inputs" in said and "1 failed" in said
    out = tmp_path / "ds"
    table = read_back(out)
    with open(tmp_path / "run.csv", newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    # the CSV's columns, as the dataset names them (per-class scores: "score:<label>"; file-level
    # rows have no start_s/end_s column in the CSV, null in the dataset)
    as_parquet = [h if h in table.column_names else f"score:{h}" for h in header]
    assert set(table.column_names) - set(as_parquet) == (set() if per_window else {"start_s", "end_s"})
    assert cells(table.select(as_parquet)) == csv_cells(tmp_path / "run.csv", header)
    assert table.num_rows == (12 if per_window else 10)
    assert sorted(p.name for p in out.iterdir()) == sorted([DONE_FILE, RUN_FILE, partition_folder("airport"),
                                                            partition_folder(ODD_ENV)])
    assert partition_folder(ODD_ENV) == "environment=a%2F..%2Fb%20c%252F"
    for part in part_files(out):  # each part's rows belong to the folder it is in
        envs = set(pq.read_table(part, columns=["environment"]).column(0).to_pylist())
        assert [partition_folder(e) for e in envs] == [part.parent.name]
    assert set(table.column("environment").to_pylist()) == {"airport", ODD_ENV}


def test_parts_hold_at_most_rows_per_file_and_never_split_an_input(tmp_path, store, manifest):
    store.close()
    out = tmp_path / "ds"
    classify_cli(tmp_path / "store", manifest, out, "parquet-dataset", "--per-window", "--rows-per-file", "2")
    sizes = {}
    for part in part_files(out):
        paths = pq.read_table(part, columns=["path"]).column(0).to_pylist()
        sizes[part] = len(paths)
        assert len(paths) <= 2 or set(paths) == {str(manifest.parent / "new" / "long.wav")}  # 3 windows, one input
    seen = [p for part in part_files(out) for p in dict.fromkeys(pq.read_table(part, columns=["path"]).column(0).to_pylist())]
    assert len(seen) == len(set(seen)) == 10  # every input in exactly one part
    assert sum(sizes.values()) == 12


def test_a_crash_leaves_complete_parts_and_a_rerun_resumes_with_nothing_twice(tmp_path, store, manifest):
    out = tmp_path / "ds"
    items = [(r["path"], r["environment"]) for r in csv.DictReader(open(manifest))]
    calls = []
    real = store.classify

    def dies_on_the_third_chunk(chunk, prototypes, **kwargs):
        calls.append(len(chunk))
        if len(calls) == 3:
            raise KeyboardInterrupt  # like Ctrl-C (or a kill) in the middle of the run
        return real(chunk, prototypes, **kwargs)

    store.classify = dies_on_the_third_chunk
    with pytest.raises(KeyboardInterrupt):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out, files_per_chunk=2, all_scores=True))
    assert not (out / DONE_FILE).exists()
    first = read_back(out)
    assert first.num_rows == 4  # two complete chunks; nothing of the third
    # a part that was being written when the process was killed: a hidden temp file, which readers skip
    stray = out / partition_folder("airport") / ".part-000099-dead.parquet.123.beef.tmp"
    stray.write_bytes(b"PAR1 half a part")
    assert read_back(out).num_rows == 4

    store.classify = real
    report = store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out, files_per_chunk=2, all_scores=True))
    assert (report.resumed, report.inputs, report.rows, report.failed) == (4, 6, 6, 0)  # bad.wav: in the first chunk
    assert (out / DONE_FILE).exists()
    whole = read_back(out)
    keys = sorted(zip(whole.column("path").to_pylist(), whole.column("environment").to_pylist()))
    assert keys == sorted((str(Path(p).absolute()), e) for p, e in items)  # every input once
    store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out, all_scores=True))  # complete: a no-op
    assert read_back(out).num_rows == 10

    single = tmp_path / "single"
    store.classify_dataset(items, "urban-zero-shot", DatasetOptions(single, all_scores=True))
    assert cells(read_back(single)) == cells(whole)  # resumed == classified in one go


def test_other_runs_folders_and_tau_auto_are_refused_before_any_work(tmp_path, store, manifest):
    items = [(r["path"], r["environment"]) for r in csv.DictReader(open(manifest))]
    out = tmp_path / "ds"
    store.classify_dataset(items[:2], "urban-zero-shot", DatasetOptions(out))
    with pytest.raises(InvalidInput, match="another classification run"):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out), scoring=ScoringOptions(tau=0.3))
    with pytest.raises(InvalidInput, match="another classification run"):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out, all_scores=True))
    with pytest.raises(InvalidInput, match="another classification run"):  # drift changes the rows too
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out), scoring=ScoringOptions(drift=True))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty and holds no earlier classification dataset"):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(foreign))
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]
    with pytest.raises(InvalidInput, match="tau auto"):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(tmp_path / "auto"), scoring=ScoringOptions(tau="auto"))
    assert not (tmp_path / "auto").exists()


def test_a_second_run_into_a_dataset_being_written_is_refused(tmp_path, store, manifest):
    items = [(r["path"], r["environment"]) for r in csv.DictReader(open(manifest))]
    out = tmp_path / "ds"
    store.classify_dataset(items[:2], "urban-zero-shot", DatasetOptions(out))
    settings = json.loads((out / RUN_FILE).read_text())["settings"]
    with PartitionedWriter.open(out, settings):  # the first run, still writing
        with pytest.raises(StoreLocked, match="another classification run is writing"):
            store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out))
    assert read_back(out).num_rows == 2


def test_a_dataset_format_cli_error_is_one_line(tmp_path, store, manifest):
    store.close()
    result = CliRunner().invoke(app, ["classify", "-p", "urban-zero-shot", "--manifest", str(manifest), "--store",
                                      str(tmp_path / "store"), "--out", str(tmp_path / "ds"), "--format",
                                      "parquet-dataset", "--tau", "auto", "-q"])
    assert result.exit_code == 1 and "tau auto" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ds").exists()
    result = CliRunner().invoke(app, ["classify", "-p", "urban-zero-shot", "--manifest", str(manifest), "--store",
                                      str(tmp_path / "store"), "--out", str(tmp_path / "ds"), "--format",
                                      "parquet-dataset", "--transductive", "-q"])
    assert result.exit_code == 1 and "transductive adaptation works over all" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "ds").exists()


def test_rows_per_file_without_the_dataset_format_is_a_usage_error(tmp_path, store, manifest):
    store.close()
    result = CliRunner().invoke(app, ["classify", "-p", "urban-zero-shot", "--manifest", str(manifest), "--store",
                                      str(tmp_path / "store"), "--out", str(tmp_path / "x.csv"), "--rows-per-file", "5"])
    assert result.exit_code == 2 and "--rows-per-file" in result.output and not (tmp_path / "x.csv").exists()


def test_an_environment_name_too_long_for_a_folder_is_refused_before_any_work(tmp_path, store, manifest):
    long_name = "é" * 80  # 80 characters, 480 bytes percent-encoded
    store.add_environment(long_name, EnvironmentOptions(text="park"))
    items = [(r["path"], long_name) for r in csv.DictReader(open(manifest))]
    calls = []
    store.classify = lambda *a, **k: calls.append(a)
    with pytest.raises(InvalidInput, match="environment name too long for a partition folder"):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(tmp_path / "ds"))
    assert calls == [] and not (tmp_path / "ds").exists()


def test_a_planted_link_or_file_in_the_dataset_is_refused(tmp_path, store, manifest):
    items = [(r["path"], r["environment"]) for r in csv.DictReader(open(manifest))]
    out = tmp_path / "ds"
    store.classify_dataset(items[:1], "urban-zero-shot", DatasetOptions(out))  # airport only
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / partition_folder(ODD_ENV)).symlink_to(elsewhere)
    with pytest.raises(InvalidInput, match="not a real folder"):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out))
    assert list(elsewhere.iterdir()) == []
