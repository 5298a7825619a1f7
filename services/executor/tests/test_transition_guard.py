"""The database refuses illegal status transitions whoever writes them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from agentloom_executor import repository
from agentloom_executor.server import Infra
from agentloom_executor.tables import Execution


async def test_a_terminal_execution_cannot_be_moved_back(engine: Infra) -> None:
    async with engine.sessions.begin() as session:
        execution, _row = await repository.create_execution(
            session,
            topology=engine.topology,
            user_id="guard",
            graph_id="g",
            graph_version=1,
            graph={"nodes": [], "links": []},
            inputs={},
            credentials_inputs={},
        )
        await session.execute(
            update(Execution).where(Execution.id == execution.id).values(status="CANCELLED")
        )
    with pytest.raises(DBAPIError, match="illegal status transition CANCELLED -> RUNNING"):
        async with engine.sessions.begin() as session:
            await session.execute(
                update(Execution).where(Execution.id == execution.id).values(status="RUNNING")
            )
    async with engine.sessions() as session:
        again = await session.get(Execution, uuid.UUID(str(execution.id)))
        assert again is not None and again.status == "CANCELLED"
