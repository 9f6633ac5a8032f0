"""The GPU install swaps faiss-cpu for faiss-gpu 1.15.1 (one `faiss` module, never both wheels), checked with a stub pip."""
import os
import stat
import subprocess

import pytest
from suite_paths import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


STUB = """#!/usr/bin/env bash
echo "$*" >> "{log}"
case "$*" in
  "-m pip --disable-pip-version-check -q show faiss-cpu") exit {cpu_still_there} ;;
  "-c "*) [[ "$*" == *get_num_gpus* ]] && echo 0; exit 0 ;;
esac
exit 0
"""


def run_swap(tmp_path, cpu_still_there=False):
    log = tmp_path / "calls.log"
    stub = tmp_path / "python"
    stub.write_text(STUB.format(log=log, cpu_still_there=0 if cpu_still_there else 1))
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PROTO_INDEX_PYTHON": str(stub)}
    out = subprocess.run(["bash", str(ROOT / "scripts" / "use-faiss-gpu.sh")], env=env, capture_output=True, text=True)
    return out, log.read_text().splitlines()


def test_swap_removes_faiss_cpu_before_installing_faiss_gpu(tmp_path):
    out, calls = run_swap(tmp_path)
    assert out.returncode == 0, out.stderr
    pip = [c.replace("-m pip --disable-pip-version-check -q ", "") for c in calls if c.startswith("-m pip")]
    assert pip[0].startswith("uninstall -y faiss-cpu")
    assert pip[1] == "install -c constraints.txt --force-reinstall --no-deps faiss-gpu==1.15.1"
    assert pip[-1] == "show faiss-cpu"
    assert not any("install" in c and "faiss-cpu" in c and not c.startswith("uninstall") for c in pip)
    assert "faiss-gpu 1.15.1 in place of faiss-cpu" in out.stdout


def test_swap_fails_loudly_if_faiss_cpu_survives(tmp_path):
    out, _ = run_swap(tmp_path, cpu_still_there=True)
    assert out.returncode == 1 and "faiss-cpu is still installed beside faiss-gpu" in out.stderr


def test_gpu_extra_names_faiss_gpu_1_15_1_and_setup_uses_the_swap():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["gpu"] == ["faiss-gpu==1.15.1"]
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert 'if [ "${PROTO_INDEX_GPU:-0}" = "1" ]; then bash scripts/use-faiss-gpu.sh; fi' in setup
