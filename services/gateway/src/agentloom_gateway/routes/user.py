"""/api/user: the caller's profile and credits."""

from __future__ import annotations

from fastapi import APIRouter

from agentloom.billing.v1 import billing_pb2
from agentloom_common.problem import FieldError
from agentloom_gateway import convert, identity, schemas
from agentloom_gateway.access import requires
from agentloom_gateway.auth import PrincipalDep
from agentloom_gateway.deps import ServicesDep, SessionsDep
from agentloom_gateway.errors import ApiProblem, not_found, problem_responses

router = APIRouter(prefix="/user", tags=["user"])


@router.get(
    "",
    summary="Get the current user",
    responses=problem_responses(403, 404),
    dependencies=[requires("profile:read")],
)
async def get_user(principal: PrincipalDep, sessions: SessionsDep) -> schemas.UserOut:
    async with sessions.begin() as session:
        user = await identity.get_user(session=session, user_id=principal.user_id)
    if user is None:
        raise not_found("the user no longer exists")
    return convert.user(user)


@router.put(
    "",
    summary="Update the current user",
    responses=problem_responses(403, 404),
    dependencies=[requires("profile:write")],
)
async def update_user(
    body: schemas.UserUpdate, principal: PrincipalDep, sessions: SessionsDep
) -> schemas.UserOut:
    try:
        async with sessions.begin() as session:
            user = await identity.update_user(
                session=session, user_id=principal.user_id, name=body.name, timezone=body.timezone
            )
    except identity.IdentityError as error:
        field = FieldError(field="body.timezone", message=str(error))
        raise ApiProblem(422, "VALIDATION_ERROR", str(error), errors=[field]) from error
    if user is None:
        raise not_found("the user no longer exists")
    return convert.user(user)


@router.get(
    "/credits",
    summary="Get the current credit balance",
    responses=problem_responses(403),
    dependencies=[requires("credits:read")],
)
async def get_credits(principal: PrincipalDep, services: ServicesDep) -> schemas.Credits:
    reply: billing_pb2.GetBalanceResponse = await services.billing.GetBalance(
        billing_pb2.GetBalanceRequest(user_id=principal.user_id)
    )
    return schemas.Credits(credits=reply.balance)
