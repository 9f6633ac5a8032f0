"""`proto-index serve`: the store over HTTP, with a web UI."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from proto_index.cli.common import DEFAULT_STORE_PATH, DeviceOption, StoreOption
from proto_index.cli.output import BadUsage
from proto_index.service.settings import (
    DEFAULT_HOST,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_PORT,
    TOKEN_ENV_VAR,
    ServiceSettings,
    read_token_file,
)


def serve(
    store: StoreOption = DEFAULT_STORE_PATH,
    host: Annotated[str, typer.Option(help="Interface to listen on; any but loopback needs a token.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = DEFAULT_PORT,
    read_only: Annotated[bool, typer.Option("--read-only", help="Serve search and classification only: every write gets 403.")] = False,
    token_file: Annotated[Optional[Path], typer.Option("--token-file", help=f"File whose first line is the token every write must carry (else env {TOKEN_ENV_VAR}).")] = None,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body, in MB (larger: 413).")] = DEFAULT_MAX_UPLOAD_BYTES / 1e6,
    cors_origin: Annotated[Optional[List[str]], typer.Option("--cors-origin", help="An origin allowed to call the API from a browser (repeatable; default: none).")] = None,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="Send each request's texts or clips to the model alone.")] = False,
    device: DeviceOption = None,
):
    """Serve the store over HTTP: JSON API (OpenAPI at /docs) and a web UI for search and review.

    One model and one index per process; the index is reloaded when another process (an
    `ingest`) publishes a new one. Writes (verdicts, prototype builds) take the store's writer
    lock and, when a token is set, need `Authorization: Bearer TOKEN`.

    \b
    Examples:
      proto-index serve --store my-store                       # http://127.0.0.1:8000/
      PROTO_INDEX_TOKEN=secret proto-index serve --host 0.0.0.0 --port 8080
      proto-index serve --read-only --token-file token.txt
    """
    if token_file is not None and os.environ.get(TOKEN_ENV_VAR):
        raise BadUsage(f"give the token once: --token-file or {TOKEN_ENV_VAR}, not both")
    token = read_token_file(token_file) if token_file is not None else (os.environ.get(TOKEN_ENV_VAR) or None)
    settings = ServiceSettings(store=store, host=host, port=port, read_only=read_only, token=token,
                               max_upload_bytes=int(max_upload_mb * 1e6), cors_origins=tuple(cors_origin or ()),
                               batching=not no_batching, device=device)
    from proto_index.service import create_app

    app = create_app(settings)  # opens the store now: a bad store is one line, before anything listens
    import uvicorn

    typer.echo(f"serving {store} on http://{host}:{port}/ (API docs at /docs)", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
