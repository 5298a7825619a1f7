"""`repository.lock_execution` loads the locked row without the ORM's loading machinery
when the session does not hold the execution yet: the object must be the one a query
loads (same values, persistent, nothing to write), and what is changed on it afterwards
must be written at the commit as for any loaded object."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import InvalidRequestError

from agentloom_executor import repository
from agentloom_executor.server import Infra
from agentloom_executor.tables import Execution

GRAPH = {"nodes": [{"id": "a", "block_id": "pass_through_block"}], "links": []}


async def _stored(engine: Infra) -> uuid.UUID:
    async with engine.sessions.begin() as session:
        execution, _row = await repository.create_execution(
            session,
            topology=engine.topology,
            user_id=f"user-{uuid.uuid4().hex[:8]}",
            graph_id="g-lock",
            graph_version=2,
            graph=GRAPH,
            inputs={"text": "é"},
            credentials_inputs={},
            max_credits=9,
        )
        return execution.id


def _values(execution: Execution, *, with_graph: bool) -> dict[str, Any]:
    return {
        column.key: getattr(execution, column.key)
        for column in Execution.__table__.columns
        if with_graph or column.key != "graph"
    }


@pytest.mark.parametrize("with_graph", [False, True])
async def test_the_locked_execution_is_what_a_query_loads(engine: Infra, with_graph: bool) -> None:
    execution_id = await _stored(engine)
    table = Execution.__table__
    async with engine.sessions.begin() as session:
        locked = await repository.lock_execution(session, str(execution_id), with_graph=with_graph)
        assert locked is not None
        assert inspect(locked).persistent and not session.dirty and not session.new
        # The row as a Core query reads it, in the same transaction (the lock keeps the
        # platform's own work, such as the event relay, from changing it meanwhile).
        row = (await session.execute(select(table).where(table.c.id == execution_id))).one()
        expected = {k: v for k, v in row._mapping.items() if k != "graph"}
        assert _values(locked, with_graph=False) == expected
        assert type(locked.id) is uuid.UUID
        if with_graph:
            assert locked.graph == row.graph == GRAPH
        else:
            with pytest.raises(InvalidRequestError):
                _ = locked.graph  # deferred and never loaded behind the caller's back
        # Held by the session now: a second lock refreshes the same object.
        assert await repository.lock_execution(session, str(execution_id)) is locked
        locked.error = "changed after the lock"
        locked.node_execution_total = 7
    async with engine.sessions() as session:
        stored = await session.get(Execution, execution_id)
        assert stored is not None
        assert (stored.error, stored.node_execution_total) == ("changed after the lock", 7)


async def test_an_unknown_execution_locks_nothing(engine: Infra) -> None:
    async with engine.sessions.begin() as session:
        assert await repository.lock_execution(session, str(uuid.uuid4())) is None
        assert await repository.lock_execution(session, "not-a-uuid") is None
