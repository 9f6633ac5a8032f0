#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Every tier, spread over one worker per core (pytest-xdist), a file per worker at a time (--dist loadfile):
# a module-scoped fixture (test_demo_model's store: minutes) is built once, not once per worker.
# PROTO_INDEX_TEST_WORKERS=0 runs them in this process.
exec .venv/bin/python -m pytest -q -n "${PROTO_INDEX_TEST_WORKERS:-auto}" --dist loadfile "$@"
