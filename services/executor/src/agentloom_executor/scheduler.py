"""The scheduler: owns the executions of its partitions while they run.

It consumes its partition queues (single active consumer: a standby scheduler takes over
when this one dies) and applies each message in one transaction with the execution row
locked. All state is in PostgreSQL, so a new scheduler carries on where a dead one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_blocks.sdk import Block
from agentloom_common.bus import PoisonMessage, Topology, consume
from agentloom_executor import repository, scheduling
from agentloom_executor.graph import GraphCache
from agentloom_executor.messages import ExecutionRequested, NodeFinished, scheduler_message
from agentloom_executor.outbox import Outbox
from agentloom_executor.status import Status
from agentloom_executor.tables import NodeExecution, OutboxMessage

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        blocks: Mapping[str, type[Block]],
        topology: Topology,
        limits: scheduling.Limits,
    ) -> None:
        self._limits = limits
        self._sessions = session_factory
        self._outbox = outbox
        self._blocks = blocks
        self._topology = topology
        # Parsed graph snapshots of running executions; only a cache (rebuilt from the row).
        self._graphs = GraphCache()

    async def start(self, connection: AbstractRobustConnection, prefetch: int) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        for partition in range(self._topology.partitions):
            await consume(channel, self._topology.partition_queue(partition), self.handle)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        try:
            parsed = scheduler_message.validate_json(message.body)
        except ValidationError as error:
            raise PoisonMessage(f"not a scheduler message: {error.error_count()} errors") from None
        rows = await self.apply(parsed)
        await self._outbox.flush(rows)

    async def apply(self, message: ExecutionRequested | NodeFinished) -> list[OutboxMessage]:
        async with self._sessions.begin() as session:
            execution = await repository.lock_execution(
                session, message.execution_id, with_graph=message.execution_id not in self._graphs
            )
            if execution is None:
                log.warning("message for unknown execution %s dropped", message.execution_id)
                return []
            engine = scheduling.Engine(
                session,
                execution,
                await self._graphs.get(session, execution),
                self._blocks,
                self._topology,
                self._limits,
            )
            if isinstance(message, ExecutionRequested):
                return await engine.start()
            node_execution = await session.get(
                NodeExecution, repository.parse_uuid(message.node_execution_id)
            )
            if node_execution is None or node_execution.execution_id != execution.id:
                return []
            rows = await engine.apply_finished(node_execution)
            if execution.ended_at is not None:
                self._graphs.forget(str(execution.id))
            return rows

    async def end_timed_out(self, execution_id: str) -> None:
        """Fail an execution that ran past its wall-clock limit (called by the sweeper)."""
        async with self._sessions.begin() as session:
            execution = await repository.lock_execution(session, execution_id)
            if execution is None or execution.status != Status.RUNNING.value:
                return
            if execution.deadline_at is None or execution.deadline_at > repository.now():
                return
            engine = scheduling.Engine(
                session,
                execution,
                await self._graphs.get(session, execution),
                self._blocks,
                self._topology,
                self._limits,
            )
            limit = f"{self._limits.execution_timeout_s:g}s"
            rows = await engine.end(Status.FAILED, f"execution exceeded its time limit of {limit}")
        await self._outbox.flush(rows)
