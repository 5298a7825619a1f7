"""/api/graphs/{graph_id}/triggers: incoming triggers of a graph. Each has a URL,
`/hooks/triggers/{trigger_id}`, that starts the graph when called with a Standard Webhooks
signature made with the trigger's secret (`routes/trigger_ingress.py`). The secret is shown
once, in the 201 answer; it is stored sealed by the vault."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import grpc
from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from agentloom.graphs.v1 import graphs_pb2, presets_pb2
from agentloom_common.problem import FieldError
from agentloom_gateway import triggers
from agentloom_gateway.access import requires
from agentloom_gateway.auth import PrincipalDep
from agentloom_gateway.deps import KeyRingDep, ServicesDep, SessionsDep
from agentloom_gateway.errors import ApiProblem, not_found, problem_responses
from agentloom_gateway.routes.graphs import GraphId
from agentloom_gateway.routes.presets import json_object
from agentloom_gateway.schemas import MAX_INT32
from agentloom_gateway.tables import Trigger as TriggerRow
from agentloom_gateway.text import PlainText

router = APIRouter(prefix="/graphs", tags=["triggers"])

TriggerId = Annotated[uuid.UUID, Path(description="Trigger id.")]
DEFAULT_INPUT = "payload"


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graph_version: int | None = Field(
        default=None, ge=1, le=MAX_INT32, description="Default: the active version when called."
    )
    preset_id: uuid.UUID | None = Field(
        default=None, description="A preset of this graph, merged under the payload."
    )
    input_name: str = Field(
        default=DEFAULT_INPUT,
        min_length=1,
        max_length=200,
        description="The graph input that receives the call's JSON body.",
    )
    description: PlainText = Field(default="", max_length=500, description="What calls it.")
    enabled: bool = True


class Trigger(BaseModel):
    id: str
    graph_id: str
    graph_version: int | None = Field(description="Null: the active version when called.")
    preset_id: str | None
    input_name: str
    description: str
    enabled: bool
    url: str = Field(description="Where to POST signed calls, relative to the API's base URL.")
    created_at: datetime
    updated_at: datetime


class TriggerCreated(Trigger):
    secret: str = Field(
        description="`whsec_...`: sign calls with it (Standard Webhooks). Shown only here."
    )


class TriggerList(BaseModel):
    triggers: list[Trigger]


def _out(row: TriggerRow) -> Trigger:
    return Trigger(
        id=str(row.id),
        graph_id=str(row.graph_id),
        graph_version=row.graph_version or None,
        preset_id=str(row.preset_id) if row.preset_id else None,
        input_name=row.input_name,
        description=row.description,
        enabled=row.enabled,
        url=f"/hooks/triggers/{row.id}",
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _invalid(field: str, message: str) -> ApiProblem:
    error = FieldError(field=field, message=message)
    return ApiProblem(422, "VALIDATION_ERROR", "the trigger is not valid", errors=[error])


async def _graph(
    services: ServicesDep, user_id: str, graph_id: uuid.UUID, version: int = 0
) -> graphs_pb2.Graph:
    """The user's graph (404 for another user's, like every graph route)."""
    request = graphs_pb2.GetGraphRequest(user_id=user_id, graph_id=str(graph_id), version=version)
    reply: graphs_pb2.GetGraphResponse = await services.graphs.GetGraph(request)
    return reply.graph


async def _check_preset(
    services: ServicesDep, user_id: str, graph_id: uuid.UUID, preset_id: uuid.UUID
) -> None:
    try:
        reply: presets_pb2.GetPresetResponse = await services.presets.GetPreset(
            presets_pb2.GetPresetRequest(user_id=user_id, preset_id=str(preset_id))
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        raise _invalid("body.preset_id", "no such preset") from None
    if reply.preset.graph_id != str(graph_id):
        raise _invalid("body.preset_id", "the preset belongs to another graph")


@router.post(
    "/{graph_id}/triggers",
    status_code=201,
    summary="Create an incoming trigger for a graph",
    description="The answer holds the trigger's URL and its secret, shown only this once. "
    f"At most {triggers.MAX_TRIGGERS_PER_USER} triggers per user.",
    responses=problem_responses(403, 404, 409),
    dependencies=[requires("executions:write")],
)
async def create_trigger(
    graph_id: GraphId,
    body: TriggerIn,
    principal: PrincipalDep,
    services: ServicesDep,
    sessions: SessionsDep,
    keyring: KeyRingDep,
    response: Response,
) -> TriggerCreated:
    graph = await _graph(services, principal.user_id, graph_id, body.graph_version or 0)
    inputs = json_object(graph.input_schema_json).get("properties", {})
    if body.input_name not in inputs:
        raise _invalid("body.input_name", "the graph has no input of this name")
    if body.preset_id is not None:
        await _check_preset(services, principal.user_id, graph_id, body.preset_id)
    async with sessions.begin() as session:
        if await triggers.count_triggers(session=session, user_id=principal.user_id) >= (
            triggers.MAX_TRIGGERS_PER_USER
        ):
            detail = f"at most {triggers.MAX_TRIGGERS_PER_USER} triggers per user"
            raise ApiProblem(409, "TRIGGER_LIMIT_REACHED", detail)
        row, secret = await triggers.create_trigger(
            session=session,
            keyring=keyring,
            user_id=principal.user_id,
            graph_id=graph_id,
            graph_version=body.graph_version or 0,
            preset_id=body.preset_id,
            input_name=body.input_name,
            description=body.description,
            enabled=body.enabled,
        )
    response.headers["Location"] = f"/api/graphs/{graph_id}/triggers/{row.id}"
    return TriggerCreated(**_out(row).model_dump(), secret=secret)


@router.get(
    "/{graph_id}/triggers",
    summary="List a graph's incoming triggers",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:read")],
)
async def list_triggers(
    graph_id: GraphId, principal: PrincipalDep, services: ServicesDep, sessions: SessionsDep
) -> TriggerList:
    await _graph(services, principal.user_id, graph_id)
    async with sessions.begin() as session:
        rows = await triggers.list_triggers(
            session=session, user_id=principal.user_id, graph_id=graph_id
        )
    return TriggerList(triggers=[_out(row) for row in rows])


@router.get(
    "/{graph_id}/triggers/{trigger_id}",
    summary="Get an incoming trigger (never its secret)",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:read")],
)
async def get_trigger(
    graph_id: GraphId, trigger_id: TriggerId, principal: PrincipalDep, sessions: SessionsDep
) -> Trigger:
    async with sessions.begin() as session:
        row = await triggers.get_trigger(
            session=session, user_id=principal.user_id, graph_id=graph_id, trigger_id=trigger_id
        )
    if row is None:
        raise not_found("trigger not found")
    return _out(row)


@router.delete(
    "/{graph_id}/triggers/{trigger_id}",
    status_code=204,
    summary="Delete an incoming trigger",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:write")],
)
async def delete_trigger(
    graph_id: GraphId, trigger_id: TriggerId, principal: PrincipalDep, sessions: SessionsDep
) -> None:
    async with sessions.begin() as session:
        deleted = await triggers.delete_trigger(
            session=session, user_id=principal.user_id, graph_id=graph_id, trigger_id=trigger_id
        )
    if not deleted:
        raise not_found("trigger not found")


async def _set_enabled(
    graph_id: uuid.UUID, trigger_id: uuid.UUID, user_id: str, sessions: SessionsDep, enabled: bool
) -> Trigger:
    async with sessions.begin() as session:
        row = await triggers.set_enabled(
            session=session,
            user_id=user_id,
            graph_id=graph_id,
            trigger_id=trigger_id,
            enabled=enabled,
        )
    if row is None:
        raise not_found("trigger not found")
    return _out(row)


@router.post(
    "/{graph_id}/triggers/{trigger_id}/enable",
    summary="Enable an incoming trigger",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:write")],
)
async def enable_trigger(
    graph_id: GraphId, trigger_id: TriggerId, principal: PrincipalDep, sessions: SessionsDep
) -> Trigger:
    return await _set_enabled(graph_id, trigger_id, principal.user_id, sessions, True)


@router.post(
    "/{graph_id}/triggers/{trigger_id}/disable",
    summary="Disable an incoming trigger: calls are refused (404) and start nothing",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:write")],
)
async def disable_trigger(
    graph_id: GraphId, trigger_id: TriggerId, principal: PrincipalDep, sessions: SessionsDep
) -> Trigger:
    return await _set_enabled(graph_id, trigger_id, principal.user_id, sessions, False)
