#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Every tier, spread over one worker per core (pytest-xdist); Ray's tests share one worker (loadgroup).
# PROTO_INDEX_TEST_WORKERS=0 runs them in this process.
exec .venv/bin/python -m pytest -q -n "${PROTO_INDEX_TEST_WORKERS:-auto}" --dist loadgroup "$@"
