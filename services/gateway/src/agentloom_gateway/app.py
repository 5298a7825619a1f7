"""The gateway's FastAPI application, built by `create_app` (no import-time state)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import iter_route_contexts
from fastapi.telemetry import TelemetryConfig
from pydantic.json_schema import models_json_schema

from agentloom_common.db import create_engine, create_session_factory, warm_pool
from agentloom_common.problem import Problem
from agentloom_gateway.access import route_requirement
from agentloom_gateway.access_wiring import open_access
from agentloom_gateway.auth import ApiKeyAuthenticator, Authenticator, declare_security
from agentloom_gateway.clients import open_services
from agentloom_gateway.deps import Resources
from agentloom_gateway.errors import install
from agentloom_gateway.middleware import RequestContextMiddleware, RequestLimitsMiddleware
from agentloom_gateway.routes import credits, health, include_api, live, trigger_ingress
from agentloom_gateway.schemas import InsufficientCreditsProblem
from agentloom_gateway.settings import DEV_API_KEY_PEPPER, GatewaySettings

log = logging.getLogger(__name__)

TAGS = [
    {"name": "graphs", "description": "Graphs of blocks, and their versions."},
    {"name": "executions", "description": "Running graphs and reading their results."},
    {"name": "schedules", "description": "Running graphs on cron schedules, in a time zone."},
    {"name": "presets", "description": "Saved inputs and credential choices for a graph."},
    {"name": "triggers", "description": "Incoming triggers: signed calls that start a graph."},
    {"name": "blocks", "description": "The catalog of blocks a graph can use."},
    {"name": "user", "description": "The caller's profile and credits."},
    {"name": "api keys", "description": "The caller's API keys."},
    {"name": "credentials", "description": "Integration credentials; secrets never returned."},
    {"name": "webhooks", "description": "Signed event deliveries to the caller's endpoints."},
    {"name": "admin", "description": "Users, keys, credits and suspension; admins only."},
    {"name": "health", "description": "Probes, open without credentials."},
]
DESCRIPTION = (
    "Build and run AI-agent workflows. Authenticate with an API key, as "
    "`Authorization: Bearer agl_...` or `X-API-Key: agl_...`, or a JWT as `Bearer <JWT>`. "
    "Every operation needs a scope (`x-required-scope`). Errors are RFC 9457 "
    "`application/problem+json` with a stable `code` and the `request_id` (echoed in "
    "`X-Request-ID`)."
)


def create_app(
    settings: GatewaySettings,
    *,
    authenticators: Sequence[Authenticator] = (),
    on_ready: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the app. `authenticators` are tried after API keys and JWTs; `on_ready` is
    called once the lifespan has opened everything (the server process freezes its startup
    heap there: `agentloom_common.process.started`).

    The lifespan opens the database engine, the gRPC channels, the rate limiter (Redis) and
    the internal credentials gRPC server, and closes them.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.api_key_pepper.get_secret_value() == DEV_API_KEY_PEPPER:
            log.warning("AGENTLOOM_API_KEY_PEPPER is the development default")
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        await warm_pool(engine)
        sessions = create_session_factory(engine)
        services = open_services(settings)
        api_keys = ApiKeyAuthenticator(
            engine,
            pepper=settings.api_key_pepper.get_secret_value().encode(),
            touch_interval=timedelta(seconds=settings.api_key_touch_interval_s),
            cache_s=settings.api_key_cache_s,
        )
        access = await open_access(settings, sessions)
        app.state.resources = Resources(
            settings,
            engine,
            sessions,
            services,
            [api_keys, access.jwt, *authenticators],
            limiter=access.limiter,
            keyring=access.keyring,
        )
        app.state.credentials_server = access.credentials_server
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await access.close(grace_s=1.0)
            await services.close()
            await engine.dispose()

    app = FastAPI(
        title="Agentloom API",
        version=version("agentloom-gateway"),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        redoc_url=None,
        telemetry=fastapi_telemetry(os.environ),
    )
    install(app, retry_after_s=settings.retry_after_s)
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    app.add_middleware(RequestContextMiddleware)  # added last: outermost
    app.include_router(health.router)
    include_api(app)
    app.include_router(credits.router)  # billing's history, usage and estimates
    app.include_router(live.router)  # /ws: live events, forwarded to notify
    app.include_router(trigger_ingress.router)  # signature-authenticated, no API key

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def fastapi_telemetry(environ: Mapping[str, str]) -> TelemetryConfig:
    """FastAPI's own OpenTelemetry spans, metrics and logs: as FastAPI sets them when the
    process is set up for OpenTelemetry (an `OTEL_*` or `FASTAPI_OTEL_*` variable, as
    `opentelemetry-instrument` and the OTLP exporters read), off otherwise. Off, FastAPI no
    longer asks the global providers on every request whether one was configured since:
    5% of the gateway's CPU under bench W4."""
    if any(name.startswith(("OTEL_", "FASTAPI_OTEL_")) for name in environ):
        return {}
    return {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


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
    _declare_scopes(app, document)
    declare_security(iter_route_contexts(app.routes), document)
    return document


def _declare_scopes(app: FastAPI, document: dict[str, Any]) -> None:
    """`x-required-scope` on every operation that declares one (`access.requires`)."""
    for route in iter_route_contexts(app.routes):
        requirement = route_requirement(route)
        operations = document.get("paths", {}).get(route.path_format or "", {})
        for method in route.methods or ():
            if requirement is not None and method.lower() in operations:
                operations[method.lower()]["x-required-scope"] = requirement.scope
