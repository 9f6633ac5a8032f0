"""Start-up of `proto-index classify` of one file on a store with stored prototypes, end to end.

Each side ("before": the code of a base commit, default 60bffd4, extracted with `git archive`;
"after": this checkout's working tree), copied into a temporary folder as installed (cli/ and
migrations/ inside proto_index/), gets its own store made by its own CLI: `init` with the
model, a class set of two labels, zero-shot prototypes, a text environment. Then, alternating
before/after, each times `proto-index classify clip.wav -p c-zero-shot --env park` in a fresh
Python process (`python -c` calling the CLI's `main`, with the side's checkout first on PYTHONPATH),
after one untimed warm-up run each (which fills the user caches: checkpoint hash, model identity,
and since 37e2f29 a seeded model's drawn weights, HTSAT's filter banks, RoBERTa's shapes).
One 5 s clip, so the time is almost all start-up: imports, building the model, the first forward.
Prints each side's median wall-clock and CPU (user + system, all threads) seconds and the ratios
after/before; on a shared machine the CPU time is the steadier figure.

    .venv/bin/python bench/startup.py                           # clap-tiny-demo, 5 runs each
    .venv/bin/python bench/startup.py --model clap --checkpoint 630k-audioset-best.pt --tokenizer-dir roberta-base/
    .venv/bin/python bench/startup.py --model clap --fake-checkpoint /tmp/fake-clap --base d10f9cd
    .venv/bin/python bench/startup.py --base 04dd654 --base-python /work/wt-base/.venv/bin/python   # another venv

--fake-checkpoint DIR writes (once) a checkpoint of the released file's size class and layout there:
laion_clap's HTSAT-tiny + RoBERTa with seeded random weights, saved as 630k-audioset-best.pt is
(``module.`` prefixes, the stale position ids), and a tiny roberta-base-format tokenizer; for
machines without the real files. Start-up does not depend on the weights' values.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
PATH_FIRST = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path "
              "if '__editable__' not in str(getattr(f, '__module__', ''))]; ")
"""Drops an editable install's import hook, which would otherwise win over PYTHONPATH."""
CLI = PATH_FIRST + "from proto_index.cli.app import main; sys.argv[0] = 'proto-index'; sys.exit(main())"


def extract(commit: str, dest: Path) -> Path:
    """The tree of ``commit`` under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "base.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit], stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, members=[m for m in tar.getmembers()
                                      if m.name.split("/")[0] in ("proto_index", "cli", "migrations")])
    archive.unlink()
    return dest


def installed_layout(source: Path, dest: Path) -> Path:
    """``source``'s code laid out as installed (cli/ and migrations/ inside proto_index/) under ``dest``."""
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(source / "proto_index", dest / "proto_index", ignore=skip)
    for folder in ("cli", "migrations"):  # since the docs merge proto_index/cli and /migrations link to them
        if not (dest / "proto_index" / folder).exists():
            shutil.copytree(source / folder, dest / "proto_index" / folder, ignore=skip)
    return dest


