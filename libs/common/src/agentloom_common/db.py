"""Async SQLAlchemy engine and session factory, built by each service at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

log = logging.getLogger(__name__)

# A pooled connection idle longer than this is pinged before it is handed out.
PING_IDLE_S = 1.0
# How long a caller waits for a pooled connection when all are in use, before it fails.
POOL_TIMEOUT_S = 30.0
_IDLE_SINCE = "agentloom_idle_since"


def create_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    pre_ping: bool = True,
    ping_idle_s: float = PING_IDLE_S,
) -> AsyncEngine:
    """An asyncpg engine holding at most `pool_size` connections, kept open: under a burst
    callers wait for one rather than open more (an overflow connection is closed when it is
    returned, so a burst made each service connect and disconnect dozens of times, each a
    new PostgreSQL backend with cold statement caches; measured in bench W2).

    With pre-ping, a connection that sat in the pool longer than `ping_idle_s` is pinged
    before use, so a restarted PostgreSQL costs a ping after a pause, not a failed request;
    one reused at once is not (SQLAlchemy's own pre-ping is three round trips on asyncpg,
    BEGIN, `;`, ROLLBACK, on every checkout). Without it (hot paths whose work is retried
    anyway) the first use of a dead connection fails once and the pool drops it.

    The pool hands out the connection returned last (LIFO): under light load the same few
    connections stay in use, warm and unpinged, where a FIFO pool rotated through all of
    them so each sat idle past `ping_idle_s` and paid the three round trips of a ping on
    the request's path (bench W1: billing's and graphs' one read per execution)."""
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=0,
        pool_use_lifo=True,
        pool_timeout=POOL_TIMEOUT_S,
        pool_pre_ping=False,
        pool_recycle=1800,
    )
    if pre_ping:
        _ping_when_idle(engine, ping_idle_s)
    return engine


async def warm_pool(engine: AsyncEngine, timeout_s: float = 5.0) -> None:
    """Open the pool's connections at start, as a pool with a minimum size would: the first
    burst of requests otherwise pays for opening them, a PostgreSQL backend each (the first
    bench W2 burst after start opened ~40). Best effort: a database that is not there yet
    only means the connections are opened later, on use."""
    size = engine.pool.size() if hasattr(engine.pool, "size") else 1
    async with contextlib.AsyncExitStack() as held:
        try:
            async with asyncio.timeout(timeout_s):
                for _ in range(size):
                    await held.enter_async_context(engine.connect())
        except (OSError, TimeoutError, exc.SQLAlchemyError) as error:
            log.warning("could not open the database pool at start: %s", type(error).__name__)


def _ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """SQLAlchemy's recipe for custom pessimistic disconnect handling: a checkout listener
    that raises `DisconnectionError` makes the pool discard the connection and try a new
    one."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            alive = sync_engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:
            raise exc.DisconnectionError("the connection was closed while idle in the pool")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def autocommit_sessions(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Sessions on the same engine (and pool) in autocommit, for reads and one-statement
    writes: no BEGIN and COMMIT round trips around a statement, so it is one round trip
    instead of three. Each statement sees the data committed when it starts and commits on
    its own; statements that must agree with each other belong in a transaction."""
    bind = sessions.kw["bind"]
    return async_sessionmaker(
        bind.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )


