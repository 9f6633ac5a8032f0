"""What the paper's experiment and the tau calibration run with: the protocol's :class:`Settings`,
:class:`RunOptions` (every run), :class:`SyntheticOptions` / :class:`AudioOptions` (its two data
sources) and :class:`CalibrateOptions` (``proto-index calibrate``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Mapping

from proto_index.atomic import refuse_stdout
from proto_index.core.adaptation import DEFAULT_TAU
from proto_index.core.profiles import PROTOTYPE_NORMS
from proto_index.core.prototypes import DEFAULT_TGAP_N
from proto_index.core.tau import AUTO_RULES, DEFAULT_AUTO_RULE, DEFAULT_GRID, as_grid, finite_tau

BASES = ("zero-shot", "tgap")
VARIANTS = ("ensemble", "drift", "transductive")
"""A label-free method is a base and any of these, in this order: ``tgap-ensemble-drift-transductive``."""


def _variant_names() -> tuple[str, ...]:
    """Every base with every non-empty set of variants: the transductive ones first (the methods of
    old), then by how many variants; TGAP beside zero-shot."""
    subsets = [c for r in (1, 2, 3) for c in combinations(VARIANTS, r)]
    subsets.sort(key=lambda c: (c != ("transductive",), len(c), "transductive" in c))
    return tuple(base + "".join(f"-{v}" for v in c) for c in subsets for base in BASES)


METHODS = ("zero-shot", "tgap", "supervised", *_variant_names())
ADAPTATIONS = ("none", "text", "audio", "audio-oracle")
REF_DB = -36.0
"""The paper's scaper setting: the background's loudness in the mixed scenes, LUFS (scaper's ref_db)."""
DEFAULT_SNRS_DB = (6.0, 8.0, 10.0)
SYNTHETIC_FOLDS, AUDIO_FOLDS = 5, 10
"""The folds a run uses unless :attr:`RunOptions.folds` (or, from audio, the foreground CSV) says."""


@dataclass(frozen=True)
class Settings:
    """What to run: methods, adaptations, TGAP N, the tau grid, the fixed taus, the label-free rule, the scoring."""

    methods: tuple[str, ...] = METHODS
    adaptations: tuple[str, ...] = ADAPTATIONS
    tgap_n: int = DEFAULT_TGAP_N
    grid: tuple[float, ...] = DEFAULT_GRID
    fixed_tau: Mapping[str, float] = field(
        default_factory=lambda: {"text": DEFAULT_TAU["text"], "audio": DEFAULT_TAU["audio"], "audio-oracle": DEFAULT_TAU["audio"]}
    )
    auto_rule: str = DEFAULT_AUTO_RULE
    prototype_norm: str = "l2"
    def check(self) -> None:
        for name, given, known in (("method", self.methods, METHODS), ("adaptation", self.adaptations, ADAPTATIONS)):
            bad = [x for x in given if x not in known]
            if bad or not given:
                raise ValueError(f"unknown or no {name}(s): {', '.join(bad) or '-'}; choose from {', '.join(known)}")
        if self.prototype_norm not in PROTOTYPE_NORMS:
            raise ValueError(f"prototype norm must be one of {', '.join(PROTOTYPE_NORMS)}")
        if self.tgap_n < 1:
            raise ValueError("TGAP N must be at least 1")
        if self.auto_rule not in AUTO_RULES:
            raise ValueError(f"unknown label-free tau rule {self.auto_rule!r}; choose one of {', '.join(AUTO_RULES)}")
        for adaptation, tau in self.fixed_tau.items():
            finite_tau(tau, f"the fixed tau for {adaptation}")
        missing = [a for a in self.adaptations if a != "none" and a not in self.fixed_tau]
        if missing:
            raise ValueError(f"no fixed tau for adaptation(s) {', '.join(missing)}")
        as_grid(self.grid)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fixed_tau"] = dict(self.fixed_tau)
        return d


@dataclass(frozen=True)
class RunOptions:
    """What every run shares: where the results go, the settings, the SNRs, the seed and the folds."""

    out: Path
    settings: Settings = field(default_factory=Settings)
    snrs_db: tuple[float, ...] = DEFAULT_SNRS_DB
    seed: int = 0
    folds: int | None = None  # None: SYNTHETIC_FOLDS or AUDIO_FOLDS (audio: unless the CSV names folds)
    plots: bool = True

    def __post_init__(self):
        refuse_stdout(self.out, "evaluation results (a folder)")  # before the work, not after it


@dataclass(frozen=True)
class SyntheticOptions:
    """The synthetic space: clips per class, background recordings per environment, the modality gap."""

    per_class: int = 40
    backgrounds_per_env: int = 40
    gap: float = 1.0


@dataclass(frozen=True)
class AudioOptions:
    """The audio experiment's inputs: labelled foregrounds, backgrounds, and the scene work folder."""

    foreground: Path
    backgrounds: Path
    work: Path | None = None  # None: OUT/work
    keep_scenes: bool = False
    ref_db: float = REF_DB  # background loudness, LUFS


@dataclass(frozen=True)
class CalibrateOptions:
    """``proto-index calibrate``: the prototype set, the tau grid, the held-out folds and their
    seed, the prototype norm, and ``save`` to store each chosen tau on its environment."""

    prototypes: str
    grid: tuple[float, ...] = DEFAULT_GRID
    folds: int = 5
    seed: int = 0
    prototype_norm: str = "l2"
    save: bool = False
