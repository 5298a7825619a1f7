"""/api/user/api-keys: the caller's API keys. A new key is shown once, in the 201 answer.
Keys can be renamed, re-scoped, suspended, resumed and revoked; a key never gets a scope
its creator lacks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from agentloom_common.problem import FieldError
from agentloom_gateway import convert, identity, schemas
from agentloom_gateway.access import requires
from agentloom_gateway.auth import Principal, PrincipalDep, forget_user
from agentloom_gateway.deps import SessionsDep, SettingsDep
from agentloom_gateway.errors import ApiProblem, not_found, problem_responses
from agentloom_gateway.scopes import ADMIN_SCOPE

router = APIRouter(
    prefix="/user/api-keys",
    tags=["api keys"],
    dependencies=[requires("api_keys:manage")],
    responses=problem_responses(403),
)

KeyId = Annotated[uuid.UUID, Path(description="API key id.")]


def check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= datetime.now(UTC)):
        field = FieldError(field="body.expires_at", message="must be a future time with a zone")
        raise ApiProblem(422, "VALIDATION_ERROR", "invalid expiry", errors=[field])


def granted_scopes(principal: Principal, requested: Sequence[str] | None) -> list[str]:
    """The scopes a new or changed key gets: those asked for, all within the caller's own
    (default: the caller's, less `admin`)."""
    if requested is None:
        return [scope for scope in principal.scopes if scope != ADMIN_SCOPE]
    beyond = sorted(set(requested) - set(principal.scopes))
    if beyond:
        field = FieldError(field="body.scopes", message=f"not yours to grant: {', '.join(beyond)}")
        raise ApiProblem(422, "VALIDATION_ERROR", "a key cannot exceed its creator", errors=[field])
    return list(dict.fromkeys(requested))


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
    check_expiry(body.expires_at)
    scopes = granted_scopes(principal, body.scopes)
    async with sessions.begin() as session:
        created = await identity.create_api_key(
            session=session,
            user_id=principal.user_id,
            name=body.name,
            pepper=settings.api_key_pepper.get_secret_value().encode(),
            scopes=scopes,
            expires_at=body.expires_at,
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


@router.patch(
    "/{key_id}", summary="Rename an API key or change its scopes", responses=problem_responses(404)
)
async def update_api_key(
    request: Request,
    key_id: KeyId,
    body: schemas.ApiKeyUpdate,
    principal: PrincipalDep,
    sessions: SessionsDep,
) -> schemas.ApiKeyOut:
    scopes = granted_scopes(principal, body.scopes) if body.scopes is not None else None
    return await _update(request, principal, sessions, key_id, name=body.name, scopes=scopes)


@router.post(
    "/{key_id}/suspend",
    summary="Suspend an API key (it answers 401 until resumed)",
    responses=problem_responses(404),
)
async def suspend_api_key(
    request: Request, key_id: KeyId, principal: PrincipalDep, sessions: SessionsDep
) -> schemas.ApiKeyOut:
    return await _update(request, principal, sessions, key_id, suspended=True)


@router.post(
    "/{key_id}/resume", summary="Resume a suspended API key", responses=problem_responses(404)
)
async def resume_api_key(
    request: Request, key_id: KeyId, principal: PrincipalDep, sessions: SessionsDep
) -> schemas.ApiKeyOut:
    return await _update(request, principal, sessions, key_id, suspended=False)


async def _update(
    request: Request,
    principal: Principal,
    sessions: SessionsDep,
    key_id: uuid.UUID,
    *,
    name: str | None = None,
    scopes: list[str] | None = None,
    suspended: bool | None = None,
) -> schemas.ApiKeyOut:
    async with sessions.begin() as session:
        record = await identity.update_api_key(
            session=session,
            user_id=principal.user_id,
            key_id=key_id,
            name=name,
            scopes=scopes,
            suspended=suspended,
        )
    if record is None:
        raise not_found("no such API key")
    forget_user(request, principal.user_id)
    return convert.api_key(record)


@router.delete(
    "/{key_id}",
    status_code=204,
    summary="Revoke an API key (idempotent)",
    responses=problem_responses(404),
)
async def revoke_api_key(
    request: Request, key_id: KeyId, principal: PrincipalDep, sessions: SessionsDep
) -> None:
    async with sessions.begin() as session:
        record = await identity.revoke_api_key(
            session=session, user_id=principal.user_id, key_id=key_id
        )
    if record is None:
        raise not_found("no such API key")
    forget_user(request, principal.user_id)
