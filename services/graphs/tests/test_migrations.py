"""The hand-written migration, run by the service's own `migrate` command."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from agentloom_devkit import resources
from agentloom_graphs.tables import SCHEMA, metadata


async def migrate(database_url: str) -> tuple[int, bytes]:
    env = {**os.environ, "AGENTLOOM_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentloom_graphs", "migrate", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stderr


async def test_migrate_command_creates_the_schema_and_can_run_again() -> None:
    name = resources.unique_name("agentloom_graphs_migrate")
    await resources.create_database(name)
    try:
        results = [await migrate(resources.database_url(name)) for _ in range(2)]
        connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}")
        try:
            tables = await connection.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", SCHEMA
            )
            revision = await connection.fetchval(
                f"SELECT version_num FROM {SCHEMA}.alembic_version"
            )
        finally:
            await connection.close()
    finally:
        await resources.drop_database(name)

    assert [code for code, _ in results] == [0, 0], results
    assert {t["table_name"] for t in tables} == {
        "graphs",
        "graph_versions",
        "presets",
        "alembic_version",
    }
    assert revision == "0002"


async def test_migration_matches_the_tables_the_code_uses(engine: AsyncEngine) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, kind, _: kind != "schema" or name == SCHEMA,
                "include_object": lambda obj, name, kind, *_: name != "alembic_version",
            },
        )
        return compare_metadata(context, metadata)

    async with engine.connect() as connection:
        differences = await connection.run_sync(diff)

    assert differences == []
