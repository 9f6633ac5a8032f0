"""Transductive EM (proto_index.core.transductive): each update against its formula written out as
loops, the whole method on a space where the answer is known, and against the authors' solver."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from suite_paths import FIXTURES

from proto_index.core.profiles import cosine_profiles, l2_normalize
from proto_index.core.transductive import (
    Graph,
    TransductiveOptions,
    gaussian_log_likelihood,
    graph_term,
    initial_means,
    knn_graph,
    prior_from_profiles,
    transduce,
    update_assignments,
    update_gaussians,
)
from proto_index.options import EnvironmentOptions, PrototypeOptions


def _loops_log_likelihood(f, means, var):
    return np.array([[-0.5 * sum((f[i, d] - means[k, d]) ** 2 / var[d] for d in range(f.shape[1]))
                      for k in range(means.shape[0])] for i in range(f.shape[0])])


def test_log_likelihood_is_the_diagonal_gaussian_exponent():
    rng = np.random.default_rng(0)
    f, means, var = rng.normal(size=(5, 3)), rng.normal(size=(2, 3)), rng.uniform(0.1, 2.0, 3)
    np.testing.assert_allclose(gaussian_log_likelihood(f, means, var), _loops_log_likelihood(f, means, var), rtol=1e-12)


def test_the_graph_term_is_the_symmetrised_neighbour_sum():
    rng = np.random.default_rng(3)
    z = rng.dirichlet([1, 1], size=4)
    graph = Graph(np.array([[1, 2], [0, 3], [3, 0], [2, 1]]), rng.uniform(0, 1, (4, 2)))
    dense = np.zeros((4, 4))
    for i in range(4):
        for a in range(2):
            dense[i, graph.indices[i, a]] = graph.weights[i, a]
    np.testing.assert_allclose(graph_term(graph, z), (dense @ z + dense.T @ z) / 4, rtol=1e-12)
    assert not graph_term(Graph(np.zeros((4, 0), int), np.zeros((4, 0))), z).any()


def test_one_assignment_pass_follows_the_formula():
    prior = np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]])
    loglik = np.array([[-10.0, -20.0], [-5.0, -1.0], [0.0, -30.0]])
    z = np.array([[0.6, 0.4], [0.1, 0.9], [0.5, 0.5]])
    graph = Graph(np.array([[1], [2], [0]]), np.array([[0.5], [0.25], [1.0]]))
    lam = 2.0
    pull = np.zeros((3, 2))
    for i in range(3):
        j, w = graph.indices[i, 0], graph.weights[i, 0]
        pull[i] += w * z[j]  # i's neighbour j
        pull[j] += w * z[i]  # i is j's... neighbour of i, seen from j
    expected = np.empty((3, 2))
    for i in range(3):
        un = [prior[i, k] ** lam * np.exp(loglik[i, k] / 50 + pull[i, k] / 2) for k in range(2)]
        expected[i] = np.array(un) / sum(un)
    np.testing.assert_allclose(update_assignments(prior, loglik, graph, z, lam), expected, rtol=1e-12)


def test_gaussians_are_the_unit_weighted_means_and_pooled_variance():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(6, 4))
    z = rng.dirichlet([1, 1, 1], size=6)
    z[:, 2] = 0.0  # class 2 lost every clip: it keeps its previous mean
    z /= z.sum(axis=1, keepdims=True)
    previous = rng.normal(size=(3, 4))
    means, var = update_gaussians(f, z, previous)
    for k in (0, 1):
        weighted = sum(z[i, k] * f[i] for i in range(6))
        np.testing.assert_allclose(means[k], weighted / np.linalg.norm(weighted), rtol=1e-12)
    np.testing.assert_array_equal(means[2], previous[2])
    pooled = sum(z[i, k] * (f[i] - means[k]) ** 2 for i in range(6) for k in range(3)) / 6
    np.testing.assert_allclose(var, pooled, rtol=1e-10)


def test_initial_means_use_each_class_most_confident_clips():
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 0.0]])
    z = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    means = initial_means(f, z, confident=2)
    top0 = 0.9 * f[0] + 0.6 * f[2]       # class 0's two highest: clips 0 and 2
    top1 = 0.9 * f[3] + 0.8 * f[1]       # class 1's: clips 3 and 1
    np.testing.assert_allclose(means, [top0 / np.linalg.norm(top0), top1 / np.linalg.norm(top1)], rtol=1e-12)


def test_knn_graph_excludes_self_and_breaks_ties_low():
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    g = knn_graph(v, 2)
    np.testing.assert_array_equal(g.indices, [[1, 2], [0, 2], [0, 1], [2, 0]])
    np.testing.assert_allclose(g.weights, [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, -1.0]], atol=1e-12)
    # blocks give the same graph as one pass
    rng = np.random.default_rng(2)
    w = rng.normal(size=(50, 8))
    a, b = knn_graph(w, 3), knn_graph(w, 3, block=7)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert knn_graph(w[:1], 3).indices.shape == (1, 0)


def _gapped_space(seed=0, per_class=60, d=512, pull=0.9):
    """Three classes of unit audio embeddings (cosine ~0.68 within a class, ~0.34 between) and their
    text anchors across a shared modality gap, each pulled towards the next class by ``pull``, so
    zero-shot confuses a share of every class (pull 1 puts the anchors at near-chance)."""
    rng = np.random.default_rng(seed)
    common = l2_normalize(rng.normal(size=d))
    centres = l2_normalize(common + l2_normalize(rng.normal(size=(3, d))))
    labels = np.repeat(np.arange(3), per_class)
    audio = l2_normalize(centres[labels] + 0.9 * l2_normalize(rng.normal(size=(labels.size, d))))
    gap = l2_normalize(rng.normal(size=d))
    anchors = l2_normalize(centres + pull * np.roll(centres, -1, axis=0) + 2.0 * gap)
    return audio, anchors, labels


def test_transduction_recovers_the_classes_zero_shot_confuses():
    audio, anchors, labels = _gapped_space()
    profiles = cosine_profiles(audio, anchors)
    zero_shot = (profiles.argmax(axis=1) == labels).mean()
    options = TransductiveOptions()
    out = transduce(audio, prior_from_profiles(profiles, options.temperature),
                    knn_graph(audio, options.neighbours), options=options)
    assert zero_shot < 0.85
    assert (out.assignments.argmax(axis=1) == labels).mean() == 1.0
    np.testing.assert_allclose(out.assignments.sum(axis=1), 1.0)
    # the clips' order does not matter
    perm = np.random.default_rng(5).permutation(labels.size)
    again = transduce(audio[perm], prior_from_profiles(profiles[perm], options.temperature),
                      knn_graph(audio[perm], options.neighbours), options=options)
    np.testing.assert_allclose(again.assignments, out.assignments[perm], atol=1e-9)


def test_a_dominant_prior_keeps_the_zero_shot_decision():
    audio, anchors, _ = _gapped_space(seed=3)
    profiles = cosine_profiles(audio, anchors)
    prior = prior_from_profiles(profiles, 100.0)
    out = transduce(audio, prior, knn_graph(audio, 3), options=TransductiveOptions(lam=1e6, iterations=2))
    np.testing.assert_array_equal(out.assignments.argmax(axis=1), profiles.argmax(axis=1))


@pytest.mark.parametrize("field,value,message", [
    ("lam", float("nan"), "lam must be a finite number >= 0, got nan"),
    ("temperature", -1.0, "temperature must be a finite number >= 0, got -1.0"),
    ("iterations", 0, "iterations must be at least 1, got 0"),
    ("neighbours", -1, "neighbours must be >= 0, got -1"),
])
def test_options_are_checked(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TransductiveOptions(**{field: value})


def test_shapes_are_checked():
    audio, anchors, _ = _gapped_space(per_class=4)
    with pytest.raises(ValueError, match="shapes disagree"):
        transduce(audio, np.ones((3, 3)) / 3, knn_graph(audio, 3))
    with pytest.raises(ValueError, match="the graph has 2 rows for 12 vectors"):
        transduce(audio, np.ones((12, 3)) / 3, knn_graph(audio[:2], 1))


def test_same_assignments_as_the_authors_solver():
    """tests/fixtures/transclip_reference.npz holds the z of the TransCLIP authors' own solver on this
    input (float64, CPU), recorded by scripts/record_transclip_reference.py."""
    reference = np.load(FIXTURES / "transclip_reference.npz")
    audio, anchors, labels = _gapped_space(seed=11, per_class=40, pull=0.92)
    assert hashlib.sha256(audio.tobytes()).hexdigest() == str(reference["audio_sha256"])
    options = TransductiveOptions()
    out = transduce(audio, prior_from_profiles(cosine_profiles(audio, anchors), options.temperature),
                    knn_graph(audio, options.neighbours), options)
    np.testing.assert_allclose(out.assignments, reference["z"], rtol=0, atol=1e-12)
    assert (out.assignments.argmax(axis=1) == labels).mean() == 1.0


# --- through the store: classify(..., ScoringOptions(transductive=True)) ---------------------------

def test_classify_transductive_is_the_core_method_per_environment(tmp_path, corpus_dir, background_dir):
    from conftest import BACKGROUNDS, CLASS_FREQS, write
    from fakes import BandEncoder

    from proto_index import ScoringOptions, Store
    from proto_index.core.profiles import background_profile, refine
    from proto_index.options import DatasetOptions
    from proto_index.errors import InvalidInput

    store = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    store.ingest([corpus_dir])
    labels = list(CLASS_FREQS)
    store.add_classes("urban", labels)
    store.add_environment("airport", EnvironmentOptions(text="airport", audio=[background_dir / "airport"]))
    store.add_environment("park", EnvironmentOptions(text="park"))
    store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    items = []
    for i in range(12):
        label, env = labels[i % 4], ("airport", "park")[i % 2]
        clip = write(tmp_path / "archive" / f"c{i}.wav", [(CLASS_FREQS[label], 0.2)] + BACKGROUNDS[env],
                     seconds=2.5, seed=50 + i)
        items.append((clip, env))
    result = store.classify(items, "urban-zero-shot", scoring=ScoringOptions(transductive=True))
    protos = store.prototype_set("urban-zero-shot").matrix
    options = TransductiveOptions()
    for env, adaptation in (("airport", "audio"), ("park", "text")):
        rows = [i for i, (_, e) in enumerate(items) if e == env]
        vectors = store.embed_audio([items[i][0] for i in rows]).astype(np.float64)
        view = store.environment(env)
        pb = background_profile(view.audio_vectors if adaptation == "audio" else view.text_vectors, protos)
        tau = result.files[rows[0]].tau
        prior = prior_from_profiles(refine(cosine_profiles(vectors, protos), pb, tau), options.temperature)
        from proto_index.store.knn import neighbour_graph

        z = transduce(vectors, prior, neighbour_graph(vectors, options.neighbours), options).assignments
        for row, expected in zip(rows, z):
            got = result.files[row]
            np.testing.assert_allclose(got.scores, expected, atol=1e-6)
            assert got.label == labels[int(expected.argmax())] and got.adaptation == adaptation
            assert got.score == pytest.approx(expected.max(), abs=1e-6)
    with pytest.raises(InvalidInput, match="transductive adaptation works over all of an environment's clips"):
        store.classify_dataset(items, "urban-zero-shot", DatasetOptions(tmp_path / "ds"),
                               scoring=ScoringOptions(transductive=True))
    with pytest.raises(InvalidInput, match="transductive must be True or False, got 'yes'"):
        ScoringOptions(transductive="yes")
    store.close()
