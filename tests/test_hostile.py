"""Fault injection: hostile names, paths, files and races, each as a user could craft them.

Every test here failed before the fix it guards (issue 11). Run in CI with the rest of the suite.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write
from fakes import BandEncoder
from rich.console import Console
from test_registry import Server
from typer.testing import CliRunner

import proto_index.api
from proto_index import Store
from proto_index.audio.decode import load_audio
from proto_index.audio.discover import NotRegularFile, file_sha256
from proto_index.cli.app import app
from proto_index.embed.download import download
from proto_index.embed.registry import RELEASED_SHA256, locate_files
from proto_index.errors import AlreadyExists, AudioDecodeError, InvalidInput, ModelError, NotFound
from proto_index.options import CalibrateOptions
from proto_index.evaluation.audio_run import audio_experiment

TESTS = Path(__file__).parent


# --- evaluate: environment names from a CSV never become paths ------------------------------------

class _Embedder:
    """Zero vectors; records what it was asked to embed (the scene files must exist at that time)."""

    def __init__(self):
        self.seen: list[Path] = []

    def embed_audio(self, paths):
        assert all(Path(p).is_file() for p in paths)
        self.seen += [Path(p) for p in paths]
        return np.zeros((len(paths), 4), dtype=np.float32)

    def embed_text(self, texts):
        return np.zeros((len(texts), 4), dtype=np.float32)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _foreground_csv(tmp_path):
    """Three one-second clips of two classes in tmp_path/fg, listed with folds in tmp_path/fg.csv."""
    fg_rows = []
    for label, freq in (("siren", 700.0), ("dog bark", 1500.0)):
        for i in range(3):
            p = write(tmp_path / "fg" / f"{label}_{i}.wav", [(freq, 0.5)], seconds=1.0, seed=i)
            fg_rows.append([str(p), label, i + 1])
    fg_csv = tmp_path / "fg.csv"
    with open(fg_csv, "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label", "fold"], *fg_rows])
    return fg_csv


@pytest.mark.parametrize("env", ["ABS", "..", "../x", "../../victim", "a/../../victim", "*?<>|:"])
def test_evaluate_environment_names_never_become_paths(tmp_path, env):
    """An environment named as an absolute path or with ``..`` touches nothing outside the work
    folder, and the run deletes only the scene and segment files it wrote."""
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "keep.txt").write_text("precious")
    (victim / "sub" / "also.txt").write_text("precious too")
    env = str(victim) if env == "ABS" else env
    fg_csv = _foreground_csv(tmp_path)
    bg = write(tmp_path / "bg" / "b.wav", [(150.0, 0.5)], seconds=1.0)
    bg_csv = tmp_path / "bg.csv"
    with open(bg_csv, "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "environment"], [str(bg), env]])
    work = tmp_path / "out" / "work"
    work.mkdir(parents=True)
    (work / "mine.txt").write_text("the user's file in the work folder")
    before_victim, before_work = _tree(victim), _tree(work)

    embedder = _Embedder()
    result = audio_experiment(embedder.embed_audio, embedder.embed_text, "m", fg_csv, bg_csv, [0.0], work)

    assert [c.environment for c in result.data.conditions] == [env]
    assert _tree(victim) == before_victim and (victim / "sub").is_dir()
    assert all(work in p.parents for p in embedder.seen)  # every scene was written inside the work folder
    after = _tree(work)
    assert after.pop("mine.txt") == before_work["mine.txt"]
    assert all(k.startswith("embeddings/") for k in after)  # only the cached embeddings stay
    assert sorted(p.name for p in work.iterdir()) == ["embeddings", "mine.txt"]  # created folders removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bg", "bg.csv", "fg", "fg.csv", "out", "victim"]


def test_evaluate_keeps_a_folder_it_did_not_create(tmp_path):
    """A scenes folder that already held the user's files is emptied of the run's files only."""
    fg_csv = _foreground_csv(tmp_path)
    bg_dir = tmp_path / "bgs"
    write(bg_dir / "park" / "b.wav", [(150.0, 0.5)], seconds=1.0)
    work = tmp_path / "work"
    (work / "scenes").mkdir(parents=True)
    (work / "scenes" / "notes.txt").write_text("x")
    embedder = _Embedder()
    audio_experiment(embedder.embed_audio, embedder.embed_text, "m", fg_csv, bg_dir, [0.0, 6.0], work)
    assert sorted(p.name for p in (work / "scenes").iterdir()) == ["notes.txt"]
    assert not (work / "backgrounds").exists()


# --- downloads: pinned SHA-256, resume, one writer ------------------------------------------------

@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _quiet():
    return Console(file=io.StringIO(), width=120)


def test_download_refuses_bytes_that_miss_the_pinned_sha256(server, tmp_path):
    server.files["/f.bin"] = b"tampered" * 1000
    dest = tmp_path / "f.bin"
    with pytest.raises(ModelError, match=r"SHA-256 [0-9a-f]{64} is not the published 00ab.*discarded"):
        download(f"{server.url}/f.bin", dest, what="x", offline_hint="-", console=_quiet(), sha256="00ab" * 16)
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()


def test_released_checkpoint_downloads_are_checked_against_the_published_sha256(server, tmp_path, monkeypatch):
    assert RELEASED_SHA256 == {  # as published by Hugging Face's LFS pointers of lukewys/laion_clap
        "630k-audioset-best.pt": "8053c9775516af2f4902e1e8281e356cc1bf7a85e8b761908170767b77c3f037",
    }
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "cache"))
    server.files["/lukewys/laion_clap/resolve/main/630k-audioset-best.pt"] = b"a swapped file"
    with pytest.raises(ModelError, match="is not the published 8053c977"):
        locate_files("630k-audioset-best.pt", base=server.url)
    assert not (tmp_path / "cache" / "630k-audioset-best.pt").exists()


@pytest.mark.parametrize("honours_range", [True, False])
def test_download_resumes_a_partial_file(server, tmp_path, honours_range):
    body = bytes(range(256)) * 800
    server.files["/f.bin"] = body
    server.short = True
    dest = tmp_path / "f.bin"
    digest = hashlib.sha256(body).hexdigest()
    with pytest.raises(ModelError, match="a rerun resumes"):
        download(f"{server.url}/f.bin", dest, what="x", offline_hint="-", console=_quiet(), sha256=digest)
    assert (tmp_path / "f.bin.part").read_bytes() == body[: len(body) // 2]

    server.short = False
    server.no_range = not honours_range
    download(f"{server.url}/f.bin", dest, what="x", offline_hint="-", console=_quiet(), sha256=digest)
    assert dest.read_bytes() == body and not (tmp_path / "f.bin.part").exists()
    assert server.ranges == [None, f"bytes={len(body) // 2}-"]


def test_download_resume_of_a_part_longer_than_the_file_starts_again(server, tmp_path):
    server.files["/f.bin"] = b"z" * 1000
    (tmp_path / "f.bin.part").write_bytes(b"q" * 5000)
    download(f"{server.url}/f.bin", tmp_path / "f.bin", what="x", offline_hint="-", console=_quiet())
    assert (tmp_path / "f.bin").read_bytes() == b"z" * 1000


def test_two_downloads_of_one_file_at_once_fetch_it_once(server, tmp_path):
    body = b"w" * 3_000_000
    server.files["/f.bin"] = body
    server.hold = threading.Event()
    dest = tmp_path / "f.bin"
    errors = []

    def run():
        try:
            download(f"{server.url}/f.bin", dest, what="x", offline_hint="-", console=_quiet())
        except Exception as e:  # surfaced by the assertion below
            errors.append(e)

    first = threading.Thread(target=run)
    first.start()
    deadline = time.monotonic() + 10
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    second = threading.Thread(target=run)  # blocks on the lock while the first writes the .part file
    second.start()
    time.sleep(0.3)
    server.hold.set()
    first.join(20)
    second.join(20)
    assert not errors and dest.read_bytes() == body
    assert server.requests == ["/f.bin"]  # the second found the finished file


# --- checkpoints: tensors only, nothing that runs code ---------------------------------------------

class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_pickles_a_callable_is_refused(tmp_path):
    import torch

    from proto_index.clap.checkpoint import read_state

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"module.w": torch.ones(2)}, "payload": _RunsCode(marker)}, path)
    with pytest.raises(ModelError, match=r"refused checkpoint .*pickles a Python object \((posix|os)\.system\)"):
        read_state(path)
    assert not marker.exists()


def test_a_released_style_checkpoint_with_numpy_learning_rates_loads(tmp_path):
    """laion_clap's snapshots hold optimizer state whose learning rates are numpy floats."""
    import torch

    from proto_index.clap.checkpoint import read_state

    path = tmp_path / "ok.pt"
    torch.save({"epoch": 45, "name": "run", "state_dict": {"module.w": torch.arange(3.0)},
                "optimizer": {"state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(3)}},
                              "param_groups": [{"lr": np.float64(1e-4), "betas": (0.9, 0.99), "params": [0],
                                                "initial_lr": np.float64(1e-4), "step": np.int64(3)}]}},
               path)
    state = read_state(path)
    assert list(state) == ["w"] and torch.equal(state["w"], torch.arange(3.0))


