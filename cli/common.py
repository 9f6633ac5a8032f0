"""Options shared by every command, and opening the store they name."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from proto_index.api import DEFAULT_STORE, STORE_ENV_VAR, Store

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
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Audio windows per model batch.")]


def open_store(store: Path, device: str | None = None) -> Store:
    return Store.open(store, device=device)
