"""Pooled connections that PostgreSQL closed while they sat idle are replaced before use."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from agentloom_common.db import create_engine


async def _backend_pid_after_killing_it(url: str, idle_s: float) -> tuple[int, object]:
    """Use a pooled connection once, terminate its server process from outside, wait
    past `idle_s`, and query again through the pool."""
    engine = create_engine(url, pool_size=1, ping_idle_s=idle_s)
    try:
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        outside = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await outside.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await outside.close()
        await asyncio.sleep(0.3)
        try:
            async with engine.connect() as connection:
                again = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        except DBAPIError as error:
            return pid, error
        return pid, again
    finally:
        await engine.dispose()


async def test_an_idle_connection_closed_by_the_server_is_replaced(database_url: str) -> None:
    pid, again = await _backend_pid_after_killing_it(database_url, idle_s=0.1)
    assert isinstance(again, int) and again != pid


async def test_a_connection_reused_at_once_is_not_pinged(database_url: str) -> None:
    """The other side of the trade: within `ping_idle_s` the dead connection is handed
    out unchecked and its first use fails (then the pool drops it)."""
    _pid, again = await _backend_pid_after_killing_it(database_url, idle_s=60)
    assert isinstance(again, DBAPIError)
