"""The hand-written migration: matches the tables, keeps the ledger append-only, reruns."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from agentloom.billing.v1 import billing_pb2
from agentloom_billing.tables import SCHEMA, metadata

if TYPE_CHECKING:
    from agentloom.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub


def _ours(name: str | None, type_: str, _parent: Any) -> bool:
    """Only the billing schema, and not alembic's own bookkeeping table."""
    if type_ == "schema":
        return name == SCHEMA
    return not (type_ == "table" and name == "alembic_version")


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": _ours,
        },
    )
    return compare_metadata(context, metadata)


async def test_migration_creates_exactly_the_declared_tables(db: AsyncEngine) -> None:
    async with db.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_migrate_command_is_idempotent_and_leaves_head(
    billing_database_url: str, db: AsyncEngine
) -> None:
    env = {**os.environ, "AGENTLOOM_DATABASE_URL": billing_database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentloom_billing", "migrate", env=env, stderr=subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    async with db.connect() as connection:
        version = await connection.scalar(text("SELECT version_num FROM billing.alembic_version"))
    assert version == "0002"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE billing.transactions SET amount = amount + 1 WHERE user_id = :user_id",
        "DELETE FROM billing.transactions WHERE user_id = :user_id",
        "TRUNCATE billing.transactions CASCADE",
    ],
)
async def test_ledger_rows_cannot_be_changed_or_removed(
    billing: BillingServiceAsyncStub, db: AsyncEngine, user_id: str, grant: int, statement: str
) -> None:
    await billing.GetBalance(billing_pb2.GetBalanceRequest(user_id=user_id))
    async with db.connect() as connection:
        with pytest.raises(DBAPIError, match="append-only"):
            await connection.execute(text(statement), {"user_id": user_id})
        await connection.rollback()
        rows = await connection.execute(
            text("SELECT amount FROM billing.transactions WHERE user_id = :user_id"),
            {"user_id": user_id},
        )
        assert rows.scalars().all() == [grant]
