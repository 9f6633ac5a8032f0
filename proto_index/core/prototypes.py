"""Class prototypes: zero-shot text anchors, TGAP (text-guided audio prototypes), and the pure
parts of the methods without a text anchor (the top windows by a model's own class scores).

TGAP (Acevedo et al., 2025): for each class, the centroid of the ``n`` unlabelled corpus audio
embeddings nearest to the class's text anchor. It moves the prototype from the text side of the
modality gap to the audio side. Pure numpy, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proto_index.core.profiles import l2_normalize

DEFAULT_TEMPLATE = "This is a sound of {label}"
DEFAULT_TGAP_N = 35


def render_prompts(labels: list[str], template: str = DEFAULT_TEMPLATE) -> list[str]:
    """The text prompt of each label, e.g. ``"This is a sound of dog bark"``."""
    if "{label}" not in template:
        raise ValueError("a prompt template must contain {label}")
    return [template.replace("{label}", label) for label in labels]


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The arithmetic mean of ``(n, d)`` vectors (not re-normalised: profiles normalise)."""
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if v.shape[0] == 0:
        raise ValueError("a centroid needs at least one vector")
    return v.mean(axis=0)


@dataclass(frozen=True)
class Neighbours:
    """For each of ``k`` anchors, ``n`` corpus row indices (best first) and their cosine scores."""

    indices: np.ndarray  # (k, n) int64
    scores: np.ndarray  # (k, n) float64


def nearest_by_cosine(anchors: np.ndarray, corpus: np.ndarray, n: int) -> Neighbours:
    """Brute-force top-``n`` corpus rows by cosine to each anchor; ties go to the lower row index.

    This is the exact reference the FAISS-backed search is checked against.
    """
    corpus = np.atleast_2d(corpus)
    if n < 1:
        raise ValueError("n must be at least 1")
    if n > corpus.shape[0]:
        raise ValueError(f"n={n} exceeds the corpus size {corpus.shape[0]}")
    sims = l2_normalize(np.atleast_2d(anchors)) @ l2_normalize(corpus).T
    # stable sort of -sims keeps the lower index first among equal scores
    order = np.argsort(-sims, axis=1, kind="stable")[:, :n]
    return Neighbours(indices=order, scores=np.take_along_axis(sims, order, axis=1))


def tgap_prototypes(neighbour_vectors: np.ndarray) -> np.ndarray:
    """TGAP prototypes from ``(k, n, d)`` neighbour vectors: one centroid per class -> ``(k, d)``."""
    nv = np.asarray(neighbour_vectors, dtype=np.float64)
    if nv.ndim != 3 or nv.shape[1] == 0:
        raise ValueError("expected neighbour vectors shaped (classes, n >= 1, dim)")
    return nv.mean(axis=1)


def tgap_reference(anchors: np.ndarray, corpus: np.ndarray, n: int = DEFAULT_TGAP_N) -> tuple[np.ndarray, Neighbours]:
    """TGAP computed end to end by brute force: ``(prototypes (k, d), neighbours)``."""
    nb = nearest_by_cosine(anchors, corpus, n)
    return tgap_prototypes(np.atleast_2d(corpus)[nb.indices]), nb


def supervised_prototypes(vectors: np.ndarray, labels: list[str], classes: list[str]) -> np.ndarray:
    """Supervised prototypes: for each of ``classes``, the centroid of the ``vectors`` labelled with it.

    ``vectors`` ``(n, d)`` with one label each; a class without any vector is an error.
    """
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    missing = [c for c in classes if c not in labels]
    if missing:
        raise ValueError(f"no labelled vectors for class(es): {', '.join(missing)}")
    lab = np.asarray(labels, dtype=object)
    return np.stack([centroid(v[lab == c]) for c in classes])


def blend_prototype(confirmed: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """A blended prototype: the centroid of a class's confirmed vectors together with the TGAP
    neighbours borrowed to bring it up to ``min_confirmed`` members (each member weighs the same)."""
    parts = [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (confirmed, neighbours) if np.size(x)]
    if not parts:
        raise ValueError("a blended prototype needs at least one vector")
    return centroid(np.concatenate(parts))


def class_scores(label_scores: np.ndarray, columns: list[list[int]]) -> np.ndarray:
    """Per-class scores ``(n, k)`` from a model's ``(n, L)`` label scores: for class ``j``, the
    maximum over the label columns ``columns[j]`` mapped to it (a window that scores high for any
    of a class's labels is a window of that class)."""
    s = np.atleast_2d(np.asarray(label_scores, dtype=np.float64))
    if any(not cols for cols in columns):
        raise ValueError("every class needs at least one label column")
    return np.stack([s[:, cols].max(axis=1) for cols in columns], axis=1) if columns else np.zeros((s.shape[0], 0))


def merge_top_n(best: Neighbours, scores: np.ndarray, rows: np.ndarray, n: int) -> Neighbours:
    """The ``n`` highest-scoring rows per class among ``best`` (``(k, m)``, best first) and a new
    chunk (``scores`` ``(c, k)`` for the corpus rows ``rows`` ``(c,)``); ties go to the lower row.

    Folding the corpus through this chunk by chunk keeps ``k * (n + c)`` numbers in memory and
    gives exactly :func:`top_n_by_score` of the whole.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    r = np.asarray(rows, dtype=np.int64)
    k = s.shape[1]
    cand_s = np.concatenate([np.asarray(best.scores, np.float64).reshape(k, -1), s.T], axis=1)
    cand_r = np.concatenate([np.asarray(best.indices, np.int64).reshape(k, -1), np.broadcast_to(r, (k, len(r)))], axis=1)
    order = np.lexsort((cand_r, -cand_s), axis=-1)[:, :n]
    return Neighbours(np.take_along_axis(cand_r, order, axis=1), np.take_along_axis(cand_s, order, axis=1))


def no_neighbours(k: int) -> Neighbours:
    """The empty start of a :func:`merge_top_n` fold over ``k`` classes."""
    return Neighbours(np.zeros((k, 0), np.int64), np.zeros((k, 0), np.float64))


def top_n_by_score(scores: np.ndarray, n: int) -> Neighbours:
    """Brute force: for each class (a column of ``(rows, k)`` ``scores``), its ``n`` best rows, best
    first, ties to the lower row. The reference the chunked fold is checked against."""
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if n > s.shape[0]:
        raise ValueError(f"n={n} exceeds the corpus size {s.shape[0]}")
    return merge_top_n(no_neighbours(s.shape[1]), s, np.arange(s.shape[0]), n)
