"""Executor state in PostgreSQL: plain async functions taking `session=`.

Status changes are conditional UPDATEs on the transition table (G7); a node execution's
result is stored only by the attempt that claimed it (the attempt number is the fencing
token, G3), together with the outbox row that announces it (G1).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_common.bus import Topology
from agentloom_executor import outbox
from agentloom_executor.messages import CancelExecution, ExecutionRequested, NodeFinished
from agentloom_executor.status import TERMINAL, Status, sources_of
from agentloom_executor.tables import Execution, NodeExecution, OutboxMessage


def now() -> datetime:
    return datetime.now(UTC)


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None


async def create_execution(
    session: AsyncSession,
    *,
    topology: Topology,
    user_id: str,
    graph_id: str,
    graph_version: int,
    graph: dict[str, Any],
    inputs: dict[str, Any],
    credentials_inputs: dict[str, Any],
) -> tuple[Execution, OutboxMessage]:
    """Insert a QUEUED execution and, in the same transaction, its `execution.requested`."""
    execution = Execution(
        id=uuid.uuid4(),
        user_id=user_id,
        graph_id=graph_id,
        graph_version=graph_version,
        status=Status.QUEUED.value,
        inputs=inputs,
        credentials_inputs=credentials_inputs,
        outputs={},
        graph=graph,
        node_count=0,
        cost=0,
        created_at=now(),
    )
    session.add(execution)
    message = outbox.to_scheduler(
        topology, str(execution.id), ExecutionRequested(execution_id=str(execution.id))
    )
    session.add(message)
    await session.flush()
    return execution, message


async def get_execution(
    session: AsyncSession, *, user_id: str, execution_id: str
) -> Execution | None:
    """The user's execution, or None (also for another user's: the caller answers 404)."""
    parsed = parse_uuid(execution_id)
    if parsed is None:
        return None
    execution = await session.get(Execution, parsed)
    if execution is None or execution.user_id != user_id:
        return None
    return execution


async def lock_execution(session: AsyncSession, execution_id: str) -> Execution | None:
    parsed = parse_uuid(execution_id)
    if parsed is None:
        return None
    return await session.scalar(
        select(Execution)
        .where(Execution.id == parsed)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def list_executions(
    session: AsyncSession,
    *,
    user_id: str,
    graph_id: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Execution]:
    """Newest first; `after` is the (created_at, id) of the last item of the previous page."""
    query = select(Execution).where(Execution.user_id == user_id)
    if graph_id:
        query = query.where(Execution.graph_id == graph_id)
    if after is not None:
        created_at, last_id = after
        query = query.where(
            or_(
                Execution.created_at < created_at,
                and_(Execution.created_at == created_at, Execution.id < last_id),
            )
        )
    query = query.order_by(Execution.created_at.desc(), Execution.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def list_node_executions(
    session: AsyncSession, execution_id: uuid.UUID
) -> Sequence[NodeExecution]:
    return (
        await session.scalars(
            select(NodeExecution)
            .where(NodeExecution.execution_id == execution_id)
            .order_by(NodeExecution.seq)
        )
    ).all()


async def end_execution(
    session: AsyncSession,
    execution: Execution,
    status: Status,
    *,
    error: str | None = None,
) -> list[OutboxMessage]:
    """Move a locked, non-terminal execution to a terminal status; every node execution not
    yet finished is cancelled, and runners are told to interrupt the running ones."""
    assert status in TERMINAL
    open_statuses = [Status.INCOMPLETE.value, Status.QUEUED.value, Status.RUNNING.value]
    interrupted = (
        await session.execute(
            update(NodeExecution)
            .where(
                NodeExecution.execution_id == execution.id,
                NodeExecution.status.in_(open_statuses),
            )
            .values(status=Status.CANCELLED.value, ended_at=now())
            .returning(NodeExecution.status)
        )
    ).all()
    execution.status = status.value
    execution.error = error
    execution.ended_at = now()
    await refresh_stats(session, execution)
    rows: list[OutboxMessage] = []
    if interrupted:
        rows.append(outbox.to_control(CancelExecution(execution_id=str(execution.id))))
        session.add_all(rows)
    return rows


async def refresh_stats(session: AsyncSession, execution: Execution) -> None:
    ran = [Status.COMPLETED.value, Status.FAILED.value]
    count, cost = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(NodeExecution.cost), 0)).where(
                NodeExecution.execution_id == execution.id, NodeExecution.status.in_(ran)
            )
        )
    ).one()
    execution.node_count = int(count)
    execution.cost = int(cost)


async def count_active_nodes(session: AsyncSession, execution_id: uuid.UUID) -> int:
    """Node executions still to come: queued, running, or finished with outputs the
    scheduler has not yet passed on (their result message is on its way)."""
    active = [Status.QUEUED.value, Status.RUNNING.value]
    finished = [Status.COMPLETED.value, Status.FAILED.value]
    return int(
        await session.scalar(
            select(func.count()).where(
                NodeExecution.execution_id == execution_id,
                or_(
                    NodeExecution.status.in_(active),
                    and_(NodeExecution.status.in_(finished), NodeExecution.applied.is_(False)),
                ),
            )
        )
        or 0
    )


@dataclass(frozen=True)
class ClaimedNode:
    node_execution_id: uuid.UUID
    execution_id: uuid.UUID
    node_id: str
    block_id: str
    inputs: dict[str, Any]
    attempt: int
    user_id: str
    graph_id: str


async def claim_node(
    session: AsyncSession, node_execution_id: str, *, redelivered: bool
) -> ClaimedNode | None:
    """QUEUED -> RUNNING with a new attempt number, only while the execution is RUNNING.

    A redelivered job may also take over a RUNNING node execution: its runner died before
    finishing (the broker only redelivers unacked messages of a lost consumer). The attempt
    number fences off the old runner should it come back."""
    parsed = parse_uuid(node_execution_id)
    if parsed is None:
        return None
    claimable = [Status.QUEUED.value] + ([Status.RUNNING.value] if redelivered else [])
    row = (
        await session.execute(
            update(NodeExecution)
            .where(
                NodeExecution.id == parsed,
                NodeExecution.status.in_(claimable),
                NodeExecution.execution_id == Execution.id,
                Execution.status == Status.RUNNING.value,
            )
            .values(
                status=Status.RUNNING.value,
                attempt=NodeExecution.attempt + 1,
                started_at=now(),
            )
            .returning(
                NodeExecution.execution_id,
                NodeExecution.node_id,
                NodeExecution.block_id,
                NodeExecution.inputs,
                NodeExecution.attempt,
                Execution.user_id,
                Execution.graph_id,
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return ClaimedNode(parsed, *row)


async def finish_node(
    session: AsyncSession,
    claim: ClaimedNode,
    topology: Topology,
    *,
    status: Status,
    outputs: list[list[Any]],
    error: str | None,
    cost: int,
) -> OutboxMessage | None:
    """Store the attempt's result (RUNNING -> COMPLETED/FAILED) and its `node.finished`.

    Returns None, storing nothing, when this attempt no longer owns the node execution
    (it was cancelled, or a newer attempt took it over)."""
    result = await session.execute(
        update(NodeExecution)
        .where(
            NodeExecution.id == claim.node_execution_id,
            NodeExecution.status.in_(sources_of(status)),
            NodeExecution.status == Status.RUNNING.value,
            NodeExecution.attempt == claim.attempt,
        )
        .values(status=status.value, outputs=outputs, error=error, cost=cost, ended_at=now())
        .returning(NodeExecution.id)
    )
    if result.one_or_none() is None:
        return None
    execution_id = str(claim.execution_id)
    message = outbox.to_scheduler(
        topology,
        execution_id,
        NodeFinished(execution_id=execution_id, node_execution_id=str(claim.node_execution_id)),
    )
    session.add(message)
    await session.flush()
    return message


async def node_status(session: AsyncSession, node_execution_id: str) -> str | None:
    parsed = parse_uuid(node_execution_id)
    if parsed is None:
        return None
    return await session.scalar(select(NodeExecution.status).where(NodeExecution.id == parsed))
