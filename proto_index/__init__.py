"""proto-index: classify environmental sound archives with LAION-CLAP prototypes and background subtraction.

Importing it is cheap and offline: torch and FAISS load only when a model or index is used.
"""

__version__ = "0.1.0"

from proto_index.api import Store, default_store_path  # noqa: E402
from proto_index.errors import ProtoIndexError  # noqa: E402
from proto_index.options import (  # noqa: E402
    AudioOptions,
    CalibrateOptions,
    ClassSetOptions,
    DatasetOptions,
    EmbedOptions,
    EnvironmentOptions,
    ExecutorOptions,
    IngestOptions,
    PrototypeInputs,
    PrototypeOptions,
    ReportOptions,
    RunOptions,
    ScoringOptions,
    Settings,
    SyntheticOptions,
)

__all__ = [
    "Store", "EmbedOptions", "ExecutorOptions", "IngestOptions", "ClassSetOptions", "PrototypeOptions", "PrototypeInputs", "EnvironmentOptions", "ScoringOptions", "DatasetOptions",
    "ReportOptions", "Settings", "RunOptions", "SyntheticOptions", "AudioOptions", "CalibrateOptions",
    "default_store_path", "ProtoIndexError", "__version__",
]
