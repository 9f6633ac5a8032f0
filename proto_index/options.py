"""How audio files become window embeddings, and how their vectors are scored: frozen objects,
carried unchanged from the CLI (or a library call) to the code that uses them.

:class:`EmbedOptions` travels unchanged through ``Store.ingest`` / ``Store.classify``, the use cases and the engine
(:mod:`proto_index.usecases.ingest`, :mod:`proto_index.usecases.classify`), the executors and
:func:`proto_index.engine.embedding.embed_files`, on this machine or a Ray worker. Where the
files are embedded is :class:`proto_index.engine.executors.ExecutorOptions`; the model's device
and precision are chosen when the store opens (they decide which model is loaded, once).
:class:`ScoringOptions` (adaptation, tau, prototype norm, per-window rows) travels from
``Store.classify`` / ``classify_dataset`` to :func:`proto_index.usecases.classify.classify`.
:class:`IngestOptions` (the writer-lock wait, rehashing, commit and publication sizes) travels from
``Store.ingest`` to :func:`proto_index.usecases.ingest.ingest`; it stays in the process that commits.
:class:`PrototypeInputs` (the mapping and examples files) travels from ``Store.build_prototypes``
to :func:`proto_index.usecases.prototypes.build_prototypes`.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

from proto_index.core.adaptation import ADAPTATIONS
from proto_index.core.drift import DEFAULT_WEIGHT as DEFAULT_DRIFT_WEIGHT
from proto_index.core.profiles import PROTOTYPE_NORMS
from proto_index.core.tau import parse_tau
from proto_index.audio.windows import Cutting
from proto_index.core.identity import SAMPLE_RATE, ModelIdentity
from proto_index.errors import Hint, InvalidInput

DECODERS = ("threads", "processes")
"""Where the embedding pipeline decodes files: in reader threads, or in one worker process per reader thread."""

DEFAULT_DECODER = "threads"
"""Threads by default: on a 2-core machine processes bought nothing measurable and cost a start of
1.7-3.5 s each (spawn and imports) plus relaying every window (bench/decode_rate.py, bench/RESULTS.md);
processes are for many cores, where threads contend for the interpreter lock with the model's thread."""

DEFAULT_HOP_S = None
"""Windows follow each other without overlap (the hop is the model's window) unless a hop is given."""
DEFAULT_WORKERS = 1
"""Reader threads on a CPU, where the model needs the cores; on CUDA see :func:`default_workers`."""
GPU_MAX_WORKERS = 16
DEFAULT_PREFETCH = 8
DEFAULT_COMMIT_WINDOWS = 256
DEFAULT_PUBLISH_WINDOWS = 50_000


@dataclass(frozen=True)
class EmbedOptions:
    """How files are cut into windows and fed to the model.

    ``hop_s``: seconds between the starts of consecutive windows (None: the model's window, 10 s
    for CLAP, 3 s for BirdNET; below it: overlapping).
    ``batch_windows``: windows per model batch (None: the model's device decides, 4 on a CPU, 32
    on CUDA). ``workers``: threads reading, hashing and decoding files ahead of the model (0: all
    in the caller's thread; None: the model's device decides, see :func:`default_workers`). ``prefetch``: files read ahead of the model at most (never fewer than
    ``workers``). ``decoder``: ``threads`` (the workers decode) or ``processes`` (each worker hands
    its files to a decoding process of its own: :mod:`proto_index.engine.decoding`).
    """

    hop_s: float | None = DEFAULT_HOP_S
    batch_windows: int | None = None
    workers: int | None = None
    prefetch: int = DEFAULT_PREFETCH
    decoder: str = DEFAULT_DECODER

    def __post_init__(self):
        hop = self.hop_s
        if hop is not None and (isinstance(hop, bool) or not isinstance(hop, numbers.Real) or not math.isfinite(hop)
                                or round(hop * SAMPLE_RATE) < 1):
            raise InvalidInput(f"the hop between windows must be a positive number of seconds, got {hop!r}")
        if self.batch_windows is not None and not _whole(self.batch_windows, 1):
            raise InvalidInput(f"windows per model batch must be a whole number of at least 1, got {self.batch_windows!r}")
        if self.workers is not None and not _whole(self.workers, 0):
            raise InvalidInput(f"reader workers must be a whole number of at least 0, got {self.workers!r}")
        if not _whole(self.prefetch, 1):
            raise InvalidInput(f"files read ahead must be a whole number of at least 1, got {self.prefetch!r}")
        if self.decoder not in DECODERS:
            raise InvalidInput(f"unknown decoder {self.decoder!r}; choose one of {', '.join(DECODERS)}")
        # plain Python numbers from here on (numpy scalars compare and pickle the same, but print differently)
        object.__setattr__(self, "hop_s", None if hop is None else float(hop))
        for name in ("batch_windows", "workers", "prefetch"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))

    def cutting(self, identity: ModelIdentity | None) -> Cutting:
        """How the model of ``identity`` gets its windows, every :attr:`hop_s` seconds."""
        return Cutting.for_model(identity, self.hop_s)


