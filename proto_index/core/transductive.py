"""Transductive adaptation: label-free EM over the archive's own audio embeddings (TransCLIP).

The zero-shot (or TGAP) decision scores each clip alone. Transduction also uses how the archive's
clips cluster: a Gaussian mixture over the audio embeddings (unit class means, one shared diagonal
covariance) whose assignments are pulled towards each clip's nearest neighbours' and kept close,
by a KL term, to the prototype-based prediction. Block majorize-minimize, after Zanella et al.,
"Boosting Vision-Language Models with Transduction" (NeurIPS 2024), zero-shot setting, with the
constants of the authors' public solver (github.com/MaxZanella/transduction-for-vlms):

    z_i   ∝  yhat_i ** lam  *  exp( log N(f_i; mu, Sigma) / 50  +  (W z + W^T z)_i / (2 m) )   (5 passes)
    mu_k  =  normalise( sum_i z_ik f_i )
    Sigma =  diag( sum_ik z_ik (f_i - mu_k)**2 / n )

``W`` holds each clip's ``m`` nearest neighbours' cosines; ``yhat`` is the softmax of
``temperature`` times a clip's profile: Ps against any prototype set, or the background-subtracted
Pf = Ps - tau * Pb, so transduction combines with the paper's adaptation. The means start at the
z-weighted sums of each class's 8 most confident clips, the variance at 1/d. Pure numpy, no I/O:
the neighbour graph comes from the caller (the FAISS index in the engine; :func:`knn_graph` is the
brute-force reference).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proto_index.core.profiles import l2_normalize


@dataclass(frozen=True)
class TransductiveOptions:
    """``lam``: weight of the prototype prior (0 ignores it); ``temperature``: scale of the profiles
    in the prior's softmax; ``neighbours``: graph degree; ``iterations``: Gaussian updates, each
    after ``z_passes`` assignment passes (and the assignments get one last round after the last)."""

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
    """Brute-force cosine ``m``-nearest-neighbour graph, self excluded, weights the cosines; ties go
    to the lower row index. The reference for the engine's index-backed graph."""
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
    return Graph(indices, weights)


def gaussian_log_likelihood(vectors: np.ndarray, means: np.ndarray, variance: np.ndarray,
                            squares: np.ndarray | None = None) -> np.ndarray:
    """-1/2 sum_d (f_id - mu_kd)^2 / var_d: the diagonal Gaussian's exponent -> ``(n, k)``.
    ``squares``: ``vectors ** 2``, when the caller keeps it across iterations."""
    f = np.asarray(vectors, dtype=np.float64)
    squares = f * f if squares is None else squares
    precision = 1.0 / np.maximum(variance, _VAR_FLOOR)
    # the square expanded: (n, d) x (d, k) products instead of an (n, k, d) tensor
    quad = (squares @ precision)[:, None] - 2.0 * f @ (means * precision).T + (means * means) @ precision
    return -0.5 * quad


def graph_term(graph: Graph, z: np.ndarray) -> np.ndarray:
    """(W z + W^T z) / 2m: the Laplacian's pull of each clip towards its neighbours and towards the
    clips whose neighbour it is -> ``(n, k)``."""
    n, m = graph.indices.shape
    if m == 0:
        return np.zeros_like(z)
    out = np.einsum("nm,nmk->nk", graph.weights, z[graph.indices])
    targets = graph.indices.ravel()
    for k in range(z.shape[1]):  # W^T z, one bincount per class (np.add.at is ~10x slower)
        out[:, k] += np.bincount(targets, weights=(graph.weights * z[:, k, None]).ravel(), minlength=n)
    return out / (2 * m)


_LIKELIHOOD_SCALE = 50.0
"""The authors' solver divides the Gaussian term by 50 (and multiplies the graph term by 50 first)."""


def update_assignments(prior: np.ndarray, log_likelihood: np.ndarray, graph: Graph, z: np.ndarray,
                       lam: float) -> np.ndarray:
    """One pass of z_i ∝ prior_i**lam * exp(log_likelihood_i / 50 + graph_term_i)."""
    log_prior = np.log(np.maximum(prior, 1e-300))
    return softmax(lam * log_prior + log_likelihood / _LIKELIHOOD_SCALE + graph_term(graph, z))


def initial_means(vectors: np.ndarray, z: np.ndarray, confident: int = 8) -> np.ndarray:
    """Each class's start: the normalised z-weighted sum of its ``confident`` highest-z clips."""
    f = np.asarray(vectors, dtype=np.float64)
    top = np.argsort(-z, axis=0, kind="stable")[:min(confident, f.shape[0])]
    means = np.stack([z[top[:, k], k] @ f[top[:, k]] for k in range(z.shape[1])])
    return l2_normalize(means)


def update_gaussians(vectors: np.ndarray, z: np.ndarray, previous_means: np.ndarray,
                     squares: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit class means from the z-weighted sums (a class that lost every clip keeps its previous
    mean) and the shared diagonal variance around them."""
    f = np.asarray(vectors, dtype=np.float64)
    squares = f * f if squares is None else squares
    sums = z.T @ f
    empty = z.sum(axis=0) < 1e-9
    means = np.where(empty[:, None], previous_means, l2_normalize(sums))
    # sum_ik z_ik (f_i - mu_k)^2 = sum_i f_i^2 - 2 sum_k mu_k * (z^T f)_k + sum_k mass_k mu_k^2
    sq = squares.sum(axis=0) - 2.0 * (means * sums).sum(axis=0) + (z.sum(axis=0)[:, None] * means * means).sum(axis=0)
    return means, np.maximum(sq / z.sum(), _VAR_FLOOR)


def transduce(vectors: np.ndarray, prior: np.ndarray, graph: Graph,
              options: TransductiveOptions = TransductiveOptions()) -> Transduction:
    """Label-free EM over ``vectors`` ``(n, d)`` (unit audio embeddings) from the prior ``(n, k)``
    (:func:`prior_from_profiles` of the clips' profiles against any prototype set).

    Transduction moves whole clusters: where the prior gets most of a cluster wrong, it relabels that
    cluster wholesale, so it gains nothing where the prior is near chance."""
    f = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    yhat = np.atleast_2d(np.asarray(prior, dtype=np.float64))
    if yhat.shape[0] != f.shape[0]:
        raise ValueError(f"shapes disagree: vectors {f.shape}, prior {yhat.shape}")
    if graph.indices.shape[0] != f.shape[0]:
        raise ValueError(f"the graph has {graph.indices.shape[0]} rows for {f.shape[0]} vectors")
    z = yhat.copy()
    means = initial_means(f, z)
    variance = np.full(f.shape[1], 1.0 / f.shape[1])
    squares = f * f
    for step in range(options.iterations + 1):
        log_likelihood = gaussian_log_likelihood(f, means, variance, squares)
        for _ in range(options.z_passes):
            z = update_assignments(yhat, log_likelihood, graph, z, options.lam)
        if step < options.iterations:
            means, variance = update_gaussians(f, z, means, squares)
    return Transduction(assignments=z, means=means, variance=variance)
