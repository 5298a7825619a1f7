"""/api/user/api-keys: the caller's API keys. A new key is shown once, in the 201 answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response

from agentloom_common.problem import FieldError
from agentloom_gateway import convert, identity, schemas
from agentloom_gateway.auth import PrincipalDep
from agentloom_gateway.deps import SessionsDep, SettingsDep
from agentloom_gateway.errors import ApiProblem, not_found, problem_responses

router = APIRouter(prefix="/user/api-keys", tags=["api keys"])

KeyId = Annotated[uuid.UUID, Path(description="API key id.")]


@router.get("", summary="List the current user's API keys")
async def list_api_keys(principal: PrincipalDep, sessions: SessionsDep) -> schemas.ApiKeyList:
    async with sessions.begin() as session:
        records = await identity.list_api_keys(session=session, user_id=principal.user_id)
    return schemas.ApiKeyList(api_keys=[convert.api_key(record) for record in records])


@router.post(
    "",
    status_code=201,
    summary="Create an API key",
    response_description="The key, in full, for the only time.",
)
async def create_api_key(
    body: schemas.ApiKeyIn,
    principal: PrincipalDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    response: Response,
) -> schemas.ApiKeyCreated:
    expires_at = body.expires_at
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= datetime.now(UTC)):
        field = FieldError(field="body.expires_at", message="must be a future time with a zone")
        raise ApiProblem(422, "VALIDATION_ERROR", "invalid expiry", errors=[field])
    async with sessions.begin() as session:
        created = await identity.create_api_key(
            session=session,
            user_id=principal.user_id,
            name=body.name,
            pepper=settings.api_key_pepper.get_secret_value().encode(),
            expires_at=expires_at,
        )
    response.headers["Location"] = f"/api/user/api-keys/{created.id}"
    shown = convert.api_key(created.record)
    return schemas.ApiKeyCreated(**shown.model_dump(), api_key=created.api_key)


@router.get("/{key_id}", summary="Get an API key", responses=problem_responses(404))
async def get_api_key(
    key_id: KeyId, principal: PrincipalDep, sessions: SessionsDep
) -> schemas.ApiKeyOut:
    async with sessions.begin() as session:
        record = await identity.get_api_key(
            session=session, user_id=principal.user_id, key_id=key_id
        )
    if record is None:
        raise not_found("no such API key")
    return convert.api_key(record)


@router.delete(
    "/{key_id}",
    status_code=204,
    summary="Revoke an API key (idempotent)",
    responses=problem_responses(404),
)
async def revoke_api_key(key_id: KeyId, principal: PrincipalDep, sessions: SessionsDep) -> None:
    async with sessions.begin() as session:
        record = await identity.revoke_api_key(
            session=session, user_id=principal.user_id, key_id=key_id
        )
    if record is None:
        raise not_found("no such API key")
