"""Options shared by every command, and opening the store they name."""
from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from proto_index.api import DEFAULT_STORE, STORE_ENV_VAR, Store
from proto_index.engine.decoding import DEFAULT_DECODER  # noqa: F401  (the default for app.py)
from proto_index.options import RAY_ADDRESS_ENV, ExecutorOptions


# The choices of --executor, --decoder and --precision, spelled out so a type checker sees the members;
# tests/cli/test_cli_choices.py checks that they are the library's EXECUTORS, DECODERS and PRECISIONS.
class Executor(str, enum.Enum):
    local = "local"
    ray = "ray"


class Decoder(str, enum.Enum):
    threads = "threads"
    processes = "processes"


class Precision(str, enum.Enum):
    fp32 = "fp32"
    bf16 = "bf16"


StoreOption = Annotated[
    Path,
    typer.Option(
        "--store",
        envvar=STORE_ENV_VAR,
        help=f"Store folder (catalog, vectors, index). Env: {STORE_ENV_VAR}.",
        show_default=True,
    ),
]
DEFAULT_STORE_PATH = Path(DEFAULT_STORE)

DeviceOption = Annotated[
    Optional[str], typer.Option("--device", help="Torch device for the model: cpu, cuda, cuda:1 (default: cuda if available).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar (failures are still printed).")]
WaitOption = Annotated[
    float, typer.Option("--wait", min=0, help="Seconds to wait for another process writing to the store.")
]
BatchOption = Annotated[
    Optional[int],
    typer.Option("--batch-size", min=1, help="Audio windows per model batch (default: 4 on a CPU, where bigger "
                 "batches run slower; 32 on CUDA).", show_default=False),
]
PRECISION_ENV_VAR = "PROTO_INDEX_PRECISION"
PrecisionOption = Annotated[
    Optional[Precision],
    typer.Option(
        "--precision",
        envvar=PRECISION_ENV_VAR,
        case_sensitive=False,
        help="Model compute precision: fp32; bf16 (about 1.8x faster on a CPU with bfloat16 support; "
        "vectors within cosine 0.9999 of fp32 on a CPU, 0.999 on CUDA; same model). "
        f"Env: {PRECISION_ENV_VAR}. [default: fp32]",
        show_default=False,
    ),
]
HopOption = Annotated[
    Optional[float],
    typer.Option("--hop", min=0.1, show_default=False,
                 help="Seconds between the starts of consecutive windows (default: the model's window, 10 s for "
                      "CLAP, 3 s for BirdNET; below it: overlapping)."),
]
WorkersOption = Annotated[
    Optional[int],
    typer.Option("--workers", min=0, show_default=False,
                 help="Threads reading, hashing and decoding files ahead of the model (0: none; "
                      "default: 1 on a CPU, every core but one up to 16 on CUDA)."),
]
DecoderOption = Annotated[
    Decoder,
    typer.Option("--decoder", case_sensitive=False,
                 help="Where the --workers decode: threads, or processes (one each; for many cores, e.g. feeding a GPU)."),
]


ExecutorOption = Annotated[
    Executor,
    typer.Option("--executor", case_sensitive=False,
                 help="Where files are read, decoded and embedded: local (this process), or ray (Ray actors; "
                 "needs proto-index[ray]). The store is written by this process either way."),
]
RayAddressOption = Annotated[
    Optional[str],
    typer.Option("--ray-address", envvar=RAY_ADDRESS_ENV,
                 help=f"Ray cluster to use with --executor ray, e.g. ray://head:10001 or head:6379 "
                 f"(default: start Ray on this machine). Env: {RAY_ADDRESS_ENV}.", show_default=False),
]
RayActorGpusOption = Annotated[
    float, typer.Option("--ray-actor-gpus", min=0, help="GPUs per Ray embedding actor (e.g. 1 on GPU workers).")
]


def executor_options(executor: Executor | str, address: str | None, gpus: float = 0.0) -> ExecutorOptions:
    kind = executor.value if isinstance(executor, Executor) else executor
    return ExecutorOptions(kind=kind, address=address, gpus_per_actor=gpus)


def open_store(store: Path, device: str | None = None, precision: str | Precision | None = None) -> Store:
    """Open ``store``; ``precision`` None means $PROTO_INDEX_PRECISION, else fp32."""
    chosen = precision.value if isinstance(precision, Precision) else precision
    return Store.open(store, device=device, precision=chosen or os.environ.get(PRECISION_ENV_VAR) or "fp32")
