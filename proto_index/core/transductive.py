"""Transductive adaptation: label-free EM over the archive's own audio embeddings (TransCLIP-style).

The zero-shot (or TGAP) decision scores each clip alone. Transduction also uses how the archive's
clips cluster: a Gaussian mixture over the audio embeddings (class means, one shared diagonal
covariance) whose assignments are pulled towards each clip's nearest neighbours' and kept close,
by a KL term, to the text-anchored prediction. Block majorize-minimize, after Zanella et al.,
"Boosting Vision-Language Models with Transduction" (NeurIPS 2024):

    z_i   ∝  yhat_i ** lam  *  exp(log N(f_i; mu, Sigma) + sum_j w_ij z_j)     (a few passes)
    mu_k  =  sum_i z_ik f_i / sum_i z_ik
    Sigma =  diag( sum_ik z_ik (f_i - mu_k)**2 / n )

``yhat`` is the softmax of ``temperature`` times a clip's profile: Ps, or the background-subtracted
Pf = Ps - tau * Pb, so transduction combines with the paper's adaptation. Pure numpy, no I/O: the
neighbour graph comes from the caller (the FAISS index in the engine; :func:`knn_graph` is the
brute-force reference).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proto_index.core.profiles import l2_normalize


@dataclass(frozen=True)
class TransductiveOptions:
    """``lam``: weight of the text prior (0 ignores it); ``temperature``: scale of the profiles in
    the prior's softmax; ``neighbours``: graph degree; ``iterations`` outer EM steps, each with
    ``z_passes`` assignment updates."""

    lam: float = 1.0
    temperature: float = 100.0
    neighbours: int = 3
    iterations: int = 10
    z_passes: int = 5

    def __post_init__(self) -> None:
        for name in ("lam", "temperature"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("iterations", "z_passes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.neighbours < 0:
            raise ValueError(f"neighbours must be >= 0, got {self.neighbours}")


@dataclass(frozen=True)
class Graph:
    """Each clip's ``m`` neighbours (row indices, never itself) and their weights, both ``(n, m)``."""

    indices: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class Transduction:
    """Soft assignments ``(n, k)`` (rows sum to 1), the final class means ``(k, d)`` and the
    shared diagonal variance ``(d,)``."""

    assignments: np.ndarray
    means: np.ndarray
    variance: np.ndarray


_VAR_FLOOR = 1e-8


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def prior_from_profiles(profiles: np.ndarray, temperature: float) -> np.ndarray:
    """yhat: the softmax of ``temperature`` times each clip's (refined) profile ``(n, k)``."""
    return softmax(temperature * np.atleast_2d(np.asarray(profiles, dtype=np.float64)))


def knn_graph(vectors: np.ndarray, m: int, block: int = 4096) -> Graph:
    """Brute-force cosine ``m``-nearest-neighbour graph (self excluded), weights = cosine clipped
    at 0; ties go to the lower row index. The reference for the engine's index-backed graph."""
    v = l2_normalize(np.atleast_2d(vectors))
    n = v.shape[0]
    m = min(m, n - 1)
    if m <= 0:
        return Graph(np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0)))
    indices = np.empty((n, m), dtype=np.int64)
    weights = np.empty((n, m))
    for start in range(0, n, block):
        sims = v[start:start + block] @ v.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf
        order = np.argsort(-sims, axis=1, kind="stable")[:, :m]
        indices[start:start + block] = order
        weights[start:start + block] = np.take_along_axis(sims, order, axis=1)
    return Graph(indices, np.maximum(weights, 0.0))


def gaussian_log_likelihood(vectors: np.ndarray, means: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """log N(f_i; mu_k, diag(variance)) up to the constant shared by every class -> ``(n, k)``."""
    f = np.asarray(vectors, dtype=np.float64)
    precision = 1.0 / np.maximum(variance, _VAR_FLOOR)
    # -(f - mu)^2 / 2var expanded: one (n, d) x (d, k) product instead of an (n, k, d) tensor
    quad = (f * f) @ precision[:, None] - 2.0 * f @ (means * precision).T + (means * means) @ precision
    return -0.5 * quad


def _neighbour_sum(graph: Graph, z: np.ndarray) -> np.ndarray:
    """sum_j w_ij z_j over each clip's neighbours -> ``(n, k)``."""
    if graph.indices.shape[1] == 0:
        return np.zeros_like(z)
    return np.einsum("nm,nmk->nk", graph.weights, z[graph.indices])


def update_assignments(prior: np.ndarray, log_likelihood: np.ndarray, graph: Graph, z: np.ndarray,
                       lam: float) -> np.ndarray:
    """One pass of z_i ∝ prior_i**lam * exp(log_likelihood_i + sum_j w_ij z_j)."""
    log_prior = np.log(np.maximum(prior, 1e-300))
    return softmax(lam * log_prior + log_likelihood + _neighbour_sum(graph, z))


def update_gaussians(vectors: np.ndarray, z: np.ndarray, previous_means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class means weighted by z (a class that lost every clip keeps its previous mean) and the
    shared diagonal variance."""
    f = np.asarray(vectors, dtype=np.float64)
    mass = z.sum(axis=0)
    empty = mass < 1e-9
    means = np.where(empty[:, None], previous_means, (z.T @ f) / np.where(empty, 1.0, mass)[:, None])
    # sum_ik z_ik (f_i - mu_k)^2 = sum_i f_i^2 - 2 sum_k mu_k * (z^T f)_k + sum_k mass_k mu_k^2
    sq = (f * f).sum(axis=0) - 2.0 * (means * (z.T @ f)).sum(axis=0) + (mass[:, None] * means * means).sum(axis=0)
    return means, np.maximum(sq / f.shape[0], _VAR_FLOOR)


def transduce(vectors: np.ndarray, prior: np.ndarray, graph: Graph, init_means: np.ndarray | None = None,
              options: TransductiveOptions = TransductiveOptions()) -> Transduction:
    """Label-free EM over ``vectors`` ``(n, d)`` (unit audio embeddings) from the text prior
    ``(n, k)`` (:func:`prior_from_profiles`).

    ``init_means`` ``(k, d)``: where the mixture starts, on the audio side of the modality gap
    (e.g. TGAP prototypes); by default the prior-weighted means of the clips. Transduction moves
    whole clusters: where the prior gets most of a cluster wrong, it relabels that cluster wholesale
    (no gain where zero-shot is near chance). The variance starts as the clips' around their
    prior-weighted means."""
    f = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    yhat = np.atleast_2d(np.asarray(prior, dtype=np.float64))
    if yhat.shape[0] != f.shape[0]:
        raise ValueError(f"shapes disagree: vectors {f.shape}, prior {yhat.shape}")
    if graph.indices.shape[0] != f.shape[0]:
        raise ValueError(f"the graph has {graph.indices.shape[0]} rows for {f.shape[0]} vectors")
    z = yhat.copy()
    weighted, variance = update_gaussians(f, z, np.zeros((yhat.shape[1], f.shape[1])))
    means = weighted if init_means is None else np.atleast_2d(np.asarray(init_means, dtype=np.float64))
    if means.shape != (yhat.shape[1], f.shape[1]):
        raise ValueError(f"shapes disagree: vectors {f.shape}, prior {yhat.shape}, means {means.shape}")
    for _ in range(options.iterations):
        log_likelihood = gaussian_log_likelihood(f, means, variance)
        for _ in range(options.z_passes):
            z = update_assignments(yhat, log_likelihood, graph, z, options.lam)
        means, variance = update_gaussians(f, z, means)
    return Transduction(assignments=z, means=means, variance=variance)
