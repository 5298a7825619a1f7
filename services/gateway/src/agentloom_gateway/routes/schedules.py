"""Cron schedules of graphs: create, list, get, delete, pause, resume (docs/schedules.md).

The executor owns schedules (its ScheduleService); this module parses, calls it, and turns
its per-field validation errors into a 422 naming each field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Path, Query, Response
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict, Field

from agentloom.executor.v1 import schedules_pb2
from agentloom.graphs.v1 import graphs_pb2
from agentloom_common.errors import error_info
from agentloom_common.problem import FieldError
from agentloom_gateway.access import requires
from agentloom_gateway.auth import PrincipalDep
from agentloom_gateway.deps import ServicesDep
from agentloom_gateway.errors import ApiProblem, problem_responses
from agentloom_gateway.routes.graphs import GraphId, PageSize, PageToken
from agentloom_gateway.schemas import MAX_INT32
from agentloom_gateway.text import PlainText

router = APIRouter(tags=["schedules"])

ScheduleId = Annotated[uuid.UUID, Path(description="Schedule id.")]

MISSED_SLOTS = (
    "Slots are wall-clock times in `timezone` (IANA), daylight saving time included: a time "
    "skipped by spring-forward fires an hour later, a time repeated by fall-back fires once. "
    "Missed slots (the platform was down): only the latest missed slot fires, and only if it "
    "is within the grace period (5 minutes by default); the others are skipped and the next "
    "run is computed from now. Slots passed while paused are not fired on resume."
)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PlainText = Field(default="", max_length=200)
    cron: str = Field(
        min_length=1,
        max_length=200,
        description="5 fields (`minute hour day month weekday`), or 6 with seconds last. "
        "Slots must be at least the platform's minimum interval apart (60 s by default).",
        examples=["0 9 * * 1-5"],
    )
    timezone: str = Field(
        default="UTC", min_length=1, max_length=64, description="IANA time zone name."
    )
    graph_version: int = Field(
        default=0, ge=0, le=MAX_INT32, description="0: the version active when a slot fires."
    )
    inputs: dict[str, Any] = Field(default_factory=dict, description="Graph inputs by name.")
    credentials_inputs: dict[str, Any] = Field(
        default_factory=dict, description="Credentials by provider, as on execute."
    )
    preset_id: str | None = Field(
        default=None,
        max_length=128,
        description="A preset of this graph: its inputs are merged under `inputs`.",
    )


class Schedule(BaseModel):
    id: str
    graph_id: str
    graph_version: int
    name: str
    cron: str
    timezone: str
    inputs: dict[str, Any]
    credentials_inputs: dict[str, Any]
    preset_id: str | None
    paused: bool
    next_run_at: datetime | None = Field(
        description="The next slot (UTC); null while paused or when none is left."
    )
    last_fired_at: datetime | None = Field(description="The last slot that fired (UTC).")
    created_at: datetime | None


class ScheduleList(BaseModel):
    schedules: list[Schedule]
    next_page_token: str | None = Field(description="Pass as `page_token`; null on the last page.")


def _time(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=UTC)


def _object(text: str) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def _schedule(message: schedules_pb2.Schedule) -> Schedule:
    return Schedule(
        id=message.id,
        graph_id=message.graph_id,
        graph_version=message.graph_version,
        name=message.name,
        cron=message.cron,
        timezone=message.timezone,
        inputs=_object(message.inputs_json),
        credentials_inputs=_object(message.credentials_inputs_json),
        preset_id=message.preset_id or None,
        paused=message.paused,
        next_run_at=_time(message, "next_run_at"),
        last_fired_at=_time(message, "last_fired_at"),
        created_at=_time(message, "created_at"),
    )


@asynccontextmanager
async def _field_errors() -> AsyncIterator[None]:
    """The executor's `SCHEDULE_INVALID` as a 422 with one entry per field; an unknown (or
    another user's) graph as a 404 naming `path.graph_id`."""
    try:
        yield
    except grpc.aio.AioRpcError as error:
        reason, metadata = error_info(error)
        if reason == "GRAPH_NOT_FOUND":
            field = FieldError(field="path.graph_id", message="no such graph")
            raise ApiProblem(404, reason, "graph not found", errors=[field]) from None
        if reason != "SCHEDULE_INVALID":
            raise
        try:
            problems = json.loads(metadata.get("errors", "{}"))
        except ValueError:
            problems = {}
        fields = [
            FieldError(
                field=("path." if name == "graph_id" else "body.") + str(name),
                message=str(message),
            )
            for name, message in sorted(problems.items())
        ]
        raise ApiProblem(
            422, "VALIDATION_ERROR", "the schedule is not valid", errors=fields
        ) from None


