"""Classify the corpus's stored windows (no audio read): one environment, one prototype set.

What the server's classification browser shows: each window's label, score and margin under
Pf = Ps - tau * Pb, from the vectors already in the store.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from proto_index.core.decision import decide
from proto_index.core.profiles import refine, similarity_profiles
from proto_index.core.tau import auto_tau
from proto_index.options import ScoringOptions
from proto_index.usecases.classify import prepare
from proto_index.store.schema import Recording, Window
from proto_index.store.storage import Storage


@dataclass(frozen=True)
class WindowLabel:
    window_id: int
    recording_id: int
    path: str
    start_s: float
    end_s: float
    label: str
    score: float
    margin: float


@dataclass(frozen=True)
class WindowLabels:
    prototypes: str
    environment: str
    adaptation: str
    labels: list[str]
    windows: list[WindowLabel]


def classify_windows(storage: Storage, prototypes: str, environment: str,
                     scoring: ScoringOptions = ScoringOptions(), recording_ids: list[int] | None = None) -> WindowLabels:
    """Every stored window (of ``recording_ids`` when given), classified as if recorded in ``environment``."""
    protos, plans, auto_rule, _ = prepare(storage, prototypes, [environment], scoring)
    adaptation, fixed_tau, pb = plans[environment]
    with storage.session() as s:
        q = (select(Window.id, Window.recording_id, Recording.path, Window.start_s, Window.end_s, Window.vector_row)
             .join(Recording).order_by(Window.id))
        if recording_ids is not None:
            q = q.where(Window.recording_id.in_(recording_ids))
        rows = s.execute(q).all()
    if not rows:
        return WindowLabels(prototypes, environment, adaptation, protos.labels, [])
    vectors = np.asarray(storage.vectors.read([r[5] for r in rows]), np.float32)
    profiles = similarity_profiles(vectors, protos.matrix, scoring.prototype_norm)
    tau = 0.0 if pb is None else fixed_tau if fixed_tau is not None else auto_tau(profiles, pb, auto_rule)
    refined = refine(profiles, pb, tau)
    d = decide(refined)
    out = [WindowLabel(r[0], r[1], r[2], r[3], r[4], protos.labels[int(w)], float(sc), float(m))
           for r, w, sc, m in zip(rows, d.winners, d.scores, d.margins)]
    return WindowLabels(prototypes, environment, adaptation, protos.labels, out)
