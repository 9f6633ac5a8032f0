"""An uploaded clip, as a file in a private temporary folder for the pipeline to read."""
from __future__ import annotations

import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Request

from proto_index.errors import InvalidInput

FIELD = "file"


@asynccontextmanager
async def uploaded_clip(request: Request):
    """The request's clip (a multipart ``file`` field, or the raw body) saved under a fixed name;
    the folder is deleted after. The client's file name is never used as a path."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        part = form.get(FIELD)
        if part is None or isinstance(part, str):
            raise InvalidInput(f"the multipart body has no {FIELD!r} file field")
        data = await part.read()
    else:
        data = await request.body()
    if not data:
        raise InvalidInput("the upload is empty")
    with tempfile.TemporaryDirectory(prefix="proto-index-upload-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        yield path
