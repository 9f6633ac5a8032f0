"""Profiles: a clip's cosine similarity to every class prototype, and background subtraction.

Pure numpy, no I/O. Shapes: ``d`` embedding dimension, ``k`` classes, ``n`` clips, ``m`` background
vectors.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Scale vectors to unit L2 norm along ``axis``; zero vectors stay zero."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norms, _EPS)


def cosine_profiles(vectors: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Ps: cosine similarity of each vector ``(n, d)`` to each prototype ``(k, d)`` -> ``(n, k)``.

    A single vector ``(d,)`` gives a single profile ``(k,)``.
    """
    single = np.ndim(vectors) == 1
    v = l2_normalize(np.atleast_2d(vectors))
    p = l2_normalize(np.atleast_2d(prototypes))
    out = v @ p.T
    return out[0] if single else out


PROTOTYPE_NORMS = ("l2", "none")
"""``l2``: cosine similarity, the paper's definition. ``none``: the raw dot product against
un-normalised prototypes (a TGAP centroid is shorter than 1), as the paper's reference code scores."""


def similarity_profiles(vectors: np.ndarray, prototypes: np.ndarray, prototype_norm: str = "l2") -> np.ndarray:
    """Ps under ``prototype_norm`` (see :data:`PROTOTYPE_NORMS`); shapes as :func:`cosine_profiles`."""
    if prototype_norm == "l2":
        return cosine_profiles(vectors, prototypes)
    if prototype_norm == "none":
        single = np.ndim(vectors) == 1
        out = np.atleast_2d(np.asarray(vectors, dtype=np.float64)) @ np.atleast_2d(np.asarray(prototypes, dtype=np.float64)).T
        return out[0] if single else out
    raise ValueError(f"unknown prototype norm {prototype_norm!r}; choose one of {', '.join(PROTOTYPE_NORMS)}")


def background_profile(background_vectors: np.ndarray, prototypes: np.ndarray, prototype_norm: str = "l2") -> np.ndarray:
    """Pb: the mean over background vectors ``(m, d)`` of their profiles -> ``(k,)``.

    For text backgrounds the vectors are the embeddings of the environment's prompts; for audio
    backgrounds, one embedding per background recording.
    """
    bg = np.atleast_2d(background_vectors)
    if bg.shape[0] == 0:
        raise ValueError("a background profile needs at least one background vector")
    return similarity_profiles(bg, prototypes, prototype_norm).mean(axis=0)


def refine(profiles: np.ndarray, background: np.ndarray | None, tau) -> np.ndarray:
    """Pf = Ps - tau * Pb; with no background (or tau 0) the profiles are returned unchanged.

    ``tau`` is one number, or one per profile ``(n,)`` (as the label-free rules give).
    """
    ps = np.asarray(profiles, dtype=np.float64)
    if np.ndim(tau) == 0:
        if background is None or tau == 0.0:
            return ps.copy()
        return ps - float(tau) * np.asarray(background, dtype=np.float64)
    if background is None:
        return ps.copy()
    return ps - np.asarray(tau, dtype=np.float64)[:, None] * np.asarray(background, dtype=np.float64)
