"""Firing schedules: a loop in every scheduler replica.

Each due schedule is fired in ONE transaction: claim the row (`FOR UPDATE SKIP LOCKED`),
insert the `schedule_fires` row for the slot (ON CONFLICT DO NOTHING), create the
execution with its `execution.requested` outbox row (idempotency key
`schedule:<id>:<slot>`), advance `next_run_at`. A crash anywhere before the commit rolls
all of it back and the slot is still due for any replica; after the commit the outbox relay
publishes what was not. So a slot is neither lost nor doubled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.graphs.v1 import graphs_pb2, graphs_pb2_grpc, presets_pb2, presets_pb2_grpc
from agentloom_blocks.sdk import Block
from agentloom_common.bus import Topology
from agentloom_executor import repository, schedules
from agentloom_executor.cron import CronError, parse_zone
from agentloom_executor.graph import GraphSnapshot, graph_json, input_problems
from agentloom_executor.outbox import Outbox
from agentloom_executor.schedule_tables import Schedule
from agentloom_executor.tables import Execution, OutboxMessage

log = logging.getLogger(__name__)

# Schedules one replica fires in a row before it sleeps again (others take the rest).
BATCH = 100


class FireFailed(Exception):
    """The slot cannot start an execution (graph or preset gone, inputs no longer valid):
    recorded on the fire row, and the slot counts as fired."""


@dataclass(frozen=True)
class FiringOptions:
    poll_interval_s: float
    missed_grace_s: float


def merge_preset(
    preset: presets_pb2.Preset | None, inputs: dict[str, Any], credentials: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The preset's inputs and credential choices under the schedule's own."""
    if preset is None:
        return inputs, credentials
    preset_inputs = _json_object(preset.inputs_json)
    preset_credentials = _json_object(preset.credentials_inputs_json)
    return {**preset_inputs, **inputs}, {**preset_credentials, **credentials}


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ScheduleFirer:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        graphs: graphs_pb2_grpc.GraphsServiceStub,
        presets: presets_pb2_grpc.PresetServiceStub,
        blocks: Mapping[str, type[Block]],
        topology: Topology,
        options: FiringOptions,
    ) -> None:
        self._sessions = session_factory
        self._outbox = outbox
        self._graphs = graphs
        self._presets = presets
        self._blocks = blocks
        self._topology = topology
        self._options = options

    async def run(self) -> None:
        """Fire what is due, sleep, repeat; errors (database or graphs down) leave the slot
        due and are retried on the next round."""
        while True:
            fired = 0
            try:
                fired = await self.fire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("firing schedules failed; retrying")
            if fired < BATCH:
                await asyncio.sleep(self._options.poll_interval_s)

    async def fire_due(self) -> int:
        """Fire due schedules until none is left (or BATCH); returns how many were handled."""
        handled = 0
        while handled < BATCH:
            rows = await self._fire_one()
            if rows is None:
                break
            handled += 1
            await self._outbox.flush(rows)
        return handled

    async def _fire_one(self) -> list[OutboxMessage] | None:
        """One due schedule in one transaction; None when nothing is due."""
        moment = repository.now()
        async with self._sessions.begin() as session:
            schedule = await schedules.claim_due(session, moment)
            if schedule is None:
                return None
            assert schedule.next_run_at is not None
            try:
                zone = parse_zone(schedule.timezone)
                plan = schedules.plan_fire(
                    schedule.cron,
                    zone,
                    due_at=schedule.next_run_at,
                    moment=moment,
                    grace=timedelta(seconds=self._options.missed_grace_s),
                )
            except CronError as error:
                log.error("schedule %s cannot be evaluated: %s", schedule.id, error)
                schedule.next_run_at = None
                return []
            rows: list[OutboxMessage] = []
            if plan.fire_time is None:
                log.warning(
                    "schedule %s skipped missed slots since %s (past the grace period)",
                    schedule.id,
                    schedule.next_run_at.isoformat(),
                )
            elif await schedules.record_fire(session, schedule.id, plan.fire_time):
                rows = await self._start(session, schedule, plan.fire_time)
                schedule.last_fired_at = plan.fire_time
            schedule.next_run_at = plan.next_run_at
            return rows

    async def _start(
        self, session: AsyncSession, schedule: Schedule, fire_time: datetime
    ) -> list[OutboxMessage]:
        key = f"schedule:{schedule.id}:{fire_time.isoformat()}"
        existing = await repository.find_by_idempotency_key(
            session, user_id=schedule.user_id, idempotency_key=key
        )
        execution_id: uuid.UUID | None = existing.id if existing is not None else None
        rows: list[OutboxMessage] = []
        error: str | None = None
        if existing is None:
            try:
                execution, row = await self._create_execution(session, schedule, key)
                execution_id, rows = execution.id, [row]
            except FireFailed as failure:
                error = str(failure)
                log.warning("schedule %s slot %s: %s", schedule.id, fire_time.isoformat(), error)
        await schedules.set_fire_outcome(
            session, schedule.id, fire_time, execution_id=execution_id, error=error
        )
        return rows

    async def _create_execution(
        self, session: AsyncSession, schedule: Schedule, key: str
    ) -> tuple[Execution, OutboxMessage]:
        """The same steps as the executions API's CreateExecution: the graph version,
        input validation, then the QUEUED execution and its `execution.requested`."""
        preset = await self._preset(schedule)
        inputs, credentials = merge_preset(
            preset, dict(schedule.inputs), dict(schedule.credentials_inputs)
        )
        graph = await self._graph(schedule)
        snapshot = graph_json(graph)
        problems = input_problems(GraphSnapshot.from_json(snapshot), self._blocks, inputs)
        if problems:
            raise FireFailed(
                "invalid inputs: "
                + "; ".join(f"{name}: {problem}" for name, problem in sorted(problems.items()))
            )
        return await repository.create_execution(
            session,
            topology=self._topology,
            user_id=schedule.user_id,
            graph_id=graph.id,
            graph_version=graph.version,
            graph=snapshot,
            inputs=inputs,
            credentials_inputs=credentials,
            idempotency_key=key,
        )

    async def _graph(self, schedule: Schedule) -> graphs_pb2.Graph:
        try:
            response = await self._graphs.GetGraph(
                graphs_pb2.GetGraphRequest(
                    user_id=schedule.user_id,
                    graph_id=schedule.graph_id,
                    version=schedule.graph_version,
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise FireFailed("the graph (version) no longer exists") from None
            raise
        graph: graphs_pb2.Graph = response.graph
        return graph

    async def _preset(self, schedule: Schedule) -> presets_pb2.Preset | None:
        if not schedule.preset_id:
            return None
        try:
            response = await self._presets.GetPreset(
                presets_pb2.GetPresetRequest(user_id=schedule.user_id, preset_id=schedule.preset_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise FireFailed("the preset no longer exists") from None
            raise
        preset: presets_pb2.Preset = response.preset
        return preset
