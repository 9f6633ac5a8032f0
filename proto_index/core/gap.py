"""The modality gap between class prototypes and the corpus audio they should describe. Pure numpy.

Two measures, computed for the text anchors and for the prototypes of a set (identical for a
zero-shot set; a TGAP set's prototypes sit on the audio side):

* neighbour cosine: for each class, the mean cosine between the vector and its K nearest corpus
  audio vectors. Text anchors sit across the gap, so even their nearest audio is far;
* centroid distance: the Euclidean distance between the centroid of the L2-normalised vectors and
  the centroid of the L2-normalised corpus audio (the "modality gap" of Liang et al., 2022).

The corpus may be given in chunks, so a store larger than memory can be measured in one pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from proto_index.core.profiles import l2_normalize


def merge_top_k(best: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest values of each row across ``best`` ``(q, <=k)`` and ``scores`` ``(q, c)``, descending."""
    both = np.concatenate([best, scores], axis=1)
    take = min(k, both.shape[1])
    top = -np.partition(-both, take - 1, axis=1)[:, :take] if take < both.shape[1] else both
    return -np.sort(-top, axis=1)


@dataclass(frozen=True)
class GapMeasure:
    """Neighbour cosines per class ``(k,)``, their mean, and the centroid distance."""

    neighbour_cosine: np.ndarray
    mean_neighbour_cosine: float
    centroid_distance: float


@dataclass(frozen=True)
class GapReport:
    labels: list[str]
    k: int
    corpus_size: int
    anchors: GapMeasure
    prototypes: GapMeasure


def modality_gap(
    labels: list[str], anchors: np.ndarray, prototypes: np.ndarray, corpus: Iterable[np.ndarray] | np.ndarray, k: int = 10
) -> GapReport:
    """Measure both gaps against the corpus (an ``(n, d)`` array or an iterable of such chunks)."""
    if k < 1:
        raise ValueError("K must be at least 1")
    queries = {"anchors": l2_normalize(np.atleast_2d(anchors)), "prototypes": l2_normalize(np.atleast_2d(prototypes))}
    if isinstance(corpus, np.ndarray):
        corpus = [corpus]
    best = {name: np.full((q.shape[0], 0), -np.inf) for name, q in queries.items()}
    total, count = None, 0
    for chunk in corpus:
        chunk = l2_normalize(np.atleast_2d(chunk))
        if chunk.shape[0] == 0:
            continue
        for name, q in queries.items():
            best[name] = merge_top_k(best[name], q @ chunk.T, k)
        total = chunk.sum(axis=0) if total is None else total + chunk.sum(axis=0)
        count += chunk.shape[0]
    if count < k:
        raise ValueError(f"K={k} exceeds the corpus size {count}")
    assert total is not None  # count >= k >= 1 chunks' rows were summed
    audio_centroid = total / count

    def measure(name: str) -> GapMeasure:
        per_class = best[name].mean(axis=1)
        distance = float(np.linalg.norm(queries[name].mean(axis=0) - audio_centroid))
        return GapMeasure(per_class, float(per_class.mean()), distance)

    return GapReport(list(labels), k, count, measure("anchors"), measure("prototypes"))
