"""`proto-index serve` under load: 1, 8 and 32 concurrent clients doing text search, and clients
classifying one 10 s clip, against the one-shot CLI doing the same work; batching on and off.

Builds a small store (generated clips, clap-tiny-demo by default; not timed), starts the real
server in a subprocess on a free loopback port (tests/serve_server.py), warms it, then each client
(a thread with its own keep-alive connection) sends requests back to back. Prints p50/p99 latency
and requests/s per level, the CLI's wall time per command, and their ratios.

    .venv/bin/python bench/serve.py                          # clap-tiny-demo, batching on and off
    .venv/bin/python bench/serve.py --requests 20 --levels 1,8 --no-compare-batching
    .venv/bin/python bench/grow_store.py /tmp/big --vectors 1000000     # a 1M-vector store, then:
    .venv/bin/python bench/serve.py --store /tmp/big/store

``--store`` serves an existing store instead of the small one; it needs prototype set urban-tgap4
and environment park (as bench/grow_store.py makes them).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fakes  # noqa: E402,F401  (registers fake-bands, the --model for a quick run)
from serve_server import child_env, small_store, start_server  # noqa: E402

from proto_index.generated_audio import write_archive  # noqa: E402

QUERIES = ["a siren wailing", "a dog barking", "a pneumatic drill", "birds singing", "traffic noise",
           "people talking", "rain on a roof", "an engine idling"]


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def load(url: str, clients: int, per_client: int, request) -> dict:
    """``clients`` threads, ``per_client`` requests each; latencies in ms and requests/s overall."""
    host, port = url.split("//")[1].split(":")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)

    def client(c: int):
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        start_gate.wait()
        for i in range(per_client):
            method, path, body, headers = request(c * per_client + i)
            t0 = time.perf_counter()
            conn.request(method, path, body, headers)
            r = conn.getresponse()
            r.read()
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(dt)
                if r.status != 200:
                    errors.append(str(r.status))
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99), "rps": len(latencies) / wall,
            "n": len(latencies), "errors": len(errors)}


def text_request(i: int):
    body = json.dumps({"text": QUERIES[i % len(QUERIES)], "k": 10}).encode()
    return "POST", "/api/search/text", body, {"content-type": "application/json"}


def clip_request(clip: bytes):
    def request(i: int):
        return ("POST", "/api/classify/audio?prototypes=urban-tgap4&environment=park", clip,
                {"content-type": "audio/wav"})
    return request


def loadavg() -> str:
    """The 1-minute load average (the machine is shared: a figure means little without it)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def cli_seconds(args: list[str], env: dict, runs: int) -> float:
    """Median wall time of ``proto-index ARGS`` in a fresh process."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "proto_index.cli.app", *args], env=env, check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="clap-tiny-demo")
    ap.add_argument("--levels", default="1,8,32", help="concurrent clients, comma-separated")
    ap.add_argument("--requests", type=int, default=64, help="text searches per level (split over its clients)")
    ap.add_argument("--clip-requests", type=int, default=16, help="clip classifications per level")
    ap.add_argument("--cli-runs", type=int, default=3)
    ap.add_argument("--no-compare-batching", action="store_true", help="only run with batching on")
    ap.add_argument("--store", type=Path, help="serve this store (its own model) instead of building a small one")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{'store ' + str(args.store) if args.store else 'model ' + args.model}, load average {loadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp = Path(tmp)
        store = args.store.absolute() if args.store else small_store(tmp, model=args.model)
        archive = write_archive(tmp / "archive", 1, ["park"], seed=9, seconds=(10.0, 10.0))
        clip_path = archive.clips[0].path
        clip = clip_path.read_bytes()
        env = child_env()
        cli_search = cli_seconds(["search", QUERIES[0], "-k", "10", "--store", str(store)], env, args.cli_runs)
        out = tmp / "c.csv"
        cli_classify = cli_seconds(["classify", str(clip_path), "-p", "urban-tgap4", "--env", "park", "--out", str(out),
                                    "--store", str(store), "-q"], env, args.cli_runs)
        print(f"one-shot CLI: search {cli_search * 1000:.0f} ms, classify one 10 s clip {cli_classify * 1000:.0f} ms "
              f"(median of {args.cli_runs}, model and index loaded each time)")
        modes = [("batching on", [])] + ([] if args.no_compare_batching else [("batching off", ["--no-batching"])])
        for name, flags in modes:
            server = start_server(store, tmp / f"server-{len(flags)}.log", *flags, env=env)
            try:
                load(server.url, 1, 4, text_request)  # warm: the model and index are loaded at start-up
                info = json.loads(server.get("/api/info").body)
                print(f"\n## {name} ({info['counts']['windows']:,} windows in the store)")
                print("| work | clients | requests | p50 ms | p99 ms | req/s | CLI/p50 | load avg |")
                print("|---|---|---|---|---|---|---|---|")
                for work, total, request, base in (("text search", args.requests, text_request, cli_search),
                                                   ("classify 10 s clip", args.clip_requests, clip_request(clip),
                                                    cli_classify)):
                    for clients in levels:
                        per = max(1, total // clients)
                        r = load(server.url, clients, per, request)
                        bad = f" ({r['errors']} errors)" if r["errors"] else ""
                        print(f"| {work} | {clients} | {r['n']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['rps']:.1f} | "
                              f"{base * 1000 / r['p50']:.0f}x{bad} | {loadavg()} |")
                info = json.loads(server.get("/api/info").body)["server"]["batch"]
                print(f"model calls: {info['model_calls']} for {info['calls']} embedding calls ({info['items']} items)")
            finally:
                server.stop()


if __name__ == "__main__":
    main()