def default_workers(device: str, cpus: int | None) -> int:
    """Reader threads when none are asked for: 1 on a CPU (the model needs the cores), and on CUDA
    every core but one, up to :data:`GPU_MAX_WORKERS` (one thread decodes 60-160 10 s clips/s,
    bench/RESULTS.md, far below what a GPU embeds)."""
    if not str(device).startswith("cuda"):
        return DEFAULT_WORKERS
    return max(1, min(GPU_MAX_WORKERS, (cpus or 1) - 1))


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


@dataclass(frozen=True)
class IngestOptions:
    """How an ingest run treats the store; checked on creation, before the model loads.

    ``wait_s``: seconds to wait for another process holding the writer lock. ``rehash``: read and
    hash every file, even one whose path, size and mtime match a stored recording (skipped unread
    otherwise). ``commit_windows``: windows per catalog transaction (a crash loses at most the one
    in flight). ``publish_windows``: new windows between publications of the index file (it is
    also published at the end).
    """

    wait_s: float = 0.0
    rehash: bool = False
    commit_windows: int = DEFAULT_COMMIT_WINDOWS
    publish_windows: int = DEFAULT_PUBLISH_WINDOWS

    def __post_init__(self):
        wait = self.wait_s
        if isinstance(wait, bool) or not isinstance(wait, numbers.Real) or not wait >= 0:  # inf: wait for ever
            raise InvalidInput(f"the wait for another writer must be zero or more seconds, got {wait!r}", hint=Hint("wait_s"))
        if not isinstance(self.rehash, bool):
            raise InvalidInput(f"rehash must be True or False, got {self.rehash!r}", hint=Hint("rehash"))
        if not _whole(self.commit_windows, 1):
            raise InvalidInput(f"windows per catalog transaction must be a whole number of at least 1, "
                               f"got {self.commit_windows!r}", hint=Hint("commit_windows"))
        if not _whole(self.publish_windows, 1):
            raise InvalidInput(f"new windows between index publications must be a whole number of at least 1, "
                               f"got {self.publish_windows!r}", hint=Hint("publish_windows"))
        # plain Python numbers from here on, as in EmbedOptions
        object.__setattr__(self, "wait_s", float(wait))
        object.__setattr__(self, "commit_windows", int(self.commit_windows))
        object.__setattr__(self, "publish_windows", int(self.publish_windows))


def _whole(value, least: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= least


MAX_TEMPLATES = 32
"""The most templates one prompt ensemble embeds (each costs one prompt per class)."""


@dataclass(frozen=True)
class PrototypeInputs:
    """What the prototype methods without a text anchor read, carried from ``Store.build_prototypes``
    (or the CLI) to :mod:`proto_index.usecases.prototypes`.

    ``mapping`` (``classifier``): a UTF-8 CSV ``class,model_label``, one row per label of the model
    mapped to a class (several per class allowed). ``examples`` (``examples``): a UTF-8 CSV with a
    ``class`` column and a ``path`` (an audio file, relative to the CSV's folder) or ``window`` (a
    stored window id) per row. ``embed``: how example files not already in the corpus are embedded.
    ``prompt_ensemble`` (``zero-shot``, ``tgap``): the prompt templates (each with ``{label}``) whose
    anchors are combined with label-free entropy weights over the corpus audio
    (:mod:`proto_index.core.prompt_weights`); None: the class set's one template.
    """

    mapping: Path | None = None
    examples: Path | None = None
    embed: EmbedOptions = EmbedOptions()
    prompt_ensemble: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.prompt_ensemble is not None:
            templates = self.prompt_ensemble
            if isinstance(templates, str) or not all(isinstance(t, str) for t in templates):
                raise InvalidInput("the prompt ensemble must be a list of templates (strings)")
            if not templates or len(templates) > MAX_TEMPLATES:
                raise InvalidInput(f"a prompt ensemble needs 1 to {MAX_TEMPLATES} templates, got {len(templates)}")
            bad = [t for t in templates if "{label}" not in t]
            if bad:
                raise InvalidInput(f"every prompt template must contain {{label}}: {bad[0]!r} does not")
            object.__setattr__(self, "prompt_ensemble", tuple(dict.fromkeys(templates)))
        for name in ("mapping", "examples"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise InvalidInput(f"the {name} file must be a path, got {value!r}")
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if not isinstance(self.embed, EmbedOptions):
            raise InvalidInput(f"embed must be EmbedOptions, got {type(self.embed).__name__}")
