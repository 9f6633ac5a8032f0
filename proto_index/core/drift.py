"""Drift-augmented scoring (DAS): a per-class bonus for clips that drift the way the class's
noise-conditioned prompts predict.

After Vo, Zaheer and Park, "Drift-Augmented Scoring: Text-Derived Noise Robustness for Zero-Shot
Audio-Language Classification" (arXiv 2606.04844). Implemented from its abstract and Figure 1
(the body was not available here), so the bonus's exact form is this reading of them:

    delta_c  =  normalise( mean_p [ T("<class c> with <p>") - T(c) ] )        (offline, text only)
    a1(c)    =  cos(z, C_c)                                                    (the usual profile)
    a2(c)    =  cos(z - C_c_hat, delta_c)  =  (z . delta_c - C_c_hat . delta_c) / |z - C_c_hat|
    s(c)     =  a1(c) + lam * a2(c)

``T`` is the text tower, ``p`` the noise phrases (here: :data:`ENVIRONMENT_PHRASES` of an
environment's description, or :data:`DEFAULT_NOISE_PHRASES`), ``C_c = T(c)`` the class's clean text anchor (``C_c_hat`` its unit
vector) and ``z`` the clip's unit embedding. With other prototypes (TGAP), ``a1`` is the cosine to
them and the bonus stays the text-derived one above: it needs nothing but the text. ``lam`` (:data:`DEFAULT_WEIGHT`)
is this project's default, not a value from the paper. The augmented profile ``s`` is what the
background subtraction then refines (Pf = s - tau * Pb, with Pb the mean ``s`` of the backgrounds).
Pure numpy, no I/O.
"""
from __future__ import annotations

import numpy as np

from proto_index.core.profiles import l2_normalize

DEFAULT_WEIGHT = 0.1
DEFAULT_NOISE_PHRASES = ("traffic noise", "people talking", "wind blowing", "rain falling", "a crowd in the background")
"""Used for an environment without a text description."""
ENVIRONMENT_PHRASES = ("{bg} noise", "{bg} sounds in the background", "the ambience of a {bg}")
"""An environment's own noise phrases, ``{bg}`` its description (``"metro station"``)."""


def conditioned_prompts(prompts: list[str], labels: list[str], phrases: list[str] | tuple[str, ...]) -> list[list[str]]:
    """The noise-conditioned prompt of each class and phrase, ``(k, p)``: the class's prompt with its
    label replaced by ``"<label> with <phrase>"`` (``prompts`` rendered from one template, so each
    holds its label)."""
    if not phrases:
        raise ValueError("drift-augmented scoring needs at least one noise phrase")
    out = []
    for prompt, label in zip(prompts, labels):
        at = prompt.rfind(label)
        if at < 0:
            raise ValueError(f"prompt {prompt!r} does not contain its label {label!r}")
        out.append([f"{prompt[:at]}{label} with {p}{prompt[at + len(label):]}" for p in phrases])
    return out


def drift_directions(anchors: np.ndarray, conditioned: np.ndarray) -> np.ndarray:
    """delta ``(k, d)``: each class's unit mean of its conditioned text embeddings ``(k, p, d)``
    minus its clean anchor ``(k, d)`` (all unit-normalised first, as CLAP's)."""
    a = l2_normalize(np.atleast_2d(anchors))
    c = l2_normalize(np.asarray(conditioned, dtype=np.float64))
    if c.ndim != 3 or c.shape[0] != a.shape[0] or c.shape[2] != a.shape[1] or c.shape[1] == 0:
        raise ValueError(f"conditioned embeddings {c.shape} do not match anchors {a.shape} as (classes, phrases, dim)")
    return l2_normalize((c - a[:, None, :]).mean(axis=1))


def drift_bonus(vectors: np.ndarray, anchors: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """a2 ``(n, k)``: the cosine between each clip's displacement from each unit text anchor and
    that class's drift direction (0 for a clip on the anchor itself)."""
    z = l2_normalize(np.atleast_2d(vectors))
    p = l2_normalize(np.atleast_2d(anchors))
    delta = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    # |z - p|^2 = 2 - 2 z.p for unit vectors: the displacement's norm needs no (n, k, d) tensor
    dist = np.sqrt(np.maximum(2.0 - 2.0 * (z @ p.T), 0.0))
    along = z @ delta.T - (p * delta).sum(axis=1)
    return np.divide(along, dist, out=np.zeros_like(along), where=dist > 1e-9)


def drift_profiles(profiles: np.ndarray, vectors: np.ndarray, anchors: np.ndarray, directions: np.ndarray,
                   weight: float = DEFAULT_WEIGHT) -> np.ndarray:
    """s = a1 + weight * a2: ``profiles`` (a1, ``(n, k)``, or ``(k,)`` for one vector) plus the
    bonus of ``vectors``."""
    bonus = drift_bonus(vectors, anchors, directions)
    a1 = np.asarray(profiles, dtype=np.float64)
    return a1 + weight * (bonus[0] if a1.ndim == 1 else bonus)
