"""/api/integrations/credentials: the caller's integration credentials (LLM provider keys,
SMTP passwords, HTTP header secrets, OAuth2 tokens). Secrets go in and never come out: the
runner reads them over the internal gRPC `CredentialsService`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from agentloom_common.problem import FieldError
from agentloom_gateway import credentials
from agentloom_gateway.access import requires
from agentloom_gateway.access_schemas import (
    CredentialIn,
    CredentialList,
    CredentialOut,
    CredentialUpdate,
    Provider,
)
from agentloom_gateway.auth import PrincipalDep
from agentloom_gateway.deps import KeyRingDep, SessionsDep
from agentloom_gateway.errors import ApiProblem, not_found, problem_responses
from agentloom_gateway.tables import Credential

router = APIRouter(
    prefix="/integrations/credentials",
    tags=["credentials"],
    dependencies=[requires("credentials:manage")],
    responses=problem_responses(403),
)

CredentialId = Annotated[uuid.UUID, Path(description="Credential id.")]


def _out(row: Credential) -> CredentialOut:
    return CredentialOut(
        id=str(row.id),
        provider=row.provider,
        kind=row.kind,
        title=row.title,
        attributes={str(k): str(v) for k, v in row.attributes.items()},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.get("", summary="List the current user's credentials (never their secrets)")
async def list_credentials(
    principal: PrincipalDep,
    sessions: SessionsDep,
    provider: Annotated[Provider | None, Query(description="Only this provider's.")] = None,
) -> CredentialList:
    async with sessions.begin() as session:
        rows = await credentials.list_credentials(
            session=session, user_id=principal.user_id, provider=provider
        )
    return CredentialList(credentials=[_out(row) for row in rows])


@router.post("", status_code=201, summary="Store a credential")
async def create_credential(
    body: CredentialIn,
    principal: PrincipalDep,
    sessions: SessionsDep,
    keyring: KeyRingDep,
    response: Response,
) -> CredentialOut:
    async with sessions.begin() as session:
        row = await credentials.create_credential(
            session=session,
            keyring=keyring,
            user_id=principal.user_id,
            provider=body.provider,
            kind=body.kind,
            title=body.title,
            secrets={name: value.get_secret_value() for name, value in body.secrets.items()},
            attributes=body.attributes,
        )
    response.headers["Location"] = f"/api/integrations/credentials/{row.id}"
    return _out(row)


@router.get("/{credential_id}", summary="Get a credential", responses=problem_responses(404))
async def get_credential(
    credential_id: CredentialId, principal: PrincipalDep, sessions: SessionsDep
) -> CredentialOut:
    async with sessions.begin() as session:
        row = await credentials.get_credential(
            session=session, user_id=principal.user_id, credential_id=credential_id
        )
    if row is None:
        raise not_found("no such credential")
    return _out(row)


@router.patch(
    "/{credential_id}",
    summary="Rename a credential or replace its secret fields or attributes",
    responses=problem_responses(404),
)
async def update_credential(
    credential_id: CredentialId,
    body: CredentialUpdate,
    principal: PrincipalDep,
    sessions: SessionsDep,
    keyring: KeyRingDep,
) -> CredentialOut:
    secrets = (
        {name: value.get_secret_value() for name, value in body.secrets.items()}
        if body.secrets is not None
        else None
    )
    async with sessions.begin() as session:
        row = await credentials.get_credential(
            session=session, user_id=principal.user_id, credential_id=credential_id
        )
        if row is None:
            raise not_found("no such credential")
        problems = credentials.field_problems(row.kind, secrets, body.attributes)
        if problems:
            errors = [FieldError(field=f"body.{f}", message=m) for f, m in problems]
            raise ApiProblem(422, "VALIDATION_ERROR", "the request is not valid", errors=errors)
        row = await credentials.update_credential(
            session=session,
            keyring=keyring,
            user_id=principal.user_id,
            credential_id=credential_id,
            title=body.title,
            secrets=secrets,
            attributes=body.attributes,
        )
    assert row is not None
    return _out(row)


@router.delete(
    "/{credential_id}",
    status_code=204,
    summary="Delete a credential",
    responses=problem_responses(404),
)
async def delete_credential(
    credential_id: CredentialId, principal: PrincipalDep, sessions: SessionsDep
) -> None:
    async with sessions.begin() as session:
        deleted = await credentials.delete_credential(
            session=session, user_id=principal.user_id, credential_id=credential_id
        )
    if not deleted:
        raise not_found("no such credential")
