"""Alembic helpers: every service migrates its own schema with its own version table.

A service's `migrations/env.py` is two lines that call `run_env(metadata)`; its `migrate`
command calls `upgrade(database_url, "agentloom_<svc>", schema)`.
"""

from __future__ import annotations

import asyncio

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def upgrade(database_url: str, package: str, schema: str, revision: str = "head") -> None:
    """Run the package's migrations (`<package>/migrations`) up to `revision`."""
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = schema
    command.upgrade(config, revision)


def run_env(metadata: MetaData) -> None:
    """Body of a service's alembic env.py (online mode only)."""
    config = context.config
    url: str = config.attributes["database_url"]
    schema: str = config.attributes["schema"]

    def run(connection: Connection) -> None:
        # Several replicas may migrate at once on a first deploy: one at a time per schema.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(run)
        await engine.dispose()

    asyncio.run(main())
