"""The FAISS neighbour graph (proto_index.store.knn) against the brute-force reference."""
import numpy as np

from proto_index.core.profiles import l2_normalize
from proto_index.core.transductive import knn_graph
from proto_index.store import knn


def test_exact_graph_equals_the_reference():
    v = np.random.default_rng(0).normal(size=(300, 16))
    got, ref = knn.neighbour_graph(v, 3), knn_graph(v, 3)
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_allclose(got.weights, ref.weights, atol=1e-5)


def test_inverted_file_graph_finds_most_true_neighbours(monkeypatch):
    rng = np.random.default_rng(1)
    centres = l2_normalize(rng.normal(size=(20, 32)))
    v = l2_normalize(centres[rng.integers(0, 20, 3000)] + 0.5 * l2_normalize(rng.normal(size=(3000, 32))))
    monkeypatch.setattr(knn, "EXACT_UP_TO", 1000)
    got, ref = knn.neighbour_graph(v, 3), knn_graph(v, 3)
    assert not (got.indices == np.arange(3000)[:, None]).any()  # never itself
    recall = np.mean([len(set(a) & set(b)) / 3 for a, b in zip(got.indices, ref.indices)])
    assert recall > 0.9


def test_tiny_inputs():
    assert knn.neighbour_graph(np.ones((1, 4)), 3).indices.shape == (1, 0)
    g = knn.neighbour_graph(np.eye(3), 5)
    assert g.indices.shape == (3, 2) and not (g.indices == np.arange(3)[:, None]).any()


def test_unfound_neighbours_have_no_weight():
    ids = np.array([[0, 2, -1], [1, -1, -1]])
    g = knn._without_self(ids, np.array([[1.0, 0.5, -3e38], [1.0, -3e38, -3e38]]), 2)
    np.testing.assert_array_equal(g.indices, [[2, 0], [1, 1]])
    np.testing.assert_array_equal(g.weights, [[0.5, 0.0], [0.0, 0.0]])
