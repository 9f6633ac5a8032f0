"""The index build reads the exact vectors in bounded pieces (what lets a 10M store build in ~2 GiB).

``VectorIndex.build`` must never ask the vector file for the whole corpus at once: it trains on a
sample of ``plan.train_size`` rows and adds the rest ``chunk`` rows at a time.
"""
import numpy as np

from proto_index.core.index_plan import plan_from_factory
from proto_index.store.index import VectorIndex


def test_build_reads_a_training_sample_then_bounded_chunks():
    rng = np.random.default_rng(0)
    n, dim, chunk = 6_000, 32, 1_000
    corpus = rng.standard_normal((n, dim)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    reads: list[np.ndarray] = []

    def reader(rows):
        reads.append(np.asarray(rows).copy())
        return corpus[rows]

    plan = plan_from_factory("IVF16,PQ8", 4_000, dim)  # trains on 40 x 256 = 10,240, capped at 4,000 here
    assert plan.train_size == 4_000
    index = VectorIndex.build(dim, np.arange(n), reader, plan, chunk=chunk)

    sample, *chunks = reads[: 1 + n // chunk]
    assert len(sample) == plan.train_size and np.all(np.diff(sample) > 0)  # a sorted sample, no repeats
    assert [len(c) for c in chunks] == [chunk] * (n // chunk)
    assert np.array_equal(np.concatenate(chunks), np.arange(n))  # every row added once, in order
    assert max(len(r) for r in reads[: 1 + n // chunk]) == plan.train_size
    assert index.ntotal == n and np.array_equal(index.ids(), np.arange(n))