_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class DriverStatement:
    """A Core statement compiled once, run straight on the asyncpg connection under a
    session's transaction. For hot paths: a statement through `session.execute` costs
    ~0.3-0.5 ms of CPU in SQLAlchemy on top of the ~0.1 ms the round trip itself costs
    (measured on the 2-core box; the ORM was over half of the scheduler's and runners'
    CPU under bench W2). Only for statements whose parameters and results need no type
    processing beyond asyncpg's own (no JSON parameters; JSON results arrive decoded);
    results are asyncpg records. Pending ORM changes are flushed first, as `execute` would
    (autoflush), so the statement sees them."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]

    @classmethod
    def of(cls, statement: ClauseElement) -> DriverStatement:
        compiled = cast(SQLCompiler, statement.compile(dialect=_DIALECT))
        sql = str(compiled)
        if "POSTCOMPILE" in sql:
            raise ValueError("expanding IN parameters are not supported: use equalities")
        return cls(sql, tuple(compiled.positiontup or ()), dict(compiled.params))

    def _args(self, params: Mapping[str, Any]) -> list[Any]:
        values = {**self.defaults, **params}
        return [values[name] for name in self.names]

    async def fetch(
        self, session: AsyncSession, params: Mapping[str, Any], *, flush: bool = True
    ) -> list[Any]:
        connection = await driver_connection(session, flush=flush)
        try:
            rows: list[Any] = await connection.fetch(self.sql, *self._args(params))
        except Exception as error:
            await _drop_if_lost(session, connection, error)
            raise
        return rows

    async def fetchrow(
        self, session: AsyncSession, params: Mapping[str, Any], *, flush: bool = True
    ) -> Any:
        connection = await driver_connection(session, flush=flush)
        try:
            return await connection.fetchrow(self.sql, *self._args(params))
        except Exception as error:
            await _drop_if_lost(session, connection, error)
            raise

    async def execute(
        self, session: AsyncSession, params: Mapping[str, Any], *, flush: bool = True
    ) -> int:
        """Run it for its effect; the number of rows it affected (its command tag's).
        `flush=False`: the caller knows the statement does not depend on the session's
        pending changes (they are written at the next flush)."""
        connection = await driver_connection(session, flush=flush)
        try:
            tag: str = await connection.execute(self.sql, *self._args(params))
        except Exception as error:
            await _drop_if_lost(session, connection, error)
            raise
        count = tag.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else 0


async def _drop_if_lost(
    session: AsyncSession, driver: asyncpg.Connection, error: Exception
) -> None:
    """After a statement sent straight to asyncpg failed: if the connection is gone
    (PostgreSQL restarted, the backend was terminated), invalidate it, as SQLAlchemy does
    for the statements it runs itself, and raise ConnectionError (an outage: callers
    answer UNAVAILABLE and retry). Without this a dead connection went back to the pool
    and was handed out again and again: each use failed, none dropped it."""
    lost = driver.is_closed() or isinstance(
        error, asyncpg.exceptions.ConnectionDoesNotExistError | ConnectionError | OSError
    )
    if not lost:
        return
    connection = await session.connection()
    await connection.invalidate(error)
    raise ConnectionError("the database connection was lost") from error


# session.info key: (the root SessionTransaction, its asyncpg connection).
_DRIVER = "agentloom_driver_connection"


async def driver_connection(session: AsyncSession, *, flush: bool = True) -> asyncpg.Connection:
    """The asyncpg connection of `session`, inside its transaction: pending changes are
    flushed (unless `flush` is False), and the transaction is begun if no statement has
    begun it yet (SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its first
    statement).

    Found once per transaction and remembered for its later statements: asking the session
    for it cost ~30 us of CPU per statement (`session.connection()`, the proxies, the
    adapter), and a runner's transaction runs half a dozen. A clean session is not flushed
    (a flush with nothing to write still costs a greenlet switch)."""
    sync = session.sync_session
    if flush and (sync._new or sync._deleted or sync.identity_map.check_modified()):
        await session.flush()
    transaction = sync.get_transaction()
    held = sync.info.get(_DRIVER)
    if held is not None and transaction is not None and held[0] is transaction:
        cached: asyncpg.Connection = held[1]
        return cached
    connection = await session.connection()
    adapted: Any = (await connection.get_raw_connection()).dbapi_connection
    # The adapter's own lazy begin (SQLAlchemy 2.x asyncpg dialect): a statement sent
    # before it would run outside the transaction.
    driver: asyncpg.Connection = adapted.driver_connection
    if adapted._transaction is None and adapted.isolation_level != "autocommit":
        try:
            await adapted._start_transaction()
        except Exception as error:
            await _drop_if_lost(session, driver, error)
            raise
    # The root transaction holds one connection until it ends; the next one is another
    # object, so a connection returned to the pool is never handed out from here again.
    sync.info[_DRIVER] = (sync.get_transaction(), driver)
    return driver
