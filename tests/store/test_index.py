"""Index planning (a table of cases) and the compressed index's exact re-ranking."""
import numpy as np
import pytest

from proto_index.core.index_plan import GiB, flat_plan, plan_from_factory, plan_index
from proto_index.store.index import VectorIndex


@pytest.mark.parametrize(
    "n, budget, factory, bytes_per_vector, train_size, nprobe",
    [
        (0, 2 * GiB, "Flat", 2056, 0, 1),
        (1_000_000, 2 * GiB, "Flat", 2056, 0, 1),  # 1M x 2056 B = 1.9 GiB fits 2 GiB
        (1_100_000, 2 * GiB, "IVF4096,PQ128", 136, 163_840, 128),
        (10_000_000, 2 * GiB, "IVF16384,PQ128", 136, 655_360, 512),
        (10_000_000, 1 * GiB, "IVF16384,PQ64", 72, 655_360, 512),
        (100_000, 100 << 20, "IVF1024,PQ128", 136, 40_960, 32),
    ],
)
def test_plan_table(n, budget, factory, bytes_per_vector, train_size, nprobe):
    plan = plan_index(n, 512, budget)
    assert (plan.factory, plan.bytes_per_vector, plan.train_size, plan.nprobe) == (
        factory, bytes_per_vector, train_size, nprobe)


@pytest.mark.parametrize("factory, nprobe", [("IVF64,PQ4", 16), ("IVF1024,PQ4", 32)])
def test_built_and_loaded_indexes_search_with_the_plans_nprobe(tmp_path, factory, nprobe):
    """The nprobe FAISS searches with is the plan's, after a build and after a load from disk."""
    data = clustered(45_000 if "1024" in factory else 3_000, 16)
    plan = plan_from_factory(factory, len(data), 16)
    assert plan.nprobe == nprobe
    built = VectorIndex.build(16, np.arange(len(data)), lambda r: data[r], plan)
    built.save(tmp_path / "i.faiss")
    for index in (built, VectorIndex.load(tmp_path / "i.faiss")):
        assert index.description.startswith(f"{factory} (nprobe {nprobe}, exact re-rank of ")
    assert VectorIndex.empty(16).description == "Flat (exact)"


def test_plan_from_factory_validates():
    assert plan_from_factory("Flat", 10, 512) == flat_plan(512)
    assert plan_from_factory("IVF256,PQ32", 50_000, 512).factory == "IVF256,PQ32"
    with pytest.raises(ValueError, match="divisible"):
        plan_from_factory("IVF256,PQ30", 50_000, 512)
    with pytest.raises(ValueError, match="unsupported index 'HNSW32'"):
        plan_from_factory("HNSW32", 50_000, 512)


def clustered(n, dim, seed=0):
    """Points around 50 fixed cluster centres (the same centres whatever the seed)."""
    centres = np.random.default_rng(0).standard_normal((50, dim))
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, 50, n)] + 0.7 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_compressed_index_reranks_to_exact_scores_and_high_recall():
    data = clustered(20_000, 64)
    rows = np.arange(len(data))
    reader = lambda r: data[np.asarray(r)]  # noqa: E731
    exact = VectorIndex.build(64, rows, reader)
    compressed = VectorIndex.build(64, rows, reader, plan_from_factory("IVF128,PQ16", len(data), 64))
    assert exact.exact and not compressed.exact and compressed.ntotal == len(data)
    queries = clustered(40, 64, seed=1)
    es, er = exact.search(queries, 35)
    cs, cr = compressed.search(queries, 35)
    recall = np.mean([len(set(a) & set(b)) / 35 for a, b in zip(er, cr)])
    assert recall >= 0.95
    # returned scores are the exact inner products of the returned rows, best first
    np.testing.assert_allclose(cs, np.einsum("qd,qkd->qk", queries, data[cr]), atol=1e-5)
    assert np.all(np.diff(cs, axis=1) <= 1e-7)


def test_remove_and_atomic_save_round_trip(tmp_path):
    data = clustered(100, 16)
    index = VectorIndex.build(16, np.arange(100), lambda r: data[r])
    assert index.remove(np.array([3, 5, 999])) == 2 and index.ntotal == 98
    index.save(tmp_path / "i.faiss")
    assert not (tmp_path / "i.faiss.tmp").exists()
    again = VectorIndex.load(tmp_path / "i.faiss")
    _, rows = again.search(data[[3, 7]], 1)
    assert rows[0, 0] != 3 and rows[1, 0] == 7


def test_gpu_search_matches_cpu_or_reports_unavailable():
    import faiss

    data = clustered(2_000, 32)
    index = VectorIndex.build(32, np.arange(2_000), lambda r: data[r])
    cpu = index.search(data[:5], 10)
    moved = index.to_gpu()
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        assert moved is False  # faiss-cpu, or no CUDA device: searching stays on the CPU
        pytest.skip("no GPU FAISS here")
    assert moved
    gpu = index.search(data[:5], 10)
    np.testing.assert_array_equal(cpu[1], gpu[1])
