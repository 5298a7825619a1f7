"""The gateway's FastAPI application, built by `create_app` (no import-time state)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from agentloom_common.db import create_engine, create_session_factory
from agentloom_common.problem import Problem
from agentloom_gateway.auth import ApiKeyAuthenticator, Authenticator
from agentloom_gateway.clients import open_services
from agentloom_gateway.deps import Resources
from agentloom_gateway.errors import install
from agentloom_gateway.middleware import RequestContextMiddleware, RequestLimitsMiddleware
from agentloom_gateway.routes import api_router, health
from agentloom_gateway.schemas import InsufficientCreditsProblem
from agentloom_gateway.settings import DEV_API_KEY_PEPPER, GatewaySettings

log = logging.getLogger(__name__)

TAGS = [
    {"name": "graphs", "description": "Graphs of blocks, and their versions."},
    {"name": "executions", "description": "Running graphs and reading their results."},
    {"name": "blocks", "description": "The catalog of blocks a graph can use."},
    {"name": "user", "description": "The caller's profile and credits."},
    {"name": "api keys", "description": "The caller's API keys."},
    {"name": "health", "description": "Probes, open without credentials."},
]
DESCRIPTION = (
    "Build and run AI-agent workflows. Authenticate with an API key, as "
    "`Authorization: Bearer agl_...` or `X-API-Key: agl_...`. Errors are RFC 9457 "
    "`application/problem+json` with a stable `code` and the `request_id` (echoed in "
    "`X-Request-ID`)."
)


def create_app(
    settings: GatewaySettings, *, authenticators: Sequence[Authenticator] = ()
) -> FastAPI:
    """Build the app. `authenticators` are tried after API keys (a JWT one, later).

    The lifespan opens the database engine and the gRPC channels and closes them.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.api_key_pepper.get_secret_value() == DEV_API_KEY_PEPPER:
            log.warning("AGENTLOOM_API_KEY_PEPPER is the development default")
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        sessions = create_session_factory(engine)
        services = open_services(settings)
        api_keys = ApiKeyAuthenticator(
            sessions,
            pepper=settings.api_key_pepper.get_secret_value().encode(),
            touch_interval=timedelta(seconds=settings.api_key_touch_interval_s),
        )
        app.state.resources = Resources(
            settings, engine, sessions, services, [api_keys, *authenticators]
        )
        try:
            yield
        finally:
            await services.close()
            await engine.dispose()

    app = FastAPI(
        title="Agentloom API",
        version=version("agentloom-gateway"),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        redoc_url=None,
    )
    install(app, retry_after_s=settings.retry_after_s)
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    app.add_middleware(RequestContextMiddleware)  # added last: outermost
    app.include_router(health.router)
    app.include_router(api_router())

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the problem schemas the `responses` entries refer to."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    _, definitions = models_json_schema(
        [(Problem, "serialization"), (InsufficientCreditsProblem, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    return document
