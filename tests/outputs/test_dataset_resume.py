"""A parquet-dataset resume never mixes two runs: prototypes rebuilt, an environment or its tau changed
since, or inputs added are refused or start the dataset's completion over (issue "Tried as a hostile user would, again")."""
from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from cli_store import cli
from conftest import write
from fakes import BandEncoder

from proto_index import Store
from proto_index.errors import InvalidInput
from proto_index.outputs.partitioned import DONE_FILE, partition_folder
from proto_index.usecases.classify_dataset import DatasetOptions
from proto_index.options import PrototypeOptions

LABELS = ["siren", "dog bark", "drilling", "bird song"]


@pytest.fixture
def store(urban_store):
    return urban_store  # conftest's open store: urban zero-shot prototypes, airport (audio) and park (text)


@pytest.fixture
def items(tmp_path):
    """Six new clips over two environments."""
    new = tmp_path / "new"
    return [(write(new / f"n{i}.wav", [(200.0 + 150 * i, 0.5), (300.0, 0.2)], seed=50 + i), ("airport", "park")[i % 2])
            for i in range(6)]


def _rows(out: Path) -> int:
    return ds.dataset(out, format="parquet", partitioning="hive").count_rows()


def _interrupted(store, items, out, chunks_done=1):
    """A dataset run killed after ``chunks_done`` chunks of two inputs (as Ctrl-C would)."""
    real, calls = store.classify, []

    def dies(chunk, prototypes, **kwargs):
        calls.append(chunk)
        if len(calls) > chunks_done:
            raise KeyboardInterrupt
        return real(chunk, prototypes, **kwargs)

    store.classify = dies
    try:
        with pytest.raises(KeyboardInterrupt):
            store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out, files_per_chunk=2))
    finally:
        store.classify = real


def test_a_resume_after_the_prototypes_were_rebuilt_is_refused(tmp_path, store, items):
    out = tmp_path / "ds"
    _interrupted(store, items, out)
    assert _rows(out) == 2
    # same name, new content: TGAP centroids where the zero-shot set held text anchors
    store.build_prototypes("urban", PrototypeOptions(method="tgap", n=3, name="urban-zero-shot", replace=True))
    with pytest.raises(InvalidInput) as e:
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out, files_per_chunk=2))
    assert str(e.value) == (f"{out} holds a dataset of another classification run (the prototype vectors (the set "
                            "was rebuilt) differs); its rows would mix two runs: start over in a new folder "
                            "(or remove this one)")
    assert _rows(out) == 2 and not (out / DONE_FILE).exists()


def test_a_resume_after_an_environment_changed_is_refused_through_the_cli(tmp_path, store, items):
    out = tmp_path / "ds"
    _interrupted(store, items, out)
    store.close()
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["path", "environment"], *items])
    st = tmp_path / "store"
    cli("env", "add", "park", "--text", "busy road", "--replace", "--store", st)  # park's rows exist: refused
    said = cli("classify", "-p", "urban-zero-shot", "--manifest", manifest, "--store", st, "--out", out,
               "--format", "parquet-dataset", "-q", code=1)
    assert said.stderr.strip().splitlines() == [
        f"error: {out} holds rows of environment 'park' scored with another background or tau (it was changed "
        "since); its rows would mix two runs: start over in a new folder (or remove this one)"]
    assert _rows(out) == 2
    cli("env", "add", "park", "--text", "park", "--replace", "--store", st)  # back as it was: the resume goes on
    cli("classify", "-p", "urban-zero-shot", "--manifest", manifest, "--store", st, "--out", out,
        "--format", "parquet-dataset", "-q")
    assert _rows(out) == 6 and (out / DONE_FILE).exists()


def test_a_tau_change_of_an_environment_with_rows_is_refused(tmp_path, store, items):
    out = tmp_path / "ds"
    _interrupted(store, items, out)
    store.set_environment_tau("airport", audio=0.3)
    with pytest.raises(InvalidInput, match="rows of environment 'airport' scored with another background or tau"):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out))
    assert (out / partition_folder("airport") / "_proto_index_environment.json").is_file()


def test_a_rerun_that_adds_inputs_removes_success_first(tmp_path, store, items):
    out = tmp_path / "ds"
    store.classify_dataset(items[:2], "urban-zero-shot", DatasetOptions(out))
    assert (out / DONE_FILE).exists()
    seen = []
    real = store.classify

    def looks(chunk, prototypes, **kwargs):
        seen.append((out / DONE_FILE).exists())
        return real(chunk, prototypes, **kwargs)

    store.classify = looks
    _interrupted(store, items, out, chunks_done=1)  # adds inputs, then is killed
    assert seen == [False] and not (out / DONE_FILE).exists()
    store.classify = real
    report = store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out))
    assert (report.resumed, report.inputs) == (4, 2) and (out / DONE_FILE).exists()
    store.classify_dataset(items, "urban-zero-shot", DatasetOptions(out))  # nothing to add: stays complete
    assert (out / DONE_FILE).exists() and _rows(out) == 6
