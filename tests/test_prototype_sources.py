"""Prototypes without a text anchor: a class's example files or windows (``examples``) and the
corpus windows a model's own classifier scores highest for the labels mapped to it (``classifier``)."""
import numpy as np
import pytest

from proto_index.core.prototypes import class_scores, merge_top_n, no_neighbours, top_n_by_score


def test_class_scores_are_the_max_over_the_mapped_labels():
    s = np.array([[0.1, 0.9, 0.2, 0.0],
                  [0.5, 0.3, 0.7, 0.4]])
    np.testing.assert_array_equal(class_scores(s, [[0, 2], [1], [3, 2, 0]]), [[0.2, 0.9, 0.2], [0.7, 0.3, 0.7]])
    with pytest.raises(ValueError, match="at least one label column"):
        class_scores(s, [[0], []])


def test_top_n_by_score_best_first_ties_to_the_lower_row():
    scores = np.array([[0.5, 0.1], [0.9, 0.1], [0.5, 0.3], [0.2, 0.3], [0.9, 0.0]])
    top = top_n_by_score(scores, 3)
    np.testing.assert_array_equal(top.indices, [[1, 4, 0], [2, 3, 0]])
    np.testing.assert_array_equal(top.scores, [[0.9, 0.9, 0.5], [0.3, 0.3, 0.1]])
    with pytest.raises(ValueError, match="n=6 exceeds the corpus size 5"):
        top_n_by_score(scores, 6)


def test_the_chunked_fold_is_exactly_the_brute_force():
    rng = np.random.default_rng(3)
    scores = np.round(rng.uniform(size=(1000, 4)), 2)  # rounded: many ties
    want = top_n_by_score(scores, 35)
    for chunk in (1, 7, 64, 1000):
        best = no_neighbours(4)
        for a in range(0, 1000, chunk):
            best = merge_top_n(best, scores[a:a + chunk], np.arange(a, min(a + chunk, 1000)), 35)
            assert best.indices.shape == (4, min(35, a + chunk))
        np.testing.assert_array_equal(best.indices, want.indices)
        np.testing.assert_array_equal(best.scores, want.scores)


def test_a_fold_keeps_fewer_than_n_until_there_are_n():
    best = merge_top_n(no_neighbours(1), np.array([[0.2], [0.4]]), np.array([10, 11]), 5)
    np.testing.assert_array_equal(best.indices, [[11, 10]])
    np.testing.assert_array_equal(best.scores, [[0.4, 0.2]])
