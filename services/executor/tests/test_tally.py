"""A runner writes the node executions it ran and counts the execution's in one round trip:
the count must be the one a separate count after the write gives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from agentloom_executor import repository
from agentloom_executor.server import Infra
from agentloom_executor.tables import Execution, NodeExecution


def _node(execution_id: uuid.UUID, status: str, *, applied: bool, cost: int) -> NodeExecution:
    moment = datetime.now(UTC)
    return NodeExecution(
        id=uuid.uuid4(),
        execution_id=execution_id,
        node_id=f"n-{status.lower()}",
        block_id="pass_through_block",
        status=status,
        inputs={},
        outputs=[["output", 1]] if status in ("COMPLETED", "FAILED") else None,
        attempt=1,
        cost=cost,
        config={},
        applied=applied,
        created_at=moment,
        started_at=moment,
        ended_at=moment if status in ("COMPLETED", "FAILED") else None,
    )


async def _execution(session: object, engine: Infra) -> Execution:
    execution, _row = await repository.create_execution(
        session,  # type: ignore[arg-type]
        topology=engine.topology,
        user_id=f"user-{uuid.uuid4().hex[:8]}",
        graph_id="g-test",
        graph_version=1,
        graph={"nodes": [], "links": []},
        inputs={},
        credentials_inputs={},
    )
    return execution


async def test_written_and_counted_together_as_counted_after(engine: Infra) -> None:
    stored = [
        ("QUEUED", False, 0),
        ("RUNNING", False, 0),
        ("COMPLETED", True, 5),
        ("FAILED", False, 2),
        ("INCOMPLETE", False, 0),
    ]
    written = [("COMPLETED", True, 3), ("COMPLETED", True, 0), ("QUEUED", False, 0)]
    tallies = []
    for together in (True, False):
        async with engine.sessions.begin() as session:
            execution = await _execution(session, engine)
            for status, applied, cost in stored:
                session.add(_node(execution.id, status, applied=applied, cost=cost))
            # Left in the session unflushed, as a runner leaves what it claimed from the
            # database: the write must flush it first.
            nodes = [_node(execution.id, s, applied=a, cost=c) for s, a, c in written]
            if together:
                tally = await repository.write_finished_and_tally(session, execution.id, nodes)
            else:
                await repository.write_finished(session, nodes)
                tally = await repository.node_tally(session, execution.id)
            rows = await session.scalar(
                select(func.count()).where(NodeExecution.execution_id == execution.id)
            )
            tallies.append((tally, rows))
            await session.rollback()
    assert tallies[0] == tallies[1]
    assert tallies[0] == (repository.Tally(active=4, ran=4, cost=10, open=4), 8)