# --- FIFOs and devices named on the command line ---------------------------------------------------


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    """A real `proto-index` process (the fake encoder as a plugin); a hang fails on the timeout."""
    env = {**os.environ, "PROTO_INDEX_PLUGINS": "fakes",
           "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "proto_index.cli.app", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def fake_store(tmp_path):
    path = tmp_path / "store"
    Store.init(path, model="fake-bands", encoder=BandEncoder()).close()
    return path


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


def test_library_reads_refuse_fifos(fifo):
    with pytest.raises(NotRegularFile):
        file_sha256(fifo)
    with pytest.raises(AudioDecodeError, match="not a regular file"):
        load_audio(fifo)
    with pytest.raises(NotRegularFile):
        file_sha256("/dev/zero")


# --- the same name added by two processes at once ---------------------------------------------------

def _together(*argvs, timeout=120) -> list[subprocess.CompletedProcess]:
    """Start a real `proto-index` process per argv at the same moment; wait for all."""
    env = {**os.environ, "PROTO_INDEX_PLUGINS": "fakes",
           "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs = [subprocess.Popen([sys.executable, "-m", "proto_index.cli.app", *map(str, a)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in argvs]
    out = []
    for p, a in zip(procs, argvs):
        stdout, stderr = p.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess(a, p.returncode, stdout, stderr))
    return out


def _one_wins(results, what: str, name: str) -> None:
    assert sorted(r.returncode for r in results) == [0, 1], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 1)
    assert loser.stderr.strip() == f"error: {what} {name!r} already exists (use --replace)"
    assert all("Traceback" not in r.stderr for r in results)


