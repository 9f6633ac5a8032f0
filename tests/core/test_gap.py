"""Modality-gap measures: hand-computed cases, chunked equals whole, and the `gap` command."""
import math

import numpy as np
import pytest
from cli_store import cli

from proto_index.core.gap import merge_top_k, modality_gap


def test_merge_top_k_keeps_the_k_best_in_order():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 9))
    best = merge_top_k(-np.sort(-a, axis=1), b, 5)
    np.testing.assert_allclose(best, -np.sort(-np.concatenate([a, b], axis=1), axis=1)[:, :5])
    assert merge_top_k(np.zeros((2, 0)), np.ones((2, 2)), 5).shape == (2, 2)


def test_gap_hand_computed():
    corpus = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 3.0, 0.0]])  # normalised: e1, e2, (e1+e2)/sqrt2
    anchors = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    protos = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    r = modality_gap(["a", "b"], anchors, protos, corpus, k=2)
    s = 1 / math.sqrt(2)
    # anchor a = e3 is orthogonal to every audio vector; anchor b = (e2+e3)/sqrt2: cos s to e2, 1/2 to (e1+e2)/sqrt2
    np.testing.assert_allclose(r.anchors.neighbour_cosine, [0.0, (s + 0.5) / 2], atol=1e-12)
    # prototype e1: cos 1 to e1 and s to the diagonal
    np.testing.assert_allclose(r.prototypes.neighbour_cosine, [(1 + s) / 2, (1 + s) / 2], atol=1e-12)
    audio_centroid = np.array([1 + s, 1 + s, 0.0]) / 3
    assert r.prototypes.centroid_distance == pytest.approx(np.linalg.norm(np.array([0.5, 0.5, 0.0]) - audio_centroid))
    assert r.anchors.centroid_distance == pytest.approx(np.linalg.norm(np.array([0.0, s / 2, 0.5 + s / 2]) - audio_centroid))
    assert r.corpus_size == 3 and r.k == 2


def test_chunked_corpus_gives_the_same_report():
    rng = np.random.default_rng(1)
    corpus, anchors, protos = rng.normal(size=(50, 8)), rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    whole = modality_gap(list("abcd"), anchors, protos, corpus, k=7)
    chunks = modality_gap(list("abcd"), anchors, protos, (corpus[i : i + 6] for i in range(0, 50, 6)), k=7)
    np.testing.assert_allclose(chunks.anchors.neighbour_cosine, whole.anchors.neighbour_cosine, atol=1e-12)
    np.testing.assert_allclose(chunks.prototypes.neighbour_cosine, whole.prototypes.neighbour_cosine, atol=1e-12)
    assert chunks.prototypes.centroid_distance == pytest.approx(whole.prototypes.centroid_distance)
    with pytest.raises(ValueError, match="exceeds the corpus size"):
        modality_gap(list("abcd"), anchors, protos, corpus[:3], k=7)


def test_gap_command_shows_tgap_closing_the_gap(tmp_path, corpus_dir):
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    cli("ingest", corpus_dir, "--store", store, "-q")
    cli("classes", "add", "urban", "-l", "siren", "-l", "dog bark", "-l", "drilling", "-l", "bird song", "--store", store)
    cli("prototypes", "build", "urban", "--method", "tgap", "--n", "6", "--store", store)
    out = cli("gap", "urban-tgap6", "-k", "3", "--store", store).stdout
    assert "urban-tgap6 (tgap) against 24 corpus windows, K=3" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("siren", "mean"))}
    anchor, proto = float(rows["mean"][1]), float(rows["mean"][2])
    # the fake text embedding carries a gap direction no audio has: cos(anchor, audio) <= 1/sqrt(2)
    assert anchor < 0.72 < 0.9 < proto
    distances = out.strip().splitlines()[-1]
    a, p = (float(x.split()[-1]) for x in distances.split(":")[1].split(","))
    assert p < a
    assert "K=25 exceeds the corpus size (24 windows)" in cli("gap", "urban-tgap6", "-k", "25", "--store", store, code=1).stderr
