"""Entropy-guided prompt weights (proto_index.core.prompt_weights): the gradient against finite
differences, the weights on the simplex, and a case where the right template is known."""
from __future__ import annotations

import numpy as np
import pytest

from proto_index.core.profiles import cosine_profiles, l2_normalize
from proto_index.core.prompt_weights import (
    ensemble_anchors,
    entropy_gradient,
    entropy_prompt_weights,
    mean_entropy,
    weighted_prototypes,
)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    logits = rng.uniform(-0.2, 0.5, size=(4, 30, 5))
    w = rng.dirichlet(np.ones(4))
    grad = entropy_gradient(logits, w, 20.0)
    eps = 1e-6
    for j in range(4):
        step = np.zeros(4)
        step[j] = eps
        numeric = (mean_entropy(logits, w + step, 20.0) - mean_entropy(logits, w - step, 20.0)) / (2 * eps)
        assert grad[j] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def _templates(seed=0, n=90, d=64):
    """Three classes of audio; template 0 names them well, templates 1 and 2 are vague wordings
    whose embeddings sit between every class."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(3, d)))
    labels = np.repeat(np.arange(3), n // 3)
    audio = l2_normalize(centres[labels] + 0.8 * l2_normalize(rng.normal(size=(n, d))))
    vague = centres.mean(axis=0)
    good = l2_normalize(centres + 0.3 * l2_normalize(rng.normal(size=(3, d))))
    bad = [l2_normalize(vague + 0.05 * centres + 0.3 * l2_normalize(rng.normal(size=(3, d)))) for _ in range(2)]
    embeddings = np.stack([good] + bad)                                   # (t, k, d)
    logits = np.stack([cosine_profiles(audio, e) for e in embeddings])    # (t, n, k)
    return audio, labels, embeddings, logits


def test_weights_move_to_the_template_that_separates_the_classes():
    _, labels, embeddings, logits = _templates()
    out = entropy_prompt_weights(logits, temperature=10.0)
    assert out.weights.min() >= 0 and out.weights.sum() == pytest.approx(1.0)
    assert out.weights[0] > 0.9
    assert all(b <= a for a, b in zip(out.entropies, out.entropies[1:]))  # never rises
    assert out.entropies[-1] < out.entropies[0]
    uniform = (logits.mean(axis=0).argmax(axis=1) == labels).mean()
    weighted = (np.tensordot(out.weights, logits, axes=1).argmax(axis=1) == labels).mean()
    assert weighted >= uniform


def test_weighted_prototypes_give_the_weighted_logits():
    audio, _, embeddings, logits = _templates(seed=1)
    w = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(audio @ weighted_prototypes(embeddings, w).T, np.tensordot(w, logits, axes=1),
                               rtol=1e-12)


def test_bad_logits_are_refused():
    with pytest.raises(ValueError, match=r"expected logits shaped \(templates, clips, classes\), got \(3, 4\)"):
        entropy_prompt_weights(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="logits must be finite"):
        entropy_prompt_weights(np.full((2, 3, 4), np.nan))


def test_ensemble_anchors_follow_the_weights_and_classify_better_than_the_vague_templates():
    audio, labels, embeddings, _ = _templates()
    anchors, weights = ensemble_anchors(embeddings, audio, temperature=10.0)
    np.testing.assert_allclose(anchors, l2_normalize(weighted_prototypes(embeddings, weights.weights)), atol=1e-12)
    assert weights.weights[0] > 0.9
    assert np.mean(cosine_profiles(audio, anchors).argmax(axis=1) == labels) == 1.0
    with pytest.raises(ValueError, match="at least one audio"):
        ensemble_anchors(embeddings, np.zeros((0, 64)))
