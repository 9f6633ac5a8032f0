"""What every route needs: the server's state, and the check that a request may write."""
from __future__ import annotations

import math

from fastapi import Request

from proto_index.filenames import as_text
from proto_index.service.auth import check_write
from proto_index.service.state import ServiceState


def state(request: Request) -> ServiceState:
    return request.app.state.service


def writable(request: Request) -> ServiceState:
    """The state, after checking the request may write (403 read-only, 401 token)."""
    st = state(request)
    check_write(st.settings, st.read_only, request)
    return st


def path_text(path: str | None) -> str | None:
    """A catalog path as JSON text: itself, or a ``file:`` URI when it is not UTF-8 (see proto_index.filenames)."""
    return None if path is None else as_text(path)


def num(x: float | None) -> float | None:
    """A number for JSON: NaN (no runner-up, no tau) as null."""
    return None if x is None or math.isnan(x) else float(x)
