"""--executor ray on a local Ray cluster: the same vectors as a local ingest; a killed driver, rerun, ends
with every file stored exactly once; classify --executor ray writes the usual CSV."""
import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import write
from fakes import BandEncoder
from ray_fakes import SLOW_FLAG
from ray_local import OBJECT_STORE, PLUGINS, corpus, stored_vectors, worker_env  # noqa: F401  (worker_env: autouse)
from store_checks import invariants
from typer.testing import CliRunner

from proto_index import EmbedOptions, Store
from proto_index.cli.app import app
from proto_index.outputs.partitioned import read_dataset
from proto_index.options import EnvironmentOptions, ExecutorOptions, PrototypeOptions

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.cluster

RAY = ExecutorOptions(kind="ray")


@pytest.fixture(scope="module")
def local_ray(worker_env):
    ray.init(num_cpus=2, object_store_memory=OBJECT_STORE, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_ray_ingest_stores_the_vectors_a_local_ingest_does(tmp_path, local_ray):
    files = corpus(tmp_path / "c", 10)
    write(files / "long.wav", [(900.0, 0.5)], seconds=25.0)  # three windows
    (files / "bad.wav").write_bytes(b"not audio")
    reports = {}
    for kind in ("local", "ray"):
        with Store.init(tmp_path / kind, model="fake-bands", encoder=BandEncoder()) as s:
            reports[kind] = s.ingest([files], executor=ExecutorOptions(kind=kind), options=EmbedOptions(batch_windows=3))
    assert (reports["ray"].added, reports["ray"].windows, len(reports["ray"].failed)) == (11, 13, 1)
    assert (reports["local"].added, reports["local"].windows) == (11, 13)
    assert reports["ray"].failed[0].path == files / "bad.wav"
    local, remote = stored_vectors(tmp_path / "local"), stored_vectors(tmp_path / "ray")
    assert local.keys() == remote.keys() and len(local) == 11
    for path in local:
        np.testing.assert_allclose(remote[path], local[path], atol=1e-6)
    assert invariants(tmp_path / "ray") == 13
    with Store.open(tmp_path / "ray", encoder=BandEncoder()) as s:  # rerun: unchanged files skipped unread
        again = s.ingest([files], executor=RAY)
    assert (again.added, again.skipped) == (0, 11)


def test_classify_with_the_ray_executor_writes_the_local_csv(tmp_path, local_ray, corpus_dir):
    store = tmp_path / "s"
    with Store.init(store, model="fake-bands", encoder=BandEncoder()) as s:
        s.ingest([corpus_dir])
        s.add_classes("urban", ["siren", "dog bark", "drilling", "bird song"])
        s.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
        s.add_environment("park", EnvironmentOptions(text="park"))
    new = corpus(tmp_path / "new", 4)
    runner = CliRunner()
    outs = {}
    for kind in ("local", "ray"):
        outs[kind] = tmp_path / f"{kind}.csv"
        result = runner.invoke(app, ["classify", *map(str, sorted(new.iterdir())), "-p", "urban-zero-shot",
                                     "--env", "park", "--store", str(store), "--out", str(outs[kind]), "-q",
                                     "--executor", kind], env={"PROTO_INDEX_PLUGINS": PLUGINS})
        assert result.exit_code == 0, result.output
    assert outs["ray"].read_text() == outs["local"].read_text()
    assert len(outs["ray"].read_text().splitlines()) == 5
    # a huge archive's form: a partitioned Parquet dataset, written as the Ray results arrive
    result = runner.invoke(app, ["classify", *map(str, sorted(new.iterdir())), "-p", "urban-zero-shot", "--env", "park",
                                 "--store", str(store), "--out", str(tmp_path / "ds"), "-q", "--executor", "ray",
                                 "--format", "parquet-dataset"], env={"PROTO_INDEX_PLUGINS": PLUGINS})
    assert result.exit_code == 0, result.output
    table = read_dataset(tmp_path / "ds")
    with open(outs["local"], newline="") as f:
        expected = sorted(tuple(r[k] for k in ("path", "environment", "label", "score")) for r in csv.DictReader(f))
    assert sorted((r["path"], r["environment"], r["label"], f"{r['score']:.6f}") for r in table.to_pylist()) == expected
    assert [p.name for p in (tmp_path / "ds").glob("environment=*")] == ["environment=park"]


def test_unknown_executor_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["ingest", str(tmp_path), "--executor", "spark"])
    assert result.exit_code == 2 and "spark" in result.output


def test_killed_driver_rerun_completes_the_store_with_nothing_twice(tmp_path, local_ray):
    n = 30
    files = corpus(tmp_path / "c", n, seconds=1.0)
    store = tmp_path / "s"
    Store.init(store, model="fake-bands-slow", encoder=BandEncoder()).close()
    cmd = [sys.executable, "-m", "proto_index.cli.app", "ingest", str(files), "--store", str(store), "-q",
           "--executor", "ray", "--commit-windows", "2", "--batch-size", "1"]
    env = {**os.environ, "PROTO_INDEX_RAY_ADDRESS": local_ray}
    SLOW_FLAG.write_text("0.5")  # 0.5 s a window: the kill lands mid-ingest
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        committed = 0
        deadline = time.monotonic() + 90
        while committed < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                with sqlite3.connect(f"file:{store / 'catalog.sqlite'}?mode=ro", uri=True, timeout=1) as db:
                    committed = db.execute("SELECT count(*) FROM recordings").fetchone()[0]
            except sqlite3.OperationalError:
                pass
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    finally:
        SLOW_FLAG.unlink(missing_ok=True)
    before = invariants(store)
    assert 4 <= before < n
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"added {n - before} files" in rerun.stdout and f"skipped {before} already stored" in rerun.stdout
    assert invariants(store) == n
