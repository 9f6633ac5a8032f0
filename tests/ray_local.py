"""What the Ray tests share: the environment Ray workers inherit (the fake models as plugins), a corpus,
and the vectors a store holds per file."""
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import write
from fakes import BandEncoder
from sqlalchemy import select
from suite_paths import TESTS

from proto_index import Store
from proto_index.store.schema import Recording, Window

PLUGINS = "fakes,ray_fakes"
OBJECT_STORE = 80 * 1024 ** 2


@pytest.fixture(scope="module", autouse=True)
def worker_env():
    """Ray workers inherit this environment: they import tests/fakes.py and tests/ray_fakes.py as model plugins."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "PROTO_INDEX_PLUGINS")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), saved["PYTHONPATH"]]))
    os.environ["PROTO_INDEX_PLUGINS"] = PLUGINS
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def corpus(root: Path, n: int, seconds: float = 2.0) -> Path:
    for i in range(n):
        write(root / f"c{i:03d}.wav", [(200.0 + 37 * i, 0.5)], seconds=seconds, seed=i)
    return root


def stored_vectors(store: Path) -> dict[str, np.ndarray]:
    with Store.open(store, encoder=BandEncoder()) as s, s._storage.session() as session:
        rows = session.execute(select(Recording.path, Window.vector_row).join(Window).order_by(Window.start_s)).all()
        out: dict[str, list[int]] = {}
        for path, row in rows:
            out.setdefault(path, []).append(row)
        return {p: s._storage.vectors.read(r) for p, r in out.items()}
