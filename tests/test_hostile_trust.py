"""Fault injection: what a run trusts that others can plant (a Ray address, the user cache), as a user could craft them.

Every test here failed before the fix it guards (issue "Tried as a hostile user would, again").
Run in CI with the rest of the suite.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import write

from proto_index.distributed import ray_executor
from proto_index.pipeline.executors import RAY_ADDRESS_ENV, ExecutorOptions

TESTS = Path(__file__).parent


# --- --executor ray: only an explicit address joins a cluster ------------------------------------

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


# --- the user cache: a speed-up, never a source of weights, identities or filter banks -----------

def _without_hanging(fn, fifos, seconds=20.0):
    """``fn()``'s result; a failure (not a hung test) if it is still waiting on one of ``fifos`` after ``seconds``."""
    import threading

    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:  # let the stuck reader go
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(5)
        pytest.fail(f"waited on a FIFO planted in the cache: {fifos}")
    return out.get("value")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(path))
    return path


@pytest.fixture
def tiny_seeded(monkeypatch):
    """build.create_clap_model as a seeded 4x3 linear layer (no laion_clap tower), with the package
    shipping its true state hash for seed 0; returns the drawing calls made (``initialise`` flags)."""
    import torch

    from proto_index.embed import build, known_states, seeded

    calls = []

    def create(tmodel, *, fusion, seed=0, text=True, initialise=True):
        calls.append(initialise)
        torch.manual_seed(seed)
        layer = torch.nn.Linear(4, 3)
        if not initialise:
            torch.nn.init.zeros_(layer.weight)
        return layer, {"enable_fusion": fusion}

    monkeypatch.setattr(build, "create_clap_model", create)
    true = build.state_sha256(create("transformer", fusion=False, seed=0)[0])
    calls.clear()
    monkeypatch.setattr(known_states, "_table", lambda: {seeded._key("transformer", False, 0, True): true})
    return calls, true


def test_a_planted_seeded_state_with_its_own_hash_is_not_used(cache, tiny_seeded):
    import torch
    from safetensors.torch import save_file

    from proto_index.embed import build, seeded

    calls, true = tiny_seeded
    forged = torch.nn.Linear(4, 3)
    torch.nn.init.constant_(forged.weight, 0.5)
    forged_hash = build.state_sha256(forged)
    path = seeded._path(seeded._key("transformer", False, 0, True))
    path.parent.mkdir(parents=True)
    save_file({k: v.detach().contiguous() for k, v in forged.state_dict().items()}, str(path),
              metadata={"state_sha256": forged_hash})  # the hash the cache recorded for itself
    got = seeded.seeded_clap_model("transformer", fusion=False, seed=0)
    assert (got.state_hash, calls) == (true, [False, True])  # tried the file, refused it, drew
    assert build.state_sha256(got.model) == true
    calls.clear()
    again = seeded.seeded_clap_model("transformer", fusion=False, seed=0)  # the drawn state was saved over it
    assert (again.state_hash, calls) == (true, [False])


def test_a_seed_the_package_does_not_vouch_for_is_drawn_and_not_cached(cache, tiny_seeded):
    from proto_index.embed import seeded

    calls, _ = tiny_seeded
    first = seeded.seeded_clap_model("transformer", fusion=False, seed=7)
    second = seeded.seeded_clap_model("transformer", fusion=False, seed=7)
    assert first.state_hash == second.state_hash and calls == [True, True]
    assert not (cache / "seeded").exists()


def test_a_fifo_as_the_seeded_state_is_ignored(cache, tiny_seeded):
    from proto_index.embed import seeded

    calls, true = tiny_seeded
    path = seeded._path(seeded._key("transformer", False, 0, True))
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    got = _without_hanging(lambda: seeded.seeded_clap_model("transformer", fusion=False, seed=0), [path])
    assert got.state_hash == true and calls == [True]