@pytest.mark.parametrize("round_", range(3))
def test_same_name_at_once_class_sets(fake_store, round_):
    results = _together(*[("classes", "add", "urban", "-l", f"siren{i}", "-l", "dog bark", "--store", fake_store)
                          for i in range(2)])
    _one_wins(results, "class set", "urban")

    winner = next(i for i, r in enumerate(results) if r.returncode == 0)
    with Store.open(fake_store) as s:
        assert [(c.name, c.labels) for c in s.class_sets()] == [("urban", [f"siren{winner}", "dog bark"])]


@pytest.mark.parametrize("round_", range(3))
def test_same_name_at_once_prototype_sets_and_environments(fake_store, round_):
    assert cli("classes", "add", "c", "-l", "siren", "-l", "dog bark", "--store", fake_store).returncode == 0
    results = _together(*[("prototypes", "build", "c", "--method", "zero-shot", "--name", "p", "--store", fake_store)
                          for _ in range(2)])
    _one_wins(results, "prototype set", "p")
    results = _together(*[("env", "add", "park", "--text", text, "--store", fake_store) for text in ("park", "garden")])
    _one_wins(results, "environment", "park")

    winner = ("park", "garden")[next(i for i, r in enumerate(results) if r.returncode == 0)]
    with Store.open(fake_store) as s:
        assert [p.name for p in s.prototype_sets()] == ["p"]
        assert [(e.name, e.description) for e in s.environments()] == [("park", winner)]


