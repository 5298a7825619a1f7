"""A group start writes its new executions, node executions and outbox messages in one
round trip (`repository.write_new`, the function of migration 0013) instead of the unit of
work: the rows must be the ones the unit of work writes, defaults included, and each
message must learn its id."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_blocks.registry import load_blocks
from agentloom_executor import repository, scheduling
from agentloom_executor.graph import GraphSnapshot
from agentloom_executor.server import Infra
from agentloom_executor.tables import Execution, NodeExecution, OutboxMessage

GRAPH = {
    "nodes": [
        {"id": "a", "block_id": "pass_through_block", "input_default": {"value": 7}, "config": {}},
        {
            "id": "b",
            "block_id": "pass_through_block",
            "input_default": {"value": "x"},
            "config": {},
        },
    ],
    "links": [],
}
LEFT_OUT = {"id", "execution_id", "created_at", "started_at", "deadline_at", "requested_at"}


async def _started(session: AsyncSession, engine: Infra, user_id: str, key: str | None) -> Any:
    """A QUEUED execution started in `session` as the executions API starts one: written
    with its first node executions and their jobs when the session writes what is new."""
    execution = repository.new_execution(
        user_id=user_id,
        graph_id="g-write-new",
        graph_version=3,
        graph=GRAPH,
        inputs={"text": "é"},
        credentials_inputs={},
        max_credits=40,
        idempotency_key=key,
    )
    rows = await scheduling.Engine(
        session,
        execution,
        GraphSnapshot.from_json(GRAPH),
        load_blocks(),
        engine.topology,
        scheduling.Limits(max_running_per_user=10),
    ).start()
    session.add(execution)
    return execution, rows


def _columns(row: Any, left_out: set[str]) -> dict[str, Any]:
    return {
        column.key: getattr(row, column.key)
        for column in row.__table__.columns
        if column.key not in left_out
    }


async def _stored(session: AsyncSession, execution_id: uuid.UUID) -> dict[str, Any]:
    execution = await session.get(Execution, execution_id, populate_existing=True)
    assert execution is not None
    nodes = (
        await session.scalars(
            select(NodeExecution)
            .where(NodeExecution.execution_id == execution_id)
            .order_by(NodeExecution.seq)
        )
    ).all()
    return {
        "execution": _columns(execution, LEFT_OUT | {"graph"}),
        "graph": await repository.execution_graph(session, execution_id),
        "nodes": [_columns(node, LEFT_OUT | {"seq", "dispatched_at"}) for node in nodes],
    }


async def test_write_new_stores_what_the_unit_of_work_stores(engine: Infra) -> None:
    """Read back in the writing transaction, then rolled back: the rows as written, before
    the platform's own work (runners, the event relay) could change them."""
    someone = f"user-{uuid.uuid4().hex[:8]}"
    async with engine.sessions() as session:
        by_orm, _ = await _started(session, engine, someone, None)
        await session.flush()
        by_statements, rows = await _started(session, engine, someone, None)
        await repository.write_new(session)
        assert not session.new
        messages = {
            message.id: message
            for message in (
                await session.scalars(
                    select(OutboxMessage).where(OutboxMessage.id.in_([row.id for row in rows]))
                )
            ).all()
        }
        assert len(rows) == 2 and sorted(messages) == sorted(row.id for row in rows)
        for row in rows:
            stored = messages[row.id]
            assert (stored.message_id, stored.body) == (row.message_id, row.body)
        orm = await _stored(session, by_orm.id)
        statements = await _stored(session, by_statements.id)
        await session.rollback()
    assert statements["execution"]["status"] == "RUNNING"
    assert len(statements["nodes"]) == 2
    assert statements == orm


async def test_write_new_reports_a_taken_idempotency_key_as_a_flush_would(engine: Infra) -> None:
    someone = f"user-{uuid.uuid4().hex[:8]}"
    async with engine.sessions.begin() as session:
        await _started(session, engine, someone, "same")
        await repository.write_new(session)
    failed = None
    try:
        async with engine.sessions.begin() as session:
            await _started(session, engine, someone, "same")
            await repository.write_new(session)
    except IntegrityError as error:
        failed = error
    assert failed is not None
    async with engine.sessions() as session:
        keys = await session.scalars(select(Execution.id).where(Execution.user_id == someone))
        assert len(keys.all()) == 1
