"""The typed option objects, one module per family: frozen, checked when made (:class:`InvalidInput`
otherwise), carried unchanged from the CLI (or a library call) to the code that uses them.

- :mod:`~proto_index.options.embedding`: :class:`EmbedOptions` (how files become windows; travels
  through ``Store.ingest`` / ``Store.classify``, the use cases and the engine to every reader, also
  on Ray workers) and :class:`ExecutorOptions` (where that runs; only the store uses it).
- :mod:`~proto_index.options.scoring`: :class:`ScoringOptions` (adaptation, tau, prototype norm,
  per-window rows), from ``Store.classify`` / ``classify_dataset`` to the classify use case.
- :mod:`~proto_index.options.ingest`: :class:`IngestOptions` (the writer-lock wait, rehashing,
  commit and publication sizes), from ``Store.ingest``; it stays in the process that commits.
- :mod:`~proto_index.options.prototypes`: :class:`ClassSetOptions` (from ``Store.add_classes``),
  :class:`PrototypeOptions` (method, N, name, replace,
  min_confirmed) with its :class:`PrototypeInputs` (mapping and examples files, prompt ensembles),
  from ``Store.build_prototypes``.
- :mod:`~proto_index.options.environments`: :class:`EnvironmentOptions` (text and audio
  backgrounds, taus, replace), from ``Store.add_environment``.
- :mod:`~proto_index.options.outputs`: :class:`DatasetOptions`, :class:`ReportOptions`.
- :mod:`~proto_index.options.evaluation`: the experiment's :class:`Settings`, :class:`RunOptions`,
  :class:`SyntheticOptions`, :class:`AudioOptions`, and :class:`CalibrateOptions`.

The model's device and precision are chosen when the store opens (they decide which model is
loaded, once). Pure-math parameters stay with their math (``core.transductive.TransductiveOptions``).
"""
from proto_index.options.embedding import (  # noqa: F401
    DECODERS,
    DEFAULT_DECODER,
    DEFAULT_HOP_S,
    DEFAULT_PREFETCH,
    DEFAULT_WORKERS,
    EXECUTORS,
    GPU_MAX_WORKERS,
    RAY_ADDRESS_ENV,
    EmbedOptions,
    ExecutorOptions,
    default_workers,
)
from proto_index.options.evaluation import AudioOptions, CalibrateOptions, RunOptions, Settings, SyntheticOptions
from proto_index.options.ingest import DEFAULT_COMMIT_WINDOWS, DEFAULT_PUBLISH_WINDOWS, IngestOptions  # noqa: F401
from proto_index.options.outputs import DatasetOptions, ReportCatalog, ReportOptions
from proto_index.options.environments import EnvironmentOptions
from proto_index.options.prototypes import MAX_TEMPLATES, ClassSetOptions, PrototypeInputs, PrototypeOptions  # noqa: F401
from proto_index.options.scoring import ScoringOptions

__all__ = [
    "EmbedOptions", "ExecutorOptions", "ScoringOptions", "IngestOptions", "ClassSetOptions", "PrototypeOptions", "PrototypeInputs", "EnvironmentOptions", "DatasetOptions",
    "ReportOptions", "ReportCatalog", "Settings", "RunOptions", "SyntheticOptions", "AudioOptions", "CalibrateOptions",
]