# --- class sets: labels and names that would break listings, and --replace --------------------------

def _run(*args, code=0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize("labels, message", [
    (["", "dog"], "a label cannot be empty or blank"),
    (["   ", "dog"], "a label cannot be empty or blank"),
    (["si\nren", "dog"], r"a label 'si\nren' holds a control character ('\n'); use plain text on one line"),
    (["si\tren", "dog"], r"a label 'si\tren' holds a control character ('\t'); use plain text on one line"),
])
def test_classes_add_refuses_blank_labels_and_control_characters(fake_store, labels, message):
    args = [a for lbl in labels for a in ("-l", lbl)]
    assert _run("classes", "add", "c", *args, "--store", fake_store, code=1).stderr.strip() == f"error: {message}"


@pytest.mark.parametrize("name", ["", " ", "a\nb", "a\tb"])
def test_names_with_line_breaks_or_blank_are_refused(fake_store, name):
    assert "error: class set name" in _run("classes", "add", name, "-l", "x", "--store", fake_store, code=1).stderr
    assert "error: environment name" in _run("env", "add", name, "--text", "park", "--store", fake_store, code=1).stderr


def test_labels_file_bom_non_utf8_folder_and_fifo(tmp_path, fake_store):
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffsiren\r\ndog bark\r\n".encode("utf-8"))
    _run("classes", "add", "c", "--labels-file", bom, "--store", fake_store)
    with Store.open(fake_store) as s:
        assert s.class_sets()[0].labels == ["siren", "dog bark"]

    latin = tmp_path / "latin.txt"
    latin.write_bytes("sir\xe8ne\nchien\n".encode("latin-1"))
    assert _run("classes", "add", "d", "--labels-file", latin, "--store", fake_store, code=1).stderr.strip() == \
        f"error: {latin}: not UTF-8 text (byte 3); save it as UTF-8"
    assert "not a regular file" in _run("classes", "add", "d", "--labels-file", tmp_path, "--store", fake_store,
                                        code=1).stderr
    fifo = tmp_path / "labels.fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in _run("classes", "add", "d", "--labels-file", fifo, "--store", fake_store,
                                        code=1).stderr


def test_replacing_a_class_set_never_silently_deletes_its_prototype_sets(fake_store):
    _run("classes", "add", "c", "-l", "siren", "-l", "dog bark", "--store", fake_store)
    _run("prototypes", "build", "c", "--method", "zero-shot", "--store", fake_store)
    _run("prototypes", "build", "c", "--method", "zero-shot", "--name", "c-2", "--store", fake_store)
    refused = _run("classes", "add", "c", "-l", "drilling", "--replace", "--store", fake_store, code=1)
    assert refused.stderr.strip() == ("error: class set 'c' has prototype sets built on it (c-2, c-zero-shot); "
                                      "replacing it would delete them (use --drop-prototypes to do so)")
    with Store.open(fake_store) as s:
        assert [p.name for p in s.prototype_sets()] == ["c-2", "c-zero-shot"]
        assert s.class_sets()[0].labels == ["siren", "dog bark"]
    done = _run("classes", "add", "c", "-l", "drilling", "--replace", "--drop-prototypes", "--store", fake_store)
    assert done.stdout.splitlines() == ["class set c: 1 labels",
                                        "deleted the prototype sets built on the old class set: c-2, c-zero-shot"]
    with Store.open(fake_store) as s:
        assert s.prototype_sets() == [] and s.class_sets()[0].labels == ["drilling"]


