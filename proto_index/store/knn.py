"""The nearest-neighbour graph of a run's vectors, with FAISS: exact up to :data:`EXACT_UP_TO`
vectors, an inverted-file search (probing :data:`PROBES` lists) above, where the exact graph's
O(n^2 d) cost would take minutes."""
from __future__ import annotations

import math

import numpy as np

from proto_index.core.profiles import l2_normalize
from proto_index.core.transductive import Graph

EXACT_UP_TO = 20_000
PROBES = 8


def neighbour_graph(vectors: np.ndarray, m: int, seed: int = 0) -> Graph:
    """Each row's ``m`` nearest other rows by cosine, with their cosines (see
    :func:`proto_index.core.transductive.knn_graph`, the brute-force reference)."""
    import faiss

    v = np.ascontiguousarray(l2_normalize(vectors), dtype=np.float32)
    n, d = v.shape
    m = min(m, n - 1)
    if m <= 0:
        return Graph(np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0)))
    if n <= EXACT_UP_TO:
        index: faiss.Index = faiss.IndexFlatIP(d)
    else:
        lists = int(4 * math.sqrt(n))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(n, min(n, 64 * lists), replace=False)
        ivf.train(v[np.sort(sample)])
        ivf.nprobe = PROBES
        index = ivf
    index.add(v)
    scores, ids = index.search(v, m + 1)
    return _without_self(ids, scores, m)


def _without_self(ids: np.ndarray, scores: np.ndarray, m: int) -> Graph:
    """Drop each row's own id from its ``m + 1`` results (or the last result, if it was not found)."""
    n = ids.shape[0]
    own = ids == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True
    keep = ~own
    ids, scores = ids[keep].reshape(n, m).astype(np.int64), scores[keep].reshape(n, m).astype(np.float64)
    missing = ids < 0  # an inverted-file search that found fewer than m: no edge (weight 0 to itself)
    ids[missing] = np.nonzero(missing)[0]
    scores[missing] = 0.0
    return Graph(ids, scores)
