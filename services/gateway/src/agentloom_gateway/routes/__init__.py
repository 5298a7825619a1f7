"""The /api router: every route in it requires an authenticated principal, and declares the
scope it needs (`access.requires`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from agentloom_gateway.auth import require_principal
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


def api_router() -> APIRouter:
    router = APIRouter(
        prefix="/api",
        dependencies=[Depends(require_principal)],
        responses=problem_responses(*COMMON_PROBLEMS),
    )
    for module in (graphs, executions, blocks, user, api_keys, integrations, admin):
        router.include_router(module.router)
    router.include_router(schedules.router)
    router.include_router(webhooks.router)
    router.include_router(presets.router)
    router.include_router(triggers.router)
    return router
