"""Choosing tau in Pf = Ps - tau * Pb. Pure numpy, no I/O.

Two families:

* with labels: the accuracy of every tau on a grid (:func:`accuracy_curve`) and a choice from it
  (:func:`pick_tau`); the evaluation harness calls them on training folds only (nested
  cross-validation), and ``calibrate`` on a labelled manifest;
* without labels (:data:`AUTO_RULES`): tau read off the profiles themselves, usable at
  ``classify`` time on an unlabelled archive (``--tau auto``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

DEFAULT_GRID = tuple(round(0.05 * i, 2) for i in range(31))
"""0, 0.05, ..., 1.5: covers the paper's working values (0.2 text, 0.7 audio) with room either side."""

AUTO_TAU_MAX = 1.5
"""Label-free estimates are clipped to [0, AUTO_TAU_MAX], the top of the default grid."""


def as_grid(values) -> np.ndarray:
    """A validated tau grid: non-empty, finite, ascending, no repeats."""
    grid = np.asarray(values, dtype=np.float64).ravel()
    if grid.size == 0 or not np.isfinite(grid).all():
        raise ValueError("a tau grid needs at least one value, and only finite ones")
    if np.any(np.diff(grid) <= 0):
        raise ValueError("tau grid values must be strictly ascending")
    return grid


def grid_from_spec(spec: str) -> tuple[float, ...]:
    """``"START:STOP:STEP"`` (STOP included) or ``"a,b,c"`` -> a validated grid (values rounded to 6 places)."""
    text = spec.strip()
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0:
                raise ValueError("STEP must be positive")
            values = start + step * np.arange(int(np.floor((stop - start) / step + 1e-9)) + 1)
        else:
            values = np.array([float(x) for x in text.split(",") if x.strip()])
    except ValueError as e:
        raise ValueError(f"bad tau grid {spec!r} ({e}); give START:STOP:STEP or comma-separated values") from None
    return tuple(float(v) for v in as_grid(np.round(values, 6)))


def predictions_over_grid(profiles: np.ndarray, background: np.ndarray, grid) -> np.ndarray:
    """``(t, n)`` winners of ``argmax(Ps - tau * Pb)`` for every tau of the grid.

    ``background`` is one profile ``(k,)`` for all clips, or one per clip ``(n, k)``.
    Ties go to the lower class index, as :func:`proto_index.core.decision.decide`.
    """
    ps = np.atleast_2d(np.asarray(profiles, dtype=np.float64))
    pb = np.asarray(background, dtype=np.float64)
    # one tau at a time: memory stays (n, k) however fine the grid
    return np.stack([np.argmax(ps - tau * pb, axis=1) for tau in as_grid(grid)])


def accuracy_curve(profiles: np.ndarray, background: np.ndarray, labels: np.ndarray, grid) -> np.ndarray:
    """Fraction of clips whose winner is their label, for every tau of the grid -> ``(t,)``."""
    labels = np.asarray(labels)
    if labels.shape[0] != np.atleast_2d(profiles).shape[0] or labels.shape[0] == 0:
        raise ValueError("need one label per profile, and at least one profile")
    return (predictions_over_grid(profiles, background, grid) == labels[None, :]).mean(axis=1)


