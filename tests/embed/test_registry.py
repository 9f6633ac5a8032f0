"""Model names, registration, file resolution and downloads (served from a loopback HTTP server)."""
import hashlib
import io
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from loopback_server import Server
from rich.console import Console

from proto_index.embed import registry
from proto_index.embed.download import DEFAULT_BASE, base_url, cache_dir, download
from proto_index.embed.encoder import Encoder, ModelIdentity
from proto_index.embed.registry import (
    DEFAULT_MODEL,
    MODEL_NAMES,
    RELEASED_SHA256,
    available_models,
    load_encoder,
    locate_files,
    model_kind,
    register_model,
)
from proto_index.cli import hints
from proto_index.errors import Hint, ModelError


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def dead_url():
    """A loopback URL nothing listens on."""
    s = Server()
    url = s.url
    s.close()
    return url


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PROTO_INDEX_DOWNLOAD_BASE", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def tokenizer_dir(tmp_path):
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "vocab.json").write_text("{}")
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder


def _console():
    return Console(file=io.StringIO(), force_terminal=True, color_system=None, width=120)


# --- names and registration -------------------------------------------------------------------

def test_builtin_names_and_descriptions():
    assert MODEL_NAMES == ("clap-fusion", "clap", "clap-tiny-demo", "clap-tiny-fair", "clap-tiny-random",
                           "clap-fusion-tiny-random", "birdnet")
    infos = {m.name: m for m in available_models()}
    assert {n: infos[n].kind for n in MODEL_NAMES} == {
        "clap-fusion": "checkpoint", "clap": "checkpoint", "clap-tiny-demo": "demo", "clap-tiny-fair": "demo",
        "clap-tiny-random": "random", "clap-fusion-tiny-random": "random", "birdnet": "checkpoint"}
    assert model_kind("clap-tiny-demo") == "demo" and model_kind("anything-registered") == "custom"
    assert DEFAULT_MODEL == "clap-fusion"
    assert infos["clap-tiny-demo"].network == "nothing"
    assert "fusion" in infos["clap-fusion"].description
    assert "630k-audioset-fusion-best.pt" in infos["clap-fusion"].network
    assert "630k-audioset-best.pt" in infos["clap"].network
    assert infos["clap-tiny-random"].network == "nothing"


def test_unknown_model_lists_known_names():
    with pytest.raises(ModelError) as info:
        load_encoder("clap-huge")
    message = str(info.value)
    assert "'clap-huge'" in message
    for name in MODEL_NAMES:
        assert name in message


class FakeEncoder:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.identity = ModelIdentity("fake", "none", False, "sha256:0", 3)

    @property
    def dim(self):
        return 3

    def embed_waveforms(self, waveforms):
        return np.ones((len(waveforms), 3), np.float32) / np.sqrt(3)

    def embed_texts(self, texts):
        return np.ones((len(texts), 3), np.float32) / np.sqrt(3)


def test_register_model(monkeypatch):
    monkeypatch.setattr(registry, "_registered", {})
    register_model("fake-test", lambda **kw: FakeEncoder(**kw), "a fake", network="nothing")

    encoder = load_encoder("fake-test", device="cpu", batch_size=4)

    assert isinstance(encoder, Encoder) and encoder.identity.name == "fake"
    assert encoder.kwargs == {"checkpoint": None, "tokenizer_dir": None, "device": "cpu", "batch_size": 4,
                              "download_base": None}
    assert [m.name for m in available_models()][-1] == "fake-test"
    with pytest.raises(ModelError, match="fake-test"):
        load_encoder("nope")

    register_model("fake-test", lambda **kw: "not an encoder", "replaced")
    with pytest.raises(ModelError, match="not an Encoder"):
        load_encoder("fake-test")
    with pytest.raises(ModelError, match="built-in"):
        register_model("clap", lambda **kw: FakeEncoder(), "hijack")


# --- file resolution --------------------------------------------------------------------------

def test_missing_checkpoint(cache, tmp_path, tokenizer_dir):
    with pytest.raises(ModelError, match=r"checkpoint not found: .*nowhere\.pt"):
        load_encoder("clap", checkpoint=tmp_path / "nowhere.pt", tokenizer_dir=tokenizer_dir)


