"""The sweeper: the database is the truth, the bus only the fast path. Every scheduler
replica runs it (rows are taken with FOR UPDATE SKIP LOCKED, so replicas share the work):

- a RUNNING node execution whose lease expired (its runner died, or froze: a zombie) goes
  back to QUEUED and is dispatched again, or fails after too many lost runners (G5, G8);
- a retry that is due is dispatched;
- a job dispatched long ago and never claimed (lost or dead-lettered) is dispatched again;
- a finished node execution whose result was never applied is announced again;
- an execution past its wall-clock limit fails (G6);
- a QUEUED execution that never started (its request was lost, or it waits for the user's
  running limit) is requested again.
Every message it sends is idempotent for its consumer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_common.bus import Topology
from agentloom_executor import outbox, repository
from agentloom_executor.messages import ExecutionRequested, NodeFinished, NodeJob
from agentloom_executor.outbox import Outbox
from agentloom_executor.status import Status
from agentloom_executor.tables import Execution, NodeExecution, OutboxMessage

log = logging.getLogger(__name__)

BATCH = 200


@dataclass(frozen=True)
class SweepOptions:
    interval_s: float = 1.0
    redispatch_after_s: float = 60.0
    max_lost_attempts: int = 5


class Sweeper:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox_: Outbox,
        topology: Topology,
        options: SweepOptions,
        end_timed_out: Callable[[str], Awaitable[None]],
    ) -> None:
        self._sessions = session_factory
        self._outbox = outbox_
        self._topology = topology
        self._options = options
        self._end_timed_out = end_timed_out

    async def run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("sweep failed", exc_info=True)
            await asyncio.sleep(self._options.interval_s)

    async def sweep_once(self) -> int:
        """One pass; returns how many things it acted on."""
        async with self._sessions.begin() as session:
            rows = await self._nodes(session)
            rows += await self._unapplied(session)
            rows += await self._unstarted(session)
        await self._outbox.flush(rows)
        timed_out = await self._timed_out()
        return len(rows) + timed_out

    def _job(self, node: NodeExecution) -> OutboxMessage:
        node.dispatched_at = repository.now()
        return outbox.to_runners(
            NodeJob(
                execution_id=str(node.execution_id),
                node_execution_id=str(node.id),
                block_id=node.block_id,
            )
        )

    async def _nodes(self, session: AsyncSession) -> list[OutboxMessage]:
        moment = repository.now()
        stale = moment - timedelta(seconds=self._options.redispatch_after_s)
        nodes = (
            await session.scalars(
                select(NodeExecution)
                .where(
                    or_(
                        and_(
                            NodeExecution.status == Status.RUNNING.value,
                            NodeExecution.lease_expires_at < moment,
                        ),
                        and_(
                            NodeExecution.status == Status.QUEUED.value,
                            NodeExecution.retry_at <= moment,
                        ),
                        and_(
                            NodeExecution.status == Status.QUEUED.value,
                            NodeExecution.retry_at.is_(None),
                            NodeExecution.dispatched_at < stale,
                        ),
                    )
                )
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        rows: list[OutboxMessage] = []
        for node in nodes:
            if node.status == Status.RUNNING.value:
                node.lease_expires_at = None
                if node.attempt >= self._options.max_lost_attempts:
                    message = f"its runner was lost {node.attempt} times"
                    node.status = Status.FAILED.value
                    node.error = message
                    node.outputs = [["error", message]]
                    node.ended_at = moment
                    rows.append(self._finished(node))
                    continue
                log.warning("node execution %s lost its runner; requeued", node.id)
                node.status = Status.QUEUED.value
            node.retry_at = None
            rows.append(self._job(node))
        session.add_all(rows)
        return rows

    def _finished(self, node: NodeExecution) -> OutboxMessage:
        execution_id = str(node.execution_id)
        return outbox.to_scheduler(
            self._topology,
            execution_id,
            NodeFinished(execution_id=execution_id, node_execution_id=str(node.id)),
        )

    async def _unapplied(self, session: AsyncSession) -> list[OutboxMessage]:
        stale = repository.now() - timedelta(seconds=min(10.0, self._options.redispatch_after_s))
        nodes = (
            await session.scalars(
                select(NodeExecution)
                .where(
                    NodeExecution.applied.is_(False),
                    NodeExecution.status.in_([Status.COMPLETED.value, Status.FAILED.value]),
                    NodeExecution.ended_at < stale,
                    NodeExecution.execution_id == Execution.id,
                    Execution.status == Status.RUNNING.value,
                )
                .limit(BATCH)
                .with_for_update(of=NodeExecution, skip_locked=True)
            )
        ).all()
        rows = [self._finished(node) for node in nodes]
        for node in nodes:
            node.ended_at = repository.now()  # so it is not re-announced every pass
        session.add_all(rows)
        return rows

    async def _unstarted(self, session: AsyncSession) -> list[OutboxMessage]:
        stale = repository.now() - timedelta(seconds=self._options.redispatch_after_s)
        executions = (
            await session.scalars(
                select(Execution)
                .where(Execution.status == Status.QUEUED.value, Execution.requested_at < stale)
                .order_by(Execution.created_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        rows = [
            outbox.to_scheduler(
                self._topology, str(e.id), ExecutionRequested(execution_id=str(e.id))
            )
            for e in executions
        ]
        for execution in executions:
            # A waiting execution is re-requested once per period, not on every pass.
            execution.requested_at = repository.now()
        session.add_all(rows)
        return rows

    async def _timed_out(self) -> int:
        async with self._sessions() as session:
            ids = (
                await session.scalars(
                    select(Execution.id)
                    .where(
                        Execution.status == Status.RUNNING.value,
                        Execution.deadline_at < repository.now(),
                    )
                    .limit(BATCH)
                )
            ).all()
        for execution_id in ids:
            await self._end_timed_out(str(execution_id))
        return len(ids)