# --- classify: bad manifests, --out, unknown names and usage, all before the model loads -----------

@pytest.fixture
def ready_store(fake_store, tmp_path, monkeypatch):
    """A store with class set c, prototype set c-zero-shot and environment park; from here on,
    loading the model fails the test (every check below must come before it)."""
    _run("classes", "add", "c", "-l", "siren", "-l", "dog bark", "--store", fake_store)
    _run("prototypes", "build", "c", "--method", "zero-shot", "--store", fake_store)
    _run("env", "add", "park", "--store", fake_store)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(proto_index.api, "_load_encoder", no_model)
    monkeypatch.chdir(tmp_path)
    return fake_store


def _clip(tmp_path):
    return write(tmp_path / "x.wav", [(700.0, 0.5)], seconds=2.0)


def _classify_error(store, *args, code=1) -> str:
    result = _run("classify", *args, "--store", store, code=code)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_manifests_that_are_not_utf8_csv_files(tmp_path, ready_store):
    clip = _clip(tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"path,environment\n{clip.name},parc\xe9\n".encode("latin-1"))
    assert "not UTF-8 text" in _classify_error(ready_store, "-p", "c-zero-shot", "--manifest", latin, "-o", "o.csv")
    extra = tmp_path / "extra.csv"
    extra.write_text(f"path,environment\n{clip.name},park,oops\n")
    assert _classify_error(ready_store, "-p", "c-zero-shot", "--manifest", extra, "-o", "o.csv") == \
        f"error: {extra}, line 2: 1 more field(s) than the header has (quote a value that holds a comma)"
    assert _classify_error(ready_store, "-p", "c-zero-shot", "--manifest", tmp_path, "-o", "o.csv") == \
        f"error: {tmp_path}: not a regular file (a folder, FIFO or device), not a CSV file"
    fifo = tmp_path / "m.csv"
    os.mkfifo(fifo)
    assert "not a regular file" in _classify_error(ready_store, "-p", "c-zero-shot", "--manifest", fifo, "-o", "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_out_in_a_missing_folder_or_naming_a_folder_is_refused_first(tmp_path, ready_store):
    clip = _clip(tmp_path)
    (tmp_path / "corpus").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _classify_error(ready_store, clip, "-p", "c-zero-shot", "--env", "park", "--out", "corpus") == \
        "error: output corpus is a folder; name a file in it"
    assert _classify_error(ready_store, clip, "-p", "c-zero-shot", "--env", "park", "--out", "nowhere/o.csv") == \
        f"error: the folder of the output file does not exist: {tmp_path / 'nowhere'}"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no corpus.tmp, nothing else


def test_unknown_names_are_reported_before_the_model_loads(tmp_path, ready_store):
    clip = _clip(tmp_path)
    assert _classify_error(ready_store, clip, "-p", "nope", "--env", "park", "-o", "o.csv") == \
        "error: no prototype set named 'nope'" or "nope" in _classify_error(ready_store, clip, "-p", "nope", "--env", "park", "-o", "o.csv")
    assert _classify_error(ready_store, clip, "-p", "c-zero-shot", "--env", "beach", "-o", "o.csv").startswith(
        "error: unknown environment(s): beach (known: park)")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,environment\n{clip.name},harbour\n")
    assert "unknown environment(s): harbour" in _classify_error(ready_store, "-p", "c-zero-shot", "--manifest",
                                                                manifest, "-o", "o.csv")
    assert "nope" in _run("prototypes", "build", "nope", "--store", ready_store, code=1).stderr
    assert _run("prototypes", "build", "c", "--method", "zero-shot", "--store", ready_store, code=1).stderr.strip() \
        == "error: prototype set 'c-zero-shot' already exists (use --replace)"
    assert _run("env", "add", "park", "--store", ready_store, code=1).stderr.strip() == \
        "error: environment 'park' already exists (use --replace)"


@pytest.mark.parametrize("args, message", [
    (["--env", "park", "--tau", "often"], "tau must be a number or one of auto, auto-clip, not 'often' (--adapt, --tau, --prototype-norm, --drift-weight)"),
    (["--env", "park", "--adapt", "sideways"], "unknown adaptation 'sideways'; choose one of auto, audio, text, none (--adapt, --tau, --prototype-norm, --drift-weight)"),
    ([], "give exactly one of --env NAME (with PATHs) or --manifest CSV"),
])
def test_usage_errors_exit_2(tmp_path, ready_store, args, message):
    clip = _clip(tmp_path)
    assert _classify_error(ready_store, clip, "-p", "c-zero-shot", *args, "-o", "o.csv", code=2) == f"error: {message}"


def test_every_use_case_checks_its_inputs_before_its_model_loads(fake_store, tmp_path, monkeypatch):
    """ingest, classify, prototypes build, env add, search and calibrate touch the store's model only
    through a lazy handle, after their checks: a bad input (or nothing to embed) loads nothing; a good
    run loads it once."""
    loads = []

    def counted(*args, **kwargs):
        loads.append(args)
        return BandEncoder()

    monkeypatch.setattr(proto_index.api, "_load_encoder", counted)
    clip, empty = _clip(tmp_path), tmp_path / "empty"
    empty.mkdir()
    manifest = tmp_path / "labelled.csv"
    manifest.write_text(f"path,environment,label\n{clip.name},park,siren\n")
    with Store.open(fake_store) as store:
        store.add_classes("c", ["siren", "dog bark"])
        for call, error, message in [
            (lambda: store.classify([(clip, "park")], "nope"), NotFound, "no prototype set named 'nope'"),
            (lambda: store.build_prototypes("nope"), NotFound, "no class set named 'nope'"),
            (lambda: store.add_environment("quiet", audio=[empty]), InvalidInput, "no audio files found in"),
            (lambda: store.search("  "), InvalidInput, "the search text is empty"),
            (lambda: store.calibrate(manifest, CalibrateOptions("nope")), NotFound, "no prototype set named 'nope'"),
        ]:
            with pytest.raises(error, match=message):
                call()
        assert store.ingest([empty]).added == 0  # nothing to read: no model
        assert loads == []
        store.build_prototypes("c")
        store.add_environment("park", text="park")
        assert store.ingest([clip]).added == 1
        assert len(loads) == 1
    with Store.open(fake_store) as store:  # a new process: its model not loaded yet
        for call, error, message in [
            (lambda: store.build_prototypes("c"), AlreadyExists, "prototype set 'c-zero-shot' already exists"),
            (lambda: store.add_environment("park"), AlreadyExists, "environment 'park' already exists"),
            (lambda: store.classify([(clip, "beach")], "c-zero-shot"), NotFound, r"unknown environment\(s\): beach"),
            (lambda: store.classify([(tmp_path / "absent.wav", "park")], "c-zero-shot"), NotFound,
             r"1 input file\(s\) not found"),
            (lambda: store.calibrate(manifest, CalibrateOptions("c-zero-shot", grid=(float("nan"),))), InvalidInput,
             "tau grid"),
        ]:
            with pytest.raises(error, match=message):
                call()
        assert len(loads) == 1
        assert store.ingest([clip]).skipped == 1  # unchanged since it was ingested: not read, no model
        assert len(loads) == 1
        assert store.classify([(clip, "park")], "c-zero-shot").files[0].label == "siren"
        assert len(loads) == 2
