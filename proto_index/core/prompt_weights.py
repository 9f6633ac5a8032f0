"""Label-free prompt weighting: the template mix whose predictions on the archive are most confident.

A class can be described by several templates ("This is a sound of {label}", "{label} can be
heard", ...). Plain ensembling averages them; some wordings hurt. After El Khoury et al.,
"Leveraging Prediction Entropy for Automatic Prompt Weighting in Zero-Shot Audio-Language
Classification" (2026): with ``l_ijk`` the cosine of clip ``i`` to template ``j`` of class ``k``,
the weights ``beta`` on the simplex minimise the clips' mean prediction entropy

    J(beta) = mean_i H( softmax_k( temperature * sum_j beta_j l_ijk ) )

and the class prototypes are ``sum_j beta_j t_jk``. The objective is the paper's; the solver here
is exponentiated gradient (mirror descent on the simplex) with backtracking, so J never rises.
Pure numpy, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proto_index.core.profiles import cosine_profiles, l2_normalize
from proto_index.core.transductive import softmax

DEFAULT_TEMPLATES = (
    "This is a sound of {label}",
    "the sound of {label}",
    "{label} can be heard",
    "a recording of {label}",
    "{label}",
    "an audio clip of {label} in the background",
)
"""The label-free prompt ensemble's default wordings (the first is the paper's single template)."""


@dataclass(frozen=True)
class PromptWeights:
    """``weights`` ``(t,)`` on the simplex and the mean entropy at each accepted step (first: uniform)."""

    weights: np.ndarray
    entropies: tuple[float, ...]


def mean_entropy(logits: np.ndarray, weights: np.ndarray, temperature: float) -> float:
    """J(beta) for ``logits`` ``(t, n, k)``."""
    p = softmax(temperature * np.tensordot(weights, logits, axes=1))
    return float(-(p * np.log(np.maximum(p, 1e-300))).sum(axis=1).mean())


def entropy_gradient(logits: np.ndarray, weights: np.ndarray, temperature: float) -> np.ndarray:
    """dJ/dbeta ``(t,)``: with p = softmax(s), dH/ds_k = -p_k (log p_k + H)."""
    p = softmax(temperature * np.tensordot(weights, logits, axes=1))
    logp = np.log(np.maximum(p, 1e-300))
    h = -(p * logp).sum(axis=1, keepdims=True)
    dh_ds = -p * (logp + h)                                   # (n, k)
    return temperature * np.einsum("nk,tnk->t", dh_ds, logits) / logits.shape[1]


def entropy_prompt_weights(logits: np.ndarray, temperature: float = 100.0, steps: int = 200,
                           step_size: float = 1.0) -> PromptWeights:
    """Minimise J over the simplex from uniform weights; ``logits`` ``(t, n, k)`` are the clips'
    cosines to every template's class embeddings."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3 or 0 in logits.shape:
        raise ValueError(f"expected logits shaped (templates, clips, classes), got {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits must be finite")
    weights = np.full(logits.shape[0], 1.0 / logits.shape[0])
    entropies = [mean_entropy(logits, weights, temperature)]
    eta = step_size
    for _ in range(steps):
        grad = entropy_gradient(logits, weights, temperature)
        scale = np.abs(grad).max()
        if scale < 1e-12:
            break
        while eta > 1e-8:
            trial = weights * np.exp(-eta * (grad - grad.min()) / scale)
            trial /= trial.sum()
            value = mean_entropy(logits, trial, temperature)
            if value <= entropies[-1]:
                weights = trial
                entropies.append(value)
                eta = min(eta * 2.0, 64.0 * step_size)
                break
            eta /= 2.0
        else:
            break
    return PromptWeights(weights=weights, entropies=tuple(entropies))


def weighted_prototypes(template_embeddings: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_j beta_j t_jk``: ``(t, k, d)`` template embeddings -> ``(k, d)`` class prototypes."""
    return np.tensordot(np.asarray(weights, dtype=np.float64), np.asarray(template_embeddings, dtype=np.float64), axes=1)


def ensemble_anchors(template_embeddings: np.ndarray, audio: np.ndarray, temperature: float = 100.0
                     ) -> tuple[np.ndarray, PromptWeights]:
    """The entropy-weighted anchors ``(k, d)`` (unit) of ``(t, k, d)`` template embeddings, weighted
    by the archive's ``audio`` ``(n, d)``, and the weights."""
    t = l2_normalize(np.asarray(template_embeddings, dtype=np.float64))
    if t.ndim != 3:
        raise ValueError(f"expected template embeddings shaped (templates, classes, dim), got {t.shape}")
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    if audio.shape[0] == 0:
        raise ValueError("prompt weighting needs at least one audio embedding")
    logits = np.stack([cosine_profiles(audio, t[j]) for j in range(t.shape[0])])
    weights = entropy_prompt_weights(logits, temperature)
    return l2_normalize(weighted_prototypes(t, weights.weights)), weights
