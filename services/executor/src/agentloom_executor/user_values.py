"""The per-user key-value memory that memory blocks read and write, in PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_executor import repository
from agentloom_executor.tables import UserValue

MAX_KEY_LENGTH = 256


class UserValues:
    """A block's view of one user's memory: it can reach no other user's keys."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], user_id: str) -> None:
        self._sessions = session_factory
        self._user_id = user_id

    @staticmethod
    def _check(key: str) -> str:
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValueError(f"a memory key has 1 to {MAX_KEY_LENGTH} characters")
        return key

    async def get(self, key: str) -> Any | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(UserValue.value).where(
                    UserValue.user_id == self._user_id, UserValue.key == self._check(key)
                )
            )

    async def set(self, key: str, value: Any) -> None:
        statement = insert(UserValue).values(
            user_id=self._user_id, key=self._check(key), value=value, updated_at=repository.now()
        )
        statement = statement.on_conflict_do_update(
            index_elements=[UserValue.user_id, UserValue.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
        async with self._sessions.begin() as session:
            await session.execute(statement)

    async def delete(self, key: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(UserValue).where(
                    UserValue.user_id == self._user_id, UserValue.key == self._check(key)
                )
            )
