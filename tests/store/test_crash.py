"""kill -9 a real `proto-index ingest` process at random moments; the store must always recover."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from suite_paths import TESTS
from conftest import write
from fakes import BandEncoder
from store_checks import invariants

from proto_index import Store

pytestmark = pytest.mark.stress  # dozens of CLI processes killed mid-ingest

N_FILES = 80


def ingest_cmd(store: Path, corpus: Path) -> list[str]:
    return [sys.executable, "-m", "proto_index.cli.app", "ingest", str(corpus), "--store", str(store),
            "--quiet", "--batch-size", "4", "--commit-windows", "4"]


def env() -> dict:
    return {**os.environ, "PROTO_INDEX_PLUGINS": "fakes", "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def corpus_and_store(tmp_path: Path) -> tuple[Path, Path]:
    """N_FILES distinct 3 s tones, and an empty store bound to the fake encoder."""
    corpus = tmp_path / "corpus"
    for i in range(N_FILES):
        write(corpus / f"c{i:03d}.wav", [(200.0 + 37 * i, 0.5)], seconds=3.0, seed=i)
    store = tmp_path / "store"
    Store.init(store, model="fake-bands", encoder=BandEncoder()).close()
    return corpus, store


def test_ingest_survives_kill_9_at_random_moments(tmp_path):
    corpus, store = corpus_and_store(tmp_path)

    timing = tmp_path / "timing"
    Store.init(timing, model="fake-bands", encoder=BandEncoder()).close()
    t0 = time.monotonic()
    subprocess.run(ingest_cmd(timing, corpus), env=env(), capture_output=True, check=True)
    duration = time.monotonic() - t0  # includes interpreter start-up, where kills must be harmless too
    rng = random.Random(1234)
    committed, kills, fresh = 0, 0, 0
    while kills < 12:
        proc = subprocess.Popen(ingest_cmd(store, corpus), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 1.0) * duration)
        if proc.poll() is not None:  # finished before the kill: check it, then start over on a fresh store
            assert fresh < 20, "the kill should land during most runs"  # bounds the loop, not its time
            proc.communicate()
            assert proc.returncode == 0
            assert invariants(store) == N_FILES
            fresh += 1
            store = tmp_path / f"fresh{fresh}"
            Store.init(store, model="fake-bands", encoder=BandEncoder()).close()
            committed = 0
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        kills += 1
        now = invariants(store)  # recovers as a rerun's writer would, then checks every invariant
        assert now >= committed, "a kill must never lose committed recordings"
        committed = now
        print(f"kill {kills}: {committed} recordings committed")
    final = subprocess.run(ingest_cmd(store, corpus), env=env(), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert f"added {N_FILES - committed} files" in final.stdout and f"skipped {committed} already stored" in final.stdout
    assert invariants(store) == N_FILES


def test_readers_during_an_ingest_always_see_a_consistent_index(tmp_path):
    corpus, store = corpus_and_store(tmp_path)
    cmd = ingest_cmd(store, corpus) + ["--publish-windows", "8"]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    while proc.poll() is None:
        with Store.open(store, encoder=BandEncoder()) as reader:  # a fresh reader each time
            n = reader.info()["counts"]["windows"]
            hits = reader.search("siren", k=5)
            index = reader._storage.index()
            assert index.ntotal >= n  # every window committed before the reader opened is searchable
            assert all(Path(h.path).parent == corpus for h in hits)
            seen.append(n)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert len(set(seen)) >= 3, f"the readers should have seen the corpus grow: {seen}"
    assert invariants(store) == N_FILES
