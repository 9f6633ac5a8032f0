"""How vectors are scored into labels: :class:`ScoringOptions`, from ``Store.classify`` /
``classify_dataset`` to :func:`proto_index.usecases.classify.classify`."""
from __future__ import annotations

import math
from dataclasses import dataclass

from proto_index.core.adaptation import ADAPTATIONS
from proto_index.core.drift import DEFAULT_WEIGHT as DEFAULT_DRIFT_WEIGHT
from proto_index.core.profiles import PROTOTYPE_NORMS
from proto_index.core.tau import parse_tau
from proto_index.errors import InvalidInput


@dataclass(frozen=True)
class ScoringOptions:
    """How vectors become labels (Pf = Ps - tau * Pb, argmax); checked on creation, before any model work.

    ``adapt``: the background adaptation (:data:`proto_index.core.adaptation.ADAPTATIONS`; ``auto``:
    each environment's best available). ``tau``: a number for every environment; None for each
    environment's own; ``"auto"`` / ``"auto-clip"``: estimated without labels
    (:data:`proto_index.core.tau.TAU_KEYWORDS`). ``prototype_norm``: ``l2`` (cosine) or ``none``
    (raw dot product, as the paper's reference code). ``per_window``: one result per 10 s window
    instead of one per file. ``transductive``: label-free transductive adaptation (TransCLIP,
    :mod:`proto_index.core.transductive`) over each environment's clips of the run, on top of the
    above; scores become the clips' class probabilities. ``drift``: drift-augmented scoring
    (:mod:`proto_index.core.drift`): each profile, the backgrounds' too, gains ``drift_weight``
    times the text-derived drift bonus of the run's environment (needs the model's text tower).
    """

    adapt: str = "auto"
    tau: float | str | None = None
    prototype_norm: str = "l2"
    per_window: bool = False
    transductive: bool = False
    drift: bool = False
    drift_weight: float = DEFAULT_DRIFT_WEIGHT

    def __post_init__(self):
        if self.adapt not in ADAPTATIONS:
            raise InvalidInput(f"unknown adaptation {self.adapt!r}; choose one of {', '.join(ADAPTATIONS)}")
        try:
            object.__setattr__(self, "_parsed_tau", parse_tau(self.tau))  # kept outside the fields
        except ValueError as e:
            raise InvalidInput(str(e)) from None
        if self.prototype_norm not in PROTOTYPE_NORMS:
            raise InvalidInput(f"unknown prototype norm {self.prototype_norm!r}; choose one of {', '.join(PROTOTYPE_NORMS)}")
        for name in ("per_window", "transductive", "drift"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInput(f"{name} must be True or False, got {getattr(self, name)!r}")
        w = self.drift_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise InvalidInput(f"the drift weight must be a finite number >= 0, got {w!r}")

    @property
    def parsed_tau(self) -> float | str | None:
        """``tau`` as parsed on creation: a finite number, None, or the name of a label-free rule
        (:func:`~proto_index.core.tau.parse_tau`: ``"auto"`` gives ``"projection-batch"``)."""
        return self.__dict__["_parsed_tau"]
