"""Models for the Ray tests, importable by Ray workers (PROTO_INDEX_PLUGINS=fakes,ray_fakes with tests/ on PYTHONPATH).

'fake-bands-slow' is the fake band encoder taking SLOW_S seconds per model batch, so a cluster
change or a kill lands in the middle of an ingest; its identity is fake-bands' own.
"""
from __future__ import annotations

import os
import time

from fakes import BandEncoder

SLOW_S = float(os.environ.get("PROTO_INDEX_TEST_SLOW_S", "0.05"))


class SlowBands(BandEncoder):
    def embed_waveforms(self, waveforms):
        time.sleep(SLOW_S)
        return super().embed_waveforms(waveforms)


def _register() -> None:
    from proto_index.embed.registry import register_model

    register_model("fake-bands-slow", lambda **kw: SlowBands(), "fake-bands, slowly (Ray tests)")


_register()
