"""The real server in tests: a small fake-bands store built through the CLI, and `proto-index serve`
started in a subprocess on a free loopback port, driven over HTTP with bounded waits."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cli_store import cli

from proto_index.generated_audio import write_backgrounds, write_corpus

TESTS = Path(__file__).parent
START_TIMEOUT_S = 90.0
LABELS = ("siren", "dog bark", "drilling", "bird song")


def small_store(tmp: Path, model: str = "fake-bands", vector_dtype: str = "float32") -> Path:
    """A store with 8 generated clips ingested, class set ``urban``, prototypes ``urban-tgap4`` and
    environments park (text + audio background) and airport (text)."""
    store = tmp / "store"
    cli("init", "--store", store, "--model", model, "--vector-dtype", vector_dtype)
    write_corpus(tmp / "corpus", 8, seed=1, labels=("siren", "dog_bark", "drilling", "bird"),
                 environments=("park", "airport"), seconds=(4.0, 12.0))
    cli("ingest", tmp / "corpus", "--store", store, "-q")
    labels = tmp / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    cli("classes", "add", "urban", "--labels-file", labels, "--store", store)
    cli("prototypes", "build", "urban", "--method", "tgap", "--n", "4", "--store", store)
    write_backgrounds(tmp / "bg", "park", 2, seed=2, seconds=(3.0, 4.0))
    cli("env", "add", "park", "--text", "park", "--audio", tmp / "bg", "--store", store)
    cli("env", "add", "airport", "--text", "airport", "--store", store)
    return store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict:
    env = dict(os.environ, PROTO_INDEX_PLUGINS="fakes", PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    env.pop("PROTO_INDEX_TOKEN", None)
    env.update(extra)
    return env


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    token: str | None = None
    env: dict = field(default_factory=dict)

    def request(self, method: str, path: str, body=None, headers: dict | None = None, token: str | None = None,
                timeout: float = 60.0) -> Response:
        """One HTTP request; ``body`` a dict is sent as JSON, bytes as they are. Never raises for a status."""
        headers = dict(headers or {})
        data = None
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers.setdefault("content-type", "application/json")
        elif body is not None:
            data = body
        if token:
            headers["authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> Response:
        return self.request("POST", path, body, **kw)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def start_server(store: Path, log: Path, *args: str, env: dict | None = None, token: str | None = None) -> Server:
    """``proto-index serve`` in a subprocess; returns once /api/health answers (or fails with its log)."""
    port = free_port()
    cmd = [sys.executable, "-m", "proto_index.cli.app", "serve", "--store", str(store), "--host", "127.0.0.1",
           "--port", str(port), *args]
    env = env or child_env()
    out = open(log, "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", proc, log, token, env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
        try:
            if server.get("/api/health", timeout=2).status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"the server did not answer within {START_TIMEOUT_S:g} s:\n{log.read_text(errors='replace')}")