def cli(code: Path, cache: Path, *args: str, python: str = sys.executable, quiet: bool = True) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one `proto-index ARGS` run by ``python`` with ``code`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(code), "PROTO_INDEX_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    check = PATH_FIRST + "import proto_index; assert proto_index.__file__.startswith(sys.argv[1]), proto_index.__file__"
    subprocess.run([python, "-c", check, str(code)], env=env, check=True, cwd=code)
    cpu_start = _children_cpu()
    start = time.perf_counter()
    out = subprocess.run([python, "-c", CLI, *args], env=env, capture_output=quiet, text=True, cwd=code)
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu_start
    if out.returncode != 0:
        raise SystemExit(f"proto-index {' '.join(args)} failed with {code}:\n{out.stderr}")
    return seconds, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def make_store(code: Path, work: Path, model_args: list[str], python: str) -> Path:
    store = work / "store"
    labels = work / "labels.txt"
    labels.write_text("siren\ndog bark\n")
    cli(code, work / "cache", "init", "--store", str(store), *model_args, python=python)
    cli(code, work / "cache", "classes", "add", "c", "--labels-file", str(labels), "--store", str(store), python=python)
    cli(code, work / "cache", "prototypes", "build", "c", "--method", "zero-shot", "--store", str(store), python=python)
    cli(code, work / "cache", "env", "add", "park", "--text", "park", "--store", str(store), python=python)
    return store


def fake_checkpoint(folder: Path) -> tuple[Path, Path]:
    """A released-layout HTSAT-tiny + RoBERTa checkpoint and a tokenizer folder under ``folder`` (kept)."""
    import json

    checkpoint, tokenizer = folder / "630k-audioset-best.pt", folder / "roberta-base"
    if not checkpoint.is_file():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        sys.path.insert(0, str(ROOT))
        import torch

        from proto_index.clap import config
        from proto_index.clap.checkpoint import to_laion
        from proto_index.clap.seeded import drawn_state

        state = {f"module.{k}": v for k, v in to_laion(drawn_state(config("tiny", fusion=False), 0)).items()}
        state["module.text_branch.embeddings.position_ids"] = torch.arange(514)[None]
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"epoch": 45, "state_dict": state}, folder / "partial.pt")
        os.replace(folder / "partial.pt", checkpoint)
    if not (tokenizer / "merges.txt").is_file():
        tokens = ["<s>", "<pad>", "</s>", "<unk>", *(chr(c) for c in range(ord("!"), ord("~") + 1)), "Ġ", "<mask>"]
        tokenizer.mkdir(parents=True, exist_ok=True)
        (tokenizer / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        (tokenizer / "merges.txt").write_text("#version: 0.2\n")
    return checkpoint, tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="60bffd4", help="the commit measured as 'before'")
    parser.add_argument("--model", default="clap-tiny-demo")
    parser.add_argument("--checkpoint")
    parser.add_argument("--tokenizer-dir")
    parser.add_argument("--fake-checkpoint", type=Path, metavar="DIR",
                        help="write (once) and use a random released-layout checkpoint and tokenizer in DIR")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--base-python", default=sys.executable,
                        help="interpreter of the 'before' side (e.g. the venv the base commit installs: its own "
                             "dependencies, laion-clap before issue 16); default: this one")
    args = parser.parse_args()
    if args.fake_checkpoint:
        args.checkpoint, args.tokenizer_dir = fake_checkpoint(args.fake_checkpoint)
    model_args = ["--model", args.model, "--device", "cpu"]
    if args.checkpoint:
        model_args += ["--checkpoint", str(Path(args.checkpoint).resolve())]
    if args.tokenizer_dir:
        model_args += ["--tokenizer-dir", str(Path(args.tokenizer_dir).resolve())]

    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        tmp = Path(tmp)
        clip = tmp / "clip.wav"
        t = np.arange(48_000 * 5) / 48_000
        sf.write(clip, (0.3 * np.sin(2 * np.pi * 880 * t)).astype(np.float32), 48_000)
        sides = {"before": installed_layout(extract(args.base, tmp / "base"), tmp / "before" / "code"),
                 "after": installed_layout(ROOT, tmp / "after" / "code")}
        pythons = {"before": args.base_python, "after": sys.executable}
        stores = {}
        for name, code in sides.items():
            stores[name] = make_store(code, tmp / name, model_args, pythons[name])
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for run in range(args.runs + 1):
            for name, code in sides.items():
                seconds, cpu = cli(code, tmp / name / "cache", "classify", str(clip), "-p", "c-zero-shot", "--env", "park",
                              "--device", "cpu", "--out", str(tmp / name / f"out{run}.csv"), "--store", str(stores[name]),
                                   python=pythons[name])
                if run:  # run 0 warms the caches
                    times[name].append((seconds, cpu))
                print(f"run {run}{' (warm-up)' if not run else ''} {name}: {seconds:.2f} s wall, {cpu:.2f} s CPU, "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
        before, after = (statistics.median(w for w, _ in times[n]) for n in ("before", "after"))
        cpu_before, cpu_after = (statistics.median(c for _, c in times[n]) for n in ("before", "after"))
        print(f"\nmodel {args.model}, {args.runs} runs each, {platform.machine()}, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"before ({args.base}, {args.base_python}): median {before:.2f} s   after: median {after:.2f} s   "
              f"after/before {after / before:.2f}x")
        print(f"CPU time: before median {cpu_before:.2f} s   after: median {cpu_after:.2f} s   "
              f"after/before {cpu_after / cpu_before:.2f}x")


if __name__ == "__main__":
    main()