def test_a_fifo_as_a_json_cache_is_ignored(cache, tmp_path):
    import hashlib

    from proto_index.embed.checkpoint import checkpoint_sha256

    cache.mkdir()
    os.mkfifo(cache / "sha256.json")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    got = _without_hanging(lambda: checkpoint_sha256(weights), [cache / "sha256.json"])
    assert got == "sha256:" + hashlib.sha256(b"weights").hexdigest()


def _mel_layer():
    import torchlibrosa.stft as stft

    from proto_index.embed import filterbanks

    with filterbanks.remembered():
        return stft.LogmelFilterBank(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000, freeze_parameters=True)


def test_a_planted_filter_bank_is_not_used(cache):
    import librosa
    import numpy as np

    from proto_index.embed import filterbanks

    true = librosa.filters.mel(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000)
    _mel_layer()
    (path,) = (cache / "filterbanks").glob("*.npy")
    np.save(path, np.zeros_like(true), allow_pickle=False)
    np.testing.assert_array_equal(_mel_layer().melW.detach().numpy(), true.T)
    np.testing.assert_array_equal(np.load(path), true)  # librosa's own, remembered again
    path.unlink()
    os.mkfifo(path)
    layer = _without_hanging(_mel_layer, [path])
    np.testing.assert_array_equal(layer.melW.detach().numpy(), true.T)


@pytest.mark.parametrize("call", [
    ("librosa.filters.get_window", ("hann", 1024), {"fftbins": True}),
    ("librosa.filters.get_window", ("hann", 400), {"fftbins": False}),
    ("librosa.util.pad_center", (np.hanning(400),), {"size": 1024}),
    ("librosa.filters.mel", (), {"sr": 48000, "n_fft": 1024, "n_mels": 64, "fmin": 50, "fmax": 14000}),
    ("librosa.filters.mel", (), {"sr": 32000, "n_fft": 1024, "n_mels": 64, "fmin": 50, "fmax": 14000}),
    ("librosa.filters.mel", (), {"sr": 16000, "n_fft": 512, "n_mels": 128}),
])
def test_the_filter_bank_reference_is_librosa_bit_for_bit(call):
    import importlib

    from proto_index.embed import filterbanks

    function, args, kwargs = call
    module, name = function.rsplit(".", 1)
    expected = getattr(importlib.import_module(module), name)(*args, **kwargs)
    got = filterbanks.reference(function, args, kwargs)
    assert got.dtype == expected.dtype and got.shape == expected.shape and np.array_equal(got, expected)


def test_a_call_the_reference_does_not_know_is_never_remembered(cache):
    from proto_index.embed import filterbanks

    assert filterbanks.reference("librosa.filters.get_window", ("hamming", 1024), {"fftbins": True}) is None
    assert filterbanks.reference("librosa.filters.mel", (), {"sr": 48000, "n_fft": 1024, "htk": True}) is None
    windowed = filterbanks.remembering("librosa.filters.get_window", lambda *a, **k: np.ones(4))
    assert windowed("hamming", 4, fftbins=True).tolist() == [1.0] * 4
    assert not (cache / "filterbanks").exists()


@pytest.mark.slow
def test_a_planted_demo_identity_entry_does_not_bind_a_store(cache):
    """clap-tiny-demo's whole-state identity comes from the package, whatever model-identity.json says."""
    import json

    from proto_index.embed import demo_model, known_states
    from proto_index.embed.registry import load_encoder

    drawn = demo_model.build_base_model(text=False).state_hash
    entry = demo_model.identity_entry("clap-tiny-demo", demo_model.WEIGHTS, drawn)
    (cache / "model-identity.json").write_text(json.dumps({entry: "sha256:" + "0" * 64}))
    encoder = load_encoder("clap-tiny-demo", device="cpu")
    assert encoder.identity.weights == known_states.shipped(entry) != "sha256:" + "0" * 64
    assert not encoder.text_built  # the package vouched for it: the text tower is left for later
