"""Calibrating tau per environment and adaptation from labelled clips (``proto-index calibrate``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from proto_index.core.adaptation import DEFAULT_TAU
from proto_index.core.profiles import background_profile, similarity_profiles
from proto_index.core.tau import DEFAULT_GRID, HeldOutChoice, as_grid, held_out_choice
from proto_index.errors import InvalidInput
from proto_index.evaluation.inputs import stratified_folds
from proto_index.store.views import EnvironmentView, PrototypeSetView


@dataclass(frozen=True)
class Calibration:
    """One environment and adaptation: the accuracy curve, the chosen tau and how it generalises."""

    environment: str
    adaptation: str
    clips: int
    grid: tuple[float, ...]
    choice: HeldOutChoice
    current_tau: float  # what classify uses today (the environment's tau, else the default)
    current_accuracy: float  # accuracy at current_tau on these clips
    none_accuracy: float  # accuracy without adaptation


def calibrate(
    protos: PrototypeSetView,
    environments: dict[str, EnvironmentView],
    vectors: np.ndarray,
    environment_of: Sequence[str],
    labels: Sequence[str],
    grid=DEFAULT_GRID,
    n_folds: int = 5,
    seed: int = 0,
    prototype_norm: str = "l2",
) -> list[Calibration]:
    """For each environment and each adaptation it supports, choose tau by held-out search.

    ``vectors`` ``(n, d)`` are the clips' embeddings; ``environment_of`` and ``labels`` name each
    clip's environment and true class (a label of the prototype set).
    """
    grid = as_grid(grid)
    unknown = sorted(set(labels) - set(protos.labels))
    if unknown:
        raise InvalidInput(f"label(s) not in prototype set {protos.name!r}: {', '.join(unknown)} (its labels: {', '.join(protos.labels)})")
    y = np.array([protos.labels.index(lbl) for lbl in labels])
    envs = np.asarray(environment_of)
    ps_all = similarity_profiles(vectors, protos.matrix, prototype_norm)
    out = []
    for name in sorted(set(environment_of)):
        env = environments[name]
        rows = np.flatnonzero(envs == name)
        if len(rows) < n_folds:
            raise InvalidInput(f"environment {name!r}: {len(rows)} labelled clips, fewer than the {n_folds} folds")
        ps, yy = ps_all[rows], y[rows]
        folds = stratified_folds(yy, n_folds, seed)
        none_acc = float(np.mean(np.argmax(ps, axis=1) == yy))
        for adaptation, bg in (("audio", env.audio_vectors), ("text", env.text_vectors)):
            if len(bg) == 0:
                continue
            pb = background_profile(bg, protos.matrix, prototype_norm)
            choice = held_out_choice(ps, pb, yy, folds, grid)
            stored = env.taus[adaptation]
            current = stored if stored is not None else DEFAULT_TAU[adaptation]
            current_acc = float(np.mean(np.argmax(ps - current * pb, axis=1) == yy))
            out.append(Calibration(name, adaptation, len(rows), tuple(grid), choice, float(current), current_acc, none_acc))
    return out


def format_calibration(c: Calibration) -> str:
    """The curve and the decision, for the terminal."""
    lines = [
        f"{c.environment} / {c.adaptation}: {c.clips} clips; tau {c.choice.tau:g} "
        f"(held-out accuracy {100 * c.choice.held_out_accuracy:.1f}%, per-fold choices "
        f"{', '.join(f'{t:g}' for t in c.choice.fold_taus)}); now tau {c.current_tau:g} -> "
        f"{100 * c.current_accuracy:.1f}%, no adaptation {100 * c.none_accuracy:.1f}%",
        "  tau    accuracy",
    ]
    for tau, acc in zip(c.grid, c.choice.curve):
        mark = "  <- chosen" if tau == c.choice.tau else ""
        lines.append(f"  {tau:<5g}  {100 * acc:5.1f}%  {'#' * int(round(40 * acc))}{mark}")
    return "\n".join(lines)
