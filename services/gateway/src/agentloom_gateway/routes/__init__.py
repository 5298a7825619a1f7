"""The /api router: every route in it requires an authenticated principal, and declares the
scope it needs (`access.requires`)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from agentloom_gateway.auth import principal_dependencies
from agentloom_gateway.errors import problem_responses
from agentloom_gateway.routes import (
    admin,
    api_keys,
    blocks,
    executions,
    graphs,
    integrations,
    presets,
    schedules,
    triggers,
    user,
    webhooks,
)

# Problems any /api operation may answer.
COMMON_PROBLEMS = (400, 401, 403, 413, 422, 429, 500, 503)


def include_api(app: FastAPI) -> None:
    """Each module's router straight into the app, under /api, with the principal and the
    common problems: one level of routers fewer than an /api router holding them (FastAPI
    walks the routers below the one it matches in, several times per request; a fifth of
    the gateway's CPU per request went to routing with the extra level)."""
    for module in (executions, graphs, blocks, user, api_keys, integrations, admin):
        _include(app, module.router)
    for router in (schedules.router, webhooks.router, presets.router, triggers.router):
        _include(app, router)


def _include(app: FastAPI, router: APIRouter) -> None:
    app.include_router(
        router,
        prefix="/api",
        dependencies=principal_dependencies(),
        responses=problem_responses(*COMMON_PROBLEMS),
    )