def pick_tau(grid, accuracy: np.ndarray) -> float:
    """The tau of highest accuracy; among equal bests, the middle one (lower middle of an even count).

    The middle of a plateau is chosen because it is the tau least likely to fall off it when the
    data shift a little; the lowest or highest would sit at an edge.
    """
    taus = as_grid(grid)
    acc = np.asarray(accuracy, dtype=np.float64)
    if acc.shape != taus.shape:
        raise ValueError("need one accuracy per tau")
    best = np.flatnonzero(acc >= acc.max() - 1e-12)
    return float(taus[best[(len(best) - 1) // 2]])


@dataclass(frozen=True)
class HeldOutChoice:
    """Tau chosen on labelled clips, with an honest estimate of how well choosing it this way does.

    ``curve``: accuracy of every tau on all clips; ``tau``: the choice from it; ``held_out_accuracy``:
    mean over folds of the accuracy on a fold at the tau chosen on the other folds; ``fold_taus``:
    those per-fold choices (their spread shows how stable the choice is).
    """

    curve: np.ndarray
    tau: float
    held_out_accuracy: float
    fold_taus: tuple[float, ...]


def held_out_choice(profiles: np.ndarray, background: np.ndarray, labels: np.ndarray, folds: np.ndarray, grid) -> HeldOutChoice:
    """Choose tau on all clips, and estimate that choice's accuracy by cross-validation over ``folds``."""
    ps = np.atleast_2d(np.asarray(profiles, dtype=np.float64))
    pb = np.asarray(background, dtype=np.float64)
    labels, folds = np.asarray(labels), np.asarray(folds)
    taus = as_grid(grid)
    if len(np.unique(folds)) < 2:
        raise ValueError("held-out search needs at least two folds")
    per_clip = pb.ndim == 2
    accs, chosen = [], []
    for f in np.unique(folds):
        test = folds == f
        train_curve = accuracy_curve(ps[~test], pb[~test] if per_clip else pb, labels[~test], taus)
        tau = pick_tau(taus, train_curve)
        winners = np.argmax(ps[test] - tau * (pb[test] if per_clip else pb), axis=1)
        accs.append(float(np.mean(winners == labels[test])))
        chosen.append(tau)
    curve = accuracy_curve(ps, pb, labels, taus)
    return HeldOutChoice(curve, pick_tau(taus, curve), float(np.mean(accs)), tuple(chosen))


# -- label-free rules ------------------------------------------------------------------------------


def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=-1, keepdims=True)


def tau_projection(profiles: np.ndarray, background: np.ndarray, tau_max: float = AUTO_TAU_MAX) -> np.ndarray | float:
    """Per clip: the least-squares weight of the background profile in the clip's profile.

    Model a scene's profile as ``Ps = a * Pfg + tau * Pb + c``: a foreground profile, the
    background's profile at some weight, and a constant offset (the shared "cone" of the audio
    space adds about the same similarity to every class). Centring over classes removes ``c``;
    projecting the centred ``Ps`` onto the centred ``Pb`` estimates ``tau``, treating the
    foreground as what is left. Subtracting exactly that much background leaves the part of the
    profile the background does not explain. The estimate is scale-free (a text background, whose
    similarities run higher than audio's, gets a proportionally smaller tau) and is clipped to
    ``[0, tau_max]``. A flat ``Pb`` carries no information: tau 0.

    ``profiles`` ``(n, k)`` or ``(k,)``; ``background`` ``(k,)`` or one per clip ``(n, k)``.
    Returns ``(n,)`` (a float for a single profile).
    """
    ps = np.asarray(profiles, dtype=np.float64)
    single = ps.ndim == 1
    ps_c = _centred(np.atleast_2d(ps))
    pb_c = _centred(np.broadcast_to(np.asarray(background, dtype=np.float64), ps_c.shape))
    den = (pb_c * pb_c).sum(axis=1)
    num = (ps_c * pb_c).sum(axis=1)
    tau = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-18)
    tau = np.clip(tau, 0.0, tau_max)
    return float(tau[0]) if single else tau


def tau_projection_batch(profiles: np.ndarray, background: np.ndarray, tau_max: float = AUTO_TAU_MAX) -> np.ndarray:
    """Per batch: :func:`tau_projection` of the batch's mean profile, given to every clip.

    Over a batch whose clips hold many different classes the foreground profiles average out
    towards flat, while the background (the same environment) adds up: the estimate is steadier
    than one clip's, at the cost of one tau for the whole batch. A per-clip background
    ``(n, k)`` is averaged likewise.
    """
    ps = np.atleast_2d(np.asarray(profiles, dtype=np.float64))
    pb = np.asarray(background, dtype=np.float64)
    tau = tau_projection(ps.mean(axis=0), pb.mean(axis=0) if pb.ndim == 2 else pb, tau_max)
    return np.full(ps.shape[0], tau)


AUTO_RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray | float]] = {
    "projection": tau_projection,
    "projection-batch": tau_projection_batch,
}
"""Label-free tau rules by name; each maps ``(profiles (n, k), background)`` to ``(n,)`` taus."""

DEFAULT_AUTO_RULE = "projection-batch"

TAU_KEYWORDS = {"auto": "projection-batch", "auto-clip": "projection"}
"""What ``--tau`` accepts besides a number: the label-free rule each keyword applies. ``auto`` is
per batch (in ``classify``: all the run's clips of one environment), ``auto-clip`` per clip."""


def finite_tau(value, what: str = "tau") -> float:
    """``value`` as a float, or ValueError unless it is a finite real number: the one check every
    tau passes where it enters (a run's, an environment's given or stored, a calibration's).

    inf or nan would turn every refined profile into -inf or nan, and argmax into the first class.
    """
    try:
        tau = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(tau):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return tau


def parse_tau(value: str | float | None) -> float | str | None:
    """A finite number, None, or a keyword of :data:`TAU_KEYWORDS` (returned as its rule name)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TAU_KEYWORDS:
            return TAU_KEYWORDS[text]
        try:
            float(text)
        except ValueError:
            raise ValueError(f"tau must be a number or one of {', '.join(TAU_KEYWORDS)}, not {value!r}") from None
    return finite_tau(value)


def auto_tau(profiles: np.ndarray, background: np.ndarray, rule: str = DEFAULT_AUTO_RULE) -> np.ndarray:
    """``(n,)`` taus from the named label-free rule (see :data:`AUTO_RULES`)."""
    if rule not in AUTO_RULES:
        raise ValueError(f"unknown tau rule {rule!r}; choose one of {', '.join(AUTO_RULES)}")
    return np.asarray(AUTO_RULES[rule](np.atleast_2d(profiles), background), dtype=np.float64)
