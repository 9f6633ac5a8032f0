"""``proto-index serve``: the store over HTTP (JSON API, OpenAPI at /docs) with a web UI.

    from proto_index.service import ServiceSettings, create_app
    app = create_app(ServiceSettings(store=Path("my-store")))
"""
from proto_index.service.app import create_app, serve
from proto_index.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app", "serve"]
