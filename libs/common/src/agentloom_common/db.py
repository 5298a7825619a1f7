"""Async SQLAlchemy engine and session factory, built by each service at start."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(database_url: str, *, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """An asyncpg engine. With pre-ping a restarted PostgreSQL costs nothing but a ping per
    checkout; without it (hot paths whose work is retried anyway) the first use of a dead
    connection fails once and the pool drops it."""
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
