"""The FastAPI application of ``rjobs serve``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.responses import Response

from rjobs._config import redact_url
from rjobs.server.api import Api, ServerSettings, build_router
from rjobs.server.errors import JSONResponse, install_error_handlers
from rjobs.server.gate import Gate
from rjobs.store.store import Store

logger = logging.getLogger(__name__)

DESCRIPTION = """The rjobs HTTP API. Every route but `/healthz` needs `Authorization: Bearer
<token>` (`rjobs tokens create USER`). Errors are JSON `{"message", "code"}`."""


def create_app(store: Store, settings: ServerSettings | None = None) -> FastAPI:
    """An application serving ``store``; the caller owns the store and closes it."""
    settings = settings or ServerSettings()
    api = Api(store, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(store.upgrade)
        await anyio.to_thread.run_sync(api.metrics.start)
        logger.info("server.ready", extra={"store": redact_url(store.url)})
        yield
        logger.info("server.stopping")

    from rjobs import __version__

    app = FastAPI(
        title="rjobs",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.include_router(build_router(api))
    install_error_handlers(app)
    app.add_middleware(Gate, store=store, max_body_bytes=settings.max_body_bytes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _tidy_openapi(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> Response:
        return JSONResponse(openapi())

    app.state.api = api
    return app


def _tidy_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Say what the server really answers: 400 (never 422) for bad parameters, bearer auth."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            if path == "/healthz":
                operation["security"] = []
                for status in ("401", "403", "404", "413", "400"):
                    operation["responses"].pop(status, None)
    components = schema.setdefault("components", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    schema["security"] = [{"bearer": []}]
    return schema
