"""The server's one settings object, checked when made (before anything listens)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from proto_index.errors import InvalidInput

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # a 10 min 48 kHz 16-bit mono WAV is ~58 MB; 50 MB keeps memory bounded
DEFAULT_BATCH_WINDOW_S = 0.001  # the calls that queue while the model runs join the next batch anyway
TOKEN_ENV_VAR = "PROTO_INDEX_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServiceSettings:
    """How one server runs: its store, where it listens, who may write, and its limits.

    ``token``: required on every write when set; a host that is not loopback needs one.
    ``read_only``: refuse every write (also automatic when the store cannot be written).
    ``batching``: gather the texts and clips of concurrent requests into one model call,
    waiting at most ``batch_window_s`` for company. ``index_check_s``: how often the
    published index is checked for a newer one (0: every request).
    """

    store: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    read_only: bool = False
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    batching: bool = True
    batch_window_s: float = DEFAULT_BATCH_WINDOW_S
    batch_max_items: int = 64
    index_check_s: float = 0.0
    device: str | None = None
    write_wait_s: float = 10.0

    def __post_init__(self):
        if self.token is not None and not self.token.strip():
            raise InvalidInput("the token is empty; give a non-empty token or none")
        if not is_loopback(self.host) and self.token is None:
            raise InvalidInput(
                f"refusing to listen on {self.host} without a token: anyone who can reach it could write to "
                f"the store; set {TOKEN_ENV_VAR} or give a token file, or listen on {DEFAULT_HOST}"
            )
        if not 0 < self.port < 65536:
            raise InvalidInput(f"port {self.port} is not in 1-65535")
        if self.max_upload_bytes < 1:
            raise InvalidInput("the upload limit must be at least 1 byte")

    @property
    def writes_need_token(self) -> bool:
        return self.token is not None


def read_token_file(path: Path) -> str:
    """The token in ``path`` (its first line, stripped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"cannot read the token file {path}: {getattr(e, 'strerror', None) or e}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise InvalidInput(f"the token file {path} is empty")
    return token