def test_tokenizer_dir_must_hold_both_files(cache, tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"x")
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "vocab.json").write_text("{}")
    with pytest.raises(ModelError, match="lacks merges.txt"):
        load_encoder("clap-fusion", checkpoint=tmp_path / "ckpt.pt", tokenizer_dir=tmp_path / "tok")


def test_random_model_refuses_a_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="takes no checkpoint"):
        load_encoder("clap-tiny-random", checkpoint=tmp_path / "x.pt")


def test_wrong_checkpoint_files(cache, tmp_path, tokenizer_dir):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        load_encoder("clap", checkpoint=text, tokenizer_dir=tokenizer_dir)

    import torch

    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ModelError, match="not a CLAP checkpoint"):
        load_encoder("clap", checkpoint=tmp_path / "list.pt", tokenizer_dir=tokenizer_dir)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("PROTO_INDEX_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "proto-index"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "proto-index"


def test_base_url_override(monkeypatch):
    monkeypatch.delenv("PROTO_INDEX_DOWNLOAD_BASE", raising=False)
    assert base_url() == DEFAULT_BASE == "https://huggingface.co"
    monkeypatch.setenv("PROTO_INDEX_DOWNLOAD_BASE", "http://127.0.0.1:1/")
    assert base_url() == "http://127.0.0.1:1"
    assert base_url("http://mirror") == "http://mirror"


# --- downloads --------------------------------------------------------------------------------

def test_download_streams_with_progress_and_renames_atomically(server, tmp_path):
    body = os.urandom(3 * 1024 * 1024 + 17)
    server.files["/f.bin"] = body
    server.hold = threading.Event()
    dest = tmp_path / "sub" / "f.bin"
    console = _console()
    errors = []
    worker = threading.Thread(target=lambda: _try(errors, download, f"{server.url}/f.bin", dest,
                                                  what="f", offline_hint="-", console=console))
    worker.start()

    part = tmp_path / "sub" / "f.bin.part"
    deadline = time.monotonic() + 10
    while not (part.exists() and part.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert part.exists() and not dest.exists()  # half the body is in, under the .part name
    server.hold.set()
    worker.join(20)

    assert not errors
    assert dest.read_bytes() == body and not part.exists()
    shown = console.file.getvalue()
    assert "downloading f.bin" in shown
    assert "0.0/3.1 MB" in shown and "3.1/3.1 MB" in shown  # bytes of the known total
    assert "B/s" in shown and "0:00:00" in shown  # speed and ETA


def _try(errors, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception as e:  # surfaced to the main thread by the assertion on errors
        errors.append(e)


def test_download_failure_leaves_nothing(server, dead_url, tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(ModelError) as info:
        download(f"{dead_url}/f.bin", dest, what="the thing", offline_hint=Hint("thing", "pass {option}"),
                 console=_console())
    message = str(info.value)
    assert message.startswith(f"could not download the thing from {dead_url}/f.bin: ")
    assert "refused" in message.lower() and info.value.hint == Hint("thing", "pass {option}")

    with pytest.raises(ModelError, match="HTTP 404"):
        download(f"{server.url}/absent", dest, what="x", offline_hint="-", console=_console())

    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin.lock"]  # the lock file only

    server.files["/f.bin"] = b"y" * 100_000
    server.short = True
    with pytest.raises(ModelError, match="could not download x.*50000 bytes kept in .*f.bin.part; a rerun resumes"):
        download(f"{server.url}/f.bin", dest, what="x", offline_hint="-", console=_console())
    assert not dest.exists() and (tmp_path / "f.bin.part").stat().st_size == 50_000


def test_download_refuses_bytes_that_miss_the_pinned_sha256(server, tmp_path):
    server.files["/f.bin"] = b"tampered" * 1000
    dest = tmp_path / "f.bin"
    with pytest.raises(ModelError, match=r"SHA-256 [0-9a-f]{64} is not the published 00ab.*discarded"):
        download(f"{server.url}/f.bin", dest, what="x", offline_hint="-", console=_console(), sha256="00ab" * 16)
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
        download(f"{server.url}/f.bin", dest, what="x", offline_hint="-", console=_console(), sha256=digest)
    assert (tmp_path / "f.bin.part").read_bytes() == body[: len(body) // 2]

    server.short = False
    server.no_range = not honours_range
    download(f"{server.url}/f.bin", dest, what="x", offline_hint="-", console=_console(), sha256=digest)
    assert dest.read_bytes() == body and not (tmp_path / "f.bin.part").exists()
    assert server.ranges == [None, f"bytes={len(body) // 2}-"]


def test_download_resume_of_a_part_longer_than_the_file_starts_again(server, tmp_path):
    server.files["/f.bin"] = b"z" * 1000
    (tmp_path / "f.bin.part").write_bytes(b"q" * 5000)
    download(f"{server.url}/f.bin", tmp_path / "f.bin", what="x", offline_hint="-", console=_console())
    assert (tmp_path / "f.bin").read_bytes() == b"z" * 1000


def test_two_downloads_of_one_file_at_once_fetch_it_once(server, tmp_path):
    body = b"w" * 3_000_000
    server.files["/f.bin"] = body
    server.hold = threading.Event()
    dest = tmp_path / "f.bin"
    errors = []

    def run():
        try:
            download(f"{server.url}/f.bin", dest, what="x", offline_hint="-", console=_console())
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


def test_load_encoder_downloads_into_the_cache(server, cache, monkeypatch):
    """The released files come from <base>/<repo>/resolve/main/, into the cache, once."""
    server.files["/lukewys/laion_clap/resolve/main/630k-audioset-best.pt"] = b"not a checkpoint"
    server.files["/FacebookAI/roberta-base/resolve/main/vocab.json"] = b'{"<s>": 0}'
    server.files["/FacebookAI/roberta-base/resolve/main/merges.txt"] = b"#version: 0.2\n"
    monkeypatch.setenv("PROTO_INDEX_DOWNLOAD_BASE", server.url)
    monkeypatch.setitem(registry.RELEASED_SHA256, "630k-audioset-best.pt",
                        hashlib.sha256(b"not a checkpoint").hexdigest())

    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        load_encoder("clap")

    assert (cache / "630k-audioset-best.pt").read_bytes() == b"not a checkpoint"
    assert (cache / "roberta-base" / "vocab.json").read_bytes() == b'{"<s>": 0}'
    assert (cache / "roberta-base" / "merges.txt").is_file()
    assert len(server.requests) == 3

    assert locate_files("630k-audioset-best.pt") == (cache / "630k-audioset-best.pt", cache / "roberta-base")
    assert len(server.requests) == 3  # cached: nothing fetched again


def test_offline_failure_messages(cache, dead_url, tmp_path):
    with pytest.raises(ModelError) as info:
        load_encoder("clap-fusion", download_base=dead_url)
    assert "the CLAP checkpoint 630k-audioset-fusion-best.pt" in str(info.value)
    assert f"{dead_url}/lukewys/laion_clap/resolve/main/630k-audioset-fusion-best.pt" in str(info.value)
    assert "--checkpoint PATH" in hints.message(info.value) and "--checkpoint" not in str(info.value)

    (tmp_path / "ckpt.pt").write_bytes(b"x")
    with pytest.raises(ModelError) as info:
        load_encoder("clap", checkpoint=tmp_path / "ckpt.pt", download_base=dead_url)
    assert "roberta-base's tokenizer file vocab.json" in str(info.value)
    assert "--tokenizer-dir DIR" in hints.message(info.value) and "--tokenizer" not in str(info.value)
    assert not (cache / "roberta-base" / "vocab.json.part").exists()


# --- import cost ------------------------------------------------------------------------------

def test_importing_the_model_modules_loads_no_torch():
    code = ("import sys, proto_index.embed.registry, proto_index.embed.clap, proto_index.audio.decode; "
            "print(sorted(m for m in ('torch', 'transformers', 'laion_clap') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"

