"""The executor vacuums its busy tables once their dead rows pile up (maintenance.py), on the
real PostgreSQL, whose autovacuum is off on these machines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agentloom_common.db import create_engine
from agentloom_executor.maintenance import COST_DELAY_MS, MaintenanceOptions, TableMaintenance


async def _dead_rows(connection: AsyncConnection, table: str) -> int:
    await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
    found = await connection.execute(
        text(
            "SELECT n_dead_tup FROM pg_stat_user_tables "
            "WHERE schemaname = 'executor' AND relname = :table"
        ),
        {"table": table},
    )
    return int(found.scalar_one())


async def _churn_outbox(engine: AsyncEngine, rows: int) -> None:
    """Rows written and deleted, as the outbox does with every message it sends."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO executor.outbox "
                "(exchange, routing_key, message_id, body, mandatory, created_at) "
                "SELECT 'x', 'y', 'maintenance-' || n, '\\x00', false, now() "
                "FROM generate_series(1, :rows) AS n"
            ),
            {"rows": rows},
        )
        await connection.execute(
            text("DELETE FROM executor.outbox WHERE message_id LIKE 'maintenance-%'")
        )
        await connection.execute(text("SELECT pg_stat_force_next_flush()"))


async def test_a_table_whose_dead_rows_pile_up_is_vacuumed(migrated: str) -> None:
    engine = create_engine(migrated, pool_size=1)
    try:
        await _churn_outbox(engine, 3_000)
        async with engine.connect() as connection:
            assert await _dead_rows(connection, "outbox") >= 3_000
        maintenance = TableMaintenance(
            engine, MaintenanceOptions(min_dead_rows=2_000, dead_fraction=0.1)
        )
        assert "outbox" in await maintenance.once()
        async with engine.connect() as connection:
            assert await _dead_rows(connection, "outbox") < 2_000
        # Vacuumed, the table is not due again.
        assert "outbox" not in await maintenance.once()
        assert maintenance.vacuumed["outbox"] == 1
    finally:
        await engine.dispose()


async def test_a_few_dead_rows_are_left_to_later(migrated: str) -> None:
    engine = create_engine(migrated, pool_size=1)
    try:
        await _churn_outbox(engine, 3_000)
        cautious = TableMaintenance(engine, MaintenanceOptions(min_dead_rows=1_000_000))
        assert await cautious.once() == []
        assert cautious.vacuumed == {}
    finally:
        await engine.dispose()


async def test_vacuums_are_paced_and_the_pooled_connection_is_left_as_it_was(
    migrated: str,
) -> None:
    """A manual VACUUM is unpaced unless told (it held a core for ~0.4 s under bench W4):
    the maintenance sets autovacuum's cost delay around its vacuums, then resets it."""
    engine = create_engine(migrated, pool_size=1)
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        await _churn_outbox(engine, 3_000)
        sent.clear()
        assert "outbox" in await TableMaintenance(engine, MaintenanceOptions()).once()
        vacuum = sent.index('VACUUM (ANALYZE, SKIP_LOCKED) "executor"."outbox"')
        assert f"SET vacuum_cost_delay = {COST_DELAY_MS}" in sent[:vacuum]
        assert "RESET vacuum_cost_delay" in sent[vacuum:]
        async with engine.connect() as connection:  # the pool's one connection
            shown = await connection.execute(text("SHOW vacuum_cost_delay"))
            assert shown.scalar_one() == "0"
    finally:
        await engine.dispose()
