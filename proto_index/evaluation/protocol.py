"""The paper's experiment on embeddings: k-fold accuracy per environment x SNR x method x adaptation x tau rule.

Pure numpy, no I/O: the synthetic space and the audio path (scenes mixed, written and embedded)
both end here as arrays.

* Methods: ``zero-shot`` (text anchors), ``tgap`` (centroid of the N training-fold scenes nearest
  each anchor; the scenes' labels are not used) and ``supervised`` (class centroids of the
  labelled training-fold scenes). The label-free variants, on zero-shot or TGAP, any of them in
  this order (``tgap-ensemble-drift-transductive``): ``ensemble``, anchors from every prompt
  template weighted by the entropy of the training folds' predictions
  (:mod:`proto_index.core.prompt_weights`; TGAP then searches from them); ``drift``, the drift
  bonus added to every profile, scenes' and backgrounds' alike (:mod:`proto_index.core.drift`,
  weight :data:`DRIFT_WEIGHT`); ``transductive``, transductive EM over the test fold's scenes
  (:mod:`proto_index.core.transductive`) instead of each scene's argmax, after the same adaptation
  and tau, whose ``calibrated`` tau is chosen as without it (argmax on the inner folds) and which
  has no ``optimistic`` row. A method whose inputs the data lack (templates, the environment's
  conditioned prompts) gives no rows.
* Adaptations: ``none``; ``text`` (the environment's three prompts); ``audio`` (the realistic
  one: the mean profile of all the environment's background recordings); ``audio-oracle`` (each
  scene's own background recording, as in the paper's experiment, which a user never has).
* Tau rules: ``fixed`` (the paper's working values), ``calibrated`` (nested cross-validation: for
  each test fold, tau is chosen on an inner cross-validation over the training folds only),
  ``auto`` (a label-free rule applied to the test fold's profiles), and ``optimistic`` (the one
  tau that maximises the mean test-fold accuracy, as a sweep of the paper's reference code
  reports; it peeks at the test folds and is an upper bound, not an estimate).

Accuracy of a cell = the mean over test folds of each fold's accuracy (the reference code's
aggregate).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from proto_index.core.decision import decide
from proto_index.core.drift import DEFAULT_WEIGHT as DEFAULT_DRIFT_WEIGHT, drift_directions, drift_profiles
from proto_index.core.prompt_weights import ensemble_anchors
from proto_index.core.profiles import refine, similarity_profiles
from proto_index.core.prototypes import tgap_reference
from proto_index.core.transductive import TransductiveOptions, knn_graph, prior_from_profiles, transduce
from proto_index.errors import Hint, InvalidInput
from proto_index.options.evaluation import ADAPTATIONS, BASES, METHODS, VARIANTS, Settings  # noqa: F401  (the protocol's names)
from proto_index.core.tau import accuracy_curve, as_grid, auto_tau, pick_tau

DRIFT_WEIGHT = DEFAULT_DRIFT_WEIGHT


@dataclass(frozen=True)
class MethodParts:
    """A method name taken apart: its prototypes (``base``) and the label-free variants on top."""

    base: str
    ensemble: bool = False
    drift: bool = False
    transductive: bool = False


def method_parts(method: str) -> MethodParts:
    """``tgap-ensemble-transductive`` -> MethodParts("tgap", ensemble=True, transductive=True)."""
    if method == "supervised":
        return MethodParts("supervised")
    for base in BASES:
        if method == base or method.startswith(base + "-"):
            rest = method[len(base):].split("-")[1:]
            if rest != [v for v in VARIANTS if v in rest]:
                break
            return MethodParts(base, **{v: True for v in rest})
    raise ValueError(f"unknown method {method!r}")


TAU_RULES = ("fixed", "calibrated", "auto", "optimistic")


@dataclass(frozen=True)
class Condition:
    """The scenes of one environment at one SNR: vectors ``(n, d)`` with class, fold and the index
    of the background recording mixed into each (into that environment's audio backgrounds)."""

    environment: str
    snr_db: float
    vectors: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    background_index: np.ndarray | None = None


@dataclass(frozen=True)
class ExperimentData:
    """Everything the experiment needs, as embeddings."""

    labels: list[str]
    anchors: np.ndarray  # (k, d) text anchors, one per label
    text_backgrounds: Mapping[str, np.ndarray]  # env -> (p, d) prompt vectors
    audio_backgrounds: Mapping[str, np.ndarray]  # env -> (m, d) background recording vectors
    conditions: Sequence[Condition]
    templates: np.ndarray | None = None  # (t, k, d): every prompt template's text anchors (the ensemble's)
    conditioned: Mapping[str, np.ndarray] = field(default_factory=dict)  # env -> (k, p, d): "<label> with <prompt>"


@dataclass(frozen=True)
class Score:
    """One table cell: mean accuracy over test folds, each fold's accuracy and the tau it used
    (for ``auto``, the fold's mean per-clip tau)."""

    environment: str
    snr_db: float
    method: str
    adaptation: str
    rule: str  # one of TAU_RULES, or "none" for the unadapted baseline
    accuracy: float
    fold_accuracies: tuple[float, ...]
    fold_taus: tuple[float, ...]

    @property
    def tau(self) -> float:
        return float(np.mean(self.fold_taus))


@dataclass(frozen=True)
class Curve:
    """Mean test-fold accuracy for every tau of the grid (what a sweep of the reference code shows)."""

    environment: str
    snr_db: float
    method: str
    adaptation: str
    accuracy: tuple[float, ...]


@dataclass(frozen=True)
class Evaluation:
    settings: Settings
    folds: tuple[int, ...]
    scores: list[Score]
    curves: list[Curve]

    def score(self, environment: str, snr_db: float, method: str, adaptation: str, rule: str) -> Score:
        for s in self.scores:
            if (s.environment, s.snr_db, s.method, s.adaptation, s.rule) == (environment, snr_db, method, adaptation, rule):
                return s
        raise KeyError((environment, snr_db, method, adaptation, rule))


def check_folds(folds: np.ndarray, settings: Settings) -> None:
    """Raise :class:`InvalidInput` unless nested cross-validation over ``folds`` can run these
    settings: at least 3 folds, and TGAP's N no larger than the smallest inner training set."""
    counts = np.sort(np.unique(folds, return_counts=True)[1])
    if len(counts) < 3:
        raise InvalidInput("nested cross-validation needs at least 3 folds")
    smallest = int(counts.sum() - counts[-2:].sum())  # without the two largest folds
    if any(method_parts(m).base == "tgap" for m in settings.methods) and settings.tgap_n > smallest:
        raise InvalidInput(f"TGAP N={settings.tgap_n} exceeds the {smallest} scenes of the smallest inner training set",
                           hint=Hint("tgap_n", "lower {option}"))


def class_centroids(vectors: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The supervised prototypes: each class's mean training vector -> ``(k, d)``."""
    missing = [c for c in range(k) if not np.any(labels == c)]
    if missing:
        raise ValueError(f"no training scene of class(es) {missing}: supervised centroids need every class")
    return np.stack([vectors[labels == c].mean(axis=0) for c in range(k)])


def _anchors(data: ExperimentData, parts: MethodParts, corpus: np.ndarray) -> np.ndarray:
    """The text anchors: the one template's, or the entropy-weighted ensemble's over ``corpus``."""
    if parts.ensemble:
        if data.templates is None:
            raise ValueError("an ensemble method needs every template's anchors (ExperimentData.templates)")
        return ensemble_anchors(data.templates, corpus)[0]
    return np.asarray(data.anchors, dtype=np.float64)


def _build(method: str, data: ExperimentData, cond: Condition, train: np.ndarray, n: int) -> np.ndarray:
    parts = method_parts(method)
    if parts.base == "supervised":
        return class_centroids(cond.vectors[train], cond.labels[train], len(data.labels))
    anchors = _anchors(data, parts, cond.vectors[train])
    if parts.base == "zero-shot":
        return anchors
    return tgap_reference(anchors, cond.vectors[train], n)[0]


def available(data: ExperimentData, cond: Condition, method: str) -> bool:
    """Whether ``data`` holds what ``method`` needs on ``cond``: the templates for an ensemble,
    the environment's conditioned prompts for drift."""
    parts = method_parts(method)
    return (not parts.ensemble or data.templates is not None) and (not parts.drift or cond.environment in data.conditioned)


def _profiler(data: ExperimentData, cond: Condition, method: str, norm: str):
    """The method's profile function ``(vectors, prototypes) -> (n, k)``: Ps, plus the drift bonus."""
    if not method_parts(method).drift:
        return lambda vectors, protos: similarity_profiles(vectors, protos, norm)
    directions = drift_directions(data.anchors, data.conditioned[cond.environment])
    return lambda vectors, protos: drift_profiles(similarity_profiles(vectors, protos, norm), vectors, data.anchors,
                                                  directions, DRIFT_WEIGHT)


def _backgrounds(data: ExperimentData, cond: Condition, protos: np.ndarray, rows: np.ndarray, profile) -> dict:
    """Pb per adaptation for the scenes at ``rows``: ``(k,)``, or ``(len(rows), k)`` for the oracle."""
    out: dict[str, np.ndarray | None] = {"none": None}
    env = cond.environment
    if env in data.text_backgrounds and len(data.text_backgrounds[env]):
        out["text"] = profile(data.text_backgrounds[env], protos).mean(axis=0)
    if env in data.audio_backgrounds and len(data.audio_backgrounds[env]):
        out["audio"] = profile(data.audio_backgrounds[env], protos).mean(axis=0)
        if cond.background_index is not None:
            out["audio-oracle"] = profile(data.audio_backgrounds[env][cond.background_index[rows]], protos)
    return out


def _accuracy(ps: np.ndarray, pb: np.ndarray | None, tau, labels: np.ndarray, vectors: np.ndarray | None = None) -> float:
    """Accuracy of argmax(Pf) or, given the scenes' ``vectors``, of transductive EM from Pf."""
    pf = refine(ps, pb, tau)
    if vectors is None:
        return float(np.mean(decide(pf).winners == labels))
    options = TransductiveOptions()
    z = transduce(vectors, prior_from_profiles(pf, options.temperature), knn_graph(vectors, options.neighbours),
                  options).assignments
    return float(np.mean(z.argmax(axis=1) == labels))


def evaluate(data: ExperimentData, settings: Settings = Settings()) -> Evaluation:
    """Run the experiment (see the module docstring). Raises ValueError on inconsistent data."""
    settings.check()
    grid = as_grid(settings.grid)
    scores: list[Score] = []
    curves: list[Curve] = []
    all_folds: set[int] = set()
    for cond in data.conditions:
        check_folds(cond.folds, settings)
        all_folds.update(int(f) for f in np.unique(cond.folds))
        for method in settings.methods:
            if not available(data, cond, method):
                continue
            method_scores, method_curves = _evaluate_method(data, cond, method, settings, grid)
            scores += method_scores
            curves += method_curves
    order = {r: i for i, r in enumerate(("none",) + TAU_RULES)}
    scores.sort(key=lambda s: (s.environment, s.snr_db, METHODS.index(s.method), ADAPTATIONS.index(s.adaptation), order[s.rule]))
    return Evaluation(settings, tuple(sorted(all_folds)), scores, curves)


def _evaluate_method(data: ExperimentData, cond: Condition, method: str, settings: Settings, grid: np.ndarray):
    """Every adaptation and tau rule of one method on one condition, over the outer folds."""
    norm = settings.prototype_norm
    folds = np.unique(cond.folds)
    cache: dict[frozenset, np.ndarray] = {}

    def fitted(excluded: frozenset) -> np.ndarray:
        # prototypes built without the excluded folds; the inner fits (f, g) and (g, f) are one
        if excluded not in cache:
            cache[excluded] = _build(method, data, cond, ~np.isin(cond.folds, list(excluded)), settings.tgap_n)
        return cache[excluded]

    transductive = method_parts(method).transductive
    profile = _profiler(data, cond, method, norm)
    per_rule: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    test_curves: dict[str, list[np.ndarray]] = {}

    def record(adaptation: str, rule: str, accuracy: float, tau: float) -> None:
        accs, taus = per_rule.setdefault((adaptation, rule), ([], []))
        accs.append(accuracy)
        taus.append(tau)

    for f in folds:
        test = cond.folds == f
        protos = fitted(frozenset([f]))
        ps = profile(cond.vectors[test], protos)
        y = cond.labels[test]
        vectors = cond.vectors[test] if transductive else None
        pbs = _backgrounds(data, cond, protos, np.flatnonzero(test), profile)
        inner = _inner_curves(data, cond, folds, f, fitted, profile, grid, settings.adaptations)
        for adaptation in settings.adaptations:
            if adaptation not in pbs:
                continue
            pb = pbs[adaptation]
            if adaptation == "none":
                record("none", "none", _accuracy(ps, None, 0.0, y, vectors), 0.0)
                continue
            if not transductive:  # the optimistic sweep: one argmax per tau of the grid
                test_curves.setdefault(adaptation, []).append(accuracy_curve(ps, pb, y, grid))
            fixed = float(settings.fixed_tau[adaptation])
            calibrated = pick_tau(grid, inner[adaptation])
            clip_taus = auto_tau(ps, pb, settings.auto_rule)
            record(adaptation, "fixed", _accuracy(ps, pb, fixed, y, vectors), fixed)
            record(adaptation, "calibrated", _accuracy(ps, pb, calibrated, y, vectors), calibrated)
            record(adaptation, "auto", _accuracy(ps, pb, clip_taus, y, vectors), float(np.mean(clip_taus)))

    scores = [
        Score(cond.environment, cond.snr_db, method, adaptation, rule, float(np.mean(accs)), tuple(accs), tuple(taus))
        for (adaptation, rule), (accs, taus) in per_rule.items()
    ]
    curves = []
    for adaptation, fold_curves in test_curves.items():
        mean_curve = np.mean(fold_curves, axis=0)
        curves.append(Curve(cond.environment, cond.snr_db, method, adaptation, tuple(float(a) for a in mean_curve)))
        best = pick_tau(grid, mean_curve)
        at = int(np.flatnonzero(grid == best)[0])
        fold_accs = tuple(float(c[at]) for c in fold_curves)
        scores.append(
            Score(cond.environment, cond.snr_db, method, adaptation, "optimistic", float(mean_curve[at]), fold_accs, (best,) * len(fold_accs))
        )
    return scores, curves


def _inner_curves(data, cond, folds, outer, fitted, profile, grid, adaptations) -> dict[str, np.ndarray]:
    """Per adaptation, the mean accuracy curve over inner folds: each training fold scored by
    prototypes built without it and without the outer test fold. Never looks at the outer fold."""
    sums: dict[str, list[np.ndarray]] = {}
    for g in folds:
        if g == outer:
            continue
        rows = np.flatnonzero(cond.folds == g)
        protos = fitted(frozenset([outer, g]))
        ps = profile(cond.vectors[rows], protos)
        pbs = _backgrounds(data, cond, protos, rows, profile)
        for adaptation in adaptations:
            if adaptation != "none" and adaptation in pbs:
                sums.setdefault(adaptation, []).append(accuracy_curve(ps, pbs[adaptation], cond.labels[rows], grid))
    return {a: np.mean(c, axis=0) for a, c in sums.items()}
