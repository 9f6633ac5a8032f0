"""The test suite itself never writes to the user's cache."""
import os
import subprocess
import sys
from pathlib import Path

from suite_paths import ROOT

from proto_index.embed.download import cache_dir


INNER = '''
import subprocess, sys
from proto_index.embed.checkpoint import HASHES, checkpoint_sha256
from proto_index.embed.download import cache_dir


def test_writes_the_cache(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights")
    checkpoint_sha256(ckpt)  # remembers the hash in cache_dir()/sha256.json
    assert (cache_dir() / HASHES).is_file()
    # a subprocess (the CLI, a Ray worker) sees the same private cache
    out = subprocess.run([sys.executable, "-c", "from proto_index.embed.download import cache_dir; print(cache_dir())"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(cache_dir())
    print("CACHE", cache_dir())
'''


def test_the_session_cache_is_a_tmp_folder_not_the_users():
    assert os.environ["PROTO_INDEX_CACHE"] == str(cache_dir())
    assert cache_dir().name.startswith("user-cache") and cache_dir() != Path.home() / ".cache" / "proto-index"


def test_a_run_that_writes_the_cache_leaves_the_users_cache_untouched(tmp_path):
    """A pytest run with no PROTO_INDEX_CACHE set writes the hash file into its tmp cache; the
    user's ($XDG_CACHE_HOME or ~/.cache) is never created."""
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    home.mkdir()
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {k: v for k, v in os.environ.items() if k != "PROTO_INDEX_CACHE"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(xdg), PYTHONPATH=str(ROOT / "tests"))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "conftest", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "base"),
         str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    used = Path(next(line.split(" ", 1)[1] for line in out.stdout.splitlines() if line.startswith("CACHE ")))
    assert used.is_relative_to(tmp_path / "base")
    assert list(home.rglob("*")) == [] and not xdg.exists()

