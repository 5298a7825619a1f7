"""Pooled connections that PostgreSQL closed while they sat idle are replaced before use;
statements run on the driver connection stay inside the session's transaction."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from agentloom_common.db import (
    DriverStatement,
    autocommit_sessions,
    create_engine,
    create_session_factory,
)


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


async def test_one_caller_at_a_time_keeps_using_the_same_connection(database_url: str) -> None:
    """LIFO: with the whole pool open, requests one after another get the connection
    returned last, not each of the pool's in turn (which left each idle long enough to be
    pinged before use)."""
    engine = create_engine(database_url, pool_size=4)
    try:
        async with engine.connect(), engine.connect(), engine.connect(), engine.connect():
            pass  # all four opened, then returned
        pids = []
        for _ in range(6):
            async with engine.connect() as connection:
                pids.append(
                    (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                )
        assert len(set(pids)) == 1, pids
    finally:
        await engine.dispose()


# DriverStatement: hot-path statements on the session's own asyncpg connection.

_COUNTER = sa.Table(
    "driver_statement_counter",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.Integer),
)
_BUMP = DriverStatement.of(
    sa.update(_COUNTER)
    .where(_COUNTER.c.id == sa.bindparam("row"))
    .values(value=_COUNTER.c.value + sa.bindparam("by"))
    .returning(_COUNTER.c.value)
)
_READ = DriverStatement.of(sa.select(_COUNTER.c.value).where(_COUNTER.c.id == 1))
_BACKEND = DriverStatement.of(sa.select(sa.func.pg_backend_pid()))


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __table__ = _COUNTER


async def _with_counter(url: str) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    engine = create_engine(url, pool_size=1)
    async with engine.begin() as connection:
        await connection.run_sync(_COUNTER.drop, checkfirst=True)
        await connection.run_sync(_COUNTER.create)
        await connection.execute(sa.insert(_COUNTER).values(id=1, value=0))
    return engine, create_session_factory(engine)


async def _value(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(sa.select(_COUNTER.c.value))).scalar_one())


async def test_a_driver_statement_begins_and_rolls_back_with_the_session(
    database_url: str,
) -> None:
    """Sent first in a transaction (before any ORM statement has begun it), it is still
    inside it: a rollback undoes it, a commit keeps it."""
    engine, sessions = await _with_counter(database_url)
    try:
        async with sessions() as session:
            row = await _BUMP.fetchrow(session, {"row": 1, "by": 5})
            assert row["value"] == 5
            await session.rollback()
        assert await _value(sessions) == 0
        async with sessions.begin() as session:
            await _BUMP.fetchrow(session, {"row": 1, "by": 2})
            await _BUMP.fetchrow(session, {"row": 1, "by": 3})
        assert await _value(sessions) == 5
    finally:
        await engine.dispose()


async def test_each_transaction_of_a_session_gets_its_own_connection(database_url: str) -> None:
    """The connection is remembered for the statements of one transaction only: after a
    commit the session's next transaction begins again (its statements roll back with it),
    and the connection it was given back is not reused from the memory of the first."""
    engine, sessions = await _with_counter(database_url)
    try:
        async with sessions() as session:
            await _BUMP.fetchrow(session, {"row": 1, "by": 1})
            first = (await _BACKEND.fetchrow(session, {}))[0]
            await session.commit()
            await _BUMP.fetchrow(session, {"row": 1, "by": 10})
            assert (await _READ.fetchrow(session, {}))["value"] == 11
            second = (await _BACKEND.fetchrow(session, {}))[0]
            await session.rollback()
        assert await _value(sessions) == 1
        assert first == second  # the pool's one connection, checked out again
        async with sessions() as session:
            await _BUMP.fetchrow(session, {"row": 1, "by": 100})
            await session.rollback()
            await _BUMP.fetchrow(session, {"row": 1, "by": 1000}, flush=False)
            await session.commit()
        assert await _value(sessions) == 1001
    finally:
        await engine.dispose()


async def test_a_driver_statement_sees_pending_orm_changes(database_url: str) -> None:
    """What the session holds unflushed is flushed first, as autoflush would."""
    engine, sessions = await _with_counter(database_url)
    try:
        async with sessions.begin() as session:
            (await session.get(_Row, 1)).value = 40  # type: ignore[union-attr]
            row = await _READ.fetchrow(session, {})
            assert row["value"] == 40
            assert (await _BUMP.fetch(session, {"row": 1, "by": 2}))[0]["value"] == 42
    finally:
        await engine.dispose()


def test_expanding_in_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="expanding IN"):
        DriverStatement.of(sa.select(_COUNTER.c.id).where(_COUNTER.c.value.in_([1, 2])))


async def test_a_dead_connection_met_by_a_driver_statement_leaves_the_pool(
    database_url: str,
) -> None:
    """Statements sent straight to asyncpg bypass SQLAlchemy's own handling of a lost
    connection: the first use of a dead one fails as an outage (ConnectionError) and the
    pool drops it, so the next session gets a live connection, not the dead one again."""
    engine = create_engine(database_url, pool_size=1, ping_idle_s=60)  # no ping on checkout
    sessions = create_session_factory(engine)
    try:
        for begin in (True, False):  # the failure at BEGIN, and at a statement in autocommit
            async with sessions() as session:
                pid = (await _BACKEND.fetchrow(session, {}))[0]
            outside = await asyncpg.connect(
                database_url.replace("postgresql+asyncpg", "postgresql")
            )
            try:
                await outside.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await outside.close()
            await asyncio.sleep(0.3)
            factory = sessions if begin else autocommit_sessions(sessions)
            with pytest.raises(ConnectionError):
                async with factory() as session:
                    await _BACKEND.fetchrow(session, {})
            async with sessions() as session:
                again = (await _BACKEND.fetchrow(session, {}))[0]
            assert again != pid
    finally:
        await engine.dispose()
