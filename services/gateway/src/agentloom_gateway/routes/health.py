"""Probes, open without credentials: /healthz (alive) and /readyz (can serve)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from agentloom_gateway import schemas
from agentloom_gateway.deps import SessionsDep, SettingsDep
from agentloom_gateway.errors import problem_responses, unavailable

router = APIRouter(tags=["health"])
_OPEN: dict[str, Any] = {"security": []}


@router.get("/healthz", summary="Liveness", openapi_extra=_OPEN)
async def healthz() -> schemas.Health:
    return schemas.Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: the identity database answers",
    openapi_extra=_OPEN,
    responses=problem_responses(503),
)
async def readyz(sessions: SessionsDep, settings: SettingsDep) -> schemas.Health:
    # Downstream services are not probed: one of them being down must not take every
    # gateway replica out of rotation (their routes answer 503 on their own).
    try:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as error:
        raise unavailable(settings.retry_after_s, "the database is unavailable") from error
    return schemas.Health(status="ready")
