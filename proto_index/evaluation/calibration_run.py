"""``proto-index calibrate`` as one call: labelled clips from a CSV or from the confirmed
annotations, the held-out choice of tau per environment and adaptation, and (``save``) each
chosen tau stored on its environment, where ``classify`` then uses it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from proto_index.core.tau import DEFAULT_GRID
from proto_index.evaluation.calibrate import Calibration

if TYPE_CHECKING:
    from proto_index.api import Store


@dataclass(frozen=True)
class CalibrateOptions:
    prototypes: str
    grid: tuple[float, ...] = DEFAULT_GRID
    folds: int = 5
    seed: int = 0
    prototype_norm: str = "l2"
    save: bool = False  # store each chosen tau on its environment


@dataclass(frozen=True)
class SavedTau:
    environment: str
    adaptation: str
    tau: float


@dataclass(frozen=True)
class CalibrationRun:
    results: list[Calibration]
    saved: list[SavedTau]  # empty unless options.save


def run_calibration(store: "Store", options: CalibrateOptions, manifest: str | Path | None = None) -> CalibrationRun:
    """Calibrate on ``manifest`` (CSV ``path,environment,label``) or, when it is None, on the
    confirmed annotations that name an environment; with ``options.save``, store the choices."""
    o = options
    if manifest is None:
        results = store.calibrate_from_annotations(o.prototypes, o.grid, o.folds, o.seed, o.prototype_norm)
    else:
        results = store.calibrate(manifest, o.prototypes, o.grid, o.folds, o.seed, o.prototype_norm)
    saved = []
    if o.save:
        for c in results:
            store.set_environment_tau(c.environment, **{c.adaptation: c.choice.tau})
            saved.append(SavedTau(c.environment, c.adaptation, c.choice.tau))
    return CalibrationRun(results, saved)
