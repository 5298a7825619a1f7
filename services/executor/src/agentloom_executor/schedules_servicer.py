"""The ScheduleService over gRPC: validation of a new schedule, then the repository.

Invalid fields answer INVALID_ARGUMENT with reason `SCHEDULE_INVALID` and the per-field
problems as JSON in the `errors` metadata ({field: message}); the gateway turns that into a
422 naming each field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.executor.v1 import schedules_pb2, schedules_pb2_grpc
from agentloom.graphs.v1 import graphs_pb2, graphs_pb2_grpc, presets_pb2, presets_pb2_grpc
from agentloom_blocks.sdk import Block
from agentloom_common.errors import FailedPrecondition, InvalidArgument, NotFound, error_info
from agentloom_executor import repository, schedules
from agentloom_executor.cron import (
    CronError,
    check_expression,
    next_slot,
    parse_zone,
    shortest_interval,
)
from agentloom_executor.cursor import decode_cursor, encode_cursor
from agentloom_executor.graph import GraphSnapshot, graph_json, input_problems
from agentloom_executor.schedule_firing import merge_preset
from agentloom_executor.schedule_tables import Schedule

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
MAX_NAME = 200


@dataclass(frozen=True)
class ScheduleLimits:
    min_interval_s: float
    max_per_user: int


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def schedule_proto(row: Schedule) -> schedules_pb2.Schedule:
    return schedules_pb2.Schedule(
        id=str(row.id),
        user_id=row.user_id,
        graph_id=row.graph_id,
        graph_version=row.graph_version,
        name=row.name,
        cron=row.cron,
        timezone=row.timezone,
        inputs_json=json.dumps(row.inputs),
        credentials_inputs_json=json.dumps(row.credentials_inputs),
        preset_id=row.preset_id or "",
        paused=row.paused,
        next_run_at=None if row.paused else _ts(row.next_run_at),
        last_fired_at=_ts(row.last_fired_at),
        created_at=_ts(row.created_at),
    )


def _object(text: str, field: str, errors: dict[str, str]) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        errors[field] = "not valid JSON"
        return {}
    if not isinstance(value, dict):
        errors[field] = "must be a JSON object"
        return {}
    return value


def check_timing(
    cron: str, timezone: str, min_interval_s: float, moment: datetime, errors: dict[str, str]
) -> datetime | None:
    """The first slot after `moment`; problems of `cron` and `timezone` go into `errors`
    (an unknown zone, an invalid expression, slots closer than the minimum interval)."""
    zone = None
    try:
        zone = parse_zone(timezone)
    except CronError as error:
        errors["timezone"] = str(error)
    try:
        cron = check_expression(cron)
    except CronError as error:
        errors["cron"] = str(error)
        return None
    if zone is None:
        return None
    gap = shortest_interval(cron, zone, moment)
    minimum = timedelta(seconds=min_interval_s)
    if gap is not None and gap < minimum:
        errors["cron"] = (
            f"fires every {gap.total_seconds():g}s; the minimum interval is "
            f"{minimum.total_seconds():g}s"
        )
    return next_slot(cron, zone, moment)


def _invalid(errors: dict[str, str]) -> InvalidArgument:
    return InvalidArgument(
        "invalid schedule: " + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())),
        reason="SCHEDULE_INVALID",
        metadata={"errors": json.dumps(errors)},
    )


class ScheduleServicer(schedules_pb2_grpc.ScheduleServiceServicer):
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        graphs: graphs_pb2_grpc.GraphsServiceStub,
        presets: presets_pb2_grpc.PresetServiceStub,
        blocks: Mapping[str, type[Block]],
        limits: ScheduleLimits,
    ) -> None:
        self._sessions = session_factory
        self._graphs = graphs
        self._presets = presets
        self._blocks = blocks
        self._limits = limits

    async def CreateSchedule(
        self, request: schedules_pb2.CreateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.CreateScheduleResponse:
        spec = request.schedule
        errors: dict[str, str] = {}
        cron, timezone = spec.cron, spec.timezone or "UTC"
        next_run_at = check_timing(
            cron, timezone, self._limits.min_interval_s, repository.now(), errors
        )
        if len(spec.name) > MAX_NAME:
            errors["name"] = f"longer than {MAX_NAME} characters"
        if spec.graph_version < 0:
            errors["graph_version"] = "must not be negative"
        inputs = _object(spec.inputs_json, "inputs", errors)
        credentials = _object(spec.credentials_inputs_json, "credentials_inputs", errors)
        if errors:
            raise _invalid(errors)
        cron = check_expression(cron)
        preset = await self._preset(request.user_id, spec, errors)
        merged, _ = merge_preset(preset, inputs, credentials)
        await self._check_graph(request.user_id, spec, merged, errors)
        if errors:
            raise _invalid(errors)
        async with self._sessions.begin() as session:
            await schedules.lock_user(session, request.user_id)
            if (
                await schedules.count_for_user(session, request.user_id)
                >= self._limits.max_per_user
            ):
                raise FailedPrecondition(
                    f"a user may have at most {self._limits.max_per_user} schedules",
                    reason="SCHEDULE_LIMIT_REACHED",
                )
            row = await schedules.insert_schedule(
                session,
                user_id=request.user_id,
                graph_id=spec.graph_id,
                graph_version=spec.graph_version,
                name=spec.name,
                cron=cron,
                timezone=timezone,
                inputs=inputs,
                credentials_inputs=credentials,
                preset_id=spec.preset_id or None,
                next_run_at=next_run_at,
            )
            return schedules_pb2.CreateScheduleResponse(schedule=schedule_proto(row))

    async def _preset(
        self, user_id: str, spec: schedules_pb2.ScheduleSpec, errors: dict[str, str]
    ) -> presets_pb2.Preset | None:
        if not spec.preset_id:
            return None
        try:
            response = await self._presets.GetPreset(
                presets_pb2.GetPresetRequest(user_id=user_id, preset_id=spec.preset_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                errors["preset_id"] = "no such preset"
                return None
            raise
        preset: presets_pb2.Preset = response.preset
        if preset.graph_id != spec.graph_id:
            errors["preset_id"] = "the preset is for another graph"
            return None
        return preset

    async def _check_graph(
        self,
        user_id: str,
        spec: schedules_pb2.ScheduleSpec,
        inputs: dict[str, Any],
        errors: dict[str, str],
    ) -> None:
        """The graph (version) must exist for the user, and the inputs fit it."""
        try:
            response = await self._graphs.GetGraph(
                graphs_pb2.GetGraphRequest(
                    user_id=user_id, graph_id=spec.graph_id, version=spec.graph_version
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                reason, _ = error_info(error)
                if reason == "GRAPH_VERSION_NOT_FOUND":
                    errors["graph_version"] = "the graph has no such version"
                    return
                # The graph is in the path: unknown and foreign answer the same 404.
                raise NotFound("graph not found", reason="GRAPH_NOT_FOUND") from None
            raise
        snapshot = GraphSnapshot.from_json(graph_json(response.graph))
        for name, problem in input_problems(snapshot, self._blocks, inputs).items():
            errors[f"inputs.{name}"] = problem

    async def GetSchedule(
        self, request: schedules_pb2.GetScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.GetScheduleResponse:
        async with self._sessions() as session:
            row = await self._find(session, request.user_id, request.schedule_id, request.graph_id)
            return schedules_pb2.GetScheduleResponse(schedule=schedule_proto(row))

    async def ListSchedules(
        self, request: schedules_pb2.ListSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.ListSchedulesResponse:
        if request.page_size < 0:
            raise InvalidArgument("page_size must be positive")
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = decode_cursor(request.page_token) if request.page_token else None
        async with self._sessions() as session:
            rows = await schedules.list_schedules(
                session,
                user_id=request.user_id,
                graph_id=request.graph_id or None,
                limit=page_size + 1,
                after=after,
            )
        next_token = ""
        if len(rows) > page_size:
            rows = rows[:page_size]
            next_token = encode_cursor(rows[-1].created_at, rows[-1].id)
        return schedules_pb2.ListSchedulesResponse(
            schedules=[schedule_proto(row) for row in rows], next_page_token=next_token
        )

    async def DeleteSchedule(
        self, request: schedules_pb2.DeleteScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.DeleteScheduleResponse:
        async with self._sessions.begin() as session:
            row = await self._find(
                session, request.user_id, request.schedule_id, request.graph_id, for_update=True
            )
            await schedules.delete_schedule(session, row)
        return schedules_pb2.DeleteScheduleResponse()

    async def PauseSchedule(
        self, request: schedules_pb2.PauseScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.PauseScheduleResponse:
        async with self._sessions.begin() as session:
            row = await self._find(
                session, request.user_id, request.schedule_id, request.graph_id, for_update=True
            )
            row.paused = True
            return schedules_pb2.PauseScheduleResponse(schedule=schedule_proto(row))

    async def ResumeSchedule(
        self, request: schedules_pb2.ResumeScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.ResumeScheduleResponse:
        async with self._sessions.begin() as session:
            row = await self._find(
                session, request.user_id, request.schedule_id, request.graph_id, for_update=True
            )
            if row.paused:
                # Slots passed while paused are not owed: the next one is after now.
                row.paused = False
                row.next_run_at = next_slot(row.cron, parse_zone(row.timezone), repository.now())
            return schedules_pb2.ResumeScheduleResponse(schedule=schedule_proto(row))

    async def _find(
        self,
        session: AsyncSession,
        user_id: str,
        schedule_id: str,
        graph_id: str,
        *,
        for_update: bool = False,
    ) -> Schedule:
        row = await schedules.get_schedule(
            session,
            user_id=user_id,
            schedule_id=schedule_id,
            graph_id=graph_id or None,
            for_update=for_update,
        )
        if row is None:
            raise NotFound("schedule not found", reason="SCHEDULE_NOT_FOUND")
        return row
