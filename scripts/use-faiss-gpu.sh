#!/usr/bin/env bash
# Swap faiss-cpu for faiss-gpu (FAISS_GPU_VERSION, default 1.15.1) in .venv. Safe to rerun.
# Both wheels install the same `faiss` module: side by side, uninstalling one deletes files of the other.
# So faiss-cpu goes first, then faiss-gpu is (re)installed over a clean faiss/ folder, and the result
# is checked: faiss-gpu present, faiss-cpu absent, the module importable with its GPU entry points.
# `pip check` will then name faiss-cpu as missing for proto-index: expected, the GPU build replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${FAISS_GPU_VERSION:-1.15.1}"
PY="${PROTO_INDEX_PYTHON:-.venv/bin/python}"
pip() { "$PY" -m pip --disable-pip-version-check -q "$@"; }
pip uninstall -y faiss-cpu faiss-gpu-cu12 faiss-gpu-cu11 >/dev/null 2>&1 || true
pip install -c constraints.txt --force-reinstall --no-deps "faiss-gpu==$VERSION"
pip install -c constraints.txt "faiss-gpu==$VERSION"   # its own dependencies, without touching numpy's pin
if pip show faiss-cpu >/dev/null 2>&1; then
  echo "use-faiss-gpu: faiss-cpu is still installed beside faiss-gpu" >&2; exit 1
fi
"$PY" -c "import faiss, sys; sys.exit(0 if hasattr(faiss, 'StandardGpuResources') else 1)" \
  || { echo "use-faiss-gpu: the faiss module has no GPU support after the swap" >&2; exit 1; }
echo "faiss-gpu $VERSION in place of faiss-cpu ($("$PY" -c 'import faiss; print(faiss.get_num_gpus())') GPUs visible)"
