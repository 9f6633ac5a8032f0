"""The app factory: one store, one model, the routes, the safety layers and the web UI."""
from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from proto_index.service import errors
from proto_index.service.auth import BodyLimit
from proto_index.service.routes import annotations as annotation_routes  # not the __future__ feature
from proto_index.service.routes import classify, corpus, meta, prototypes, search
from proto_index.service.settings import ServiceSettings
from proto_index.service.state import ServiceState

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'self'; media-src 'self' blob:; img-src 'self' data: blob:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}


def create_app(settings: ServiceSettings, state: ServiceState | None = None, warm: bool = True):
    """An ASGI app serving the store ``settings.store`` (opened now; the model and index load at startup)."""
    state = state or ServiceState.open(settings)

    @asynccontextmanager
    async def lifespan(app):
        if warm:
            state.warm()
        yield
        state.close()

    app = FastAPI(title="proto-index", description="Search, classify and review a proto-index store.",
                  lifespan=lifespan)
    app.state.service = state
    errors.install(app, settings.max_upload_bytes)
    for module in (meta, search, prototypes, classify, annotation_routes, corpus):
        app.include_router(module.router)
    static = resources.files("proto_index.service") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    @app.middleware("http")
    async def security_headers(request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "PUT"], allow_headers=["authorization", "content-type",
                                                                                "x-proto-index-token"])
    return BodyLimit(app, settings.max_upload_bytes)


def serve(settings: ServiceSettings) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning",
                lifespan="on")
