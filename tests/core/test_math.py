"""The pure math against hand-computed values and naive loop references."""
import math

import numpy as np
import pytest

from proto_index.core.decision import decide
from proto_index.core.profiles import background_profile, cosine_profiles, l2_normalize, refine
from proto_index.core.prototypes import (
    centroid,
    nearest_by_cosine,
    render_prompts,
    tgap_prototypes,
    tgap_reference,
)


def naive_cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb)


def test_cosine_profiles_hand_computed():
    protos = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    clip = np.array([3.0, 4.0])
    ps = cosine_profiles(clip, protos)
    # |clip| = 5: cos to x-axis 3/5, to y-axis 4/5, to diagonal 7/(5*sqrt 2)
    assert ps.shape == (3,)
    np.testing.assert_allclose(ps, [0.6, 0.8, 7 / (5 * math.sqrt(2))], rtol=0, atol=1e-12)


def test_cosine_profiles_match_naive_loop():
    rng = np.random.default_rng(1)
    clips, protos = rng.normal(size=(7, 5)), rng.normal(size=(4, 5)) * 3
    ps = cosine_profiles(clips, protos)
    expected = [[naive_cosine(c, p) for p in protos] for c in clips]
    np.testing.assert_allclose(ps, expected, atol=1e-12)


def test_l2_normalize_leaves_zero_vector_zero():
    out = l2_normalize(np.array([[0.0, 0.0], [3.0, 4.0]]))
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.6, 0.8]])


def test_background_profile_is_mean_of_profiles():
    protos = np.array([[1.0, 0.0], [0.0, 1.0]])
    bg = np.array([[1.0, 0.0], [0.0, 5.0]])
    # profiles (1, 0) and (0, 1): mean (0.5, 0.5)
    np.testing.assert_allclose(background_profile(bg, protos), [0.5, 0.5])


def test_background_profile_needs_a_vector():
    with pytest.raises(ValueError, match="at least one"):
        background_profile(np.zeros((0, 2)), np.eye(2))


def test_refine_subtracts_scaled_background():
    ps = np.array([[0.9, 0.5, 0.1]])
    pb = np.array([1.0, 0.0, 0.5])
    np.testing.assert_allclose(refine(ps, pb, 0.7), [[0.2, 0.5, -0.25]], atol=1e-12)
    np.testing.assert_array_equal(refine(ps, None, 0.7), ps)
    np.testing.assert_array_equal(refine(ps, pb, 0.0), ps)


def test_subtraction_flips_a_background_dominated_decision():
    # clip = class 1 + strong background that looks like class 0
    protos = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    bg = np.array([[1.0, 0.0, 0.3]])
    clip = np.array([1.0, 0.6, 0.3])
    ps = cosine_profiles(clip, protos)
    assert decide(ps).winners[0] == 0
    pf = refine(ps, background_profile(bg, protos), 0.7)
    assert decide(pf).winners[0] == 1


def test_decide_winner_score_margin():
    d = decide(np.array([[0.1, 0.7, 0.4], [0.3, 0.3, -1.0]]))
    np.testing.assert_array_equal(d.winners, [1, 0])  # tie goes to the lower index
    np.testing.assert_allclose(d.scores, [0.7, 0.3])
    np.testing.assert_allclose(d.margins, [0.3, 0.0], atol=1e-12)


def test_decide_single_class_margin_is_nan():
    d = decide(np.array([[0.4], [0.2]]))
    assert np.isnan(d.margins).all()
    np.testing.assert_array_equal(d.winners, [0, 0])


def test_render_prompts_uses_template():
    assert render_prompts(["dog bark", "siren"]) == ["This is a sound of dog bark", "This is a sound of siren"]
    assert render_prompts(["rain"], "{label} outside") == ["rain outside"]
    with pytest.raises(ValueError, match="{label}"):
        render_prompts(["rain"], "no placeholder")


def test_centroid_is_plain_mean():
    np.testing.assert_allclose(centroid(np.array([[1.0, 2.0], [3.0, 6.0]])), [2.0, 4.0])
    with pytest.raises(ValueError):
        centroid(np.zeros((0, 3)))


def test_nearest_by_cosine_hand_case_with_tie():
    anchor = np.array([[1.0, 0.0]])
    corpus = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0], [5.0, 0.0]])
    nb = nearest_by_cosine(anchor, corpus, 3)
    # rows 1 and 3 both have cosine 1: the lower index comes first
    np.testing.assert_array_equal(nb.indices, [[1, 3, 2]])
    np.testing.assert_allclose(nb.scores, [[1.0, 1.0, 1 / math.sqrt(2)]])


def test_nearest_rejects_bad_n():
    with pytest.raises(ValueError, match="exceeds"):
        nearest_by_cosine(np.ones((1, 2)), np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match="at least 1"):
        nearest_by_cosine(np.ones((1, 2)), np.ones((2, 2)), 0)


def test_tgap_matches_naive_loop():
    rng = np.random.default_rng(7)
    anchors, corpus, n = rng.normal(size=(3, 6)), rng.normal(size=(40, 6)), 5
    protos, nb = tgap_reference(anchors, corpus, n)
    for k, anchor in enumerate(anchors):
        sims = [naive_cosine(anchor, row) for row in corpus]
        top = sorted(range(len(corpus)), key=lambda i: (-sims[i], i))[:n]
        assert list(nb.indices[k]) == top
        expected = [sum(corpus[i][j] for i in top) / n for j in range(6)]
        np.testing.assert_allclose(protos[k], expected, atol=1e-12)


def test_tgap_prototypes_shape_check():
    with pytest.raises(ValueError, match="shaped"):
        tgap_prototypes(np.zeros((2, 3)))
