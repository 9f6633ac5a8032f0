"""FIFOs and devices named on the command line: refused as not regular files, one line each, never a hang
(the library's own refusal: tests/audio/test_discover.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import write
from suite_paths import TESTS


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    """A real `proto-index` process (the fake encoder as a plugin); a hang fails on the timeout."""
    env = {**os.environ, "PROTO_INDEX_PLUGINS": "fakes",
           "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "proto_index.cli.app", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.wav"
    os.mkfifo(path)
    return path


def test_ingest_refuses_a_fifo_and_dev_zero_without_hanging(tmp_path, fake_store, fifo):
    good = write(tmp_path / "good.wav", [(700.0, 0.5)], seconds=2.0)
    result = cli("ingest", good, fifo, "/dev/zero", "--store", fake_store, "--quiet")
    assert result.returncode == 3, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    assert sum(f"{fifo}" in line and "not a regular file" in line for line in lines) == 1
    assert sum("/dev/zero" in line and "not a regular file" in line for line in lines) == 1
    assert "added 1 files" in result.stdout and "Traceback" not in result.stderr


def test_env_add_refuses_a_fifo_without_hanging(tmp_path, fake_store, fifo):
    result = cli("env", "add", "metro", "--audio", fifo, "--store", fake_store)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{fifo}: not a regular file" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = cli("env", "add", "metro", "--audio", "/dev/zero", "--store", fake_store)
    assert result.returncode == 1 and "/dev/zero: not a regular file" in result.stderr


def test_classify_refuses_a_fifo_and_dev_zero_without_hanging(tmp_path, fake_store, fifo):
    good = write(tmp_path / "good.wav", [(700.0, 0.5)], seconds=2.0)
    labels = tmp_path / "labels.txt"
    labels.write_text("siren\ndog bark\n")
    assert cli("classes", "add", "c", "--labels-file", labels, "--store", fake_store).returncode == 0
    assert cli("prototypes", "build", "c", "--method", "zero-shot", "--store", fake_store).returncode == 0
    assert cli("env", "add", "park", "--store", fake_store).returncode == 0
    out = tmp_path / "out.csv"
    result = cli("classify", good, fifo, "/dev/zero", "-p", "c-zero-shot", "--env", "park", "--out", out,
                 "--store", fake_store)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"error: 2 input(s) not a regular file (a folder, FIFO, device or socket): "
                                     f"{fifo}, /dev/zero")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["good.wav", "labels.txt",
                                                                               "pipe.wav", "store"]
