"""From refined profiles to a decision: the winning class, its score and its margin."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decisions:
    """Per clip: winning class index, its refined score, and winner minus runner-up."""

    winners: np.ndarray  # (n,) int64
    scores: np.ndarray  # (n,) float64
    margins: np.ndarray  # (n,) float64; nan when there is a single class


def decide(refined: np.ndarray) -> Decisions:
    """Argmax of each row of ``(n, k)`` refined profiles; ties go to the lower class index."""
    pf = np.atleast_2d(np.asarray(refined, dtype=np.float64))
    winners = np.argmax(pf, axis=1)
    scores = pf[np.arange(pf.shape[0]), winners]
    if pf.shape[1] < 2:
        margins = np.full(pf.shape[0], np.nan)
    else:
        top2 = np.sort(pf, axis=1)[:, -2:]
        margins = top2[:, 1] - top2[:, 0]
    return Decisions(winners=winners, scores=scores, margins=margins)
