"""The library's errors as HTTP answers: a status and a one-line ``detail``."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from proto_index.errors import (
    AlreadyExists,
    AudioDecodeError,
    CatalogConflict,
    InvalidInput,
    ModelMismatch,
    NotFound,
    ProtoIndexError,
    StoreLocked,
    StaleVerdict,
    StoreReadOnly,
)
from proto_index.service.auth import BodyTooLarge, WriteRefused

STATUS = [
    (NotFound, 404),
    (StaleVerdict, 409),
    (AlreadyExists, 409),
    (StoreLocked, 409),
    (CatalogConflict, 409),
    (StoreReadOnly, 403),
    (AudioDecodeError, 415),
    (InvalidInput, 400),
    (ModelMismatch, 409),
]


def status_of(error: ProtoIndexError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def install(app: FastAPI, max_bytes: int) -> None:
    @app.exception_handler(ProtoIndexError)
    async def _domain(request: Request, e: ProtoIndexError):
        return JSONResponse({"detail": _one_line(str(e))}, status_code=status_of(e))

    @app.exception_handler(WriteRefused)
    async def _refused(request: Request, e: WriteRefused):
        return JSONResponse({"detail": str(e)}, status_code=e.status)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, e: BodyTooLarge):
        return JSONResponse({"detail": f"the request body is over the limit of {max_bytes} bytes"}, status_code=413)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return JSONResponse({"detail": _one_line(f"{where}: {first.get('msg', 'invalid request')}")}, status_code=422)
