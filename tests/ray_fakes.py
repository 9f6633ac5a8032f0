"""Models for the Ray tests, importable by Ray workers (PROTO_INDEX_PLUGINS=fakes,ray_fakes with tests/ on PYTHONPATH).

'fake-bands-slow' is the fake band encoder taking SLOW_S seconds per model batch, so a cluster
change or a kill lands in the middle of an ingest; its identity is fake-bands' own.
"""
from __future__ import annotations

import os
import time

from fakes import BandEncoder

import tempfile
from pathlib import Path

SLOW_S = float(os.environ.get("PROTO_INDEX_TEST_SLOW_S", "0.05"))
# While this file exists, each batch takes the seconds it names instead. A file, not an environment
# variable: the workers of a running Ray cluster never see the environment of a later driver.
SLOW_FLAG = Path(tempfile.gettempdir()) / "proto-index-ray-test-slow-s"
# A file each batch appends the Ray node id it ran on to (set before the nodes start: test_ray_cluster).
NODE_LOG_ENV = "PROTO_INDEX_TEST_NODE_LOG"


def seconds_per_batch() -> float:
    try:
        return float(SLOW_FLAG.read_text())
    except (OSError, ValueError):
        return SLOW_S


def log_node() -> None:
    log = os.environ.get(NODE_LOG_ENV)
    if not log:
        return
    import ray

    with open(log, "a") as f:
        f.write(ray.get_runtime_context().get_node_id() + "\n")


class SlowBands(BandEncoder):
    def embed_waveforms(self, waveforms):
        time.sleep(seconds_per_batch())
        log_node()
        return super().embed_waveforms(waveforms)


def _register() -> None:
    from proto_index.embed.registry import register_model

    register_model("fake-bands-slow", lambda **kw: SlowBands(), "fake-bands, slowly (Ray tests)")


_register()