@router.post(
    "/graphs/{graph_id}/schedules",
    status_code=201,
    summary="Schedule a graph on a cron expression",
    description=MISSED_SLOTS,
    responses=problem_responses(403, 404, 409),
    dependencies=[requires("executions:write")],
    response_description="The schedule with its `next_run_at`. `Location` names it.",
)
async def create_schedule(
    graph_id: GraphId,
    body: ScheduleIn,
    principal: PrincipalDep,
    services: ServicesDep,
    response: Response,
) -> Schedule:
    spec = schedules_pb2.ScheduleSpec(
        graph_id=str(graph_id),
        graph_version=body.graph_version,
        name=body.name,
        cron=body.cron,
        timezone=body.timezone,
        inputs_json=json.dumps(body.inputs),
        credentials_inputs_json=json.dumps(body.credentials_inputs),
        preset_id=body.preset_id or "",
    )
    async with _field_errors():
        reply: schedules_pb2.CreateScheduleResponse = await services.schedules.CreateSchedule(
            schedules_pb2.CreateScheduleRequest(user_id=principal.user_id, schedule=spec)
        )
    response.headers["Location"] = f"/api/graphs/{graph_id}/schedules/{reply.schedule.id}"
    return _schedule(reply.schedule)


async def _list(
    services: ServicesDep,
    user_id: str,
    graph_id: uuid.UUID | None,
    page_size: int,
    page_token: str,
) -> ScheduleList:
    reply: schedules_pb2.ListSchedulesResponse = await services.schedules.ListSchedules(
        schedules_pb2.ListSchedulesRequest(
            user_id=user_id,
            graph_id=str(graph_id) if graph_id else "",
            page_size=page_size,
            page_token=page_token,
        )
    )
    return ScheduleList(
        schedules=[_schedule(item) for item in reply.schedules],
        next_page_token=reply.next_page_token or None,
    )


@router.get(
    "/graphs/{graph_id}/schedules",
    summary="List a graph's schedules, newest first",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:read")],
)
async def list_graph_schedules(
    graph_id: GraphId,
    principal: PrincipalDep,
    services: ServicesDep,
    page_size: PageSize = 20,
    page_token: PageToken = "",
) -> ScheduleList:
    # An unknown or another user's graph is a 404, not an empty list.
    await services.graphs.GetGraph(
        graphs_pb2.GetGraphRequest(user_id=principal.user_id, graph_id=str(graph_id), version=0)
    )
    return await _list(services, principal.user_id, graph_id, page_size, page_token)


@router.get(
    "/schedules",
    summary="List the caller's schedules, newest first",
    responses=problem_responses(403),
    dependencies=[requires("executions:read")],
)
async def list_schedules(
    principal: PrincipalDep,
    services: ServicesDep,
    graph_id: Annotated[uuid.UUID | None, Query(description="Only this graph's.")] = None,
    page_size: PageSize = 20,
    page_token: PageToken = "",
) -> ScheduleList:
    return await _list(services, principal.user_id, graph_id, page_size, page_token)


@router.get(
    "/graphs/{graph_id}/schedules/{schedule_id}",
    summary="Get a schedule",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:read")],
)
async def get_schedule(
    graph_id: GraphId, schedule_id: ScheduleId, principal: PrincipalDep, services: ServicesDep
) -> Schedule:
    reply: schedules_pb2.GetScheduleResponse = await services.schedules.GetSchedule(
        schedules_pb2.GetScheduleRequest(
            user_id=principal.user_id, schedule_id=str(schedule_id), graph_id=str(graph_id)
        )
    )
    return _schedule(reply.schedule)


@router.delete(
    "/graphs/{graph_id}/schedules/{schedule_id}",
    status_code=204,
    summary="Delete a schedule",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:write")],
)
async def delete_schedule(
    graph_id: GraphId, schedule_id: ScheduleId, principal: PrincipalDep, services: ServicesDep
) -> Response:
    await services.schedules.DeleteSchedule(
        schedules_pb2.DeleteScheduleRequest(
            user_id=principal.user_id, schedule_id=str(schedule_id), graph_id=str(graph_id)
        )
    )
    return Response(status_code=204)


@router.post(
    "/graphs/{graph_id}/schedules/{schedule_id}/pause",
    summary="Pause a schedule (idempotent): it fires nothing until resumed",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:write")],
)
async def pause_schedule(
    graph_id: GraphId, schedule_id: ScheduleId, principal: PrincipalDep, services: ServicesDep
) -> Schedule:
    reply: schedules_pb2.PauseScheduleResponse = await services.schedules.PauseSchedule(
        schedules_pb2.PauseScheduleRequest(
            user_id=principal.user_id, schedule_id=str(schedule_id), graph_id=str(graph_id)
        )
    )
    return _schedule(reply.schedule)


@router.post(
    "/graphs/{graph_id}/schedules/{schedule_id}/resume",
    summary="Resume a schedule (idempotent): the next run is the first slot from now",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:write")],
)
async def resume_schedule(
    graph_id: GraphId, schedule_id: ScheduleId, principal: PrincipalDep, services: ServicesDep
) -> Schedule:
    reply: schedules_pb2.ResumeScheduleResponse = await services.schedules.ResumeSchedule(
        schedules_pb2.ResumeScheduleRequest(
            user_id=principal.user_id, schedule_id=str(schedule_id), graph_id=str(graph_id)
        )
    )
    return _schedule(reply.schedule)
