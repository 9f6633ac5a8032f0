"""Who may write: the token (when one is set) and read-only mode; the request body limit."""
from __future__ import annotations

import hmac

from fastapi import Request

from proto_index.service.settings import ServiceSettings

TOKEN_HEADER = "x-proto-index-token"


class WriteRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def presented_token(request: Request) -> str | None:
    """The token a request carries: ``Authorization: Bearer T`` or the ``X-Proto-Index-Token`` header."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get(TOKEN_HEADER)


def check_write(settings: ServiceSettings, read_only: bool, request: Request) -> None:
    """Raise :class:`WriteRefused` (403 read-only, 401 token missing or wrong) unless the request may write."""
    if read_only:
        raise WriteRefused(403, "this server is read-only: it serves search and classification only")
    if settings.token is None:
        return
    given = presented_token(request)
    if given is None:
        raise WriteRefused(401, "this write needs the server's token (Authorization: Bearer TOKEN)")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), settings.token.encode("utf-8")):
        raise WriteRefused(401, "the token is wrong")


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 (by its Content-Length, or as
    it streams in when it has none), before any handler reads it whole."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _too_large(send, self.limit)
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.limit)


class BodyTooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    body = ('{"detail": "the request body is over the limit of %d bytes"}' % limit).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
