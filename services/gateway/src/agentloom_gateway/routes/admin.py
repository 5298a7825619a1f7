"""/api/admin: users, their API keys, credit grants and suspension. Admins only (the
`admin` scope, which only the `admin` role carries)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated

import grpc
from fastapi import APIRouter, Header, Path, Request, Response

from agentloom.billing.v1 import billing_pb2
from agentloom_common.problem import FieldError
from agentloom_gateway import convert, identity, schemas
from agentloom_gateway.access import requires
from agentloom_gateway.access_schemas import (
    AdminApiKeyIn,
    AdminUser,
    AdminUserIn,
    AdminUserList,
    CreditGrantIn,
)
from agentloom_gateway.auth import forget_user
from agentloom_gateway.deps import ServicesDep, SessionsDep, SettingsDep
from agentloom_gateway.errors import ApiProblem, not_found, problem_responses
from agentloom_gateway.routes.api_keys import check_expiry
from agentloom_gateway.routes.graphs import PageSize, PageToken
from agentloom_gateway.tables import User

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[requires("admin", route_class="admin")],
    responses=problem_responses(403),
)

UserId = Annotated[uuid.UUID, Path(description="User id.")]


def _admin_user(user: User) -> AdminUser:
    return AdminUser(
        id=str(user.id),
        email=user.email,
        name=user.name,
        role=user.role,
        timezone=user.timezone,
        created_at=user.created_at,
        suspended_at=user.suspended_at,
    )


def _after(page_token: str) -> uuid.UUID | None:
    if not page_token:
        return None
    try:
        return uuid.UUID(base64.urlsafe_b64decode(page_token.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        field = FieldError(field="query.page_token", message="not a page token")
        raise ApiProblem(422, "VALIDATION_ERROR", "bad page token", errors=[field]) from error


@router.get("/users", summary="List users")
async def list_users(
    sessions: SessionsDep, page_size: PageSize = 50, page_token: PageToken = ""
) -> AdminUserList:
    async with sessions.begin() as session:
        users = await identity.list_users(
            session=session, page_size=page_size + 1, after=_after(page_token)
        )
    more = len(users) > page_size
    users = users[:page_size]
    token = base64.urlsafe_b64encode(str(users[-1].id).encode()).decode() if more else None
    return AdminUserList(users=[_admin_user(user) for user in users], next_page_token=token)


@router.post("/users", status_code=201, summary="Create a user", responses=problem_responses(409))
async def create_user(body: AdminUserIn, sessions: SessionsDep, response: Response) -> AdminUser:
    try:
        async with sessions.begin() as session:
            user = await identity.create_user(
                session=session,
                email=body.email,
                name=body.name,
                role=body.role,
                timezone=body.timezone,
            )
    except identity.EmailTaken as error:
        raise ApiProblem(409, "EMAIL_TAKEN", "a user with this email already exists") from error
    except identity.IdentityError as error:
        field = FieldError(field="body.timezone", message=str(error))
        raise ApiProblem(422, "VALIDATION_ERROR", str(error), errors=[field]) from error
    response.headers["Location"] = f"/api/admin/users/{user.id}"
    return _admin_user(user)


@router.get("/users/{user_id}", summary="Get a user", responses=problem_responses(404))
async def get_user(user_id: UserId, sessions: SessionsDep) -> AdminUser:
    async with sessions.begin() as session:
        user = await identity.get_user(session=session, user_id=user_id)
    if user is None:
        raise not_found("no such user")
    return _admin_user(user)


@router.post(
    "/users/{user_id}/api-keys",
    status_code=201,
    summary="Create an API key for a user",
    response_description="The key, in full, for the only time.",
    responses=problem_responses(404),
)
async def create_api_key(
    user_id: UserId, body: AdminApiKeyIn, sessions: SessionsDep, settings: SettingsDep
) -> schemas.ApiKeyCreated:
    check_expiry(body.expires_at)
    async with sessions.begin() as session:
        user = await identity.get_user(session=session, user_id=user_id)
        if user is None:
            raise not_found("no such user")
        if "admin" in (body.scopes or ()) and user.role != "admin":
            field = FieldError(field="body.scopes", message="only an admin's key can be admin")
            raise ApiProblem(422, "VALIDATION_ERROR", "scope beyond the role", errors=[field])
        created = await identity.create_api_key(
            session=session,
            user_id=user_id,
            name=body.name,
            pepper=settings.api_key_pepper.get_secret_value().encode(),
            scopes=body.scopes,
            expires_at=body.expires_at,
        )
    shown = convert.api_key(created.record)
    return schemas.ApiKeyCreated(**shown.model_dump(), api_key=created.api_key)


async def _suspend(
    request: Request, sessions: SessionsDep, user_id: uuid.UUID, suspended: bool
) -> AdminUser:
    async with sessions.begin() as session:
        user = await identity.set_user_suspended(
            session=session, user_id=user_id, suspended=suspended
        )
    if user is None:
        raise not_found("no such user")
    forget_user(request, str(user_id))
    return _admin_user(user)


@router.post(
    "/users/{user_id}/suspend",
    summary="Suspend a user: every key and token of theirs answers 401",
    responses=problem_responses(404),
)
async def suspend_user(request: Request, user_id: UserId, sessions: SessionsDep) -> AdminUser:
    return await _suspend(request, sessions, user_id, True)


@router.post(
    "/users/{user_id}/reinstate", summary="Lift a suspension", responses=problem_responses(404)
)
async def reinstate_user(request: Request, user_id: UserId, sessions: SessionsDep) -> AdminUser:
    return await _suspend(request, sessions, user_id, False)


@router.post(
    "/users/{user_id}/credits",
    summary="Grant credits to a user",
    description="`Idempotency-Key` makes a retried grant apply once.",
    responses=problem_responses(404),
)
async def grant_credits(
    user_id: UserId,
    body: CreditGrantIn,
    sessions: SessionsDep,
    services: ServicesDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> schemas.Credits:
    async with sessions.begin() as session:
        if await identity.get_user(session=session, user_id=user_id) is None:
            raise not_found("no such user")
    request = billing_pb2.GrantRequest(
        user_id=str(user_id),
        idempotency_key=f"admin-grant:{user_id}:{idempotency_key or uuid.uuid4()}",
        amount=body.amount,
        description=body.reason,
    )
    try:
        reply: billing_pb2.GrantResponse = await services.billing.Grant(request)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNIMPLEMENTED:
            raise ApiProblem(501, "NOT_IMPLEMENTED", "billing cannot grant yet") from error
        raise
    return schemas.Credits(credits=reply.balance)
