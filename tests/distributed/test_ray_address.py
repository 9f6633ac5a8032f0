"""--executor ray joins only the cluster it is given: a RAY_ADDRESS planted in the environment or a
running Ray's address file never captures a run (issue "Tried as a hostile user would, again")."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import write
from suite_paths import TESTS

from proto_index.distributed import ray_executor
from proto_index.options import RAY_ADDRESS_ENV, ExecutorOptions


def _dead_address() -> str:
    """A loopback host:port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


class _RecordingRay:
    def __init__(self):
        self.calls = []

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.calls.append(kwargs)


@pytest.fixture
def recorded_ray(monkeypatch):
    fake = _RecordingRay()
    monkeypatch.setattr(ray_executor, "_ray", lambda: fake)
    monkeypatch.delenv(RAY_ADDRESS_ENV, raising=False)
    return fake


def test_ray_without_an_address_starts_a_private_instance_whatever_ray_address_says(recorded_ray, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", _dead_address())
    ray_executor.connect(ExecutorOptions(kind="ray"))
    assert [c["address"] for c in recorded_ray.calls] == ["local"]


def test_ray_joins_only_the_address_given(recorded_ray, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.9.9.9:6379")
    ray_executor.connect(ExecutorOptions(kind="ray", address="127.0.0.1:6379"))
    monkeypatch.setenv(RAY_ADDRESS_ENV, "ray://127.0.0.1:10001")  # --ray-address's own variable: explicit
    ray_executor.connect(ExecutorOptions(kind="ray"))
    assert [c["address"] for c in recorded_ray.calls] == ["127.0.0.1:6379", "ray://127.0.0.1:10001"]


def test_a_private_ray_that_cannot_start_is_one_line_naming_this_machine(recorded_ray, monkeypatch):
    def refuse(**kwargs):
        raise ConnectionError("raylet died")

    monkeypatch.setattr(recorded_ray, "init", refuse)
    from proto_index.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"^cannot start Ray on this machine: raylet died$"):
        ray_executor.connect(ExecutorOptions(kind="ray"))


@pytest.mark.cluster  # starts Ray
def test_planted_ray_addresses_do_not_capture_an_ingest(tmp_path):
    """A real run: Ray's temp folder (redirected to a private one, never the shared /tmp/ray) names a
    dead cluster, and so does $RAY_ADDRESS; the ingest starts its own Ray and stores every file."""
    pytest.importorskip("ray")
    from proto_index import Store
    from fakes import BandEncoder

    files = tmp_path / "c"
    for i in range(3):
        write(files / f"c{i}.wav", [(300.0 + 100 * i, 0.5)], seconds=1.0, seed=i)
    Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder()).close()
    ray_tmp = Path(tempfile.mkdtemp(prefix="pi-ray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    try:
        dead = _dead_address()
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text(dead)
        env = {k: v for k, v in os.environ.items() if k != RAY_ADDRESS_ENV}
        env.update(RAY_TMPDIR=str(ray_tmp), RAY_ADDRESS=dead, PROTO_INDEX_PLUGINS="fakes",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")])))
        cmd = [sys.executable, "-m", "proto_index.cli.app", "ingest", str(files), "--store", str(tmp_path / "s"),
               "-q", "--executor", "ray"]
        try:
            run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
        except subprocess.TimeoutExpired:
            pytest.fail("the ingest waited on the planted Ray address")
        assert run.returncode == 0, run.stderr
        assert "added 3 files" in run.stdout
        assert any(p.name.startswith("session_2") for p in (ray_tmp / "ray").iterdir())  # its own instance, here
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
